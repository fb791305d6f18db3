#include "gateway.h"

#include <malloc.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <fstream>
#include <sstream>

#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>

#include "core/log.h"
#include "core/secret_file.h"
#include "ops/systemd_notify.h"
#include "uplink_mqtt/mqtt_uplink.h"

namespace ioc_edge {

namespace {

// docs/design.md, "Writes to flash": deletes of delivered records wait this long for company (a
// crash only resends them).
constexpr std::chrono::milliseconds kRemoveDelay{10000};

}  // namespace

Gateway::Gateway(Settings settings, const Clock& clock)
    : settings_(std::move(settings)),
      clock_(clock),
      log_(logger("gateway")),
      signals_(io_, SIGTERM, SIGINT, SIGHUP),
      watchdog_timer_(io_),
      housekeeping_timer_(io_),
      ops_timer_(io_) {
  const auto& g = settings_.gateway;
  if (!g.unit_code.empty() || !g.agency_code.empty() || !g.name.empty()) {
    nlohmann::json org = nlohmann::json::object();
    if (!g.unit_code.empty()) org["unit_code"] = g.unit_code;
    if (!g.agency_code.empty()) org["agency_code"] = g.agency_code;
    if (!g.name.empty()) org["name"] = g.name;
    org_json_ = org.dump();
  }
}

Gateway::~Gateway() { stop(); }

bool Gateway::start(std::string& error) {
  started_ = clock_.steady();
  const auto& s = settings_;
  lock_ = DataDirLock::acquire(s.gateway.data_dir, error);  // before anything touches the buffer
  if (!lock_) return false;
  OutboxOptions oo;
  oo.path = s.gateway.data_dir + "/outbox.db";
  oo.sync_full = s.buffer.sync_full;
  oo.max_size = s.buffer.max_size;
  oo.max_age_ms = s.buffer.max_age.count();
  oo.commit_interval = s.buffer.commit_interval;
  oo.remove_delay = kRemoveDelay;
  // Rows of at most one message (invariant 11): the header's size does not depend on which
  // store id (always 36 characters) it names.
  const auto row_overhead = batch_overhead({s.gateway.site, std::string(36, '0'), org_json_});
  oo.merge_readings = s.uplink.batch_max_readings;
  oo.merge_bytes = s.uplink.batch_max_bytes > row_overhead ? s.uplink.batch_max_bytes - row_overhead : 64;
  outbox_ = Outbox::open(oo, clock_, error);
  if (!outbox_) return false;

  MqttUplinkOptions uo;
  uo.url = s.uplink.url;
  uo.client_id = s.uplink.client_id;
  uo.ca_file = s.uplink.ca_file;
  uo.cert_file = s.uplink.cert_file;
  uo.key_file = s.uplink.key_file;
  uo.username = s.uplink.username;
  if (!s.uplink.password_file.empty()) uo.password = read_secret_file(s.uplink.password_file).value_or("");
  uo.verify_hostname = s.uplink.verify_hostname;
  uo.keepalive_s = static_cast<int>(std::max<std::int64_t>(1, s.uplink.keepalive.count() / 1000));
  uo.connect_timeout_s = static_cast<int>(std::max<std::int64_t>(1, s.uplink.connect_timeout.count() / 1000));
  uo.mqtt_version = s.uplink.mqtt_version;
  // A window slot may be a blob: two messages (its metadata event and its bytes).
  uo.max_inflight = static_cast<int>(2 * s.uplink.max_inflight);
  // The forwarder's window, one heartbeat and the "offline" status at disconnect (forwarder.h, invariant 2).
  uo.max_buffered = static_cast<int>(2 * s.uplink.max_inflight + 2);
  uo.will_topic = s.gateway.topic_prefix + "/status";
  nlohmann::json will = {{"state", "offline"}, {"site", s.gateway.site}, {"store", outbox_->store_uuid()}};
  uo.will_payload = will.dump();
  uplink_ = std::make_unique<MqttUplink>(std::move(uo));
  if (!s.uplink.verify_hostname && s.uplink.url.rfind("mqtts://", 0) == 0)
    log_->warn("[uplink] verify_hostname = false: the IOC broker's certificate is not checked against {}; anyone "
               "holding any certificate of the pinned CA could pose as the IOC",
               s.uplink.url);
  if (!s.uplink.password_file.empty() && s.uplink.url.rfind("mqtt://", 0) == 0)
    log_->warn("[uplink] the MQTT password goes over {} without TLS: anyone on the path can read it; use mqtts://",
               s.uplink.url);
  if (s.uplink.mqtt_version != 5)
    log_->warn("the uplink speaks MQTT 3.1.1 ([uplink] mqtt_version): a broker that refuses a message (its ACL, its "
               "size limit) answers it like a stored one, so refused data would be deleted here unseen; use MQTT 5 "
               "unless the IOC broker does not support it");

  ForwarderOptions fo;
  fo.topic_prefix = s.gateway.topic_prefix;
  fo.header = {s.gateway.site, outbox_->store_uuid(), org_json_};
  fo.batch_max_readings = s.uplink.batch_max_readings;
  fo.batch_max_bytes = s.uplink.batch_max_bytes;
  fo.max_inflight = s.uplink.max_inflight;
  fo.batch_wait = s.uplink.batch_wait;
  fo.backlog_rate = s.uplink.backlog_rate;
  fo.reconnect_min = s.uplink.reconnect_min;
  fo.reconnect_max = s.uplink.reconnect_max;
  fo.heartbeat = s.uplink.heartbeat;
  forwarder_ = std::make_unique<Forwarder>(fo, *outbox_, *uplink_, clock_, [this] { return heartbeat_json(); });
  forwarder_->start();

  if (!s.status.listen.empty()) {
    HttpLimits limits;  // the defaults: a handful of local callers, one small request each
    limits.name = "the status API";
    limits.url_path = "/status";
    status_server_ = std::make_unique<HttpServer>(
        io_, HttpServer::immediate([this](const HttpRequest& r) { return handle_http(r.method, r.target); }), limits);
    if (!status_server_->listen(s.status.host, s.status.port, error)) return false;
  }

  for (const auto& ss : s.sources) {
    SourceSlot slot;
    slot.settings = ss;
    slot.counters = std::make_unique<SourceCounters>();
    const PipelineLimits limits{oo.merge_readings, oo.merge_bytes, s.uplink.blob_max_bytes};
    slot.sink = std::make_unique<SourcePipeline>(*outbox_, ss.name, ss.priority, *slot.counters, limits, clock_);
    SourceContext ctx{ss.name, s.gateway.site, logger(ss.type + "/" + ss.name), clock_, *slot.sink, io_, *slot.counters};
    slot.source = ss.driver->create(std::move(ctx), ss.config);
    if (!slot.source) {
      error = "source \"" + ss.name + "\" could not be created";
      return false;
    }
    sources_.push_back(std::move(slot));
  }
  for (auto& slot : sources_) slot.source->start();
  start_ops_watch();
  log_->info("site {} (province {}), topics under {}, {} sources, buffer {} (sync {}), uplink {}", s.gateway.site,
             s.gateway.province, s.gateway.topic_prefix, sources_.size(), oo.path, s.buffer.sync_full ? "full" : "normal",
             s.uplink.url);
  return true;
}

void Gateway::stop() {
  stop_ops_watch();
  for (auto it = sources_.rbegin(); it != sources_.rend(); ++it)
    if (it->source) it->source->stop();
  if (forwarder_) forwarder_->stop(std::chrono::seconds(5));
  if (status_server_) status_server_->stop();
  if (outbox_) outbox_->stop();
  sources_.clear();
  forwarder_.reset();
  uplink_.reset();
  outbox_.reset();
}

void Gateway::wait_signal() {
  signals_.async_wait([this](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    if (sig == SIGHUP) {
      log_->warn("SIGHUP received: reloading the configuration is not supported yet; restart the service to apply "
                 "changes");
      wait_signal();
      return;
    }
    log_->info("{} received, stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    io_.stop();
  });
}

void Gateway::arm_watchdog() {
  const auto interval = systemd::watchdog_interval();
  if (!interval) return;
  watchdog_timer_.expires_after(*interval / 2);
  // Idle threads turn every few seconds (the outbox writer at least every 5 s), so a shorter
  // WatchdogSec must not read idleness as a stall.
  const auto limit = std::max<std::chrono::milliseconds>(
      std::chrono::duration_cast<std::chrono::milliseconds>(*interval) * 2 / 3, std::chrono::seconds(15));
  watchdog_timer_.async_wait([this, limit](const boost::system::error_code& ec) {
    if (ec) return;
    // The main loop is alive; so must be the threads that store and send. One that is stuck (a
    // hung disk, a deadlock) stops the pings, and systemd restarts the service; the outbox keeps
    // the data (docs/style.md: restarts are cheap, silent stalls are not).
    const auto outbox = outbox_->stalled_for(), forwarder = forwarder_->stalled_for();
    if (outbox > limit || forwarder > limit)
      log_->critical("the {} thread has made no progress for {} s; no longer pinging the systemd watchdog, so that "
                     "the service is restarted",
                     outbox > limit ? "outbox" : "forwarder", std::max(outbox, forwarder).count() / 1000);
    else
      systemd::watchdog();
    arm_watchdog();
  });
}

// glibc keeps freed heap pages resident unless they sit at the top of the heap: parsing a large
// configuration or draining a long backlog would otherwise stay in the resident set for good.
void Gateway::arm_housekeeping() {
  housekeeping_timer_.expires_after(std::chrono::seconds(10));
  housekeeping_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    malloc_trim(0);
    arm_housekeeping();
  });
}

void Gateway::start_ops_watch() {
  RollupStoreOptions ro;
  ro.path = settings_.gateway.data_dir + "/rollups.db";
  ro.retention = settings_.report.retention;
  ro.sync_full = settings_.buffer.sync_full;
  std::string error;
  rollup_store_ = RollupStore::open(ro, clock_, error);
  if (!rollup_store_)  // statistics, not data: the gateway goes on without them
    log_->error("hourly roll-ups are off (ioc-edge report will miss this time): {}", error);
  const auto watched = std::count_if(sources_.begin(), sources_.end(),
                                     [](const SourceSlot& s) { return s.settings.expected_every.count() > 0; });
  log_->info("{} of {} sources watched for stale data (expected_every); hourly roll-ups in {}", watched,
             sources_.size(), ro.path);
  stale_watch_ = std::make_unique<StaleWatch>(clock_);
  rollup_tracker_ = std::make_unique<RollupTracker>(clock_);
  next_rollup_write_ = clock_.steady() + settings_.report.write_every;
  // Evictions happen on the outbox's thread; the tracker lives on this one.
  outbox_->set_on_evict([this](const std::map<std::string, std::int64_t>& per_source) {
    boost::asio::post(io_, [this, per_source] {
      if (rollup_tracker_) rollup_tracker_->note_dropped(per_source);
    });
  });
  arm_ops_tick();
}

void Gateway::arm_ops_tick() {
  ops_timer_.expires_after(std::chrono::seconds(1));
  ops_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    ops_tick();
    arm_ops_tick();
  });
}

std::vector<SourceView> Gateway::source_views() {
  std::vector<SourceView> views;
  views.reserve(sources_.size());
  for (auto& slot : sources_)
    views.push_back({slot.settings.name, slot.settings.expected_every, slot.counters.get(), slot.sink.get()});
  return views;
}

void Gateway::ops_tick() {
  const auto views = source_views();
  stale_watch_->tick(views);
  rollup_tracker_->tick(views, forwarder_ && forwarder_->stats().state == LinkState::Up);
  if (clock_.steady() < next_rollup_write_) return;
  next_rollup_write_ = clock_.steady() + settings_.report.write_every;
  auto delta = rollup_tracker_->take();
  if (rollup_store_) rollup_store_->submit(std::move(delta));
}

// Counts up to now and writes what was counted, before the sources and the uplink stop.
void Gateway::stop_ops_watch() {
  if (!rollup_tracker_) return;
  ops_timer_.cancel();
  if (outbox_) outbox_->set_on_evict(nullptr);
  rollup_tracker_->tick(source_views(), forwarder_ && forwarder_->stats().state == LinkState::Up);
  if (rollup_store_) {
    rollup_store_->submit(rollup_tracker_->take());
    rollup_store_->stop();
  }
  rollup_tracker_.reset();
  rollup_store_.reset();
  stale_watch_.reset();
}

int Gateway::run() {
  std::string error;
  if (!start(error)) {
    log_->error("cannot start: {}", error);
    stop();
    return 1;
  }
  wait_signal();
  arm_watchdog();
  malloc_trim(0);  // the parsed configuration is gone; give its pages back
  arm_housekeeping();
  const auto st = outbox_->stats();
  systemd::ready("store " + st.store + ", " + std::to_string(st.pending) + " readings queued");
  io_.run();
  systemd::stopping();
  stop();
  log_->info("stopped");
  return 0;
}

std::string Gateway::heartbeat_json() const {
  const auto st = outbox_->stats();
  const auto now = clock_.now_ms();
  nlohmann::json j = {
      {"state", "online"},
      {"site", settings_.gateway.site},
      {"store", st.store},
      {"ts", format_rfc3339_ms(now)},
      {"version", IOC_EDGE_VERSION},
      {"uptime_s", std::chrono::duration_cast<std::chrono::seconds>(clock_.steady() - started_).count()},
      {"backlog", st.pending},
      {"oldest_age_s", st.oldest_age_ms / 1000.0},
      {"held", st.held},
      {"fault", st.fault.empty() ? nlohmann::json(nullptr) : nlohmann::json(st.fault)},
  };
  return j.dump();
}

std::string Gateway::status_json() const {
  const auto st = outbox_->stats();
  const auto fw = forwarder_->stats();
  const auto now = clock_.now_ms();
  nlohmann::json by_prio = nlohmann::json::object();
  for (int p = 0; p < kPriorityLevels; ++p) by_prio[std::string(to_string(static_cast<Priority>(p)))] = st.pending_by_prio[p];
  nlohmann::json sources = nlohmann::json::array();
  for (const auto& slot : sources_) {
    const auto& c = *slot.counters;
    const auto [error, error_ms] = c.last_error();
    sources.push_back({{"name", slot.settings.name},
                       {"type", slot.settings.type},
                       {"priority", to_string(slot.settings.priority)},
                       {"state", c.down ? "down" : "up"},
                       {"last_error", error.empty() ? nlohmann::json(nullptr) : nlohmann::json(error)},
                       {"last_error_at", error_ms ? nlohmann::json(format_rfc3339_ms(error_ms)) : nlohmann::json(nullptr)},
                       {"produced", c.produced.load()},
                       {"stored", c.stored.load()},
                       {"refused", c.refused.load()},
                       {"errors", c.errors.load()},
                       {"overruns", c.overruns.load()},
                       {"messages", c.messages.load()},
                       {"redelivered", c.redelivered.load()},
                       {"bad_input", c.bad_input()},
                       {"last_stored", c.last_ok_ms ? nlohmann::json(format_rfc3339_ms(c.last_ok_ms)) : nlohmann::json(nullptr)}});
  }
  nlohmann::json j = {
      {"version", IOC_EDGE_VERSION},
      {"site", settings_.gateway.site},
      {"province", settings_.gateway.province},
      {"store", st.store},
      {"now", format_rfc3339_ms(now)},
      {"uptime_s", std::chrono::duration_cast<std::chrono::seconds>(clock_.steady() - started_).count()},
      {"uplink",
       {{"url", settings_.uplink.url},
        {"state", to_string(fw.state)},
        {"since", fw.state_since_ms ? nlohmann::json(format_rfc3339_ms(fw.state_since_ms)) : nlohmann::json(nullptr)},
        {"last_error", fw.last_error},
        {"connects", fw.connects},
        {"connect_failures", fw.connect_failures},
        {"messages_sent", fw.messages_sent},
        {"readings_sent", fw.readings_sent},
        {"bytes_sent", fw.bytes_sent},
        {"publish_failures", fw.publish_failures},
        {"mqtt_version", settings_.uplink.mqtt_version == 5 ? "5" : "3.1.1"},
        {"rejected_messages", fw.rejected_messages},
        {"rejected_readings", fw.rejected_readings},
        {"last_rejection", fw.last_rejection.empty() ? nlohmann::json(nullptr) : nlohmann::json(fw.last_rejection)},
        {"delivery_rate_bytes_per_s", std::round(fw.delivery_rate)},
        {"backlog_budget_bytes", fw.backlog_budget},
        {"inflight", fw.inflight}}},
      {"backlog",
       {{"readings", st.pending},
        {"by_priority", by_prio},
        {"oldest_age_s", st.oldest_age_ms / 1000.0},
        {"last_seq", st.last_seq},
        {"file_bytes", st.file_bytes},
        {"max_bytes", settings_.buffer.max_size},
        {"appended", st.appended},
        {"removed", st.removed},
        {"evicted", st.evicted},
        {"refused", st.refused},
        {"removing", st.removing},
        {"commits", st.commits},
        {"commit_latency_ms",
         {{"count", st.acks}, {"p50", st.ack_p50_ms}, {"p99", st.ack_p99_ms}, {"max", st.ack_max_ms}}},
        {"held", held_json(st.held)},
        {"fault", st.fault.empty() ? nlohmann::json(nullptr) : nlohmann::json(st.fault)},
        {"corruption", st.corruption.empty() ? nlohmann::json(nullptr) : nlohmann::json(st.corruption)}}},
      {"sources", sources},
  };
  return j.dump(2) + "\n";
}

nlohmann::json Gateway::held_json(std::int64_t readings) const {
  nlohmann::json entries = nlohmann::json::array();
  for (const auto& h : outbox_->held())
    entries.push_back({{"first_seq", h.first_seq},
                       {"last_seq", h.last_seq},
                       {"readings", h.readings},
                       {"topic", h.topic},
                       {"reason", h.reason},
                       {"at", format_rfc3339_ms(h.at_ms)}});
  return {{"readings", readings}, {"messages", entries}};
}

HttpReply Gateway::handle_http(const std::string& method, const std::string& target) {
  const auto path = target.substr(0, target.find('?'));
  if (path == "/outbox/requeue") {
    if (method != "POST") return {405, "text/plain", "use POST /outbox/requeue (ioc-edge outbox requeue)\n"};
    const auto res = outbox_->requeue();
    forwarder_->rewind(res);
    log_->info("requeue asked through the status API: {} held readings are pending again", res.readings);
    return {200, "application/json", nlohmann::json{{"requeued", res.readings}}.dump() + "\n"};
  }
  if (method != "GET") return {405, "text/plain", "only GET is supported here\n"};
  if (path == "/healthz") {
    const auto st = outbox_->stats();
    if (!st.fault.empty()) return {503, "text/plain", "unhealthy: " + st.fault + "\n"};
    if (st.held > 0) {
      const auto held = outbox_->held();
      return {503, "text/plain",
              "unhealthy: the IOC broker refused " + std::to_string(st.held) + " readings" +
                  (held.empty() ? std::string() : " (" + held.front().reason + " on " + held.front().topic + ")") +
                  "; they are kept; fix the broker side or this office's topic settings, then run `ioc-edge outbox "
                  "requeue`\n"};
    }
    return {200, "text/plain", "ok\n"};
  }
  if (path == "/status") return {200, "application/json", status_json()};
  return {404, "text/plain", "not found; try /status or /healthz\n"};
}

}  // namespace ioc_edge
