#pragma once
// Time for everything that stamps or schedules. Injected so tests can drive it.
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
};

class SystemClock final : public Clock {
 public:
  std::int64_t now_ms() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  std::chrono::steady_clock::time_point steady() const override { return std::chrono::steady_clock::now(); }
};

}  // namespace ioc_edge
