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
#include "ops/rollup_store.h"
#include "ops/rollup_tracker.h"
#include "ops/stale_watch.h"
#include "settings/settings.h"

namespace ioc_edge {

class Gateway {
 public:
  Gateway(Settings settings, const Clock& clock);
  ~Gateway();
  // Runs until SIGTERM/SIGINT. Returns the process exit code (docs/design.md section 6).
  int run();

  // Exposed for tests.
  std::string status_json() const;

 private:
  struct SourceSlot {
    SourceSettings settings;
    std::unique_ptr<SourceCounters> counters;
    std::unique_ptr<SourcePipeline> sink;
    std::unique_ptr<Source> source;
  };

  bool start(std::string& error);
  void stop();
  std::string heartbeat_json() const;
  HttpReply handle_http(const std::string& method, const std::string& target);
  nlohmann::json held_json(std::int64_t readings) const;
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
};

}  // namespace ioc_edge
