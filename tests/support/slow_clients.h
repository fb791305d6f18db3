// Slow HTTP clients ("slowloris") for tests of the status server and HTTP ingest.
//
// SlowClients keeps `count` TCP connections to 127.0.0.1:port open from its own Asio thread
// ("slow-clients"). Each one sends an HTTP request one byte per `drip` and never finishes it. When
// the server closes a connection (refused at once, or timed out) it is opened again after
// `reconnect_delay`, so the pressure stays on for as long as the object lives, as a real slow
// client would keep it.
//
// Each connection costs one descriptor in the test process: raise RLIMIT_NOFILE first.
// Every method is callable from the test thread; counters are atomics. The destructor (or stop())
// closes every connection and joins the thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>

namespace ioc_edge::test {

class SlowClients {
 public:
  SlowClients(int port, int count, std::chrono::milliseconds drip = std::chrono::milliseconds(1000),
              std::chrono::milliseconds reconnect_delay = std::chrono::milliseconds(1000));
  ~SlowClients();
  SlowClients(const SlowClients&) = delete;
  SlowClients& operator=(const SlowClients&) = delete;

  // Closes every connection and joins the thread; returns once they are closed. Idempotent.
  void stop();

  // Connections established so far (reconnects included).
  std::uint64_t connects() const;
  // Connections open now.
  std::uint64_t open() const;
  // Distinct client slots that were connected at least once (at most `count`).
  std::uint64_t slots_connected() const;
  // Connections the server closed (EOF or reset seen).
  std::uint64_t closed_by_server() const;
  // Connect attempts that failed (refused, no descriptor, ...).
  std::uint64_t connect_failures() const;
  // Bytes received from the server (e.g. "503 busy" replies).
  std::uint64_t bytes_received() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ioc_edge::test
