#include "receiver/service.h"

#include <signal.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <nlohmann/json.hpp>

#include "core/log.h"
#include "http/http_server.h"
#include "mqtt_sub/subscriber.h"
#include "ops/systemd_notify.h"
#include "receiver/findings.h"
#include "receiver/ingest.h"
#include "receiver/queries.h"
#include "receiver/schema.h"
#include "receiver/writer.h"

namespace ioc_receiver {

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// The largest message taken whole: a blob of 64 MiB (the gateway's maximum) and its headers.
constexpr std::size_t kMaxPacket = (64u << 20) + 65536;

struct Pending {
  ioc_edge::mqtt_wire::Publish message;
  std::uint64_t token;
};

// Counters the status API reads; written by the writer thread.
struct Stats {
  std::atomic<std::uint64_t> messages{0}, readings{0}, duplicate_readings{0}, events{0}, duplicate_events{0},
      blobs{0}, gaps{0}, quarantined{0}, transactions{0}, db_errors{0}, refused_alone{0};
  std::atomic<int> db_connected{0};  // writers connected
  std::atomic<bool> db_failing{false};  // the last write failed for a reason that is not the data's
  std::atomic<std::int64_t> last_commit_ms{0};  // system clock
  std::atomic<std::uint64_t> commit_us_total{0};
};

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Filters subscription_filters(const BrokerSettings& b) {
  const std::string share = b.share_group.empty() ? "" : "$share/" + b.share_group + "/";
  const std::string root = b.topic_root + "/+/+/";
  return {share + root + "data/#", share + root + "event/#", share + root + "blob/#", root + "status"};
}

class Service {
  static constexpr int kWriters = 2;
  // A writer thread's own: its parser and its database connection.
  struct Lane {
    std::unique_ptr<Ingest> ingest;
    std::unique_ptr<Writer> db;
  };

 public:
  explicit Service(const Settings& s) : s_(s), log_(ioc_edge::logger("receiver")) {}

  int run() {
    // The schema must be there before anything is taken from the broker.
    try {
      pg::Connection db(s_.database.url);
      const int v = schema_version(db);
      if (v != kSchemaVersion) {
        log_->error("the database is at schema version {}, this ioc-receiver needs {}: run `ioc-receiver migrate -c {}`",
                    v, kSchemaVersion, s_.file);
        return 1;
      }
      ensure_partitions(db, std::chrono::system_clock::now(), s_.database.partitions_ahead);
    } catch (const pg::Error& e) {
      log_->error("cannot start: {}", e.what());
      return 1;
    }

    ioc_edge::SubscriberOptions o;
    o.host = s_.broker.host;
    o.port = s_.broker.port;
    o.tls = s_.broker.tls;
    o.ca_file = s_.broker.ca_file;
    o.cert_file = s_.broker.cert_file;
    o.key_file = s_.broker.key_file;
    o.verify_hostname = s_.broker.verify_hostname;
    o.client_id = s_.broker.client_id;
    o.version = ioc_edge::mqtt_wire::kMqtt5;  // shared subscriptions are MQTT 5
    o.receive_maximum = static_cast<std::uint16_t>(s_.broker.receive_maximum);
    o.max_packet = kMaxPacket;
    sub_ = std::make_unique<ioc_edge::Subscriber>(o, ioc_edge::logger("broker"));
    sub_->set_handlers(
        [this](ioc_edge::mqtt_wire::Publish&& m, std::uint64_t token) {
          {
            std::lock_guard lk(mu_);
            queue_.push_back({std::move(m), token});
          }
          cv_.notify_one();
        },
        [this](bool up, const std::string& detail) {
          if (up)
            log_->info("connected to {} ({})", sub_->describe(), detail);
          else
            log_->warn("not connected to {}: {}", sub_->describe(), detail);
        });
    const auto f = subscription_filters(s_.broker);
    // Status at QoS 0: every receiver gets every status (unshared), so the broker must not queue
    // them for a receiver that is away; the retained one arrives on every subscription anyway.
    sub_->subscribe({{f.data, 1}, {f.event, 1}, {f.blob, 1}, {f.status, 0}});

    boost::asio::io_context io;
    std::unique_ptr<ioc_edge::HttpServer> http;
    if (!s_.status.listen.empty()) {
      ioc_edge::HttpLimits limits;
      limits.name = "the status API";
      http = std::make_unique<ioc_edge::HttpServer>(
          io, ioc_edge::HttpServer::immediate([this](const ioc_edge::HttpRequest& r) { return handle(r); }), limits);
      std::string error;
      if (!http->listen(s_.status.host, s_.status.port, error)) {
        log_->error("cannot start the status API on {}: {}", s_.status.listen, error);
        return 1;
      }
    }
    // Two writers, each with its own connection: one parses and sends while the other's
    // transaction commits, so PostgreSQL and the receiver work at the same time.
    for (int i = 0; i < kWriters; ++i) {
      lanes_[i].ingest = std::make_unique<Ingest>(IngestOptions{s_.broker.topic_root});
      writers_[i] = std::thread([this, i] { write_loop(lanes_[i]); });
    }
    maintenance_ = std::thread([this] { maintenance_loop(); });
    sub_->start();
    log_->info("receiving from {} into the database (share group {}, receive maximum {})", sub_->describe(),
               s_.broker.share_group.empty() ? "none" : s_.broker.share_group, s_.broker.receive_maximum);

    // SIGHUP (systemctl reload, or a terminal going away) must not end the receiver: there is
    // nothing to reload, a changed configuration needs a restart.
    boost::asio::signal_set signals(io, SIGTERM, SIGINT, SIGHUP);
    std::function<void(const boost::system::error_code&, int)> on_signal = [&](const boost::system::error_code& ec,
                                                                              int sig) {
      if (ec) return;
      if (sig == SIGHUP) {
        log_->info("SIGHUP: nothing to reload; restart ioc-receiver to apply a changed configuration");
        signals.async_wait(on_signal);
        return;
      }
      log_->info("signal {}: stopping", sig);
      io.stop();
    };
    signals.async_wait(on_signal);
    ioc_edge::systemd::ready("receiving from " + sub_->describe());
    io.run();
    ioc_edge::systemd::stopping();
    if (http) http->stop();
    // The subscriber first: what was not acknowledged stays with the broker.
    sub_->stop();
    {
      std::lock_guard lk(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    stop_cv_.notify_all();
    for (auto& w : writers_) w.join();
    maintenance_.join();
    log_->info("stopped: {} messages, {} readings stored ({} already there), {} quarantined", stats_.messages.load(),
               stats_.readings.load(), stats_.duplicate_readings.load(), stats_.quarantined.load());
    return 0;
  }

 private:
  // Waits for the first message, then takes more until batch_wait has passed since it or the
  // batch holds batch_max_rows rows; each message's rows are made as it is taken.
  bool take(Lane& lane, std::vector<Pending>& items, RowBatch& batch) {
    std::unique_lock lk(mu_);
    const auto ready = [&] { return stopping_ || !queue_.empty(); };
    cv_.wait(lk, ready);
    if (stopping_) return false;
    const auto deadline = Clock::now() + s_.database.batch_wait;
    while (batch.rows() < s_.database.batch_max_rows && !stopping_) {
      if (queue_.empty()) {
        if (!cv_.wait_until(lk, deadline, ready)) break;
        continue;
      }
      items.push_back(std::move(queue_.front()));
      queue_.pop_front();
      lk.unlock();
      lane.ingest->add(items.back().message, batch);
      lk.lock();
    }
    return true;
  }

  void connect(Lane& lane) {
    auto backoff = 500ms;
    ioc_edge::RateLimit limit(std::chrono::seconds(60));
    while (!lane.db) {
      try {
        lane.db = std::make_unique<Writer>(s_.database.url);
        ++stats_.db_connected;
        log_->info("database connected");
      } catch (const pg::Error& e) {
        std::uint64_t suppressed = 0;
        if (limit.allow(suppressed))
          log_->warn("database: {} (retrying; the broker holds what is not acknowledged)", e.what());
        if (!pause(backoff)) return;
        backoff = std::min<std::chrono::milliseconds>(backoff * 2, 30s);
      }
    }
  }

  // Waits `delay` unless stopping; false when stopping.
  bool pause(std::chrono::milliseconds delay) {
    std::unique_lock lk(mu_);
    return !stop_cv_.wait_for(lk, delay, [&] { return stopping_; });
  }

  // Writes the rows of `batch` (the rows of `items`), then its bookkeeping. Returns false only
  // when stopping before it could commit. A refusal that is the messages' fault (their data:
  // Writer::data_error) splits the batch message by message (invariant 4); anything else (a lost
  // connection, a full disk, a read-only server, a timeout) is retried with a backoff until it
  // passes: the messages stay unacknowledged meanwhile and /healthz says the database is failing.
  bool commit(Lane& lane, const std::vector<Pending>& items, RowBatch& batch) {
    ioc_edge::RateLimit limit(std::chrono::seconds(60));
    auto backoff = 200ms;
    while (true) {
      connect(lane);
      if (!lane.db) return false;
      try {
        const auto t0 = Clock::now();
        const auto r = lane.db->write(batch);
        stats_.commit_us_total += static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count());
        account(r);
        stats_.db_failing = false;
        break;
      } catch (const pg::Error& e) {
        ++stats_.db_errors;
        std::uint64_t suppressed = 0;
        if (e.connection_lost()) {
          --stats_.db_connected;
          lane.db.reset();
          if (limit.allow(suppressed)) log_->warn("database connection lost: {}; writing the batch again", e.what());
        } else if (Writer::retryable(e)) {
          log_->info("database: {}; writing the batch again", e.what());
          continue;
        } else if (Writer::data_error(e)) {
          if (items.size() == 1) {
            std::uint64_t dropped = 0;
            if (refusal_log_.allow(dropped))
              log_->warn("the database refused a message on {}: {}; it goes to quarantine ({} more since the last "
                         "such line)",
                         items[0].message.topic, first_line(e.what()), dropped);
            RowBatch q;
            q.messages = 1;
            q.quarantine.push_back(Ingest::refused(items[0].message, "the database refused it: " + first_line(e.what())));
            ++stats_.refused_alone;
            return commit(lane, {}, q);
          }
          if (items.empty()) {  // a quarantine row alone, refused: nothing is left to try
            log_->error("the database refused a quarantine row too ({}): the message on {} is acknowledged without "
                        "being kept",
                        first_line(e.what()), batch.quarantine.empty() ? "?" : batch.quarantine[0].topic);
            return true;
          }
          log_->info("the database refused a batch of {} messages: {}; writing them one by one", items.size(),
                     first_line(e.what()));
          for (const auto& item : items) {
            RowBatch one;
            lane.ingest->add(item.message, one);
            if (!commit(lane, {item}, one)) return false;
          }
          return true;
        } else {
          stats_.db_failing = true;
          if (limit.allow(suppressed))
            log_->error("database: {}; retrying the batch (the broker holds what is not acknowledged)",
                        first_line(e.what()));
        }
        if (!pause(backoff)) return false;
        backoff = std::min<std::chrono::milliseconds>(backoff * 2, 30s);
      }
    }
    // The rows are in; the bookkeeping is retried on its own (never the rows again).
    backoff = 200ms;
    while (true) {
      connect(lane);
      if (!lane.db) return true;  // stopping: the rows are committed, the next batch updates these
      try {
        lane.db->write_meta(batch);
        return true;
      } catch (const pg::Error& e) {
        ++stats_.db_errors;
        std::uint64_t suppressed = 0;
        if (e.connection_lost()) {
          --stats_.db_connected;
          lane.db.reset();
        } else if (!Writer::retryable(e)) {
          if (limit.allow(suppressed))
            log_->warn("database: the offices' and sources' bookkeeping of a batch failed: {}; skipped (its rows are "
                       "stored)",
                       first_line(e.what()));
          return true;
        }
        if (!pause(backoff)) return true;
        backoff = std::min<std::chrono::milliseconds>(backoff * 2, 30s);
      }
    }
  }

  static std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

  void account(const WriteResult& r) {
    stats_.readings += r.readings;
    stats_.duplicate_readings += r.duplicate_readings;
    stats_.events += r.events;
    stats_.duplicate_events += r.duplicate_events;
    stats_.blobs += r.blobs;
    stats_.gaps += r.gaps;
    stats_.quarantined += r.quarantined;
    ++stats_.transactions;
    stats_.last_commit_ms = now_ms();
  }

  void write_loop(Lane& lane) {
    std::vector<Pending> items;
    RowBatch batch;
    connect(lane);  // now, so /healthz tells whether the database can be reached before data comes
    while (true) {
      items.clear();
      batch.clear();
      if (!take(lane, items, batch)) break;
      stats_.messages += items.size();
      if (!commit(lane, items, batch)) break;
      for (const auto& item : items) sub_->ack(item.token);  // invariant 1: after the commit
    }
  }

  // Each step on its own: one that fails (and says so, at most every 5 minutes per step) does not
  // keep the others from running; /metrics shows how old the late list and coverage are.
  void maintenance_loop() {
    std::unique_ptr<pg::Connection> db;
    std::map<std::string, std::unique_ptr<ioc_edge::RateLimit>> limits;
    const auto step = [&](const char* name, const std::function<void(pg::Connection&)>& fn) {
      try {
        if (!db) db = std::make_unique<pg::Connection>(s_.database.url);
        fn(*db);
      } catch (const pg::Error& e) {
        auto& limit = limits[name];
        if (!limit) limit = std::make_unique<ioc_edge::RateLimit>(std::chrono::seconds(300));
        std::uint64_t suppressed = 0;
        if (limit->allow(suppressed)) log_->warn("maintenance ({}): {}", name, first_line(e.what()));
        if (e.connection_lost()) db.reset();
      }
    };
    while (true) {
      step("partitions ahead", [&](pg::Connection& c) {
        ensure_partitions(c, std::chrono::system_clock::now(), s_.database.partitions_ahead);
      });
      step("merging seq ranges", [&](pg::Connection& c) { merge_seq_ranges(c, s_.coverage.hole_grace); });
      step("late list", [&](pg::Connection& c) {
        auto late = query_late(c, s_);
        std::lock_guard lk(findings_mu_);
        late_ = std::move(late);
        late_at_ms_ = now_ms();
      });
      step("coverage", [&](pg::Connection& c) {
        auto coverage = query_coverage(c, s_, std::nullopt);
        std::lock_guard lk(findings_mu_);
        coverage_ = std::move(coverage);
        coverage_at_ms_ = now_ms();
      });
      if (!pause(maintenance_every())) return;
    }
  }

  // Often enough that /metrics names a late office within a tenth of its threshold.
  std::chrono::milliseconds maintenance_every() const {
    return std::clamp<std::chrono::milliseconds>(
        std::min(s_.late.office_after, s_.coverage.hole_grace) / 10, 1s, 30s);
  }

  ioc_edge::HttpReply handle(const ioc_edge::HttpRequest& r) {
    const auto path = r.path();
    if (r.method != "GET") return {405, "text/plain", "only GET is supported here\n"};
    const auto sub = sub_->stats();
    if (path == "/healthz") {
      const bool db_up = stats_.db_connected.load() == kWriters && !stats_.db_failing;
      if (sub.up && db_up) return {200, "text/plain", "ok\n"};
      std::string why;
      if (!sub.up) why += "not connected to the broker\n";
      if (!db_up) why += stats_.db_failing ? "the database refuses writes (see the log)\n" : "not connected to the database\n";
      return {503, "text/plain", why};
    }
    if (path == "/status") return {200, "application/json", status_json(sub).dump(2) + "\n"};
    if (path == "/metrics") return {200, "text/plain; version=0.0.4", metrics(sub)};
    return {404, "text/plain", "not found: try /status, /metrics or /healthz\n"};
  }

  std::size_t queued() {
    std::lock_guard lk(mu_);
    return queue_.size();
  }

  nlohmann::json status_json(const ioc_edge::SubscriberStats& sub) {
    nlohmann::json j = {
        {"version", IOC_EDGE_VERSION},
        {"broker", {{"url", s_.broker.url}, {"up", sub.up}, {"client_id", s_.broker.client_id},
                    {"share_group", s_.broker.share_group}, {"received", sub.received},
                    {"acknowledged", sub.acknowledged}, {"redelivered", sub.redelivered}, {"connects", sub.connects}}},
        {"database", {{"up", (stats_.db_connected.load() > 0)}, {"transactions", stats_.transactions.load()},
                      {"errors", stats_.db_errors.load()},
                      {"last_commit", stats_.last_commit_ms ? nlohmann::json(format_time(TimePoint(
                                                                 std::chrono::milliseconds(stats_.last_commit_ms))))
                                                           : nlohmann::json(nullptr)}}},
        {"queued", queued()},
        {"stored", {{"messages", stats_.messages.load()}, {"readings", stats_.readings.load()},
                    {"duplicate_readings", stats_.duplicate_readings.load()}, {"events", stats_.events.load()},
                    {"blobs", stats_.blobs.load()}, {"gaps", stats_.gaps.load()},
                    {"quarantined", stats_.quarantined.load()}}},
    };
    std::lock_guard lk(findings_mu_);
    j["late"] = nlohmann::json::parse(render_late(late_, Format::Json));
    return j;
  }

  static std::string label(std::string_view v) {
    std::string out;
    for (const char c : v) {
      if (c == '\\' || c == '"') out += '\\';
      if (c == '\n') {
        out += "\\n";
        continue;
      }
      out += c;
    }
    return out;
  }

  std::string metrics(const ioc_edge::SubscriberStats& sub) {
    std::string m;
    const auto counter = [&](const char* name, const char* help, std::uint64_t v) {
      m += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " counter\n" + name + " " +
           std::to_string(v) + "\n";
    };
    const auto gauge = [&](const char* name, const char* help, double v) {
      m += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " gauge\n" + name + " " +
           fmt_number(v) + "\n";
    };
    gauge("ioc_receiver_broker_up", "1 when connected to the broker", sub.up ? 1 : 0);
    gauge("ioc_receiver_database_up", "1 when connected to the database", stats_.db_connected.load() > 0 ? 1 : 0);
    gauge("ioc_receiver_queued_messages", "messages received and waiting for their commit", static_cast<double>(queued()));
    counter("ioc_receiver_messages_total", "messages taken from the broker and committed", stats_.messages);
    counter("ioc_receiver_readings_stored_total", "readings stored", stats_.readings);
    counter("ioc_receiver_readings_duplicate_total", "readings that arrived again (already stored)",
            stats_.duplicate_readings);
    counter("ioc_receiver_events_stored_total", "events stored", stats_.events);
    counter("ioc_receiver_blobs_stored_total", "blobs stored", stats_.blobs);
    counter("ioc_receiver_gaps_stored_total", "declared gap ranges stored", stats_.gaps);
    counter("ioc_receiver_quarantined_total", "messages quarantined (invalid, forged site, refused)", stats_.quarantined);
    counter("ioc_receiver_transactions_total", "database transactions committed", stats_.transactions);
    counter("ioc_receiver_database_errors_total", "failed database transactions (retried)", stats_.db_errors);
    counter("ioc_receiver_redelivered_total", "messages the broker sent again (not acknowledged before)", sub.redelivered);
    std::lock_guard lk(findings_mu_);
    const auto age = [&](std::int64_t at) { return at ? static_cast<double>(now_ms() - at) / 1000.0 : -1.0; };
    m += "# HELP ioc_receiver_findings_age_seconds How old the late list and the coverage below are (-1: not read "
         "yet); they are read every few seconds to 30 s\n# TYPE ioc_receiver_findings_age_seconds gauge\n";
    m += "ioc_receiver_findings_age_seconds{of=\"late\"} " + fmt_number(age(late_at_ms_)) + "\n";
    m += "ioc_receiver_findings_age_seconds{of=\"coverage\"} " + fmt_number(age(coverage_at_ms_)) + "\n";
    m += "# HELP ioc_receiver_office_late 1 for an office whose heartbeat is older than [late] office_after or that "
         "said offline\n# TYPE ioc_receiver_office_late gauge\n";
    for (const auto& o : late_.offices) m += "ioc_receiver_office_late{site=\"" + label(o.site) + "\"} 1\n";
    m += "# HELP ioc_receiver_source_late 1 for a source with no good reading for [late] source_factor times its "
         "cadence\n# TYPE ioc_receiver_source_late gauge\n";
    for (const auto& s : late_.sources)
      m += "ioc_receiver_source_late{site=\"" + label(s.site) + "\",source=\"" + label(s.source) + "\"} 1\n";
    m += "# HELP ioc_receiver_store_holes Seqs of a store neither received nor declared dropped, older than [coverage] "
         "hole_grace\n# TYPE ioc_receiver_store_holes gauge\n";
    for (const auto& c : coverage_)
      m += "ioc_receiver_store_holes{site=\"" + label(c.site) + "\",store=\"" + c.store + "\"} " +
           std::to_string(c.hole_count) + "\n";
    m += "# HELP ioc_receiver_store_completeness_ratio Seqs received over the highest seq of a store\n"
         "# TYPE ioc_receiver_store_completeness_ratio gauge\n";
    for (const auto& c : coverage_)
      m += "ioc_receiver_store_completeness_ratio{site=\"" + label(c.site) + "\",store=\"" + c.store + "\"} " +
           fmt_number(c.completeness_pct() / 100.0) + "\n";
    return m;
  }

  static std::string fmt_number(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.6g", v);
    return buf;
  }

  const Settings& s_;
  std::shared_ptr<spdlog::logger> log_;
  Lane lanes_[kWriters];
  std::unique_ptr<ioc_edge::Subscriber> sub_;
  std::thread writers_[kWriters], maintenance_;
  std::mutex mu_;
  std::condition_variable cv_;       // the queue: the writers wait for messages on it
  std::condition_variable stop_cv_;  // backoffs and the maintenance interval: woken to stop
  ioc_edge::RateLimit refusal_log_{std::chrono::seconds(60)};
  std::deque<Pending> queue_;
  bool stopping_ = false;
  Stats stats_;
  std::mutex findings_mu_;
  LateList late_;
  std::vector<StoreCoverage> coverage_;
  std::int64_t late_at_ms_ = 0, coverage_at_ms_ = 0;  // when they were last read (0: never)
};

int run_receiver(const Settings& settings) {
  Service service(settings);
  return service.run();
}

}  // namespace ioc_receiver
