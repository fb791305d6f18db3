#pragma once
// What the operations components (the stale watch, the hourly roll-ups) need of one configured
// source, given to them afresh on every tick by the Gateway: the set of sources may change while
// the daemon runs (a configuration reload adds, removes or replaces them), so none of them keeps a
// source's objects beyond the tick. A source whose `counters` object differs from the last tick's
// was replaced and starts afresh.
#include <chrono>
#include <string_view>

#include "core/source.h"

namespace ioc_edge {

struct SourceView {
  std::string_view name;
  std::chrono::milliseconds expected_every{0};  // zero: not watched
  SourceCounters* counters = nullptr;
  Sink* sink = nullptr;  // where the source's events go (its pipeline)
};

}  // namespace ioc_edge
