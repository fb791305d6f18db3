#pragma once
// The stale-source watch (docs/design.md section 5, `[[source]] expected_every`): a source whose
// good data stops arriving is named to the IOC, and named again when it comes back.
//
// Design note
// -----------
// Lives on the main thread: the Gateway calls tick() about every second with the sources
// configured at that moment (SourceView). Nothing here blocks; events go to the source's own sink,
// which queues them for the outbox.
//
// Each watched source (expected_every E > 0):
//
//     FRESH --no good reading for 3 x E--> STALE   source_stale sent, counters.stale set
//       ^                                    |
//       +------ a good reading stored -------+     source_recovered sent (how long it was stale)
//
// Invariants
//  1. Only good readings count: SourceCounters::good and last_good_ms, which the pipeline moves
//     when a data reading of quality good or uncertain is committed. Bad readings (a device's
//     error) and events do not keep a source fresh.
//  2. A source that has had no good reading since the watch first saw it is measured from then
//     (its start, or the reload that added it).
//  3. Time is the steady clock. The moment a good reading was stored is read from last_good_ms
//     (wall clock) but kept within the tick interval in which the count moved, so a wall clock
//     that steps (NTP after an RTC-less boot) neither makes sources stale nor hides them.
//  4. Each transition sends exactly one event through the source's sink (stored in the outbox,
//     published on {prefix}/event/{source}; docs/schema/README.md) and logs one line.
//  5. The set of sources may change between ticks. A source no longer listed (or no longer
//     watched) is forgotten without an event, its flag cleared; a source whose counters object
//     changed was replaced and starts FRESH, as a new one does.
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/reading.h"
#include "ops/source_view.h"

namespace spdlog {
class logger;
}

namespace ioc_edge {

class StaleWatch {
 public:
  static constexpr int kStaleFactor = 3;  // stale after this many expected_every without good data

  explicit StaleWatch(const Clock& clock);

  // Main thread, about every second.
  void tick(const std::vector<SourceView>& sources);

  // The events, as they are sent (pure; tests check their shape against the schema's docs).
  // `last_good_ms` 0: never had one.
  static Reading stale_event(std::chrono::milliseconds expected_every, std::chrono::milliseconds silent,
                             std::int64_t last_good_ms, std::int64_t now_ms);
  static Reading recovered_event(std::chrono::milliseconds expected_every, std::chrono::milliseconds stale_for,
                                 std::int64_t stale_since_ms, std::int64_t now_ms);

 private:
  struct State {
    const SourceCounters* counters = nullptr;
    std::uint64_t good_seen = 0;
    std::chrono::steady_clock::time_point last_good;  // or when watching began (invariant 2)
    std::chrono::steady_clock::time_point stale_since;
    bool stale = false;
  };
  void mark_stale(const SourceView& s, State& st, std::chrono::steady_clock::time_point now, std::int64_t wall);
  void mark_recovered(const SourceView& s, State& st, std::chrono::steady_clock::time_point now, std::int64_t wall);

  const Clock& clock_;
  std::shared_ptr<spdlog::logger> log_;
  std::map<std::string, State, std::less<>> states_;
  std::chrono::steady_clock::time_point last_tick_{};
};

}  // namespace ioc_edge
