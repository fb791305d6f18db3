#pragma once
// The IOC side in miniature for ioc-receiver's tests: a real Mosquitto with mutual TLS, a real
// PostgreSQL 15 cluster (initdb/pg_ctl in a temporary directory), ioc-receiver processes and
// ioc-edge gateways (each behind its own TcpProxy, so its link can be cut).
#include <csignal>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/postgres.h"
#include "support/publisher.h"
#include "support/support.h"

namespace ioc_edge::test {

using namespace std::chrono_literals;

struct ReceiverProcess {
  std::string name, config;
  int status_port = 0;
  std::unique_ptr<Process> process;

  nlohmann::json status() const {
    const auto r = http_get(status_port, "/status", 2000ms);
    return r.status == 200 ? nlohmann::json::parse(r.body) : nlohmann::json();
  }
  std::string metrics() const { return http_get(status_port, "/metrics", 2000ms).body; }
};

struct GatewayProcess {
  std::string site, data_dir, config;
  int status_port = 0;
  std::unique_ptr<TcpProxy> proxy;
  std::unique_ptr<Process> process;

  nlohmann::json status() const {
    const auto r = http_get(status_port, "/status", 2000ms);
    return r.status == 200 ? nlohmann::json::parse(r.body) : nlohmann::json();
  }
  std::int64_t backlog() const {
    const auto s = status();
    return s.is_null() ? -1 : s["backlog"]["readings"].get<std::int64_t>();
  }
};

class ReceiverRig {
 public:
  // `broker_extra`: lines for mosquitto.conf (an acl_file).
  explicit ReceiverRig(const std::string& broker_extra = "") {
    certs_ = make_certs(tmp_.file("certs"));
    MosquittoOptions o;
    o.extra_config = broker_extra + "max_inflight_messages 1000\nmax_queued_messages 100000\n";
    broker_ = std::make_unique<Mosquitto>(certs_, tmp_.file(""), o);
  }

  const Certs& certs() const { return certs_; }
  Mosquitto& broker() { return *broker_; }
  Postgres& pg() { return pg_; }
  const TempDir& tmp() const { return tmp_; }

  // A receiver's configuration file; `extra` is appended (TOML sections).
  std::string receiver_config(const std::string& name, int status_port, const std::string& extra_broker = "",
                              const std::string& extra = "") const {
    std::ostringstream c;
    c << "[receiver]\nlog_level = \"info\"\n\n[broker]\nurl = \"mqtts://127.0.0.1:" << broker_->port() << "\"\n"
      << "ca_file = \"" << certs_.ca << "\"\ncert_file = \"" << certs_.client_cert << "\"\nkey_file = \""
      << certs_.client_key << "\"\nclient_id = \"" << name << "\"\n" << extra_broker << "\n"
      << "[database]\nurl = \"" << pg_.conninfo() << "\"\nbatch_wait = \"50ms\"\n\n"
      << "[status]\nlisten = \"127.0.0.1:" << status_port << "\"\n\n" << extra;
    const auto path = tmp_.file(name + ".toml");
    write_file(path, c.str());
    return path;
  }

  void migrate(const std::string& config) {
    const auto log = tmp_.file("migrate.log");
    const int rc = run_to_exit({ioc_receiver_binary(), "migrate", "-c", config}, log);
    INFO(read_file(log));
    REQUIRE(rc == 0);
  }

  // Starts a receiver (migrating first) and waits until it is connected to the broker and the
  // database.
  ReceiverProcess& start_receiver(const std::string& name, const std::string& extra_broker = "",
                                  const std::string& extra = "") {
    auto& r = receivers_[name];
    if (r.config.empty()) {
      r.name = name;
      r.status_port = free_tcp_port();
      r.config = receiver_config(name, r.status_port, extra_broker, extra);
      migrate(r.config);
    }
    r.process = std::make_unique<Process>(std::vector<std::string>{ioc_receiver_binary(), "run", "-c", r.config},
                                          tmp_.file(name + ".log"));
    const bool up = wait_until(
        [&] { return http_get(r.status_port, "/healthz", 500ms).status == 200 || !r.process->running(); }, 20s);
    INFO(r.process->log());
    REQUIRE(up);
    REQUIRE(r.process->running());
    return r;
  }
  ReceiverProcess& receiver(const std::string& name) { return receivers_.at(name); }

  // A gateway publishing as `site` (province "bac-kan") with `sources` ([[source]] tables).
  GatewayProcess& start_gateway(const std::string& site, const std::string& sources) {
    auto& g = gateways_[site];
    if (g.config.empty()) {
      g.site = site;
      g.data_dir = tmp_.file("gw-" + site);
      g.status_port = free_tcp_port();
      g.proxy = std::make_unique<TcpProxy>(broker_->port());
      g.config = tmp_.file("gw-" + site + ".toml");
    }
    write_gateway_config(g, sources);
    g.process = std::make_unique<Process>(std::vector<std::string>{ioc_edge_binary(), "run", "-c", g.config},
                                          tmp_.file("gw-" + site + ".log"));
    const bool up =
        wait_until([&] { return http_get(g.status_port, "/healthz", 500ms).status != 0 || !g.process->running(); }, 15s);
    INFO(g.process->log());
    REQUIRE(up);
    return g;
  }

  // Stops the gateway, runs it once more without sources (link up) until its outbox is empty,
  // stops it and returns the highest seq it ever committed.
  std::int64_t drain_gateway(const std::string& site) {
    auto& g = gateways_.at(site);
    g.process->signal(SIGTERM);
    REQUIRE(g.process->wait_exit(30s) == std::optional<int>(0));
    g.proxy->restore();
    start_gateway(site, "");
    const bool drained = wait_until([&] { return g.backlog() == 0; }, 60s);
    INFO("backlog still " << g.backlog() << "\n" << g.process->log());
    REQUIRE(drained);
    const auto last = g.status()["backlog"]["last_seq"].get<std::int64_t>();
    g.process->signal(SIGTERM);
    REQUIRE(g.process->wait_exit(30s) == std::optional<int>(0));
    return last;
  }

  // One number from SQL.
  std::int64_t sql_int(const std::string& sql) const {
    const auto out = pg_.psql(sql);
    return out.empty() ? 0 : std::stoll(out);
  }

  // Runs `ioc-receiver ARGS... -c CONFIG` and returns its output; REQUIREs exit 0.
  std::string command(const std::vector<std::string>& args, const std::string& config) {
    std::vector<std::string> argv{ioc_receiver_binary()};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back("-c");
    argv.push_back(config);
    const auto log = tmp_.file("command-" + std::to_string(++commands_) + ".out");
    const int rc = run_to_exit(argv, log);
    const auto out = read_file(log);
    INFO(out);
    REQUIRE(rc == 0);
    return out;
  }

  Publisher publisher() const { return Publisher(broker_->port(), certs_.ca, certs_.client_cert, certs_.client_key); }

 private:
  void write_gateway_config(const GatewayProcess& g, const std::string& sources) const {
    std::ostringstream c;
    c << "[gateway]\nsite = \"" << g.site << "\"\nprovince = \"bac-kan\"\ndata_dir = \"" << g.data_dir << "\"\n"
      << "unit_code = \"01843\"\nname = \"UBND " << g.site << "\"\n\n"
      << "[uplink]\nurl = \"mqtts://127.0.0.1:" << g.proxy->port() << "\"\nca_file = \"" << certs_.ca
      << "\"\ncert_file = \"" << certs_.client_cert << "\"\nkey_file = \"" << certs_.client_key << "\"\n"
      << "reconnect_min = \"50ms\"\nreconnect_max = \"500ms\"\nheartbeat = \"1s\"\nconnect_timeout = \"2s\"\n"
      << "keepalive = \"5s\"\n\n[status]\nlisten = \"127.0.0.1:" << g.status_port << "\"\n\n" << sources;
    write_file(g.config, c.str());
  }

  TempDir tmp_;
  Certs certs_;
  std::unique_ptr<Mosquitto> broker_;
  Postgres pg_;
  std::map<std::string, ReceiverProcess> receivers_;
  std::map<std::string, GatewayProcess> gateways_;
  int commands_ = 0;
};

// A batch as an office sends it (docs/schema/README.md).
inline nlohmann::json make_batch(const std::string& site, const std::string& store, std::int64_t first_seq, int n,
                                 const std::string& source = "tram-bom-1", const std::string& ts = "2026-11-30T09:00:00.000Z") {
  nlohmann::json b = {{"schema", "ioc-edge/batch/1"}, {"site", site}, {"store", store},
                      {"sent_at", "2026-11-30T09:00:01.000Z"}, {"readings", nlohmann::json::array()}};
  for (int i = 0; i < n; ++i)
    b["readings"].push_back({{"seq", first_seq + i}, {"ts", ts}, {"source", source}, {"point", "flow_rate"},
                             {"value", 12.5 + i}, {"unit", "m3/h"}, {"quality", "good"}});
  return b;
}

}  // namespace ioc_edge::test
