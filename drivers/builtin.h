#pragma once
#include <vector>

#include "core/source.h"

namespace ioc_edge {
// Every driver compiled in, in the order `ioc-edge` lists them.
const std::vector<Driver>& builtin_drivers();
}  // namespace ioc_edge
