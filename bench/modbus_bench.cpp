// Modbus polling cost: the real daemon polling D devices x R holding registers every second over
// Modbus TCP on loopback (10,000 points/s by default), against libmodbus servers in this process.
// Devices are spread over 10 server ports, 10 unit ids each (like TCP-to-RS-485 gateways), so the
// daemon runs 10 bus threads. Two runs, one after the other:
//   - uplink down: every reading is stored in the outbox (an office offline);
//   - uplink up: a local Mosquitto with mutual TLS; every reading is stored, published, acknowledged
//     and deleted (the normal day).
// Measures the daemon's CPU (utime + stime from /proc) and resident memory over a window, and the
// requests per poll cycle the servers saw.
//   build/bench/modbus_bench [SECONDS] [DEVICES] [REGISTERS]      default 30 100 100
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "support/modbus_peers.h"
#include "support/support.h"

using namespace ioc_edge::test;
using namespace std::chrono;

namespace {

int run(int seconds, int devices, int registers, const Certs* certs, int broker_port) {
  constexpr int kServers = 10;

  TempDir dir;
  std::vector<std::unique_ptr<ModbusTcpServer>> servers;
  std::vector<std::uint16_t> values(static_cast<std::size_t>(registers));
  for (int i = 0; i < registers; ++i) values[static_cast<std::size_t>(i)] = static_cast<std::uint16_t>(i * 7);
  for (int s = 0; s < kServers; ++s) {
    servers.push_back(std::make_unique<ModbusTcpServer>());
    servers.back()->set_holding(0, values);
  }
  const int status_port = free_tcp_port();
  std::ostringstream cfg;
  cfg << "[gateway]\nsite = \"bench\"\nprovince = \"p\"\ndata_dir = \"" << dir.file("data") << "\"\nlog_level = \"warn\"\n"
      << "[buffer]\nmax_size = \"8GiB\"\n[uplink]\n";
  if (certs)
    cfg << "url = \"mqtts://127.0.0.1:" << broker_port << "\"\nca_file = \"" << certs->ca << "\"\ncert_file = \""
        << certs->client_cert << "\"\nkey_file = \"" << certs->client_key << "\"\n";
  else
    cfg << "url = \"mqtt://127.0.0.1:9\"\nreconnect_max = \"60s\"\n";
  cfg << "[status]\nlisten = \"127.0.0.1:" << status_port << "\"\n";
  for (int d = 0; d < devices; ++d) {
    cfg << "[[source]]\nname = \"dev" << d << "\"\ntype = \"modbus\"\nurl = \"tcp://127.0.0.1:"
        << servers[static_cast<std::size_t>(d % kServers)]->port() << "\"\nunit_id = " << 1 + d / kServers
        << "\nevery = \"1s\"\ntimeout = \"1s\"\n";
    for (int r = 0; r < registers; ++r)
      cfg << "[[source.point]]\nname = \"r" << r << "\"\nregister = \"holding\"\naddress = " << r << "\ntype = \"uint16\"\n";
  }
  write_file(dir.file("ioc-edge.toml"), cfg.str());

  Process daemon({ioc_edge_binary(), "run", "-c", dir.file("ioc-edge.toml")}, dir.file("daemon.log"));
  if (!wait_until([&] { return http_get(status_port, "/healthz", 500ms).status == 200; }, 20s)) {
    std::fprintf(stderr, "daemon did not start:\n%s\n", daemon.log().c_str());
    return 1;
  }
  // Warm up (connections, first polls, SQLite cache), then measure a window.
  wait_until([] { return false; }, 3s);
  std::uint64_t req0 = 0;
  for (auto& s : servers) req0 += s->requests_by_function()[3];
  const auto w = watch_usage(daemon.pid(), seconds * 1000ms);
  const double wall = w.wall_s;
  std::uint64_t req1 = 0;
  for (auto& s : servers) req1 += s->requests_by_function()[3];
  auto st = http_get(status_port, "/status", 2000ms);
  const auto j = nlohmann::json::parse(st.body);
  std::uint64_t stored = 0, errors = 0, overruns = 0;
  for (const auto& s : j["sources"]) {
    stored += s["stored"].get<std::uint64_t>();
    errors += s["errors"].get<std::uint64_t>();
    overruns += s["overruns"].get<std::uint64_t>();
  }
  const auto uplink = j["uplink"];
  daemon.signal(SIGTERM);
  daemon.wait_exit(30s);

  const double cycles = wall;  // every = 1s
  std::printf("%s: %d devices x %d registers every 1 s (%d points/s) over %.1f s:\n",
              certs ? "uplink up (mutual TLS, every reading forwarded and deleted)" : "uplink down (every reading stored)",
              devices, registers, devices * registers, wall);
  std::printf("  daemon CPU %.2f%% of one core, resident memory %.1f MiB (peak %.1f MiB)\n", w.cpu_percent,
              w.rss_kib / 1024.0, w.peak_rss_kib / 1024.0);
  std::printf("  read-holding-registers requests: %.1f per cycle (batching promises %d: one per device)\n",
              static_cast<double>(req1 - req0) / cycles, devices * ((registers + 124) / 125));
  std::printf("  readings stored since start %llu, read errors %llu, overruns %llu\n",
              static_cast<unsigned long long>(stored), static_cast<unsigned long long>(errors),
              static_cast<unsigned long long>(overruns));
  if (certs)
    std::printf("  forwarded since start: %llu readings in %llu messages; %lld still queued at the end\n",
                uplink["readings_sent"].get<unsigned long long>(), uplink["messages_sent"].get<unsigned long long>(),
                j["backlog"]["readings"].get<long long>());
  return errors == 0 && overruns == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const int seconds = argc > 1 ? std::stoi(argv[1]) : 30;
  const int devices = argc > 2 ? std::stoi(argv[2]) : 100;
  const int registers = argc > 3 ? std::stoi(argv[3]) : 100;
  int rc = run(seconds, devices, registers, nullptr, 0);
  TempDir dir;
  const auto certs = make_certs(dir.file("certs"));
  Mosquitto broker(certs, dir.path());
  rc |= run(seconds, devices, registers, &certs, broker.port());
  return rc;
}
