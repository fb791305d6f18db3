// The operations surface (issue 11) against a running daemon with real sources: GET /metrics checked
// by promtool and scraped by a real Prometheus, GET / loaded in headless Chromium, /healthz and the
// exit codes of `ioc-edge status`.
//
// promtool, prometheus and chromium come from Debian's `prometheus` and `chromium` packages
// (scripts/install-deps.sh). A test that needs one of them FAILS when it is missing: a skipped check
// would pass in CI without checking anything.
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <regex>

#include "integration/daemon_rig.h"

using namespace ioc_edge::test;

namespace {

// A generator source (up, with a Vietnamese title) and a Modbus device on a port where nothing
// listens (down: connection refused).
RigOptions two_sources(int closed_port) {
  RigOptions o;
  o.sources = "[[source]]\nname = \"tram-bom-1\"\ntype = \"generator\"\ntitle = \"Trạm bơm Cầu Rào\"\nrate = 50\n"
              "points = 2\n\n"
              "[[source]]\nname = \"dong-ho-dien\"\ntype = \"modbus\"\nurl = \"tcp://127.0.0.1:" +
              std::to_string(closed_port) +
              "\"\nevery = \"1s\"\ntimeout = \"500ms\"\n"
              "  [[source.point]]\n  name = \"voltage\"\n  address = 0\n";
  return o;
}

nlohmann::json source_named(const nlohmann::json& status, const std::string& name) {
  for (const auto& s : status["sources"])
    if (s["name"] == name) return s;
  return nlohmann::json();
}

// Waits until the daemon has sent readings to the IOC and the Modbus source is down.
void wait_settled(DaemonRig& rig) {
  const bool settled = wait_until(
      [&] {
        const auto st = rig.status();
        return !st.is_null() && st["uplink"]["readings_sent"].get<std::int64_t>() > 0 &&
               source_named(st, "dong-ho-dien")["state"] == "down";
      },
      30s, 100ms);
  INFO(rig.daemon_log());
  REQUIRE(settled);
}

void require_program(const std::string& path, const char* package) {
  INFO(path << " is missing: install the Debian package `" << package << "` (scripts/install-deps.sh)");
  REQUIRE(::access(path.c_str(), X_OK) == 0);
}

// Runs a shell command line (for redirections), its output (stdout and stderr) in a log.
CliRun shell(const TempDir& dir, const std::string& name, const std::string& command,
          std::chrono::milliseconds timeout = 60s) {
  const auto log = dir.file(name + ".log");
  const int code = run_to_exit({"/bin/sh", "-c", command}, log, timeout);
  return {code, DaemonRig::read_log(log)};
}

CliRun cli(const TempDir& dir, std::vector<std::string> args) { return run_cli(std::move(args), dir, 30s); }

std::string url_encode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '_' || c == '-' || c == '.') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

// A real Prometheus scraping the daemon every second, its data and config in `dir`.
class Prometheus {
 public:
  Prometheus(const TempDir& dir, int target_port) : port_(free_tcp_port()) {
    require_program("/usr/bin/prometheus", "prometheus");
    write_file(dir.file("prometheus.yml"),
               "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
               "scrape_configs:\n  - job_name: ioc-edge\n    static_configs:\n      - targets: ['127.0.0.1:" +
                   std::to_string(target_port) + "']\n");
    process_ = std::make_unique<Process>(
        std::vector<std::string>{"/usr/bin/prometheus", "--config.file=" + dir.file("prometheus.yml"),
                                 "--storage.tsdb.path=" + dir.file("tsdb"),
                                 "--web.listen-address=127.0.0.1:" + std::to_string(port_), "--log.level=warn"},
        dir.file("prometheus.log"));
    const bool ready = wait_until(
        [&] { return http_get(port_, "/-/ready", 1s).status == 200 || !process_->running(); }, 60s, 200ms);
    INFO(process_->log());
    REQUIRE(ready);
    REQUIRE(process_->running());
  }
  // The instant vector of `query`: the "result" array (empty until the series exists).
  nlohmann::json query(const std::string& q) const {
    const auto r = http_get(port_, "/api/v1/query?query=" + url_encode(q), 5s);
    if (r.status != 200) return nlohmann::json::array();
    const auto j = nlohmann::json::parse(r.body);
    return j["data"]["result"];
  }
  std::string log() const { return process_->log(); }
  int port() const { return port_; }

 private:
  int port_;
  std::unique_ptr<Process> process_;
};

}  // namespace

TEST_CASE("GET /metrics passes promtool, shows the down source and the figures; every path answers",
          "[integration][ops][metrics]") {
  require_program("/usr/bin/promtool", "prometheus");
  DaemonRig rig(two_sources(free_tcp_port()));
  rig.start();
  wait_settled(rig);
  const int port = rig.status_port();

  const auto m = http_get(port, "/metrics");
  REQUIRE(m.status == 200);
  CHECK(m.headers.at("content-type") == "text/plain; version=0.0.4; charset=utf-8");
  write_file(rig.tmp().file("metrics.txt"), m.body);
  const auto check = shell(rig.tmp(), "promtool", "/usr/bin/promtool check metrics < " + rig.tmp().file("metrics.txt"));
  INFO("promtool said:\n" << check.output << "\nmetrics:\n" << m.body);
  CHECK(check.code == 0);
  CHECK(check.output.empty());

  const auto text = "\n" + m.body;
  CHECK_THAT(text, Catch::Contains("\nioc_edge_source_up{source=\"dong-ho-dien\"} 0\n"));
  CHECK_THAT(text, Catch::Contains("\nioc_edge_source_up{source=\"tram-bom-1\"} 1\n"));
  CHECK_THAT(text, Catch::Contains("\nioc_edge_uplink_connected 1\n"));
  CHECK_THAT(text, Catch::Contains("\nioc_edge_build_info{version=\"" IOC_EDGE_VERSION "\",site=\"bk-cho-don\""));
  CHECK_THAT(text, Catch::Contains("title=\"Trạm bơm Cầu Rào\""));
  CHECK_THAT(text, Catch::Contains("\nioc_edge_healthy 0\n"));
  std::smatch sent;
  REQUIRE(std::regex_search(m.body, sent, std::regex("\nioc_edge_uplink_readings_sent_total ([0-9]+)\n")));
  CHECK(std::stoll(sent[1].str()) > 0);
  std::smatch good;
  REQUIRE(std::regex_search(m.body, good,
                            std::regex("\nioc_edge_source_good_readings_total\\{source=\"tram-bom-1\"\\} ([0-9]+)\n")));
  CHECK(std::stoll(good[1].str()) > 0);
  for (const char* prio : {"low", "normal", "high", "system"}) {
    CHECK_THAT(text, Catch::Contains(std::string("\nioc_edge_backlog_readings{priority=\"") + prio + "\"} "));
    CHECK_THAT(text, Catch::Contains(std::string("\nioc_edge_backlog_bytes{priority=\"") + prio + "\"} "));
    CHECK_THAT(text, Catch::Contains(std::string("\nioc_edge_backlog_oldest_age_seconds{priority=\"") + prio + "\"} "));
  }

  // The same state in the other renderings.
  const auto st = rig.status();
  CHECK(st["health"]["ok"] == false);
  CHECK(source_named(st, "tram-bom-1")["title"] == "Trạm bơm Cầu Rào");
  CHECK(source_named(st, "tram-bom-1")["good"].get<std::int64_t>() > 0);
  const auto health = http_get(port, "/healthz");
  CHECK(health.status == 503);
  CHECK_THAT(health.body, Catch::Contains("unhealthy: source \"dong-ho-dien\" is down"));
  const auto page = http_get(port, "/");
  CHECK(page.status == 200);
  CHECK(page.headers.at("content-type") == "text/html; charset=utf-8");
  const auto missing = http_get(port, "/nope");
  CHECK(missing.status == 404);
  CHECK_THAT(missing.body, Catch::Contains("/metrics") && Catch::Contains("/status") && Catch::Contains("/healthz"));
  CHECK(http_request(port, "POST", "/metrics").status == 405);
  CHECK(rig.stop() == 0);
}

TEST_CASE("a real Prometheus scrapes the daemon and sees the down source and the readings sent",
          "[integration][ops][metrics][prometheus]") {
  DaemonRig rig(two_sources(free_tcp_port()));
  rig.start();
  wait_settled(rig);
  Prometheus prom(rig.tmp(), rig.status_port());

  nlohmann::json down;
  const bool scraped = wait_until([&] { return !(down = prom.query("ioc_edge_source_up{source=\"dong-ho-dien\"}")).empty(); },
                                  60s, 250ms);
  INFO(prom.log());
  REQUIRE(scraped);
  CHECK(down[0]["value"][1] == "0");
  CHECK(down[0]["metric"]["job"] == "ioc-edge");
  const auto up = prom.query("up{job=\"ioc-edge\"}");
  REQUIRE(up.size() == 1);
  CHECK(up[0]["value"][1] == "1");  // the scrape itself succeeded: Prometheus parsed the exposition
  const auto sent = prom.query("ioc_edge_uplink_readings_sent_total");
  REQUIRE(sent.size() == 1);
  CHECK(std::stod(sent[0]["value"][1].get<std::string>()) > 0);
  const auto info = prom.query("ioc_edge_source_info{source=\"tram-bom-1\"}");
  REQUIRE(info.size() == 1);
  CHECK(info[0]["metric"]["title"] == "Trạm bơm Cầu Rào");
  // Prometheus reports no problem with the target (no sample rejected, no parse error).
  const auto targets = http_get(prom.port(), "/api/v1/targets", 5s);
  REQUIRE(targets.status == 200);
  const auto active = nlohmann::json::parse(targets.body)["data"]["activeTargets"];
  REQUIRE(active.size() == 1);
  CHECK(active[0]["health"] == "up");
  CHECK(active[0]["lastError"] == "");
  CHECK(rig.stop() == 0);
}

TEST_CASE("the status page in headless Chromium shows the link, the backlog, the down source and its error",
          "[integration][ops][html]") {
  require_program("/usr/bin/chromium", "chromium");
  DaemonRig rig(two_sources(free_tcp_port()));
  rig.start();
  wait_settled(rig);
  const auto st = rig.status();
  const auto error = source_named(st, "dong-ho-dien")["last_error"];
  REQUIRE(error.is_string());

  const auto dom_file = rig.tmp().file("dom.html");
  const auto chrome = shell(rig.tmp(), "chromium",
                            "exec /usr/bin/chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage "
                            "--no-first-run --disable-background-networking --disable-component-update --disable-sync "
                            "--user-data-dir=" + rig.tmp().file("chromium-profile") +
                                " --dump-dom http://127.0.0.1:" + std::to_string(rig.status_port()) + "/ > " + dom_file,
                            120s);
  INFO("chromium said:\n" << chrome.output);
  REQUIRE(chrome.code == 0);
  const auto dom = read_file(dom_file);
  INFO(dom);
  REQUIRE_THAT(dom, Catch::Contains("id=\"link-state\""));
  CHECK(std::regex_search(dom, std::regex("id=\"link-state\">Connected<")));
  CHECK(std::regex_search(dom, std::regex("id=\"backlog-readings\">[0-9,]+ readings?<")));
  CHECK(std::regex_search(dom, std::regex("id=\"backlog-bytes\">Buffer file [0-9.]+ [KMG]?i?B of 2\\.0 GiB")));
  CHECK_THAT(dom, Catch::Contains("Trạm bơm Cầu Rào"));   // UTF-8 intact through the browser
  CHECK_THAT(dom, Catch::Contains("UBND xã Chợ Đồn"));
  CHECK_THAT(dom, Catch::Contains("dong-ho-dien"));
  CHECK_THAT(dom, Catch::Contains(error.get<std::string>()));
  CHECK_THAT(dom, Catch::Contains("source \"dong-ho-dien\" is down"));  // the problem banner
  // Problems first: the down source's card comes before the healthy one's.
  const auto down = dom.find("id=\"source-dong-ho-dien\"");
  const auto healthy = dom.find("id=\"source-tram-bom-1\"");
  REQUIRE(down != std::string::npos);
  REQUIRE(healthy != std::string::npos);
  CHECK(down < healthy);
  CHECK(rig.stop() == 0);
}

TEST_CASE("ioc-edge status exits 0 when healthy, 1 with the problems (source down, link down too long), 2 unreachable",
          "[integration][ops][cli]") {
  SECTION("healthy: 0") {
    DaemonRig rig;
    rig.start();
    REQUIRE(wait_until([&] { return rig.stat("uplink", "readings_sent") > 0; }, 30s));
    const auto address = "127.0.0.1:" + std::to_string(rig.status_port());
    auto r = cli(rig.tmp(), {"status", "-a", address});
    INFO(r.output);
    CHECK(r.code == 0);
    CHECK_THAT(r.output, Catch::Contains("health   ok"));
    auto js = cli(rig.tmp(), {"status", "--json", "-a", address});
    CHECK(js.code == 0);
    CHECK(nlohmann::json::parse(js.output)["health"]["ok"] == true);
    CHECK(rig.stop() == 0);
  }
  SECTION("a source down: 1, naming it") {
    DaemonRig rig(two_sources(free_tcp_port()));
    rig.start();
    wait_settled(rig);
    const auto address = "127.0.0.1:" + std::to_string(rig.status_port());
    auto r = cli(rig.tmp(), {"status", "-a", address});
    INFO(r.output);
    CHECK(r.code == 1);
    CHECK_THAT(r.output, Catch::Contains("PROBLEM  source \"dong-ho-dien\" is down"));
    CHECK_THAT(r.output, Catch::Contains("\"Trạm bơm Cầu Rào\""));
    auto js = cli(rig.tmp(), {"status", "--json", "-a", address});
    CHECK(js.code == 1);
    CHECK(nlohmann::json::parse(js.output)["health"]["ok"] == false);
    CHECK(rig.stop() == 0);
  }
  SECTION("the IOC link down past link_down_after: 1; back within it: 0") {
    RigOptions o;
    o.extra_status = "link_down_after = \"2s\"\n";
    DaemonRig rig(o);
    rig.start();
    REQUIRE(wait_until([&] { return rig.uplink_state() == "up"; }, 30s));
    const auto address = "127.0.0.1:" + std::to_string(rig.status_port());
    rig.proxy().cut();
    REQUIRE(wait_until([&] { return rig.uplink_state() != "up"; }, 30s));
    // Down, but not yet for 2 s: not a problem (a short outage is normal).
    const auto early = rig.status();
    if (early["uplink"]["down_for_s"].get<double>() < 1.5) CHECK(early["health"]["ok"] == true);
    REQUIRE(wait_until([&] { return http_get(rig.status_port(), "/healthz").status == 503; }, 30s));
    CHECK_THAT(http_get(rig.status_port(), "/healthz").body, Catch::Contains("unhealthy: the IOC link has been down for"));
    auto r = cli(rig.tmp(), {"status", "-a", address});
    INFO(r.output);
    CHECK(r.code == 1);
    CHECK_THAT(r.output, Catch::Contains("PROBLEM  the IOC link has been down for"));
    rig.proxy().restore();
    REQUIRE(wait_until([&] { return http_get(rig.status_port(), "/healthz").status == 200; }, 30s));
    CHECK(cli(rig.tmp(), {"status", "-a", address}).code == 0);
    CHECK(rig.stop() == 0);
  }
  SECTION("nothing listening: 2") {
    TempDir dir;
    auto r = cli(dir, {"status", "-a", "127.0.0.1:" + std::to_string(free_tcp_port())});
    CHECK(r.code == 2);
    CHECK_THAT(r.output, Catch::Contains("cannot reach the daemon"));
    auto js = cli(dir, {"status", "--json", "-a", "127.0.0.1:" + std::to_string(free_tcp_port())});
    CHECK(js.code == 2);
  }
}
