#pragma once
// Time for everything that stamps or schedules. Injected so tests can drive it.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>

namespace ioc_edge {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time in milliseconds since the Unix epoch (UTC): what a reading's `ts` says.
  virtual std::int64_t now_ms() const = 0;
  // Monotonic time for intervals and deadlines.
  virtual std::chrono::steady_clock::time_point steady() const = 0;
  // Whether the wall clock is known to be right (synchronized by NTP). Readings stored while it is
  // not are marked (docs/schema/README.md), so the IOC does not trust their ts blindly.
  virtual bool synchronized() const { return true; }
};

class SystemClock final : public Clock {
 public:
  std::int64_t now_ms() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  std::chrono::steady_clock::time_point steady() const override { return std::chrono::steady_clock::now(); }
  // The kernel's view (adjtimex: STA_UNSYNC is cleared by an NTP client such as systemd-timesyncd or
  // chrony once it has set the clock); where the sandbox denies adjtimex, systemd-timesyncd's
  // /run/systemd/timesync/synchronized. Asked at most once a second.
  bool synchronized() const override;

 private:
  mutable std::atomic<std::int64_t> sync_checked_ms_{0};
  mutable std::atomic<bool> synced_{true};
};

// When a worker thread last made progress, for the watchdog: marked by the thread, read by the
// main loop. Cleared while the thread is not running, so a stopped thread never reads as stuck.
class ProgressStamp {
 public:
  void mark(const Clock& clock) { ns_ = clock.steady().time_since_epoch().count(); }
  void clear() { ns_ = 0; }
  std::chrono::milliseconds stalled_for(const Clock& clock) const {
    const auto ns = ns_.load();
    if (ns == 0) return std::chrono::milliseconds(0);
    const auto since = clock.steady().time_since_epoch() - std::chrono::nanoseconds(ns);
    return std::max(std::chrono::milliseconds(0), std::chrono::duration_cast<std::chrono::milliseconds>(since));
  }

 private:
  std::atomic<std::int64_t> ns_{0};
};

}  // namespace ioc_edge
