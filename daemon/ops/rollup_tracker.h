#pragma once
// Counts what the hourly roll-ups hold (ops/rollups.h) as the daemon runs.
//
// Design note
// -----------
// Lives on the main thread: the Gateway calls tick() about every second with the sources
// configured at that moment and whether the uplink is connected, and take() about every minute to
// hand what was counted to the RollupStore. Memory is bounded: a delta holds at most the hours
// touched since the last take (two, normally) for each source, and a few numbers per source.
//
// Time: the interval since the last tick comes from the steady clock, and is laid on the wall
// clock ending now to find its hours (an interval that crosses an hour is split exactly).
//
// What is counted, per tick:
//  - good and bad readings: how far SourceCounters::good and ::bad moved (stored, so counted in
//    the hour they were committed, to the second);
//  - stale time: the interval, when the source was stale at the tick before (the stale watch
//    changes state only at ticks, so this is exact to its resolution); a stale period's since and
//    until;
//  - the gateway's running time, and connected time when the uplink was up at the tick before;
//  - outages: a stretch in which the uplink was not connected, from the last tick it was seen up
//    (or the start) to the first tick it is seen up again, counted once it has lasted kMinOutage,
//    in the hour it began. Shorter drops (the connect at start, a quick reconnect) lower the
//    connected time but are not outages.
//
// Completeness of a watched source (expected_every E > 0), in slots of E:
//  - expected: the time it was watched (the daemon ran and the source was configured) / E.
//  - missed: readings are measured (`ts`) about every E; between two consecutive good readings
//    (SourceCounters::good_times) round(gap / E) - 1 expected updates did not come. The gap
//    from the start of watching to the first good reading counts the same way. Rounding makes
//    the count insensitive to jitter: readings every E +- E/2 miss nothing; a reading skipped is
//    one missed.
//  - A gap still open is counted as time passes (provisionally), from the moment the last good
//    reading arrived, kArrivalLag later (readings wait for their commit); when the next good
//    reading arrives the gap's final count replaces the provisional one (the difference, which
//    may be negative, goes to the current hour). Sums over whole periods are therefore exact, and
//    a device clock that is off shifts counts only between neighbouring hours.
//  - Readings measured before the last one seen (late, out of order) change nothing.
// Received = expected - missed. Sources not watched (E = 0) get good/bad/dropped/stale only.
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/clock.h"
#include "ops/rollups.h"
#include "ops/source_view.h"

namespace ioc_edge {

class RollupTracker {
 public:
  static constexpr std::chrono::milliseconds kMinOutage{10000};
  static constexpr std::chrono::milliseconds kArrivalLag{15000};

  // Starts counting the gateway's running time now.
  explicit RollupTracker(const Clock& clock);

  void tick(const std::vector<SourceView>& sources, bool uplink_up);
  // Readings the buffer evicted, per source, now (the outbox's eviction; posted to the main thread).
  void note_dropped(const std::map<std::string, std::int64_t>& per_source);
  // What was counted since the last take().
  RollupDelta take();

  // round(gap / E) - 1, at least 0: the updates expected between two good readings `gap` apart.
  static std::int64_t missed_between(std::int64_t gap_ms, std::int64_t every_ms);

 private:
  struct SourceState {
    const SourceCounters* counters = nullptr;
    std::int64_t good_seen = 0, bad_seen = 0;
    std::int64_t every_ms = 0;       // E at the last tick; 0: not watched
    std::int64_t last_ts = 0;        // the latest good reading's ts (or when watching began)
    std::int64_t last_arrival = 0;   // when it was seen (wall ms)
    std::int64_t provisional = 0;    // missed counted for the open gap
    std::int64_t carry = 0;          // expected: the remainder of ms * 1000 / E
    bool stale = false;
    std::int64_t stale_since = 0;
  };
  // Calls fn(hour, ms) for each hour that [from_ms, to_ms) touches.
  template <typename Fn>
  static void for_each_hour(std::int64_t from_ms, std::int64_t to_ms, Fn fn);
  void tick_source(const SourceView& s, SourceState& st, std::int64_t from, std::int64_t now);
  void tick_uplink(bool up, std::int64_t from, std::int64_t now);

  const Clock& clock_;
  std::chrono::steady_clock::time_point last_tick_;
  std::map<std::string, SourceState, std::less<>> states_;
  bool up_ = false;
  bool in_outage_ = true;  // not connected yet at the start
  bool outage_counted_ = false;
  std::int64_t outage_start_ = 0;
  RollupDelta delta_;
};

}  // namespace ioc_edge
