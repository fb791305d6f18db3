#include "ops/stale_watch.h"

#include <algorithm>
#include <cmath>
#include <set>

#include <nlohmann/json.hpp>

#include "core/log.h"

namespace ioc_edge {

namespace {

double seconds(std::chrono::milliseconds d) { return static_cast<double>(d.count()) / 1000.0; }

// Whole seconds for a log line: "42 s".
std::string in_words(std::chrono::milliseconds d) {
  return std::to_string(std::llround(seconds(d))) + " s";
}

Reading event_reading(const char* name, const nlohmann::json& value, std::int64_t now_ms) {
  Reading r;
  r.point = name;
  r.ts_ms = now_ms;
  r.value = JsonText{value.dump()};
  return r;
}

}  // namespace

StaleWatch::StaleWatch(const Clock& clock) : clock_(clock), log_(logger("stale-watch")) {}

Reading StaleWatch::stale_event(std::chrono::milliseconds expected_every, std::chrono::milliseconds silent,
                                std::int64_t last_good_ms, std::int64_t now_ms) {
  const nlohmann::json v = {
      {"event", "source_stale"},
      {"expected_every_s", seconds(expected_every)},
      {"silent_s", seconds(silent)},
      {"last_good", last_good_ms ? nlohmann::json(format_rfc3339_ms(last_good_ms)) : nlohmann::json(nullptr)},
  };
  return event_reading("source_stale", v, now_ms);
}

Reading StaleWatch::recovered_event(std::chrono::milliseconds expected_every, std::chrono::milliseconds stale_for,
                                    std::int64_t stale_since_ms, std::int64_t now_ms) {
  const nlohmann::json v = {
      {"event", "source_recovered"},
      {"expected_every_s", seconds(expected_every)},
      {"stale_s", seconds(stale_for)},
      {"stale_since", format_rfc3339_ms(stale_since_ms)},
  };
  return event_reading("source_recovered", v, now_ms);
}

void StaleWatch::tick(const std::vector<SourceView>& sources) {
  const auto now = clock_.steady();
  const auto wall = clock_.now_ms();
  const auto prev = last_tick_.time_since_epoch().count() == 0 ? now : last_tick_;
  last_tick_ = now;

  std::set<std::string_view> watched;
  for (const auto& s : sources) {
    if (s.expected_every.count() <= 0 || !s.counters || !s.sink) continue;
    watched.insert(s.name);
    auto& c = *s.counters;
    auto it = states_.find(s.name);
    if (it == states_.end() || it->second.counters != s.counters) {  // new, or replaced (invariant 5)
      State fresh;
      fresh.counters = s.counters;
      fresh.good_seen = c.good;
      fresh.last_good = now;
      if (it == states_.end())
        it = states_.emplace(std::string(s.name), fresh).first;
      else
        it->second = fresh;
      c.stale = false;
      c.stale_since_ms = 0;
      continue;
    }
    auto& st = it->second;
    const auto good = c.good.load();
    if (good != st.good_seen) {
      st.good_seen = good;
      // Invariant 3: when it was stored, but within the interval in which the count moved.
      const auto interval = std::chrono::duration_cast<std::chrono::milliseconds>(now - prev);
      const auto age = std::clamp(std::chrono::milliseconds(wall - c.last_good_ms.load()), std::chrono::milliseconds(0),
                                  interval);
      st.last_good = now - age;
      if (st.stale) mark_recovered(s, st, now, wall);
    } else if (!st.stale && now - st.last_good >= kStaleFactor * s.expected_every) {
      mark_stale(s, st, now, wall);
    }
  }
  // Invariant 5: no longer configured or no longer watched.
  for (auto it = states_.begin(); it != states_.end();) {
    if (watched.count(it->first)) {
      ++it;
      continue;
    }
    if (it->second.stale) {
      for (const auto& s : sources)
        if (s.name == it->first && s.counters == it->second.counters) {
          s.counters->stale = false;
          s.counters->stale_since_ms = 0;
        }
      log_->info("source \"{}\" is no longer watched (it was stale)", it->first);
    }
    it = states_.erase(it);
  }
}

void StaleWatch::mark_stale(const SourceView& s, State& st, std::chrono::steady_clock::time_point now,
                            std::int64_t wall) {
  auto& c = *s.counters;
  const auto silent = std::chrono::duration_cast<std::chrono::milliseconds>(now - st.last_good);
  st.stale = true;
  st.stale_since = now;
  c.stale_since_ms = wall;
  c.stale = true;
  const auto last_good_ms = c.good.load() > 0 ? c.last_good_ms.load() : 0;
  log_->warn("source \"{}\" is stale: no good reading for {} (expected every {}); source_stale sent to the IOC", s.name,
             in_words(silent), in_words(s.expected_every));
  s.sink->event(stale_event(s.expected_every, silent, last_good_ms, wall), nullptr);
}

void StaleWatch::mark_recovered(const SourceView& s, State& st, std::chrono::steady_clock::time_point now,
                                std::int64_t wall) {
  auto& c = *s.counters;
  const auto stale_for = std::chrono::duration_cast<std::chrono::milliseconds>(now - st.stale_since);
  const auto since_ms = c.stale_since_ms.load();
  st.stale = false;
  c.stale = false;
  c.stale_since_ms = 0;
  log_->warn("source \"{}\" recovered after {} stale; source_recovered sent to the IOC", s.name, in_words(stale_for));
  s.sink->event(recovered_event(s.expected_every, stale_for, since_ms, wall), nullptr);
}

}  // namespace ioc_edge
