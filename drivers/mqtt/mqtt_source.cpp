#include "drivers/mqtt/mqtt_source.h"

#include <atomic>
#include <map>
#include <mutex>
#include <shared_mutex>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "core/log.h"
#include "core/secret_file.h"
#include "drivers/mqtt/mqtt_config.h"
#include "drivers/mqtt/mqtt_mapping.h"
#include "mqtt_sub/subscriber.h"

namespace ioc_edge::mqtt {

namespace {

constexpr auto kRetryDelay = std::chrono::seconds(5);  // invariant 1: a refused message comes back after this

class MqttSource;
class Connection;

// One message on its way through the sources it went to; acknowledged when the last one answers.
struct Delivery {
  Delivery(std::shared_ptr<Connection> c, std::uint64_t t, int n) : conn(std::move(c)), token(t), remaining(n) {}
  void finish(SinkStatus status);

  std::shared_ptr<Connection> conn;  // the ack may come after every source stopped
  std::uint64_t token;
  std::atomic<int> remaining;
  std::atomic<bool> refused{false};
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(const Config& cfg, std::string client_id, std::string password, std::shared_ptr<spdlog::logger> log)
      : cfg_(cfg), client_id_(std::move(client_id)), password_(std::move(password)), log_(std::move(log)) {
    // Invariant 2: hurry the commit when a quarter of the broker's window waits for it. Under
    // MQTT 3.1.1 the window is the broker's max_inflight_messages (Mosquitto's default is 20).
    hurry_at_ = cfg.mqtt_version == 5 ? std::max(1, cfg.receive_maximum / 4) : 10;
  }

  // Every source registers when it is created, and starts listening with started().
  void add(MqttSource* s) {
    std::unique_lock lk(mu_);
    members_.push_back({s, false});
  }
  void started(MqttSource* s, const std::vector<std::string>& filters, int qos, std::uint64_t max_payload);
  // After it returns, `s` is not called again. The last one out closes the connection.
  void remove(MqttSource* s);
  bool closed() const { return closed_; }

  void on_message(mqtt_wire::Publish&& m, std::uint64_t token);
  void on_state(bool up, const std::string& detail);
  void finished(const Delivery& d) {
    --inflight_;
    if (d.refused)
      sub_->retry_later(d.token, kRetryDelay);
    else
      sub_->ack(d.token);
  }
  std::string url() const { return cfg_.url; }

 private:
  struct Member {
    MqttSource* source;
    bool running;
  };
  Config cfg_;  // the connection keys of the first source (check_together keeps the others equal)
  std::string client_id_, password_;
  std::shared_ptr<spdlog::logger> log_;
  std::shared_mutex mu_;
  std::vector<Member> members_;
  std::vector<mqtt_wire::Subscription> subs_;
  std::uint64_t max_payload_ = 0;
  std::unique_ptr<Subscriber> sub_;
  std::atomic<bool> closed_{false};
  std::atomic<int> inflight_{0};
  int hurry_at_ = 10;
  std::atomic<std::uint64_t> unmatched_{0};
  RateLimit unmatched_log_{std::chrono::seconds(60)};
};

void Delivery::finish(SinkStatus status) {
  if (status == SinkStatus::Refused) refused = true;
  if (--remaining == 0) conn->finished(*this);
}

class MqttSource final : public Source {
 public:
  MqttSource(SourceContext ctx, std::shared_ptr<const Config> cfg, Mapper mapper, std::shared_ptr<Connection> conn)
      : ctx_(std::move(ctx)), cfg_(std::move(cfg)), mapper_(std::move(mapper)), conn_(std::move(conn)) {
    conn_->add(this);
  }
  ~MqttSource() override { stop(); }

  void start() override {
    if (running_) return;
    running_ = true;
    std::string topics;
    for (const auto& t : cfg_->topics) topics += (topics.empty() ? "\"" : ", \"") + t + "\"";
    ctx_.log->info("taking {} ({} format{}, QoS {}) from {}", topics, to_string(cfg_->format),
                   cfg_->event ? ", as events" : "", cfg_->qos, cfg_->url);
    conn_->started(this, cfg_->topics, cfg_->qos, cfg_->max_payload);
  }

  void stop() override {
    if (!running_) return;
    running_ = false;
    conn_->remove(this);
  }

  bool wants(std::string_view topic) const {
    for (const auto& f : cfg_->topics)
      if (topic_matches(f, topic)) return true;
    return false;
  }

  void hurry() { ctx_.sink.hurry(); }

  // On the connection's thread (invariant 3: never throws, never stops on bad input).
  void take(const mqtt_wire::Publish& m, const std::vector<std::string_view>& levels, const std::shared_ptr<Delivery>& d) {
    ++ctx_.counters.messages;
    if (m.dup) ++ctx_.counters.redelivered;
    auto done = [d](const SinkResult& r) { d->finish(r.status); };
    if (m.oversized || m.payload.size() > cfg_->max_payload) {
      bad("oversized", m.topic,
          "payload of " + std::to_string(m.payload_size ? m.payload_size : m.payload.size()) +
              " bytes is larger than max_payload (" + std::to_string(cfg_->max_payload) + ")");
      return d->finish(SinkStatus::Invalid);
    }
    std::string error;
    const auto source = mapper_.source_for(levels, ctx_.name, error);
    if (!source) {
      bad("bad_source_name", m.topic, error);
      return d->finish(SinkStatus::Invalid);
    }
    const auto now = ctx_.clock.now_ms();
    if (cfg_->format == Format::Binary) {
      const auto point = mapper_.point_for(levels, error);
      if (!point) {
        bad("bad_point_name", m.topic, error);
        return d->finish(SinkStatus::Invalid);
      }
      Blob b;
      b.point = *point;
      b.ts_ms = now;
      b.content_type = m.content_type.empty() ? cfg_->content_type : m.content_type;
      b.bytes = m.payload;
      b.origin = m.topic;
      if (*source != ctx_.name) b.source = *source;
      b.prio = cfg_->blob_priority;
      ctx_.sink.blob(std::move(b), std::move(done));
      return;
    }
    Mapped mapped = cfg_->format == Format::Value ? mapper_.map_value(m.payload, levels, now)
                    : cfg_->event                 ? mapper_.map_event(m.payload, levels, now)
                                                  : mapper_.map_json(m.payload, levels, now);
    if (!mapped.error.empty()) bad(mapped.kind.empty() ? "bad_value" : mapped.kind, m.topic, mapped.error);
    if (mapped.readings.empty()) {
      if (mapped.error.empty()) bad("no_points", m.topic, "the message holds no value to store");
      return d->finish(SinkStatus::Invalid);
    }
    ctx_.sink.push_as(*source, cfg_->event ? Kind::Event : Kind::Data, std::move(mapped.readings), std::move(done));
  }

  // The connection's state (invariant 4), on the connection's thread.
  void link(bool up, const std::string& detail) {
    if (!up) {
      if (ctx_.counters.down.exchange(true)) {
        ctx_.log->debug("broker {} still unreachable: {}", cfg_->url, detail);
        return;
      }
      ctx_.counters.set_error("broker " + cfg_->url + ": " + detail, ctx_.clock.now_ms());
      ctx_.log->warn("broker {} unreachable: {}; retrying with backoff (what devices publish meanwhile waits in "
                     "the broker's session)",
                     cfg_->url, detail);
      ctx_.sink.event(event("source_down", detail), nullptr);
      return;
    }
    if (ctx_.counters.down.exchange(false)) {
      ctx_.log->info("broker {} reachable again ({})", cfg_->url, detail);
      ctx_.sink.event(event("source_up", {}), nullptr);
    } else {
      ctx_.log->info("connected to {} ({})", cfg_->url, detail);
    }
  }

 private:
  Reading event(const char* name, const std::string& error) {
    nlohmann::json v = {{"event", name}, {"url", cfg_->url}};
    if (!error.empty()) v["error"] = error;
    Reading r;
    r.point = name;
    r.ts_ms = ctx_.clock.now_ms();
    r.value = JsonText{v.dump()};
    return r;
  }

  void bad(std::string_view kind, const std::string& topic, const std::string& why) {
    ctx_.counters.count_bad(kind);
    ++ctx_.counters.errors;
    const auto text = "topic \"" + topic + "\": " + why;
    ctx_.counters.set_error(text, ctx_.clock.now_ms());
    std::uint64_t suppressed = 0;
    if (bad_log_.allow(suppressed))
      ctx_.log->warn("message dropped ({}): {} ({} similar suppressed)", kind, text, suppressed);
  }

  SourceContext ctx_;
  std::shared_ptr<const Config> cfg_;
  Mapper mapper_;
  std::shared_ptr<Connection> conn_;
  bool running_ = false;
  RateLimit bad_log_{std::chrono::seconds(60)};
};

void Connection::started(MqttSource* s, const std::vector<std::string>& filters, int qos, std::uint64_t max_payload) {
  std::vector<mqtt_wire::Subscription> mine;
  for (const auto& f : filters) mine.push_back({f, qos});
  bool start_now = false;
  {
    std::unique_lock lk(mu_);
    for (auto& m : members_)
      if (m.source == s) m.running = true;
    max_payload_ = std::max(max_payload_, max_payload);
    for (const auto& sub : mine) subs_.push_back(sub);
    if (sub_) {  // already connected for the others: a late starter subscribes on its own
      sub_->subscribe(mine);
      return;
    }
    // Invariant 5: all sources of this connection were created before any started.
    start_now = std::all_of(members_.begin(), members_.end(), [](const Member& m) { return m.running; });
    if (!start_now) return;
    SubscriberOptions o;
    o.host = cfg_.host;
    o.port = cfg_.port;
    o.tls = cfg_.tls;
    o.ca_file = cfg_.ca_file;
    o.cert_file = cfg_.cert_file;
    o.key_file = cfg_.key_file;
    o.verify_hostname = cfg_.verify_hostname;
    if (!cfg_.username.empty()) o.username = cfg_.username;
    if (!cfg_.password_file.empty()) o.password = password_;
    o.client_id = client_id_;
    o.version = cfg_.mqtt_version == 5 ? mqtt_wire::kMqtt5 : mqtt_wire::kMqtt311;
    o.keepalive = cfg_.keepalive;
    o.session_expiry_s = static_cast<std::uint32_t>(std::min<long long>(cfg_.session_expiry.count(), 0xFFFFFFFFll));
    o.receive_maximum = static_cast<std::uint16_t>(cfg_.receive_maximum);
    // Larger publishes are read past and counted, not held (subscriber.h, invariant 5).
    o.max_packet = static_cast<std::size_t>(max_payload_) + 65536;
    o.connect_timeout = cfg_.connect_timeout;
    o.reconnect_min = cfg_.reconnect_min;
    o.reconnect_max = cfg_.reconnect_max;
    sub_ = std::make_unique<Subscriber>(std::move(o), log_);
    sub_->set_handlers([this](mqtt_wire::Publish&& m, std::uint64_t token) { on_message(std::move(m), token); },
                       [this](bool up, const std::string& detail) { on_state(up, detail); });
    sub_->subscribe(subs_);
  }
  log_->info("connecting to {} as client id \"{}\" (MQTT {}, persistent session)", cfg_.url, client_id_,
             cfg_.mqtt_version == 5 ? "5" : "3.1.1");
  sub_->start();
}

void Connection::remove(MqttSource* s) {
  bool last = false;
  {
    std::unique_lock lk(mu_);
    members_.erase(std::remove_if(members_.begin(), members_.end(), [s](const Member& m) { return m.source == s; }),
                   members_.end());
    last = members_.empty();
    if (last) closed_ = true;
  }
  // Outside the lock: the connection's thread may be waiting for it in on_message().
  if (last && sub_) sub_->stop();
}

void Connection::on_message(mqtt_wire::Publish&& m, std::uint64_t token) {
  const auto levels = topic_levels(m.topic);
  std::shared_lock lk(mu_);
  MqttSource* targets[8];
  std::vector<MqttSource*> more;
  int n = 0;
  for (const auto& mem : members_) {
    if (!mem.running || !mem.source->wants(m.topic)) continue;
    if (n < 8)
      targets[n] = mem.source;
    else
      more.push_back(mem.source);
    ++n;
  }
  if (n == 0) {
    // A subscription this configuration no longer has (the broker keeps a persistent session's
    // subscriptions): nothing here wants it.
    ++unmatched_;
    std::uint64_t suppressed = 0;
    if (unmatched_log_.allow(suppressed))
      log_->warn("{}: a message on \"{}\" matches no source's topics (a subscription left from an earlier "
                 "configuration?); acknowledged and dropped ({} similar suppressed)",
                 cfg_.url, m.topic, suppressed);
    sub_->ack(token);
    return;
  }
  auto d = std::make_shared<Delivery>(shared_from_this(), token, n);
  const int waiting = ++inflight_;
  for (int i = 0; i < std::min(n, 8); ++i) targets[i]->take(m, levels, d);
  for (auto* t : more) t->take(m, levels, d);
  if (waiting >= hurry_at_) targets[0]->hurry();  // one outbox behind every sink
}

void Connection::on_state(bool up, const std::string& detail) {
  std::shared_lock lk(mu_);
  for (const auto& mem : members_)
    if (mem.running) mem.source->link(up, detail);
}

}  // namespace

std::unique_ptr<Source> create(SourceContext context, std::shared_ptr<const DriverConfig> config) {
  auto cfg = std::dynamic_pointer_cast<const Config>(config);
  if (!cfg) return nullptr;
  std::string error;
  auto mapper = Mapper::build(*cfg, error);
  if (!mapper) {
    context.log->error("{}", error);
    return nullptr;
  }
  const std::string client_id = cfg->client_id.empty() ? "ioc-edge-" + context.site : cfg->client_id;
  static std::mutex mu;
  static std::map<std::string, std::weak_ptr<Connection>> connections;
  std::shared_ptr<Connection> conn;
  {
    std::lock_guard lk(mu);
    const auto key = connection_key(*cfg) + "|" + client_id;
    auto& slot = connections[key];
    conn = slot.lock();
    if (!conn || conn->closed()) {
      std::string password;
      if (!cfg->password_file.empty()) {
        auto secret = read_secret_file(cfg->password_file);
        if (!secret) {
          context.log->error("cannot read password_file {}", cfg->password_file);
          return nullptr;
        }
        password = std::move(*secret);
      }
      conn = std::make_shared<Connection>(*cfg, client_id, std::move(password), logger("mqtt"));
      slot = conn;
    }
  }
  return std::make_unique<MqttSource>(std::move(context), std::move(cfg), std::move(*mapper), std::move(conn));
}

}  // namespace ioc_edge::mqtt
