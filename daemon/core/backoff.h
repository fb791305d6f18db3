#pragma once
// Exponential backoff with full jitter (AWS architecture blog's "full jitter"): the n-th wait is
// uniform in [min, min(max, min * 2^n)]. Not thread-safe; owned by one retry loop.
#include <algorithm>
#include <chrono>
#include <random>

namespace ioc_edge {

class Backoff {
 public:
  using ms = std::chrono::milliseconds;
  Backoff(ms min, ms max) : min_(min), max_(std::max(min, max)), rng_(std::random_device{}()) {}

  ms next() {
    const auto cap = std::min<long long>(max_.count(), min_.count() << std::min(attempt_, 20));
    ++attempt_;
    std::uniform_int_distribution<long long> d(min_.count(), std::max<long long>(cap, min_.count()));
    return ms(d(rng_));
  }
  void reset() { attempt_ = 0; }

 private:
  ms min_, max_;
  int attempt_ = 0;
  std::mt19937_64 rng_;
};

}  // namespace ioc_edge
