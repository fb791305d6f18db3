// MQTT intake: how fast the `mqtt` source takes small JSON messages from the office broker into the
// outbox (sync = "full", every message acknowledged only after its commit), next to a ceiling
// measured in the same run: a bare Paho subscriber on the same broker that only counts.
//
// Both drain the same load the same way: N QoS 1 messages of ~90 bytes ({"temperature":..,
// "humidity":..,"battery":..,"linkquality":..}, Zigbee2MQTT's shape) are published while the
// subscriber is away, so the broker holds them in its persistent session; the subscriber then
// connects and the clock runs from the first message taken to the last one stored (or counted).
// The publisher is thus not part of the measurement, and neither side waits for it.
//
// Then the busy office: a device publishing 1,000 messages/s for SECONDS, the uplink up (a local
// Mosquitto with mutual TLS, every reading forwarded and deleted); the daemon's CPU (utime + stime)
// and resident memory over the window.
//
//   build/bench/mqtt_intake_bench [MESSAGES] [SECONDS]        default 25000 (x4 rounds) 30
#include <csignal>
#include <cstdio>
#include <deque>
#include <sstream>
#include <thread>

#include <mqtt/async_client.h>

#include "support/support.h"

using namespace ioc_edge::test;
using namespace std::chrono;

namespace {

// Mosquitto 2.0.11 disconnected the publisher ("out of memory") once about 34,000 messages waited
// for one offline client here: the load is queued and drained in rounds.
constexpr int kRounds = 4;
constexpr int kReadingsPerMessage = 4;  // payload() below: temperature, humidity, battery, linkquality

std::string payload(int i) {
  return "{\"temperature\":" + std::to_string(20 + (i % 100) / 10.0) + ",\"humidity\":" + std::to_string(40 + i % 50) +
         ",\"battery\":100,\"linkquality\":" + std::to_string(i % 255) + "}";
}

// Publishes n QoS 1 messages over `connections` parallel clients, as fast as the broker takes them
// (or at `rate` per second), over topics sensors/dev0..dev99.
void publish(int port, int n, double rate = 0) {
  mqtt::async_client c("tcp://127.0.0.1:" + std::to_string(port), "bench-publisher", mqtt::create_options(MQTTVERSION_5, 1000),
                       nullptr);
  c.connect(mqtt::connect_options_builder().mqtt_version(MQTTVERSION_5).clean_start(true).max_inflight(500).finalize())
      ->wait();
  std::deque<mqtt::delivery_token_ptr> window;
  const auto start = steady_clock::now();
  for (int i = 0; i < n; ++i) {
    while (window.size() >= 400) {
      window.front()->wait();
      window.pop_front();
    }
    const auto p = payload(i);
    window.push_back(c.publish("sensors/dev" + std::to_string(i % 100), p.data(), p.size(), 1, false));
    if (rate > 0 && i % 50 == 49) std::this_thread::sleep_until(start + duration_cast<nanoseconds>(duration<double>((i + 1) / rate)));
  }
  for (auto& t : window) t->wait();
  c.disconnect()->wait();
}

// The ceiling: a bare Paho subscriber (MQTT 5, persistent session, QoS 1) whose callback counts.
double bare_paho(int port, int n) {
  const std::string id = "bench-bare-paho";
  mqtt::async_client sub("tcp://127.0.0.1:" + std::to_string(port), id, mqtt::create_options(MQTTVERSION_5), nullptr);
  std::atomic<int> got{0};
  std::atomic<std::int64_t> first_ns{0}, last_ns{0};
  sub.set_message_callback([&](mqtt::const_message_ptr) {
    const auto now = steady_clock::now().time_since_epoch().count();
    if (got.fetch_add(1) == 0) first_ns = now;
    last_ns = now;
  });
  mqtt::properties props{{mqtt::property::SESSION_EXPIRY_INTERVAL, 3600}};
  auto opts = mqtt::connect_options_builder().mqtt_version(MQTTVERSION_5).clean_start(false).properties(props).finalize();
  sub.connect(opts)->wait();
  sub.subscribe("sensors/#", 1)->wait();
  double busy_s = 0;
  for (int round = 0; round < kRounds; ++round) {
    sub.disconnect()->wait();  // the session keeps the subscription; the broker queues for us
    publish(port, n);
    got = 0;
    sub.connect(opts)->wait();
    wait_until([&] { return got.load() >= n; }, 300s, 5ms);
    if (got.load() < n) {
      std::fprintf(stderr, "bare Paho subscriber got %d of %d\n", got.load(), n);
      return 0;
    }
    busy_s += static_cast<double>(last_ns - first_ns) / 1e9;
  }
  sub.disconnect()->wait();
  return kRounds * n / busy_s;
}

std::string config(const TempDir& dir, int office_port, int status_port, const Certs* certs, int ioc_port) {
  std::ostringstream c;
  c << "[gateway]\nsite = \"bench\"\nprovince = \"p\"\ndata_dir = \"" << dir.file("data") << "\"\nlog_level = \"warn\"\n"
    << "[buffer]\nmax_size = \"8GiB\"\nsync = \"full\"\n[uplink]\n";
  if (certs)
    c << "url = \"mqtts://127.0.0.1:" << ioc_port << "\"\nca_file = \"" << certs->ca << "\"\ncert_file = \"" << certs->client_cert
      << "\"\nkey_file = \"" << certs->client_key << "\"\n";
  else
    c << "url = \"mqtt://127.0.0.1:9\"\nreconnect_max = \"60s\"\n";
  c << "[status]\nlisten = \"127.0.0.1:" << status_port << "\"\n"
    << "[[source]]\nname = \"zigbee\"\ntype = \"mqtt\"\nurl = \"mqtt://127.0.0.1:" << office_port
    << "\"\nclient_id = \"bench-edge\"\ntopics = [\"sensors/#\"]\nsource_name = \"{1}\"\n";
  return c.str();
}

nlohmann::json source_status(int status_port) {
  auto r = http_get(status_port, "/status", 2000ms);
  if (r.status != 200) return nlohmann::json();
  return nlohmann::json::parse(r.body)["sources"][0];
}

nlohmann::json uplink_status(int status_port) {
  auto r = http_get(status_port, "/status", 2000ms);
  return r.status == 200 ? nlohmann::json::parse(r.body)["uplink"] : nlohmann::json::object();
}

// The daemon drains n queued messages into the outbox; messages/s from the first taken to the last stored.
double daemon_intake(int office_port, int n, double& peak_rss_mib, double& cpu_pct) {
  TempDir dir;
  const int status_port = free_tcp_port();
  write_file(dir.file("ioc-edge.toml"), config(dir, office_port, status_port, nullptr, 0));
  auto start_daemon = [&] {
    auto p = std::make_unique<Process>(std::vector<std::string>{ioc_edge_binary(), "run", "-c", dir.file("ioc-edge.toml")},
                                       dir.file("daemon.log"));
    if (!wait_until([&] { return source_status(status_port)["state"] == "up"; }, 20s))
      throw std::runtime_error("daemon did not connect:\n" + p->log());
    return p;
  };
  start_daemon()->stop();  // makes the session and its subscription
  double busy_s = 0, cpu_s = 0;
  long peak = 0;
  for (int round = 0; round < kRounds; ++round) {
    publish(office_port, n);
    auto daemon = start_daemon();
    const auto u0 = process_usage(daemon->pid());
    steady_clock::time_point t_first{}, t_last{};
    wait_until([&] {
      const auto s = source_status(status_port);
      const auto now = steady_clock::now();
      peak = std::max(peak, process_usage(daemon->pid()).rss_kib);
      if (s.is_null()) return false;
      if (t_first == steady_clock::time_point{} && s["messages"].get<std::int64_t>() > 0) t_first = now;
      if (s["stored"].get<std::int64_t>() >= kReadingsPerMessage * n) {
        t_last = now;
        return true;
      }
      return false;
    }, 300s, 2ms);
    const auto u1 = process_usage(daemon->pid());
    const auto s = source_status(status_port);
    daemon->stop();
    if (t_last == steady_clock::time_point{}) {
      std::fprintf(stderr, "daemon stored %lld of %d readings; status %s; its log:\n%s\n", s.is_null() ? -1ll : s["stored"].get<long long>(), kReadingsPerMessage * n,
                   s.dump().c_str(), read_file(dir.file("daemon.log")).c_str());
      return 0;
    }
    busy_s += duration<double>(t_last - t_first).count();
    cpu_s += u1.cpu_s - u0.cpu_s;
  }
  const double wall = busy_s;
  peak_rss_mib = peak / 1024.0;
  cpu_pct = 100.0 * cpu_s / wall;
  return kRounds * n / wall;
}

int busy_office(int seconds) {
  TempDir dir;
  const auto certs = make_certs(dir.file("certs"));
  Mosquitto ioc(certs, dir.file("ioc"));
  MosquittoOptions oo;
  oo.require_client_cert = false;
  const int office_port = free_tcp_port();
  oo.extra_config = "listener " + std::to_string(office_port) + " 127.0.0.1\n";
  Mosquitto office(certs, dir.file("office"), oo);
  const int status_port = free_tcp_port();
  write_file(dir.file("ioc-edge.toml"), config(dir, office_port, status_port, &certs, ioc.port()));
  Process daemon({ioc_edge_binary(), "run", "-c", dir.file("ioc-edge.toml")}, dir.file("daemon.log"));
  if (!wait_until([&] { return source_status(status_port)["state"] == "up"; }, 20s)) {
    std::fprintf(stderr, "daemon did not connect:\n%s\n", daemon.log().c_str());
    return 1;
  }
  const int total = 1000 * (seconds + 5);
  std::thread device([&] { publish(office_port, total, 1000.0); });
  wait_until([] { return false; }, 5s);  // warm up: connections, SQLite cache, first commits
  const auto s0 = source_status(status_port);
  const auto up0 = uplink_status(status_port);
  const auto w = watch_usage(daemon.pid(), seconds * 1000ms);
  const auto s1 = source_status(status_port);
  const auto up1 = uplink_status(status_port);
  const auto rate = [&](const nlohmann::json& a, const nlohmann::json& b, const char* key) {
    return static_cast<double>(b.value(key, std::int64_t{0}) - a.value(key, std::int64_t{0})) / w.wall_s;
  };
  device.join();
  daemon.signal(SIGTERM);
  daemon.wait_exit(30s);
  std::printf("busy office: 1,000 messages/s for %.1f s, uplink up (mutual TLS, every reading forwarded and deleted):\n",
              w.wall_s);
  std::printf("  daemon CPU %.2f%% of one core, resident memory %.1f MiB (peak %.1f MiB); %.0f messages/s taken, "
              "%.0f readings/s stored; %.0f readings/s in %.0f messages/s sent to the IOC\n",
              w.cpu_percent, w.rss_kib / 1024.0, w.peak_rss_kib / 1024.0, rate(s0, s1, "messages"), rate(s0, s1, "stored"),
              rate(up0, up1, "readings_sent"), rate(up0, up1, "messages_sent"));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::stoi(argv[1]) : 25000;
  const int seconds = argc > 2 ? std::stoi(argv[2]) : 30;
  TempDir dir;
  const auto certs = make_certs(dir.file("certs"));
  MosquittoOptions oo;
  oo.require_client_cert = false;
  const int office_port = free_tcp_port();
  oo.extra_config = "listener " + std::to_string(office_port) + " 127.0.0.1\nmax_queued_messages 10000000\n";
  Mosquitto office(certs, dir.file("office"), oo);
  int rc = 0;
  if (n > 0) {  // 0: only the busy office
    const double ceiling = bare_paho(office_port, n);
    double rss = 0, cpu = 0;
    const double ours = daemon_intake(office_port, n, rss, cpu);
    std::printf("intake of %d x %d queued QoS 1 JSON messages (~90 B, %d readings each) from a local Mosquitto:\n", kRounds,
                n, kReadingsPerMessage);
    std::printf("  bare Paho subscriber (counts only):         %9.0f messages/s\n", ceiling);
    std::printf("  ioc-edge mqtt source into the outbox, sync=full, ack after commit: %9.0f messages/s (%.2f of the "
                "ceiling), CPU %.0f%% of one core, peak resident %.1f MiB\n",
                ours, ceiling > 0 ? ours / ceiling : 0.0, cpu, rss);
    rc = ours > 0 && ceiling > 0 ? 0 : 1;
  }
  if (seconds > 0) rc |= busy_office(seconds);
  return rc;
}
