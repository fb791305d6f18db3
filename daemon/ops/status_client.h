#pragma once
// `ioc-edge status`: the client side of the status API (docs/design.md section 6). Asks the running
// daemon for GET /status, prints it for people (or the JSON as served with --json), and exits:
//   0  healthy,
//   1  not healthy: the problems of the daemon's health rules (ops/health.h) are printed,
//   2  the status could not be had: nothing listens at the address, no answer within the timeout,
//      or an answer that is not the daemon's status.
// So a monitoring check or a script can use the exit code alone.
//
// Blocking, on the caller's thread (the command line's main thread); one connection, bounded by
// `timeout` end to end.
#include <chrono>
#include <ostream>
#include <string>
#include <string_view>

namespace ioc_edge {

inline constexpr int kStatusHealthy = 0;
inline constexpr int kStatusUnhealthy = 1;
inline constexpr int kStatusUnreachable = 2;

struct DaemonAnswer {
  bool reached = false;  // an HTTP response came back
  int status = 0;        // its status code
  std::string body;
  std::string error;     // why not reached ("Connection refused", "timed out", ...)
};

// One HTTP/1.1 request to the daemon's status API at HOST:PORT ("127.0.0.1:8787", "[::1]:8787").
// Never throws.
DaemonAnswer ask_status_api(const std::string& address, std::string_view method, const std::string& target,
                            std::chrono::milliseconds timeout = std::chrono::seconds(10));

// The whole command; returns its exit code.
int run_status_command(const std::string& address, bool json, std::ostream& out, std::ostream& err,
                       std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace ioc_edge
