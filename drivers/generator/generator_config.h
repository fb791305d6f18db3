#pragma once
#include <chrono>
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
};

std::unique_ptr<DriverConfig> parse_config(TableReader& section);

}  // namespace ioc_edge::generator
