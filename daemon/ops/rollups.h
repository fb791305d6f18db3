#pragma once
// Hourly roll-ups: what `ioc-edge report` is made from (docs/design.md section 5; README.md, "The
// data-update report"). Plain values. Hours are UTC, named by the Unix time (s) of their start.
//
// Per (hour, source):
//   good, bad   data readings stored in that hour (quality good or uncertain; bad)
//   dropped     readings of the source the buffer evicted in that hour (as its gap events count them)
//   stale_ms    time the source was stale (daemon/ops/stale_watch.h)
//   expected_milli, missed
//               completeness (daemon/ops/rollup_tracker.h): thousandths of the updates expected
//               while the source was watched (watched time / expected_every), and of those the
//               ones that did not come
// Per hour for the gateway:
//   run_ms      time the daemon ran
//   up_ms       time the uplink was connected
//   outages     uplink outages (at least RollupTracker::kMinOutage) that began in that hour
//   longest_outage_ms  the longest of them, as long as it lasted (to its end, or so far)
// Stale periods: (source, since) -> until, in ms; until grows while the period lasts.
//
// A delta holds what changed since the last write. Every figure adds up, except
// longest_outage_ms and a stale period's until, which keep the larger value: so deltas can be
// merged and written in any grouping with the same result.
#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <utility>

namespace ioc_edge {

inline constexpr std::int64_t kHourMs = 3'600'000;

// The Unix time (s) of the start of the UTC hour holding `ms`.
inline std::int64_t hour_of(std::int64_t ms) {
  const auto h = ms >= 0 ? ms / kHourMs : (ms - kHourMs + 1) / kHourMs;
  return h * 3600;
}

struct SourceHour {
  std::int64_t good = 0, bad = 0, dropped = 0, stale_ms = 0, expected_milli = 0, missed = 0;
  void add(const SourceHour& o) {
    good += o.good;
    bad += o.bad;
    dropped += o.dropped;
    stale_ms += o.stale_ms;
    expected_milli += o.expected_milli;
    missed += o.missed;
  }
  bool operator==(const SourceHour&) const = default;
};

struct GatewayHour {
  std::int64_t run_ms = 0, up_ms = 0, outages = 0, longest_outage_ms = 0;
  void add(const GatewayHour& o) {
    run_ms += o.run_ms;
    up_ms += o.up_ms;
    outages += o.outages;
    longest_outage_ms = std::max(longest_outage_ms, o.longest_outage_ms);
  }
  bool operator==(const GatewayHour&) const = default;
};

struct RollupDelta {
  std::map<std::pair<std::int64_t, std::string>, SourceHour> sources;  // (hour, source)
  std::map<std::int64_t, GatewayHour> gateway;                         // hour
  std::map<std::pair<std::string, std::int64_t>, std::int64_t> stale;  // (source, since ms) -> until ms

  bool empty() const { return sources.empty() && gateway.empty() && stale.empty(); }
  void merge(const RollupDelta& o) {
    for (const auto& [k, v] : o.sources) sources[k].add(v);
    for (const auto& [k, v] : o.gateway) gateway[k].add(v);
    for (const auto& [k, v] : o.stale) {
      auto& until = stale[k];
      until = std::max(until, v);
    }
  }
};

}  // namespace ioc_edge
