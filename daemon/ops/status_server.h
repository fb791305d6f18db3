#pragma once
// The local status API (Boost.Beast, HTTP/1.1, one request per connection): GET /healthz,
// GET /status, POST /outbox/requeue. The HTTP ingest will reuse this layer.
//
// Design note
// -----------
// What it is: a small HTTP/1.1 server for a handful of local callers (`ioc-edge status`, a
// monitoring probe). Each connection carries one request: it is read whole, handed to the Handler,
// answered with `Connection: close`, and closed. It is not a general web server: no keep-alive, no
// pipelining, no TLS, no streaming bodies.
//
// Limits (StatusServerLimits; the gateway uses the defaults):
//   - at most 64 connections open at once. A connection beyond that is accepted and closed at once
//     (a best-effort "503 busy" is written first) and counted in stats().refused_busy, so a flood
//     costs one accept and one close each, never a buffer or a timer;
//   - 5 s for the whole request (request line, headers and body), whatever the client's pace: a
//     client that sends nothing, or one byte a second, is closed after 5 s;
//   - headers at most 8 KiB (larger: 431), body at most 1 KiB (larger: 413; no request of this API
//     needs one), anything unparsable: 400. After such an error reply the rest of the request is
//     read and discarded for at most 1 s (64 KiB) so the client sees the reply, then it is closed;
//   - 5 s to write the reply;
//   so the server holds at most 64 sockets and about 64 x 16 KiB of buffers, whatever the load.
//
// States of the listener:
//
//   listen() --bind ok--> LISTENING <--accept ok-- ACCEPT BACKOFF
//       |                    |  ^                       ^
//       | bind fails         |  +-- bind ok --+         | accept fails (EMFILE, ENFILE, ENOBUFS, ...)
//       v                    |                |         |
//   BIND RETRY --every 10 s--+----------------+         +-- LISTENING: retry after 100 ms,
//                                                            doubling to 2 s, while it keeps failing
//   stop() from any state: STOPPED (timers cancelled, acceptor and open connections closed).
//
// Invariants
//  1. A failed bind (address in use, not yet configured, no permission) does not stop the daemon:
//     listen() logs a warning naming the address and the error, returns true and retries every
//     10 s; it logs once more when it listens at last. port() is 0 and listening() false until then.
//     Only an address that cannot be parsed at all makes listen() return false.
//  2. An accept error never loops: the next accept waits for the backoff timer. Entering and
//     leaving the failing state is logged (warn / info), rate-limited to one warning a minute.
//  3. After stop() the Handler is never called again and no timer or accept is pending.
//
// Threads: everything, the Handler included, runs on the thread that runs `io` (the main thread);
// no member may be called from another thread. The Handler must not block: it runs on the loop
// that also drives the sources' timers.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

namespace ioc_edge {

struct HttpReply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

// The limits of the design note. Outside the class only because GCC rejects a nested struct with
// default member initialisers as a default argument of the enclosing class's constructor.
struct StatusServerLimits {
  std::size_t max_connections = 64;
  std::chrono::milliseconds request_timeout{5000};  // the whole request: headers and body
  std::chrono::milliseconds write_timeout{5000};
  std::size_t header_limit = 8 * 1024;
  std::size_t body_limit = 1024;
  std::chrono::milliseconds accept_backoff_min{100};
  std::chrono::milliseconds accept_backoff_max{2000};
  std::chrono::milliseconds bind_retry{10000};
};

// Counters since construction, for the status API and tests.
struct StatusServerStats {
  bool listening = false;
  std::size_t open = 0;              // connections open now
  std::uint64_t accepted = 0;        // connections served (handed to a session)
  std::uint64_t refused_busy = 0;    // accepted and closed at once: max_connections were open
  std::uint64_t accept_errors = 0;   // failed accepts (EMFILE, ...), each followed by a backoff
  std::uint64_t timed_out = 0;       // requests not complete within request_timeout
  std::uint64_t rejected = 0;        // requests answered 400 / 413 / 431
  std::uint64_t bind_failures = 0;   // failed bind attempts
};

class StatusServer {
 public:
  using Handler = std::function<HttpReply(const std::string& method, const std::string& target)>;
  StatusServer(boost::asio::io_context& io, Handler handler, StatusServerLimits limits = {});
  // stop()s.
  ~StatusServer();
  StatusServer(const StatusServer&) = delete;
  StatusServer& operator=(const StatusServer&) = delete;

  // Binds and starts accepting. If the address is valid but cannot be bound now, logs a warning,
  // keeps retrying in the background and returns true (invariant 1). False (and `error`) only if
  // `host` is not an IP address.
  bool listen(const std::string& host, int port, std::string& error);
  // Cancels the timers, closes the acceptor and every open connection. Idempotent.
  void stop();
  // The bound port (useful with port 0), 0 until bound.
  int port() const;
  bool listening() const;
  StatusServerStats stats() const;

  struct Impl;  // defined in status_server.cpp; named here only so that its sessions can hold it

 private:
  // Shared with the pending handlers and the open sessions: the gateway destroys this object
  // before its io_context, whose destructor then destroys the handlers that were never run.
  std::shared_ptr<Impl> impl_;
};

}  // namespace ioc_edge
