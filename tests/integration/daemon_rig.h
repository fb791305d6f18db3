#pragma once
// A whole installation on one machine: a real Mosquitto with mutual TLS as the IOC, its consumer
// (Collector), optionally a TCP proxy to cut the link, and the real ioc-edge binary as a process.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <atomic>
#include <csignal>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include "support/support.h"

namespace ioc_edge::test {

using namespace std::chrono_literals;

struct RigOptions {
  bool proxy = true;                  // the daemon reaches the broker through a TcpProxy
  bool collector = true;              // consume everything the IOC broker gets
  bool plain = false;                 // the daemon speaks plain mqtt:// to a second, TLS-less listener
                                      // (so the proxy can count MQTT packets); the collector keeps TLS
  MosquittoOptions broker;            // server certificate override (TLS failure tests); bare names
                                      // are files of scripts/make-certs.sh
  std::string data_dir;               // default: <tmp>/data
  std::string extra_gateway;          // lines appended to [gateway]
  std::string extra_buffer;           // lines for [buffer]
  std::string extra_uplink;           // lines appended to [uplink]
  std::string extra_status;           // lines appended to [status]
  std::string sources = "[[source]]\nname = \"tram-bom-1\"\ntype = \"generator\"\nrate = 500\npoints = 4\n";
};

class DaemonRig {
 public:
  explicit DaemonRig(RigOptions o = {}) : opts_(std::move(o)) {
    certs_ = make_certs(tmp_.file("certs"));
    // A bare file name picks one of make-certs.sh's files (e.g. "other-server.pem").
    for (auto* f : {&opts_.broker.server_cert, &opts_.broker.server_key})
      if (!f->empty() && f->find('/') == std::string::npos) *f = certs_.dir + "/" + *f;
    if (opts_.plain) {
      plain_port_ = free_tcp_port();
      opts_.broker.extra_config += "listener " + std::to_string(plain_port_) + " 127.0.0.1\n";
    }
    broker_ = std::make_unique<Mosquitto>(certs_, tmp_.path(), opts_.broker);
    if (opts_.proxy) proxy_ = std::make_unique<TcpProxy>(opts_.plain ? plain_port_ : broker_->port());
    if (opts_.collector) collector_ = std::make_unique<Collector>(broker_->port(), certs_, "ioc/#");
    if (opts_.data_dir.empty()) opts_.data_dir = tmp_.file("data");
    status_port_ = free_tcp_port();
    write_file(config_path(), config_text());
  }
  ~DaemonRig() {
    if (daemon_ && daemon_->running()) daemon_->signal(SIGKILL);
  }

  std::string config_path() const { return tmp_.file("ioc-edge.toml"); }
  std::string config_text() const {
    std::ostringstream c;
    const int port = proxy_ ? proxy_->port() : opts_.plain ? plain_port_ : broker_->port();
    c << "[gateway]\nsite = \"bk-cho-don\"\nprovince = \"bac-kan\"\ndata_dir = \"" << opts_.data_dir << "\"\n"
      << "unit_code = \"01843\"\nname = \"UBND xã Chợ Đồn\"\n" << opts_.extra_gateway << "\n"
      << "[buffer]\n" << opts_.extra_buffer << "\n"
      << "[uplink]\nurl = \"" << (opts_.plain ? "mqtt" : "mqtts") << "://127.0.0.1:" << port << "\"\n";
    if (!opts_.plain)
      c << "ca_file = \"" << certs_.ca << "\"\ncert_file = \"" << certs_.client_cert << "\"\nkey_file = \""
        << certs_.client_key << "\"\n";
    c << "reconnect_min = \"50ms\"\nreconnect_max = \"500ms\"\nheartbeat = \"2s\"\n"
      << "connect_timeout = \"2s\"\nkeepalive = \"5s\"\n" << opts_.extra_uplink << "\n"
      << "[status]\nlisten = \"127.0.0.1:" << status_port_ << "\"\n" << opts_.extra_status << "\n" << opts_.sources;
    return c.str();
  }

  // Starts the daemon and waits until its status API answers.
  void start(std::map<std::string, std::string> env = {}) {
    daemon_ = std::make_unique<Process>(std::vector<std::string>{ioc_edge_binary(), "run", "-c", config_path()},
                                        tmp_.file("daemon.log"), std::move(env));
    const bool up = wait_until([&] { return http_get(status_port_, "/healthz", 500ms).status != 0 || !daemon_->running(); }, 15s);
    INFO(daemon_log());
    REQUIRE(up);
    REQUIRE(daemon_->running());
  }
  // SIGTERM and the exit code.
  int stop() {
    daemon_->signal(SIGTERM);
    auto rc = daemon_->wait_exit(30s);
    INFO(daemon_log());
    REQUIRE(rc);
    if (*rc != 0) WARN("ioc-edge exited with " << *rc << "; its log:\n" << daemon_log());
    return *rc;
  }
  // Runs the daemon once more without sources, with the link up, until the outbox is empty, and
  // stops it: afterwards every committed seq has either reached the IOC or been named in a gap.
  void drain_without_sources(std::chrono::seconds timeout = 60s) {
    opts_.sources = "";
    rewrite_config();
    if (proxy_) proxy_->restore();
    start();
    const bool drained = wait_until([&] { return backlog() == 0; }, timeout);
    INFO("backlog still " << backlog());
    REQUIRE(drained);
    REQUIRE(stop() == 0);
  }
  void kill9() {
    daemon_->signal(SIGKILL);
    REQUIRE(daemon_->wait_exit(10s));
  }
  std::string daemon_log() const { return read_log(tmp_.file("daemon.log")); }

  nlohmann::json status() const {
    auto r = http_get(status_port_, "/status", 2000ms);
    if (r.status != 200) return nlohmann::json();
    return nlohmann::json::parse(r.body);
  }
  std::int64_t backlog() const {
    auto s = status();
    return s.is_null() ? -1 : s["backlog"]["readings"].get<std::int64_t>();
  }
  std::string uplink_state() const {
    auto s = status();
    return s.is_null() ? "" : s["uplink"]["state"].get<std::string>();
  }
  std::int64_t stat(const char* section, const char* key) const {
    auto s = status();
    return s.is_null() ? -1 : s[section][key].get<std::int64_t>();
  }

  // The highest seq ever committed (the daemon must be stopped: opens the file read-only).
  std::int64_t last_seq_on_disk() const { return query_int(opts_.data_dir + "/outbox.db", "SELECT value FROM meta WHERE key='seq'"); }
  std::string integrity_check() const { return query_text(opts_.data_dir + "/outbox.db", "PRAGMA integrity_check"); }

  // Seqs of every reading and event the IOC received.
  std::set<std::int64_t> received_seqs() const {
    auto seqs = collector_->data_seqs();
    for (const auto& batch : collector_->json_on("/event/"))
      for (const auto& r : batch["readings"]) seqs.insert(r["seq"].get<std::int64_t>());
    return seqs;
  }
  // Seqs named by the gap events the IOC received.
  std::set<std::int64_t> gap_seqs() const {
    std::set<std::int64_t> out;
    for (const auto& batch : collector_->json_on("/event/"))
      for (const auto& r : batch["readings"])
        if (r["point"] == "gap")
          for (const auto& range : r["value"]["ranges"])
            for (auto s = range[0].get<std::int64_t>(); s <= range[1].get<std::int64_t>(); ++s) out.insert(s);
    return out;
  }
  // Every seq in 1..last that is neither received nor named in a gap.
  std::vector<std::int64_t> missing(std::int64_t last) const {
    const auto got = received_seqs();
    const auto gaps = gap_seqs();
    std::vector<std::int64_t> out;
    for (std::int64_t s = 1; s <= last; ++s)
      if (!got.count(s) && !gaps.count(s)) out.push_back(s);
    return out;
  }

  // Writes every batch on data/ and event/ topics as JSON Lines and validates them with the
  // committed JSON Schema (python3-jsonschema). Returns the validator's exit code.
  int validate_against_schema() {
    std::string lines;
    std::size_t n = 0;
    for (const auto& m : collector().messages())
      if (m.topic.find("/data/") != std::string::npos || m.topic.find("/event/") != std::string::npos) {
        lines += m.payload + "\n";
        ++n;
      }
    REQUIRE(n > 0);
    write_file(tmp_.file("batches.jsonl"), lines);
    const auto log = tmp_.file("validate.log");
    const int rc = run_to_exit({"/usr/bin/python3", repo_root() + "/tests/schema/validate.py",
                                repo_root() + "/docs/schema/batch.schema.json", tmp_.file("batches.jsonl")},
                               log, 60s);
    INFO(read_log(log));
    return rc;
  }

  TempDir& tmp() { return tmp_; }
  Certs& certs() { return certs_; }
  Mosquitto& broker() { return *broker_; }
  TcpProxy& proxy() { return *proxy_; }
  Collector& collector() { return *collector_; }
  Process& daemon() { return *daemon_; }
  int status_port() const { return status_port_; }
  RigOptions& options() { return opts_; }
  void rewrite_config() { write_file(config_path(), config_text()); }

  static std::string read_log(const std::string& path) {
    try {
      return read_file(path);
    } catch (...) {
      return {};
    }
  }
  static std::int64_t query_int(const std::string& db_path, const char* sql) {
    const auto t = query_text(db_path, sql);
    return t.empty() ? 0 : std::stoll(t);
  }
  static std::string query_text(const std::string& db_path, const char* sql) {
    sqlite3* db = nullptr;
    std::string out;
    if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
      sqlite3_stmt* st = nullptr;
      if (sqlite3_prepare_v2(db, sql, -1, &st, nullptr) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW &&
          sqlite3_column_text(st, 0))
        out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
      sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return out;
  }

 private:
  RigOptions opts_;
  TempDir tmp_;
  Certs certs_;
  std::unique_ptr<Mosquitto> broker_;
  std::unique_ptr<TcpProxy> proxy_;
  std::unique_ptr<Collector> collector_;
  std::unique_ptr<Process> daemon_;
  int status_port_ = 0;
  int plain_port_ = 0;
};

// A command run to its end: its exit code and everything it printed (stdout and stderr).
struct CliRun {
  int code;
  std::string output;
};

// `ioc-edge ARGS...`, its output in a fresh log file under `dir`.
inline CliRun run_cli(std::vector<std::string> args, const TempDir& dir, std::chrono::milliseconds timeout = 60s) {
  static std::atomic<int> n{0};
  args.insert(args.begin(), ioc_edge_binary());
  const auto log = dir.file("cli-" + std::to_string(::getpid()) + "-" + std::to_string(++n) + ".log");
  const int code = run_to_exit(args, log, timeout);
  return {code, DaemonRig::read_log(log)};
}

}  // namespace ioc_edge::test
