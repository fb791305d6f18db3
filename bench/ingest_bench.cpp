// HTTP ingest: how many readings/s the `http-ingest` source of the real daemon takes in batches of
// 100 over kept-alive connections (each answer only after its commit, sync = "full"), next to a
// ceiling measured in the same run: the same HTTP layer (daemon/http/http_server) in this process
// answering 202 at once, without parsing or storing.
//
// The daemon runs with its uplink pointed at a closed port (the link down: everything stays in the
// buffer, the office-offline case and the heaviest for the disk). Clients are threads of this
// process, each with one kept-alive connection sending requests back to back; the daemon's CPU and
// resident memory are read from /proc over each window.
//
//   build/bench/ingest_bench [SECONDS] [CONNECTIONS...]       default 10, then 1 and 4 connections
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include "http/http_server.h"
#include "support/support.h"

using namespace ioc_edge;
using namespace ioc_edge::test;
using namespace std::chrono;

namespace {

constexpr int kBatch = 100;
constexpr const char* kToken = "bench-token-0123456789abcdef0123";

std::string batch_body(int from) {
  std::string b = "{\"readings\":[";
  for (int i = 0; i < kBatch; ++i) {
    if (i) b += ',';
    b += "{\"source\":\"mot-cua-hoso\",\"point\":\"ho_so_" + std::to_string(i % 20) + "\",\"value\":" +
         std::to_string(from + i) + ",\"unit\":\"hồ sơ\"}";
  }
  return b + "]}";
}

struct Result {
  double readings_per_s = 0;
  double requests_per_s = 0;
  double p50_ms = 0, p99_ms = 0;
  std::uint64_t failed = 0;
};

// `connections` threads post batches back to back for `seconds` against 127.0.0.1:port.
Result load(int port, int connections, int seconds) {
  std::atomic<std::uint64_t> requests{0}, failed{0};
  std::vector<std::vector<double>> latencies(static_cast<std::size_t>(connections));
  const auto end = steady_clock::now() + std::chrono::seconds(seconds);
  const std::map<std::string, std::string> headers = {{"Authorization", std::string("Bearer ") + kToken},
                                                      {"Content-Type", "application/json"}};
  std::vector<std::thread> threads;
  const auto t0 = steady_clock::now();
  for (int c = 0; c < connections; ++c)
    threads.emplace_back([&, c] {
      HttpConnection conn(port);
      int n = 0;
      while (steady_clock::now() < end) {
        const auto body = batch_body(c * 100000000 + n * kBatch);
        const auto s = steady_clock::now();
        const auto r = conn.request("POST", "/v1/readings", body, headers, 10s);
        latencies[static_cast<std::size_t>(c)].push_back(duration<double, std::milli>(steady_clock::now() - s).count());
        if (r.status == 202)
          ++requests;
        else
          ++failed;
        ++n;
      }
    });
  for (auto& t : threads) t.join();
  const double wall = duration<double>(steady_clock::now() - t0).count();
  std::vector<double> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  Result r;
  r.requests_per_s = static_cast<double>(requests) / wall;
  r.readings_per_s = r.requests_per_s * kBatch;
  r.failed = failed;
  if (!all.empty()) {
    r.p50_ms = all[all.size() / 2];
    r.p99_ms = all[std::min(all.size() - 1, all.size() * 99 / 100)];
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  const int seconds = argc > 1 ? std::atoi(argv[1]) : 10;
  std::vector<int> conns;
  for (int i = 2; i < argc; ++i) conns.push_back(std::atoi(argv[i]));
  if (conns.empty()) conns = {1, 4};

  TempDir tmp;
  const auto token = tmp.file("token");
  write_file(token, std::string(kToken) + "\n");
  ::chmod(token.c_str(), 0600);
  const int port = free_tcp_port(), status_port = free_tcp_port(), dead = free_tcp_port();
  write_file(tmp.file("ioc-edge.toml"),
             "[gateway]\nsite = \"bench\"\nprovince = \"bench\"\ndata_dir = \"" + tmp.file("data") +
                 "\"\n[uplink]\nurl = \"mqtt://127.0.0.1:" + std::to_string(dead) +
                 "\"\n[status]\nlisten = \"127.0.0.1:" + std::to_string(status_port) +
                 "\"\n[[source]]\nname = \"mot-cua\"\ntype = \"http-ingest\"\nlisten = \"127.0.0.1:" +
                 std::to_string(port) + "\"\n  [[source.client]]\n  name = \"bench\"\n  token_file = \"" + token +
                 "\"\n  sources = [\"mot-cua-*\"]\n");
  Process daemon({ioc_edge_binary(), "run", "-c", tmp.file("ioc-edge.toml")}, tmp.file("daemon.log"));
  if (!wait_until([&] { return tcp_port_open(port); }, 15s)) {
    std::fprintf(stderr, "the daemon did not listen:\n%s\n", daemon.log().c_str());
    return 1;
  }

  // The ceiling: the same HTTP layer, answering at once.
  boost::asio::io_context io;
  auto guard = boost::asio::make_work_guard(io);
  HttpLimits limits;
  limits.name = "ceiling";
  limits.keep_alive = true;
  limits.body_limit = 4 << 20;
  HttpServer ceiling(io, HttpServer::immediate([](const HttpRequest&) { return HttpReply{202, "application/json", "{}"}; }),
                     limits);
  std::string error;
  ceiling.listen("127.0.0.1", 0, error);
  std::thread io_thread([&] { io.run(); });

  std::printf("HTTP ingest, batches of %d readings, %d s per run, sync=full, uplink down\n", kBatch, seconds);
  std::printf("%-34s %12s %10s %9s %9s %7s %10s %10s\n", "run", "readings/s", "requests/s", "p50 ms", "p99 ms",
              "failed", "daemon CPU", "peak RSS");
  for (const int c : conns) {
    const auto ceil = load(ceiling.port(), c, seconds);
    std::printf("%-34s %12.0f %10.0f %9.2f %9.2f %7llu %10s %10s\n",
                ("ceiling: HTTP layer only, " + std::to_string(c) + " conn").c_str(), ceil.readings_per_s,
                ceil.requests_per_s, ceil.p50_ms, ceil.p99_ms, static_cast<unsigned long long>(ceil.failed), "-", "-");
    UsageWindow usage;
    std::thread watcher([&] { usage = watch_usage(daemon.pid(), std::chrono::seconds(seconds)); });
    const auto r = load(port, c, seconds);
    watcher.join();
    std::printf("%-34s %12.0f %10.0f %9.2f %9.2f %7llu %9.0f%% %7ld MiB\n",
                ("daemon http-ingest, " + std::to_string(c) + " conn").c_str(), r.readings_per_s, r.requests_per_s,
                r.p50_ms, r.p99_ms, static_cast<unsigned long long>(r.failed), usage.cpu_percent,
                usage.peak_rss_kib / 1024);
    std::printf("%-34s %12.2f\n", "  ratio daemon / ceiling", r.readings_per_s / ceil.readings_per_s);
  }
  const auto status = http_get(status_port, "/status", 5s);
  if (status.status == 200) {
    const auto s = nlohmann::json::parse(status.body);
    std::printf("stored in the outbox: %lld readings, %lld commits\n",
                static_cast<long long>(s["backlog"]["readings"].get<std::int64_t>()),
                static_cast<long long>(s["backlog"]["commits"].get<std::int64_t>()));
  }
  guard.reset();
  io.stop();
  io_thread.join();
  ceiling.stop();  // the io thread is gone: this thread may touch it now
  daemon.stop();
  return 0;
}
