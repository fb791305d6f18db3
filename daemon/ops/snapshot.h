#pragma once
// One snapshot of the daemon's state, rendered three ways (docs/metrics.md, README.md
// "Operations"): JSON for `GET /status` and `ioc-edge status` (render_json.h), the Prometheus text
// format for `GET /metrics` (render_prometheus.h) and a page for people for `GET /` (render_html.h).
// Health (health.h) is judged from it too, so that /healthz, the page, the JSON and the exit code of
// `ioc-edge status` never disagree.
//
// A Snapshot is a plain value: build_snapshot() copies what the outbox, the forwarder and the
// sources' counters say at one moment (each read is its own atomic or locked copy; the whole is
// not one transaction, which a status display does not need), and the renderers are pure
// functions of it, testable and benchmarkable without a daemon.
//
// Threads: build_snapshot() reads thread-safe statistics (Outbox::stats(), Forwarder::stats(), the
// counters' atomics) and may be called from any thread; the daemon calls it on the main thread for
// each request to the status API. It does not block on I/O.
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/forwarder.h"
#include "core/outbox.h"
#include "core/reading.h"
#include "core/source.h"
#include "settings/settings.h"

namespace ioc_edge {

struct SourceSnapshot {
  std::string name;
  std::string type;
  std::string title;             // a display name from the configuration; may be empty
  Priority priority = Priority::Normal;
  std::int64_t expected_every_ms = 0;  // 0: not watched for staleness
  bool down = false;
  bool stale = false;
  std::int64_t stale_since_ms = 0;
  std::string last_error;        // empty: none since start
  std::int64_t last_error_ms = 0;
  std::uint64_t produced = 0, stored = 0, good = 0, bad = 0, refused = 0, errors = 0, overruns = 0, messages = 0,
                redelivered = 0;
  std::map<std::string, std::uint64_t> bad_input;  // by kind
  std::int64_t last_stored_ms = 0;  // when the last batch was stored (0: never)
  std::int64_t last_good_ms = 0;    // when the last good reading was stored (0: never)
};

struct Snapshot {
  std::string version;
  std::string site, province;
  std::string org_name;          // [gateway] name, e.g. "UBND xã Chợ Đồn"; may be empty
  std::string store;
  std::int64_t now_ms = 0;       // wall clock when it was taken
  std::int64_t uptime_s = 0;

  struct Uplink {
    std::string url;
    std::string mqtt_version;    // "5" or "3.1.1"
    ForwarderStats link;
  } uplink;

  struct Backlog {
    OutboxStats outbox;
    std::vector<HeldEntry> held;  // what the IOC broker refused, one entry per message (at most 100)
    std::uint64_t max_bytes = 0;  // [buffer] max_size
  } backlog;

  std::vector<SourceSnapshot> sources;

  // The configuration file and its reloads (docs/operations.md); filled by the Gateway.
  struct Config {
    std::string file;
    std::int64_t loaded_at_ms = 0;   // when the running configuration was read
    std::uint64_t reloads = 0;       // applied
    std::uint64_t refused = 0;       // invalid files, changes only a restart applies
    std::int64_t last_at_ms = 0;     // the last SIGHUP (0: none)
    std::string last_result;         // "applied: ..." or "refused: ..."; empty: none
  } config;

  // Thresholds the health rules need ([status] link_down_after).
  std::int64_t link_down_after_ms = 15 * 60 * 1000;

  // health_problems(*this), filled by build_snapshot(): empty when healthy.
  std::vector<std::string> problems;
  bool healthy() const { return problems.empty(); }
};

// What build_snapshot() reads of one source.
struct SourceParts {
  const SourceSettings& settings;
  const SourceCounters& counters;
};

Snapshot build_snapshot(const Settings& settings, const Outbox& outbox, const Forwarder& forwarder,
                        const std::vector<SourceParts>& sources, const Clock& clock,
                        std::chrono::steady_clock::time_point started);

// The snapshot of one source from its settings and counters (also for tests and benchmarks).
SourceSnapshot snapshot_source(const SourceSettings& settings, const SourceCounters& counters);

}  // namespace ioc_edge
