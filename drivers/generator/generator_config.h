#pragma once
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>

#include "core/source.h"

namespace ioc_edge {
class TableReader;
}

namespace ioc_edge::generator {

struct Config final : DriverConfig {
  double rate = 1.0;                     // readings per second, over all points
  int points = 4;                        // named {point_prefix}0 .. {point_prefix}{points-1}
  std::string point_prefix = "p";
  std::string unit;                      // unit on every reading; empty = none
  std::chrono::milliseconds tick{10};    // how often a slice of readings is produced
  std::uint64_t blob_size = 0;           // bytes of a synthetic snapshot (point "snapshot"); 0 = none
  std::chrono::milliseconds blob_every{10000};

  // A reading every 1/rate seconds, made on ticks.
  std::chrono::milliseconds poll_interval() const override {
    const auto per_reading = std::chrono::milliseconds(static_cast<std::int64_t>(std::ceil(1000.0 / rate)));
    return std::max(tick, per_reading);
  }
};

// The synthetic snapshot's bytes: every byte value, in an order a test can check (byte i is
// (i * 131 + 7) mod 256), so a blob that arrives changed in any byte is caught.
std::string blob_bytes(std::uint64_t size);

std::unique_ptr<DriverConfig> parse_config(TableReader& section);

}  // namespace ioc_edge::generator
