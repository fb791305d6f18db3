#pragma once
// Logging: spdlog to stderr (the journal adds time and unit), one logger per component or source,
// named "outbox", "uplink", "generator/tram-bom-1".
#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include <spdlog/spdlog.h>

namespace ioc_edge {

// The named logger, created on first use with the shared stderr sink and the global level.
std::shared_ptr<spdlog::logger> logger(const std::string& name);

// Sets the level of every logger ("trace".."off"); returns false on an unknown name.
bool set_log_level(const std::string& level);

// Lets one message through per `interval` and counts the rest, so a dead device or a refusing
// disk cannot flood the journal. Thread-safe.
class RateLimit {
 public:
  explicit RateLimit(std::chrono::seconds interval = std::chrono::seconds(60)) : interval_(interval) {}
  // True if the caller should log now; `suppressed` is how many were dropped since the last one.
  bool allow(std::uint64_t& suppressed) {
    std::lock_guard lk(mu_);
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ < interval_ && last_.time_since_epoch().count() != 0) {
      ++dropped_;
      return false;
    }
    last_ = now;
    suppressed = dropped_;
    dropped_ = 0;
    return true;
  }

 private:
  std::mutex mu_;
  std::chrono::steady_clock::duration interval_;
  std::chrono::steady_clock::time_point last_{};
  std::uint64_t dropped_ = 0;
};

}  // namespace ioc_edge
