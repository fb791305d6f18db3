#include "gateway.h"

#include <malloc.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>

#include "core/envelope.h"
#include "core/log.h"
#include "core/secret_file.h"
#include "ops/reload.h"
#include "ops/render.h"
#include "ops/systemd_notify.h"
#include "uplink_mqtt/mqtt_uplink.h"

namespace ioc_edge {

namespace {

// docs/design.md, "Writes to flash": deletes of delivered records wait this long for company (a
// crash only resends them).
constexpr std::chrono::milliseconds kRemoveDelay{10000};

// What the uplink reads from files when it opens: a renewed certificate under the same name is a
// change a reload must apply.
std::string uplink_files_digest(const Settings& s) {
  std::string all;
  for (const auto* path : {&s.uplink.ca_file, &s.uplink.cert_file, &s.uplink.key_file, &s.uplink.password_file}) {
    if (path->empty()) continue;
    std::ifstream f(*path, std::ios::binary);
    std::ostringstream content;
    content << f.rdbuf();
    all += sha256_hex(content.str());
  }
  return sha256_hex(all);
}

}  // namespace

Gateway::Gateway(Settings settings, const Clock& clock, const std::vector<Driver>& drivers)
    : settings_(std::move(settings)),
      clock_(clock),
      drivers_(drivers),
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
  reload_record_.loaded_at_ms = clock_.now_ms();
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
  pipeline_limits_ = {oo.merge_readings, oo.merge_bytes, s.uplink.blob_max_bytes};

  uplink_files_digest_ = uplink_files_digest(s);
  start_uplink();

  if (!s.status.listen.empty()) {
    HttpLimits limits;  // the defaults: a handful of local callers, one small request each
    limits.name = "the status API";
    limits.url_path = "/";  // the status page; /metrics, /status and /healthz beside it
    status_server_ = std::make_unique<HttpServer>(
        io_, HttpServer::immediate([this](const HttpRequest& r) { return handle_http(r.method, r.target); }), limits);
    if (!status_server_->listen(s.status.host, s.status.port, error)) return false;
  }

  for (const auto& ss : s.sources) {
    SourceSlot slot;
    if (!make_source(ss, nullptr, slot, error)) return false;
    sources_.push_back(std::move(slot));
  }
  for (auto& slot : sources_) slot.source->start();
  start_ops_watch();
  log_->info("site {} (province {}), topics under {}, {} sources, buffer {} (sync {}), uplink {}", s.gateway.site,
             s.gateway.province, s.gateway.topic_prefix, sources_.size(), oo.path, s.buffer.sync_full ? "full" : "normal",
             s.uplink.url);
  return true;
}

void Gateway::start_uplink(const ForwarderStats* previous) {
  const auto& s = settings_;
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
  if (previous) forwarder_->continue_counters(*previous);
  forwarder_->start();
}

bool Gateway::make_source(const SourceSettings& ss, std::unique_ptr<SourceCounters> counters, SourceSlot& slot,
                          std::string& error) {
  slot.settings = ss;
  slot.counters = counters ? std::move(counters) : std::make_unique<SourceCounters>();
  slot.sink = std::make_unique<SourcePipeline>(*outbox_, ss.name, ss.priority, *slot.counters, pipeline_limits_, clock_);
  SourceContext ctx{ss.name, settings_.gateway.site, logger(ss.type + "/" + ss.name), clock_, *slot.sink, io_,
                    *slot.counters};
  slot.source = ss.driver->create(std::move(ctx), ss.config);
  if (!slot.source) {
    error = "source \"" + ss.name + "\" could not be created";
    return false;
  }
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
      reload();
      wait_signal();
      return;
    }
    log_->info("{} received, stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    io_.stop();
  });
}

void Gateway::reload() {
  systemd::reloading();
  auto& rec = reload_record_;
  rec.last_at_ms = clock_.now_ms();
  const auto refuse = [&](const std::string& why) {
    ++rec.refused;
    rec.last_result = "refused: " + why;
    systemd::ready("reload refused: " + why);
  };
  log_->info("SIGHUP: reloading {}", settings_.file);
  auto res = load_settings(settings_.file, drivers_);
  if (!res.settings) {
    const auto& problems = res.diagnostics.list();
    log_->error("reload refused: {} has {} problem(s); the running configuration is kept", settings_.file,
                problems.size());
    std::istringstream lines(res.diagnostics.format());
    std::string first;
    for (std::string line; std::getline(lines, line);) {
      if (line.empty()) continue;
      log_->error("reload: {}", line);
      if (first.empty()) first = line;
    }
    refuse(std::to_string(problems.size()) + " problem(s) in the file, the first: " + first);
    return;
  }
  Settings next = std::move(*res.settings);
  const auto files_digest = uplink_files_digest(next);
  const auto plan = plan_reload(settings_, next, files_digest != uplink_files_digest_);
  if (plan.refused()) {
    std::string keys;
    for (const auto& k : plan.restart_needed) keys += (keys.empty() ? "" : ", ") + k;
    log_->error("reload refused: {} changed, which takes effect only when the service restarts (systemctl restart "
                "ioc-edge); nothing was changed",
                keys);
    refuse(keys + " changed: restart the service to apply");
    return;
  }
  if (plan.nothing_to_do()) {
    log_->info("reload: the configuration is unchanged");
    rec.last_result = "applied: nothing changed";
    systemd::ready("reloaded: nothing changed");
    return;
  }
  if (plan.log_level_changed) set_log_level(next.gateway.log_level);

  // Stop what goes away or changes; their last batches are stored (or refused) and answered before
  // their pipelines go, and the counters of a changed source carry on in its successor.
  std::set<std::string> going(plan.removed.begin(), plan.removed.end());
  for (const auto i : plan.changed) going.insert(next.sources[i].name);
  auto retired = std::make_shared<std::vector<SourceSlot>>();
  for (auto it = sources_.rbegin(); it != sources_.rend(); ++it)
    if (going.count(it->settings.name)) it->source->stop();
  for (auto it = sources_.begin(); it != sources_.end();) {
    if (!going.count(it->settings.name)) {
      ++it;
      continue;
    }
    retired->push_back(std::move(*it));
    it = sources_.erase(it);
  }
  outbox_->flush();
  std::map<std::string, std::unique_ptr<SourceCounters>> counters;
  for (const auto i : plan.changed)
    for (auto& slot : *retired)
      if (slot.settings.name == next.sources[i].name && slot.settings.type == next.sources[i].type)
        counters[slot.settings.name] = std::move(slot.counters);
  // Handlers the stopped sources left on this thread (cancelled timers, answers) run before they go.
  boost::asio::post(io_, [retired] { retired->clear(); });

  if (!plan.uplink_changes.empty()) {
    const auto previous = forwarder_->stats();
    forwarder_->stop(std::chrono::seconds(5));
    forwarder_.reset();
    uplink_.reset();
    settings_.gateway.topic_prefix = next.gateway.topic_prefix;
    settings_.uplink = next.uplink;
    uplink_files_digest_ = files_digest;
    start_uplink(&previous);
  }

  std::vector<std::string> failed;
  std::vector<std::size_t> starting(plan.added);
  starting.insert(starting.end(), plan.changed.begin(), plan.changed.end());
  for (const auto i : starting) {
    const auto& ss = next.sources[i];
    SourceSlot slot;
    std::string error;
    auto it = counters.find(ss.name);
    if (!make_source(ss, it == counters.end() ? nullptr : std::move(it->second), slot, error)) {
      log_->error("reload: {}; the other changes are applied", error);
      failed.push_back(ss.name);
      continue;
    }
    slot.source->start();
    sources_.push_back(std::move(slot));
  }
  // The file's order, as at start.
  std::map<std::string, std::size_t> order;
  for (std::size_t i = 0; i < next.sources.size(); ++i) order[next.sources[i].name] = i;
  std::stable_sort(sources_.begin(), sources_.end(),
                   [&](const SourceSlot& a, const SourceSlot& b) { return order[a.settings.name] < order[b.settings.name]; });

  const auto summary = plan.summary(next);
  settings_ = std::move(next);
  ++rec.reloads;
  rec.loaded_at_ms = rec.last_at_ms;
  std::string failures;
  for (const auto& f : failed) failures += (failures.empty() ? "" : ", ") + f;
  rec.last_result = "applied: " + summary + (failed.empty() ? "" : "; could not start " + failures);
  log_->info("reload applied: {}{}", summary, failed.empty() ? "" : "; could not start " + failures);
  systemd::ready("reloaded: " + summary);
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

Snapshot Gateway::snapshot() const {
  std::vector<SourceParts> parts;
  parts.reserve(sources_.size());
  for (const auto& slot : sources_) parts.push_back({slot.settings, *slot.counters});
  auto snap = build_snapshot(settings_, *outbox_, *forwarder_, parts, clock_, started_);
  const auto& r = reload_record_;
  snap.config = {settings_.file, r.loaded_at_ms, r.reloads, r.refused, r.last_at_ms, r.last_result};
  return snap;
}

std::string Gateway::status_json() const { return render_json(snapshot()); }

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
  return handle_ops(path);
}

// One snapshot per request, rendered as asked (daemon/ops/render.h).
HttpReply Gateway::handle_ops(const std::string& path) const {
  if (path == "/healthz") {
    const auto snap = snapshot();
    if (snap.healthy()) return {200, "text/plain", "ok\n"};
    std::string body;
    for (const auto& p : snap.problems) body += "unhealthy: " + p + "\n";
    return {503, "text/plain; charset=utf-8", body};
  }
  if (path == "/status") return {200, "application/json", render_json(snapshot())};
  if (path == "/metrics") return {200, std::string(kPrometheusContentType), render_prometheus(snapshot())};
  if (path == "/" || path == "/index.html") return {200, std::string(kHtmlContentType), render_html(snapshot())};
  return {404, "text/plain",
          "not found; the status API serves GET / (status page), GET /metrics (Prometheus), GET /status (JSON), GET "
          "/healthz and POST /outbox/requeue\n"};
}

}  // namespace ioc_edge
