#pragma once
// Gateway owns and wires every component (docs/style.md): built in dependency order (outbox, uplink,
// forwarder, status server, sources), stopped in reverse. Lives on the main thread, which runs the
// io_context (signals, timers, the status API, sources' timers).
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "core/data_dir_lock.h"
#include "core/forwarder.h"
#include "core/outbox.h"
#include "core/pipeline.h"
#include "core/source.h"
#include "http/http_server.h"
#include "ops/snapshot.h"
#include "ops/rollup_store.h"
#include "ops/rollup_tracker.h"
#include "ops/stale_watch.h"
#include "settings/settings.h"

namespace ioc_edge {

class Gateway {
 public:
  // `drivers`: the source types a reload may use (drivers/builtin.h); must outlive the Gateway.
  Gateway(Settings settings, const Clock& clock, const std::vector<Driver>& drivers);
  ~Gateway();
  // Runs until SIGTERM/SIGINT. Returns the process exit code (docs/design.md section 6).
  int run();

  // The daemon's state now (daemon/ops/snapshot.h): what the status API renders.
  Snapshot snapshot() const;
  // render_json(snapshot()): GET /status. Exposed for tests.
  std::string status_json() const;

  // The last reloads, for the status API (exposed for tests).
  struct ReloadRecord {
    std::int64_t loaded_at_ms = 0;       // when the running configuration was read
    std::uint64_t reloads = 0;           // applied
    std::uint64_t refused = 0;           // invalid files and changes that need a restart
    std::int64_t last_at_ms = 0;         // the last SIGHUP
    std::string last_result;             // "applied: ..." or "refused: ..."
  };
  const ReloadRecord& reload_record() const { return reload_record_; }

 private:
  struct SourceSlot {
    SourceSettings settings;
    std::unique_ptr<SourceCounters> counters;
    std::unique_ptr<SourcePipeline> sink;
    std::unique_ptr<Source> source;
  };

  bool start(std::string& error);
  // The uplink and the forwarder from settings_ (at start, and again when a reload changes them).
  void start_uplink(const ForwarderStats* previous = nullptr);
  // A source's pipeline and driver instance (not started); `counters` carried over from the
  // source it replaces, or null for new ones.
  bool make_source(const SourceSettings& ss, std::unique_ptr<SourceCounters> counters, SourceSlot& slot,
                   std::string& error);
  // SIGHUP: re-reads settings_.file and applies what changed (ops/reload.h).
  void reload();
  void stop();
  std::string heartbeat_json() const;
  HttpReply handle_http(const std::string& method, const std::string& target);
  HttpReply handle_ops(const std::string& path) const;  // GET /, /metrics, /status, /healthz
  void arm_watchdog();
  void arm_housekeeping();
  void wait_signal();
  // The stale-source watch and the hourly roll-ups (daemon/ops/): one tick a second on this
  // thread, over the sources configured at that moment; roll-ups written once a minute.
  void start_ops_watch();
  void arm_ops_tick();
  void ops_tick();
  void stop_ops_watch();
  std::vector<SourceView> source_views();

  Settings settings_;
  const Clock& clock_;
  const std::vector<Driver>& drivers_;
  std::shared_ptr<spdlog::logger> log_;
  boost::asio::io_context io_;
  boost::asio::signal_set signals_;
  boost::asio::steady_timer watchdog_timer_;
  boost::asio::steady_timer housekeeping_timer_;
  boost::asio::steady_timer ops_timer_;
  std::chrono::steady_clock::time_point started_;
  std::unique_ptr<DataDirLock> lock_;  // first acquired, last released
  std::unique_ptr<Outbox> outbox_;
  std::unique_ptr<Uplink> uplink_;
  std::unique_ptr<Forwarder> forwarder_;
  std::unique_ptr<HttpServer> status_server_;
  std::vector<SourceSlot> sources_;
  std::unique_ptr<StaleWatch> stale_watch_;
  std::unique_ptr<RollupTracker> rollup_tracker_;
  std::unique_ptr<RollupStore> rollup_store_;  // null when its file cannot be used (logged)
  std::chrono::steady_clock::time_point next_rollup_write_{};
  std::string org_json_;
  PipelineLimits pipeline_limits_;
  std::string uplink_files_digest_;  // of the uplink's TLS and password files when it was opened

  ReloadRecord reload_record_;
};

}  // namespace ioc_edge
