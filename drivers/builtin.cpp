// The registration list: one line per driver. No static-initialisation tricks.
#include "drivers/builtin.h"

#include "drivers/generator/generator_source.h"

namespace ioc_edge {

const std::vector<Driver>& builtin_drivers() {
  static const std::vector<Driver> drivers = {
      {"generator", "synthetic readings at a fixed rate, for demos and benchmarks", generator::parse_config, generator::create},
  };
  return drivers;
}

}  // namespace ioc_edge
