#include "ops/snapshot.h"

#include "ops/health.h"

namespace ioc_edge {

SourceSnapshot snapshot_source(const SourceSettings& settings, const SourceCounters& c) {
  SourceSnapshot s;
  s.name = settings.name;
  s.type = settings.type;
  s.title = settings.title;
  s.priority = settings.priority;
  s.expected_every_ms = settings.expected_every.count();
  s.down = c.down.load();
  s.stale = c.stale.load();
  s.stale_since_ms = c.stale_since_ms.load();
  auto [error, error_ms] = c.last_error();
  s.last_error = std::move(error);
  s.last_error_ms = error_ms;
  s.produced = c.produced.load();
  s.stored = c.stored.load();
  s.good = c.good.load();
  s.bad = c.bad.load();
  s.refused = c.refused.load();
  s.errors = c.errors.load();
  s.overruns = c.overruns.load();
  s.messages = c.messages.load();
  s.redelivered = c.redelivered.load();
  s.bad_input = c.bad_input();
  s.last_stored_ms = c.last_ok_ms.load();
  s.last_good_ms = c.last_good_ms.load();
  return s;
}

Snapshot build_snapshot(const Settings& settings, const Outbox& outbox, const Forwarder& forwarder,
                        const std::vector<SourceParts>& sources, const Clock& clock,
                        std::chrono::steady_clock::time_point started) {
  Snapshot s;
  s.version = IOC_EDGE_VERSION;
  s.site = settings.gateway.site;
  s.province = settings.gateway.province;
  s.org_name = settings.gateway.name;
  s.now_ms = clock.now_ms();
  s.uptime_s = std::chrono::duration_cast<std::chrono::seconds>(clock.steady() - started).count();
  s.uplink.url = settings.uplink.url;
  s.uplink.mqtt_version = settings.uplink.mqtt_version == 5 ? "5" : "3.1.1";
  s.uplink.link = forwarder.stats();
  s.backlog.outbox = outbox.stats();
  s.backlog.held = outbox.held();
  s.backlog.max_bytes = settings.buffer.max_size;
  s.store = s.backlog.outbox.store;
  s.sources.reserve(sources.size());
  for (const auto& p : sources) s.sources.push_back(snapshot_source(p.settings, p.counters));
  s.link_down_after_ms = settings.status.link_down_after.count();
  s.problems = health_problems(s);
  return s;
}

}  // namespace ioc_edge
