// The stale-source watch and the report against a real daemon: an http-ingest source expected
// every second goes stale (the IOC stand-in gets source_stale on its event topic, the log says
// so), recovers when data is posted (source_recovered), and `ioc-edge report` reads the live data
// directory while the daemon runs.
#include <sys/stat.h>

#include <algorithm>
#include <ctime>

#include "integration/daemon_rig.h"

using namespace ioc_edge::test;
using json = nlohmann::json;

namespace {

constexpr const char* kToken = "tok-stale-aaaaaaaaaaaaaaaaaaaaaa";

// Today (at +07:00, the report's default offset) moved by `days`, as YYYY-MM-DD.
std::string day(int days) {
  const auto t = std::time(nullptr) + 7 * 3600 + days * 86400;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  return buf;
}

}  // namespace

TEST_CASE("a source goes stale and recovers: events to the IOC and the log; ioc-edge report on the live data dir",
          "[integration][stale][report]") {
  RigOptions o;
  o.sources = "";
  DaemonRig rig(o);
  const int port = free_tcp_port();
  const auto token_file = rig.tmp().file("token");
  write_file(token_file, std::string(kToken) + "\n");
  ::chmod(token_file.c_str(), 0600);
  rig.options().sources = "[report]\nwrite_every = \"1s\"\n\n"
                          "[[source]]\nname = \"mot-cua\"\ntype = \"http-ingest\"\nlisten = \"127.0.0.1:" +
                          std::to_string(port) + "\"\nexpected_every = \"1s\"\n"
                          "  [[source.client]]\n  name = \"phan-mem\"\n  token_file = \"" + token_file +
                          "\"\n  sources = [\"mot-cua\"]\n";
  rig.rewrite_config();
  rig.start();
  REQUIRE(wait_until([&] { return tcp_port_open(port); }, 10s));

  const auto events = [&](const std::string& name) {
    std::vector<json> out;
    for (const auto& batch : rig.collector().json_on("/event/mot-cua"))
      for (const auto& r : batch["readings"])
        if (r["point"] == name) out.push_back(r);
    return out;
  };
  int posted = 0;
  const auto post = [&] {
    const std::string body = R"({"readings": [{"point": "ho_so_moi", "value": 12}, {"point": "ho_so_tre", "value": 1}]})";
    const auto res = http_request(port, "POST", "/v1/readings", body,
                                  {{"Authorization", std::string("Bearer ") + kToken}, {"Content-Type", "application/json"}});
    REQUIRE(res.status == 202);
    posted += 2;
  };

  // Nothing posted yet: stale three seconds after the source started.
  REQUIRE(wait_until([&] { return events("source_stale").size() == 1; }, 20s, 100ms));
  auto stale = events("source_stale").front();
  CHECK(stale["source"] == "mot-cua");
  CHECK(stale["value"]["event"] == "source_stale");
  CHECK(stale["value"]["expected_every_s"] == 1.0);
  CHECK(stale["value"]["last_good"].is_null());
  CHECK(stale["value"]["silent_s"].get<double>() >= 3.0);
  CHECK(rig.daemon_log().find("source \"mot-cua\" is stale") != std::string::npos);

  // Data returns.
  post();
  REQUIRE(wait_until([&] { return events("source_recovered").size() == 1; }, 20s, 100ms));
  const auto recovered = events("source_recovered").front();
  CHECK(recovered["value"]["event"] == "source_recovered");
  CHECK(recovered["value"]["stale_s"].get<double>() > 0.0);
  CHECK(recovered["value"]["stale_since"].is_string());
  CHECK(rig.daemon_log().find("source \"mot-cua\" recovered after") != std::string::npos);

  // Silent again: stale again, now naming the last good reading; and back.
  REQUIRE(wait_until([&] { return events("source_stale").size() == 2; }, 20s, 100ms));
  CHECK(events("source_stale")[1]["value"]["last_good"].is_string());
  post();
  REQUIRE(wait_until([&] { return events("source_recovered").size() == 2; }, 20s, 100ms));
  CHECK(rig.validate_against_schema() == 0);

  // The report, read-only, while the daemon runs and writes its roll-ups every second.
  const auto report = [&](const std::string& format) {
    const auto log = rig.tmp().file("report-" + format + "-" + std::to_string(std::rand()) + ".log");
    const int code = run_to_exit({ioc_edge_binary(), "report", "-c", rig.config_path(), "--from", day(-1), "--to",
                                  day(1), "--format", format},
                                 log, 30s);
    return std::pair{code, DaemonRig::read_log(log)};
  };
  json j;
  const bool counted = wait_until(
      [&] {
        auto [code, out] = report("json");
        if (code != 0) return false;
        j = json::parse(out);
        for (const auto& s : j["sources"])
          if (s["name"] == "mot-cua") return s["stale_periods"] >= 2 && s["good"] == posted;
        return false;
      },
      30s, 500ms);
  INFO(j.dump(2) << "\n" << rig.daemon_log());
  REQUIRE(counted);
  CHECK(j["site"] == "bk-cho-don");
  CHECK(j["gateway"]["running_s"].get<std::int64_t>() >= 5);
  CHECK(j["gateway"]["uplink_connected_s"].get<std::int64_t>() >= 1);
  CHECK(j["gateway"]["uplink_availability_pct"].get<double>() > 50.0);
  const auto& s = j["sources"][0];
  CHECK(s["watched"] == true);
  CHECK(s["expected"].get<std::int64_t>() >= 5);
  CHECK(s["received"].get<std::int64_t>() < s["expected"].get<std::int64_t>());  // it was stale most of the time
  CHECK(s["bad"] == 0);
  CHECK(s["dropped"] == 0);
  CHECK(s["stale_s"].get<std::int64_t>() >= 1);
  auto [code, text] = report("text");
  CHECK(code == 0);
  CHECK(text.find("mot-cua") != std::string::npos);
  CHECK(text.find("site bk-cho-don") != std::string::npos);
  CHECK(rig.daemon().running());
  CHECK(rig.stop() == 0);
}
