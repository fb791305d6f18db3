#pragma once
// The one small HTTP/1.1 server of the daemon (Boost.Beast): the status API and every `http-ingest`
// source run an HttpServer each, with their own limits.
//
// Design note
// -----------
// What it is: a bounded server for local callers (`ioc-edge status`, a monitoring probe, an office's
// case-handling software posting readings). Requests on a connection are served one after another
// (keep-alive when the server allows it; a pipelined request waits in the buffer). It is not a
// general web server: no chunked upload limits beyond body_limit, no HTTP/2, no streaming bodies.
//
// A request's life on a connection:
//
//   READ HEADERS --complete--> early(headers) --reply--> WRITE --keep-alive--> READ HEADERS
//        |                         | none                   ^        \--close--> (discard, close)
//        | timeout, limit,         v                        |
//        | malformed          READ BODY --complete--> handle(request, respond) --respond()--+
//        v                         |                            | handler_timeout
//   (error reply or close)         +-- timeout, too large       +--> 503, the late respond() ignored
//
// Limits (HttpLimits; each user sets its own):
//   - at most `max_connections` open at once, and at most `max_per_client` from one address: beyond
//     either, a connection is accepted, sent a best-effort "503 busy" and closed at once (counted),
//     so a flood costs one accept and one close each, never a buffer or a timer, and one office PC
//     that opens hundreds of connections cannot take the slots of the others;
//   - `request_timeout` for a whole request (headers and body) from the moment the server waits for
//     it, whatever the client's pace: a client that sends nothing, or a byte a second, is closed;
//     on a kept-alive connection the idle time before the next request counts against it too;
//   - headers at most `header_limit` (larger: 431), body at most `body_limit` (larger: 413, said
//     before the body is read when Content-Length announces it), anything unparsable: 400. After an
//     error reply the rest of the request is read and dropped for at most 1 s (64 KiB), so the
//     client sees the reply rather than a reset, then the connection is closed;
//   - `handler_timeout` for the handler's answer (it may wait for a commit); then 503;
//   - `write_timeout` to write the reply.
//   So a server holds at most max_connections sockets and about max_connections x (header_limit +
//   body_limit) of buffers, whatever the load.
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
//     `bind_retry`; it logs once more when it listens at last. port() is 0 and listening() false
//     until then. Only an address that cannot be parsed at all makes listen() return false.
//  2. An accept error never loops: the next accept waits for the backoff timer. Entering and
//     leaving the failing state is logged (warn / info), at most one warning a minute.
//  3. After stop() no handler is called again, no respond() has an effect and no timer or accept is
//     pending.
//  4. Every request gets exactly one reply (or the connection is closed): the handler's, an error
//     reply of the server, or the 503 of handler_timeout; a respond() after that is ignored.
//  5. With TLS (cert_file and key_file), the handshake counts against request_timeout; a client
//     that fails it is closed and counted in `rejected`.
//
// Threads: everything runs on the thread that runs `io` (the main thread), the handlers included;
// no member may be called from another thread. `respond` may be called from any thread (it posts
// to `io`). Handlers must not block: they run on the loop that drives the sources' timers.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>

namespace ioc_edge {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query, as sent
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;    // empty in early()
  std::string client;  // the peer's address, e.g. "192.168.1.20"
  // The first header of that name (ASCII case-insensitive), or empty.
  std::string_view header(std::string_view name) const;
  std::string path() const { return target.substr(0, target.find('?')); }
};

struct HttpReply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers = {};  // extra ones (Retry-After, WWW-Authenticate)
};

struct HttpLimits {
  std::string name = "HTTP server";  // in log lines: "the status API", "http-ingest \"mot-cua\""
  std::string url_path = "/";        // the path its address is logged with
  std::size_t max_connections = 64;
  std::size_t max_per_client = 64;
  bool keep_alive = false;  // serve further requests on a connection
  std::chrono::milliseconds request_timeout{5000};  // headers and body (and idle time before them)
  std::chrono::milliseconds handler_timeout{60000};
  std::chrono::milliseconds write_timeout{5000};
  std::size_t header_limit = 8 * 1024;
  std::size_t body_limit = 1024;
  std::chrono::milliseconds accept_backoff_min{100};
  std::chrono::milliseconds accept_backoff_max{2000};
  std::chrono::milliseconds bind_retry{10000};
  std::string cert_file, key_file;  // both set: HTTPS (invariant 5)
};

// Counters since construction, for the status API and tests.
struct HttpStats {
  bool listening = false;
  std::size_t open = 0;              // connections open now
  std::uint64_t accepted = 0;        // connections served (handed to a session)
  std::uint64_t requests = 0;        // requests handed to the handler
  std::uint64_t refused_busy = 0;    // accepted and closed at once: a connection limit was reached
  std::uint64_t accept_errors = 0;   // failed accepts (EMFILE, ...), each followed by a backoff
  std::uint64_t timed_out = 0;       // requests not complete within request_timeout, handlers past handler_timeout
  std::uint64_t rejected = 0;        // requests answered 400 / 413 / 431, failed TLS handshakes
  std::uint64_t bind_failures = 0;   // failed bind attempts
};

class HttpServer {
 public:
  using Respond = std::function<void(HttpReply)>;
  // The request, body included; answers through `respond`, now or later, from any thread.
  using Handler = std::function<void(HttpRequest request, Respond respond)>;
  // Optional: sees the headers before the body is read (body empty) and may answer at once (401,
  // 415, 413...), so that nobody unauthorised makes the server hold a body.
  using Early = std::function<std::optional<HttpReply>(const HttpRequest& headers)>;

  HttpServer(boost::asio::io_context& io, Handler handler, HttpLimits limits, Early early = nullptr);
  // For handlers that answer at once (the status API).
  static Handler immediate(std::function<HttpReply(const HttpRequest&)> fn);
  // stop()s.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts accepting. If the address is valid but cannot be bound now, logs a warning,
  // keeps retrying in the background and returns true (invariant 1). False (and `error`) only if
  // `host` is not an IP address or the TLS certificate or key cannot be loaded.
  bool listen(const std::string& host, int port, std::string& error);
  // Cancels the timers, closes the acceptor and every open connection. Idempotent.
  void stop();
  // The bound port (useful with port 0), 0 until bound.
  int port() const;
  bool listening() const;
  HttpStats stats() const;

  struct Impl;  // defined in http_server.cpp; named here only so that its sessions can hold it

 private:
  // Shared with the pending handlers and the open sessions: the owner destroys this object
  // before its io_context, whose destructor then destroys the handlers that were never run.
  std::shared_ptr<Impl> impl_;
};

}  // namespace ioc_edge
