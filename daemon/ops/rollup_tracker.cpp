#include "ops/rollup_tracker.h"

#include <algorithm>
#include <set>
#include <string_view>
#include <utility>

namespace ioc_edge {

RollupTracker::RollupTracker(const Clock& clock)
    : clock_(clock), last_tick_(clock.steady()), outage_start_(clock.now_ms()) {}

std::int64_t RollupTracker::missed_between(std::int64_t gap_ms, std::int64_t every_ms) {
  if (every_ms <= 0 || gap_ms <= 0) return 0;
  const auto slots = (gap_ms + every_ms / 2) / every_ms;  // round(gap / E), halves up
  return std::max<std::int64_t>(0, slots - 1);
}

template <typename Fn>
void RollupTracker::for_each_hour(std::int64_t from_ms, std::int64_t to_ms, Fn fn) {
  while (from_ms < to_ms) {
    const auto hour = hour_of(from_ms);
    const auto part = std::min(to_ms, hour * 1000 + kHourMs) - from_ms;
    fn(hour, part);
    from_ms += part;
  }
}

void RollupTracker::tick(const std::vector<SourceView>& sources, bool uplink_up) {
  const auto steady = clock_.steady();
  const auto now = clock_.now_ms();
  const auto elapsed =
      std::max<std::int64_t>(0, std::chrono::duration_cast<std::chrono::milliseconds>(steady - last_tick_).count());
  last_tick_ = steady;
  const auto from = now - elapsed;
  for_each_hour(from, now, [&](std::int64_t hour, std::int64_t ms) { delta_.gateway[hour].run_ms += ms; });
  tick_uplink(uplink_up, from, now);

  std::set<std::string_view> seen;
  for (const auto& s : sources) {
    if (!s.counters) continue;
    seen.insert(s.name);
    auto it = states_.find(s.name);
    if (it == states_.end() || it->second.counters != s.counters) {
      // New or replaced: its counters start at zero; what they hold was stored since it started.
      SourceState fresh;
      fresh.counters = s.counters;
      fresh.last_ts = fresh.last_arrival = now;
      if (it == states_.end())
        it = states_.emplace(std::string(s.name), fresh).first;
      else
        it->second = fresh;
      tick_source(s, it->second, now, now);  // counts, no elapsed time
      continue;
    }
    tick_source(s, it->second, from, now);
  }
  for (auto it = states_.begin(); it != states_.end();) {
    if (seen.count(it->first)) {
      ++it;
      continue;
    }
    if (it->second.stale) {  // removed while stale: its period ends here
      auto& until = delta_.stale[{it->first, it->second.stale_since}];
      until = std::max(until, now);
    }
    it = states_.erase(it);
  }
}

void RollupTracker::tick_source(const SourceView& s, SourceState& st, std::int64_t from, std::int64_t now) {
  auto& c = *s.counters;
  const std::string name(s.name);
  const auto good = static_cast<std::int64_t>(c.good.load());
  const auto bad = static_cast<std::int64_t>(c.bad.load());
  if (good != st.good_seen || bad != st.bad_seen) {
    auto& h = delta_.sources[{hour_of(now), name}];
    h.good += good - st.good_seen;
    h.bad += bad - st.bad_seen;
    st.good_seen = good;
    st.bad_seen = bad;
  }

  // Stale time: the interval counts when the source was stale at its start.
  if (st.stale)
    for_each_hour(from, now, [&](std::int64_t hour, std::int64_t ms) { delta_.sources[{hour, name}].stale_ms += ms; });
  const bool stale = c.stale;
  if (stale && !st.stale) st.stale_since = c.stale_since_ms ? c.stale_since_ms.load() : now;
  if (stale || st.stale) {
    auto& until = delta_.stale[{name, st.stale_since}];
    until = std::max(until, now);
  }
  st.stale = stale;

  // Completeness (see the design note).
  const auto every = s.expected_every.count();
  auto runs = c.good_times.take();
  if (every <= 0) {
    st.every_ms = 0;
    return;
  }
  if (st.every_ms == 0) {  // watching begins (at the start, or a reload set expected_every)
    st.last_ts = st.last_arrival = now;
    st.provisional = 0;
    st.carry = 0;
    runs.clear();
  }
  st.every_ms = every;
  for_each_hour(from, now, [&](std::int64_t hour, std::int64_t ms) {
    const auto num = ms * 1000 + st.carry;
    delta_.sources[{hour, name}].expected_milli += num / every;
    st.carry = num % every;
  });
  std::int64_t missed = 0;
  std::sort(runs.begin(), runs.end(), [](const auto& a, const auto& b) { return a.first_ms < b.first_ms; });
  for (const auto& r : runs) {
    if (r.last_ms <= st.last_ts) continue;  // measured before the last one seen
    const auto final_count = r.first_ms > st.last_ts ? missed_between(r.first_ms - st.last_ts, every) : 0;
    missed += final_count - st.provisional;
    st.provisional = 0;
    st.last_ts = r.last_ms;
    st.last_arrival = now;
  }
  const auto open = missed_between(now - st.last_arrival - kArrivalLag.count(), every);
  if (open > st.provisional) {
    missed += open - st.provisional;
    st.provisional = open;
  }
  if (missed != 0) delta_.sources[{hour_of(now), name}].missed += missed;
}

void RollupTracker::tick_uplink(bool up, std::int64_t from, std::int64_t now) {
  if (up_)
    for_each_hour(from, now, [&](std::int64_t hour, std::int64_t ms) { delta_.gateway[hour].up_ms += ms; });
  const auto note_outage = [&] {
    const auto length = now - outage_start_;
    if (length < kMinOutage.count()) return;
    auto& g = delta_.gateway[hour_of(outage_start_)];
    if (!outage_counted_) ++g.outages;
    outage_counted_ = true;
    g.longest_outage_ms = std::max(g.longest_outage_ms, length);
  };
  if (!up) {
    if (!in_outage_) {  // it went down after the last tick that saw it up
      in_outage_ = true;
      outage_counted_ = false;
      outage_start_ = from;
    }
    note_outage();
  } else if (in_outage_) {
    note_outage();
    in_outage_ = false;
  }
  up_ = up;
}

void RollupTracker::note_dropped(const std::map<std::string, std::int64_t>& per_source) {
  const auto hour = hour_of(clock_.now_ms());
  for (const auto& [source, n] : per_source)
    if (n > 0) delta_.sources[{hour, source}].dropped += n;
}

RollupDelta RollupTracker::take() { return std::exchange(delta_, {}); }

}  // namespace ioc_edge
