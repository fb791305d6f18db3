// Drain benchmark: the real daemon, a backlog of N readings already in its outbox, a local
// Mosquitto with mutual TLS. Measures, in one run:
//   - start-up: exec to READY=1 on NOTIFY_SOCKET, with the backlog present;
//   - drain rate: readings per second from the link coming up until the backlog is empty;
//   - peak resident memory (VmRSS, sampled every 20 ms) while draining;
//   - the ceiling: a bare Paho client publishing messages of the same size, QoS 1, same window,
//     to the same broker (what MQTT and TLS alone allow).
// The backlog is stored as the pipeline stores polls: records of K readings (default 100, a
// 100-point device; K = 1 is the one-row-per-reading layout of schema 1).
//   build/bench/drain_bench [--per-record=K] [N ...]          default: 100000 1000000
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <future>

#include <mqtt/async_client.h>

#include "core/outbox.h"
#include "support/support.h"

using namespace ioc_edge;
using namespace ioc_edge::test;
using namespace std::chrono;

namespace {

long rss_kib(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return 0;
}

void fill(const std::string& path, std::size_t n, std::size_t per_record) {
  SystemClock clock;
  OutboxOptions o{path};
  o.sync_full = false;
  o.max_size = 16ull << 30;
  std::string err;
  auto ob = Outbox::open(o, clock, err);
  if (!ob) throw std::runtime_error(err);
  const std::size_t chunk = 20000;
  for (std::size_t done = 0; done < n; done += chunk) {
    std::vector<NewRecord> recs;
    for (std::size_t i = 0; i < std::min(chunk, n - done); ++i) {
      Reading r;
      r.point = "p" + std::to_string((done + i) % 8);
      r.ts_ms = 1795903799500 + static_cast<std::int64_t>(done + i);
      r.value = 12.5 + static_cast<double>((done + i) % 100) / 10.0;
      r.unit = "m3/h";
      if (i % per_record == 0)
        recs.push_back({Priority::Normal, Kind::Data, "tram-bom-1", {}, 0});
      else
        recs.back().body += '\n';
      append_reading_json(recs.back().body, "tram-bom-1", r);
      ++recs.back().count;
    }
    std::promise<void> p;
    ob->append(std::move(recs), [&](const AppendResult&) { p.set_value(); });
    p.get_future().wait();
  }
  ob->stop();
}

struct DrainResult {
  double ready_ms = 0, drain_s = 0, rate = 0;
  long peak_rss_kib = 0, idle_rss_kib = 0;
  double avg_msg_bytes = 0, readings_per_msg = 0;
};

DrainResult drain(const Certs& certs, Mosquitto& broker, std::size_t n, std::size_t per_record) {
  TempDir dir;
  fill(dir.file("data/outbox.db"), n, per_record);
  const int status_port = free_tcp_port();
  write_file(dir.file("ioc-edge.toml"),
             "[gateway]\nsite = \"bench\"\nprovince = \"bac-kan\"\ndata_dir = \"" + dir.file("data") + "\"\n"
             "[buffer]\nmax_size = \"16GiB\"\n"
             "[uplink]\nurl = \"mqtts://127.0.0.1:" + std::to_string(broker.port()) + "\"\nca_file = \"" + certs.ca +
             "\"\ncert_file = \"" + certs.client_cert + "\"\nkey_file = \"" + certs.client_key +
             "\"\nbacklog_rate = \"unlimited\"\n"
             "[status]\nlisten = \"127.0.0.1:" + std::to_string(status_port) + "\"\n");

  const auto sock_path = dir.file("notify.sock");
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", sock_path.c_str());
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) throw std::runtime_error("bind notify socket");
  timeval tv{0, 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

  DrainResult r;
  const auto t0 = steady_clock::now();
  Process daemon({ioc_edge_binary(), "run", "-c", dir.file("ioc-edge.toml")}, dir.file("daemon.log"),
                 {{"NOTIFY_SOCKET", sock_path}});
  std::string got;
  const bool ready = wait_until([&] {
    char buf[512];
    for (ssize_t k; (k = ::recv(fd, buf, sizeof buf, 0)) > 0;) got.append(buf, static_cast<std::size_t>(k));
    return got.find("READY=1") != std::string::npos;
  }, 20s, 1ms);
  ::close(fd);
  if (!ready) throw std::runtime_error("no READY=1: " + daemon.log());
  r.ready_ms = duration<double, std::milli>(steady_clock::now() - t0).count();
  r.idle_rss_kib = rss_kib(daemon.pid());

  auto status = [&] {
    auto res = http_get(status_port, "/status", 2000ms);
    return res.status == 200 ? nlohmann::json::parse(res.body) : nlohmann::json();
  };
  // The clock starts when the uplink is up.
  if (!wait_until([&] { auto s = status(); return !s.is_null() && s["uplink"]["state"] == "up"; }, 20s, 5ms))
    throw std::runtime_error("uplink never came up: " + daemon.log());
  const auto t_up = steady_clock::now();
  std::int64_t backlog = -1;
  const bool drained = wait_until([&] {
    r.peak_rss_kib = std::max(r.peak_rss_kib, rss_kib(daemon.pid()));
    auto s = status();
    if (!s.is_null()) backlog = s["backlog"]["readings"].get<std::int64_t>();
    return backlog == 0;
  }, 600s, 20ms);
  if (!drained) throw std::runtime_error("backlog not drained: " + std::to_string(backlog));
  r.drain_s = duration<double>(steady_clock::now() - t_up).count();
  r.rate = static_cast<double>(n) / r.drain_s;
  const auto s = status();
  const double msgs = s["uplink"]["messages_sent"].get<double>();
  r.avg_msg_bytes = s["uplink"]["bytes_sent"].get<double>() / msgs;
  r.readings_per_msg = s["uplink"]["readings_sent"].get<double>() / msgs;
  daemon.signal(SIGTERM);
  daemon.wait_exit(30s);
  return r;
}

// Messages/s a bare Paho client achieves: QoS 1, window 100, messages of `bytes`, mutual TLS.
double ceiling_msgs_per_s(const Certs& certs, int port, std::size_t bytes, int count) {
  mqtt::async_client c("ssl://127.0.0.1:" + std::to_string(port), "ceiling", mqtt::create_options(MQTTVERSION_3_1_1, 200),
                       nullptr);
  mqtt::ssl_options ssl;
  ssl.set_trust_store(certs.ca);
  ssl.set_key_store(certs.client_cert);
  ssl.set_private_key(certs.client_key);
  ssl.set_verify(true);
  mqtt::connect_options co;
  co.set_ssl(ssl);
  co.set_clean_session(true);
  co.set_max_inflight(100);
  c.connect(co)->wait();
  const std::string payload(bytes, 'x');
  std::deque<mqtt::delivery_token_ptr> window;
  const auto t0 = steady_clock::now();
  for (int i = 0; i < count; ++i) {
    if (window.size() >= 100) {
      window.front()->wait();
      window.pop_front();
    }
    window.push_back(c.publish("ioc/bench/ceiling", payload.data(), payload.size(), 1, false));
  }
  for (auto& t : window) t->wait();
  const double s = duration<double>(steady_clock::now() - t0).count();
  c.disconnect()->wait();
  return count / s;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::size_t> sizes;
  std::size_t per_record = 100;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--per-record=", 0) == 0)
      per_record = std::max<std::size_t>(1, std::stoull(a.substr(13)));
    else
      sizes.push_back(static_cast<std::size_t>(std::stoull(a)));
  }
  if (sizes.empty()) sizes = {100000, 1000000};
  TempDir dir;
  const auto certs = make_certs(dir.file("certs"));
  Mosquitto broker(certs, dir.path());
  double msg_bytes = 0, per_msg = 0;
  for (auto n : sizes) {
    const auto r = drain(certs, broker, n, per_record);
    std::printf("backlog %8zu: READY after %6.1f ms | drained in %6.2f s = %8.0f readings/s | RSS idle %5.1f MiB, peak %5.1f MiB | %.0f readings, %.0f bytes per message\n",
                n, r.ready_ms, r.drain_s, r.rate, r.idle_rss_kib / 1024.0, r.peak_rss_kib / 1024.0, r.readings_per_msg,
                r.avg_msg_bytes);
    msg_bytes = r.avg_msg_bytes;
    per_msg = r.readings_per_msg;
  }
  const double mps = ceiling_msgs_per_s(certs, broker.port(), static_cast<std::size_t>(msg_bytes), 3000);
  std::printf("ceiling: bare Paho client, QoS 1, window 100, %.0f-byte messages: %.0f messages/s = %.0f readings/s at %.0f readings per message\n",
              msg_bytes, mps, mps * per_msg, per_msg);
  return 0;
}
