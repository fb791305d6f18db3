// The three renderings of a snapshot and the health rules (daemon/ops/), without a daemon.
#include <catch2/catch.hpp>

#include <map>
#include <regex>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "drivers/builtin.h"
#include "ops/health.h"
#include "ops/render.h"
#include "ops/text.h"
#include "settings/settings.h"

using namespace ioc_edge;

namespace {

constexpr std::int64_t kNow = 1'764'367'800'000;  // 2025-11-28T22:10:00Z

SourceSnapshot source(std::string name) {
  SourceSnapshot s;
  s.name = std::move(name);
  s.type = "generator";
  s.produced = s.stored = s.good = 1000;
  s.last_stored_ms = s.last_good_ms = kNow - 1000;
  return s;
}

// A healthy gateway: link up, nothing waiting long, two sources up.
Snapshot healthy() {
  Snapshot s;
  s.version = "9.9.9";
  s.site = "bk-cho-don";
  s.province = "thai-nguyen";
  s.org_name = "UBND xã Chợ Đồn";
  s.store = "6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d";
  s.now_ms = kNow;
  s.uptime_s = 3600;
  s.uplink.url = "mqtts://ioc.example.gov.vn:8883";
  s.uplink.mqtt_version = "5";
  s.uplink.link.state = LinkState::Up;
  s.uplink.link.state_since_ms = kNow - 60'000;
  s.uplink.link.readings_sent = 123456;
  s.uplink.link.messages_sent = 250;
  s.uplink.link.connects = 2;
  s.backlog.max_bytes = 2ull << 30;
  auto& ob = s.backlog.outbox;
  ob.store = s.store;
  ob.pending = 1500;
  ob.pending_by_prio[static_cast<int>(Priority::Normal)] = 1500;
  ob.bytes_by_prio[static_cast<int>(Priority::Normal)] = 90'000;
  ob.bytes_by_prio[static_cast<int>(Priority::Low)] = -1;  // unknown after an upgrade
  ob.oldest_age_ms = ob.oldest_age_ms_by_prio[static_cast<int>(Priority::Normal)] = 4200;
  ob.file_bytes = 1 << 20;
  ob.acks = 10;
  ob.ack_p50_ms = 2.5;
  ob.ack_p99_ms = 8;
  ob.ack_max_ms = 9;
  ob.ack_sum_ms = 31.5;
  s.sources = {source("tram-bom-1"), source("dong-ho-dien")};
  s.problems = health_problems(s);
  return s;
}

struct Family {
  std::string type;
  int help = 0, type_lines = 0;
  std::vector<std::string> samples;  // whole lines
};

// A strict reading of the text format 0.0.4: HELP and TYPE once per family and before its samples,
// a family's samples contiguous, names and labels well formed, values numbers. Fails the test on
// the first violation; returns the families by name.
std::map<std::string, Family> parse_exposition(const std::string& text) {
  static const std::regex kSample(
      R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\\\|\\"|\\n)*")(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\\\|\\"|\\n)*")*\})? ([-+]?([0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?|Inf|NaN))$)");
  static const std::regex kHelp(R"(^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$)");
  static const std::regex kType(R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|summary|histogram|untyped)$)");
  std::map<std::string, Family> families;
  std::set<std::string> closed;
  std::string current;
  std::istringstream in(text);
  REQUIRE(!text.empty());
  REQUIRE(text.back() == '\n');
  for (std::string line; std::getline(in, line);) {
    INFO(line);
    std::smatch m;
    if (std::regex_match(line, m, kHelp)) {
      const auto name = m[1].str();
      REQUIRE(closed.count(name) == 0);
      if (name != current && !current.empty()) closed.insert(current);
      current = name;
      REQUIRE(++families[name].help == 1);
      REQUIRE(families[name].samples.empty());
    } else if (std::regex_match(line, m, kType)) {
      const auto name = m[1].str();
      REQUIRE(name == current);
      REQUIRE(++families[name].type_lines == 1);
      families[name].type = m[2].str();
    } else {
      REQUIRE(std::regex_match(line, m, kSample));
      auto name = m[1].str();
      if (families.count(name) == 0)
        for (const char* suffix : {"_sum", "_count"})
          if (name.size() > std::strlen(suffix) && name.compare(name.size() - std::strlen(suffix), std::string::npos, suffix) == 0)
            name = name.substr(0, name.size() - std::strlen(suffix));
      REQUIRE(name == current);
      families[name].samples.push_back(line);
    }
  }
  for (const auto& [name, f] : families) {
    INFO(name);
    CHECK(name.rfind("ioc_edge_", 0) == 0);
    CHECK(f.type_lines == 1);
    CHECK((f.type == "counter") == (name.size() > 6 && name.compare(name.size() - 6, 6, "_total") == 0));
  }
  return families;
}

bool has_line(const std::string& text, const std::string& line) {
  return ("\n" + text).find("\n" + line + "\n") != std::string::npos;
}

}  // namespace

TEST_CASE("Prometheus label values escape backslash, double quote and line feed; HELP escapes two",
          "[ops][metrics]") {
  CHECK(prometheus_label_value("plain-Trạm bơm") == "plain-Trạm bơm");
  CHECK(prometheus_label_value("a\\b\"c\nd") == "a\\\\b\\\"c\\nd");
  CHECK(prometheus_help("x \"q\" \\ \n") == "x \"q\" \\\\ \\n");
}

TEST_CASE("the metrics are well-formed text format 0.0.4 and carry the snapshot's figures", "[ops][metrics]") {
  auto s = healthy();
  s.sources[1].down = true;
  s.sources[1].last_error = "connection refused";
  s.sources[1].last_error_ms = kNow - 5000;
  s.sources[1].bad_input = {{"malformed_json", 3}, {"oversized", 1}};
  s.sources[0].title = "Trạm \"bơm\" \\ Cầu Rào\nmới";  // every character the format escapes
  s.sources[0].expected_every_ms = 30'000;
  s.sources[0].stale = true;
  s.sources[0].stale_since_ms = kNow - 120'000;
  s.problems = health_problems(s);
  const auto text = render_prometheus(s);
  INFO(text);
  const auto families = parse_exposition(text);

  CHECK(has_line(text, "ioc_edge_build_info{version=\"9.9.9\",site=\"bk-cho-don\",province=\"thai-nguyen\",store=\"" +
                           s.store + "\"} 1"));
  CHECK(has_line(text, "ioc_edge_uplink_connected 1"));
  CHECK(has_line(text, "ioc_edge_uplink_state{state=\"up\"} 1"));
  CHECK(has_line(text, "ioc_edge_uplink_state{state=\"down\"} 0"));
  CHECK(has_line(text, "ioc_edge_uplink_readings_sent_total 123456"));
  CHECK(has_line(text, "ioc_edge_backlog_readings{priority=\"normal\"} 1500"));
  CHECK(has_line(text, "ioc_edge_backlog_bytes{priority=\"normal\"} 90000"));
  CHECK(text.find("ioc_edge_backlog_bytes{priority=\"low\"}") == std::string::npos);  // unknown: absent, not 0
  CHECK(has_line(text, "ioc_edge_backlog_oldest_age_seconds{priority=\"normal\"} 4.2"));
  CHECK(has_line(text, "ioc_edge_outbox_commit_latency_seconds{quantile=\"0.5\"} 0.0025"));
  CHECK(has_line(text, "ioc_edge_outbox_commit_latency_seconds_count 10"));
  CHECK(has_line(text, "ioc_edge_outbox_commit_latency_seconds_sum 0.0315"));
  CHECK(families.at("ioc_edge_outbox_commit_latency_seconds").type == "summary");
  CHECK(has_line(text, "ioc_edge_source_up{source=\"dong-ho-dien\"} 0"));
  CHECK(has_line(text, "ioc_edge_source_up{source=\"tram-bom-1\"} 1"));
  CHECK(has_line(text, "ioc_edge_source_stale{source=\"tram-bom-1\"} 1"));
  CHECK(has_line(text, "ioc_edge_source_expected_every_seconds{source=\"tram-bom-1\"} 30"));
  CHECK(has_line(text, "ioc_edge_source_last_good_timestamp_seconds{source=\"tram-bom-1\"} 1764367799"));
  CHECK(has_line(text, "ioc_edge_source_bad_input_total{source=\"dong-ho-dien\",kind=\"malformed_json\"} 3"));
  CHECK(has_line(text, "ioc_edge_source_info{source=\"tram-bom-1\",type=\"generator\",priority=\"normal\",title=\"Trạm "
                       "\\\"bơm\\\" \\\\ Cầu Rào\\nmới\"} 1"));
  CHECK(has_line(text, "ioc_edge_healthy 0"));
  CHECK(has_line(text, "ioc_edge_health_problems 2"));
  CHECK(families.at("ioc_edge_source_stored_readings_total").samples.size() == 2);
}

TEST_CASE("health: thresholds and rules", "[ops][health]") {
  auto s = healthy();
  CHECK(health_problems(s).empty());

  SECTION("the link down for less than link_down_after is not a problem; longer is") {
    s.link_down_after_ms = 15 * 60'000;
    s.uplink.link.state = LinkState::Connecting;
    s.uplink.link.down_since_ms = kNow - 14 * 60'000;
    s.uplink.link.down_for_ms = 14 * 60'000;
    s.uplink.link.last_error = "connection refused";
    CHECK(health_problems(s).empty());
    s.uplink.link.down_for_ms = 16 * 60'000;
    const auto p = health_problems(s);
    REQUIRE(p.size() == 1);
    CHECK_THAT(p[0], Catch::Contains("IOC link has been down for 16 min") && Catch::Contains("connection refused"));
  }
  SECTION("a source down names it and its error") {
    s.sources[1].down = true;
    s.sources[1].last_error = "timeout";
    const auto p = health_problems(s);
    REQUIRE(p.size() == 1);
    CHECK(p[0] == "source \"dong-ho-dien\" is down: timeout");
  }
  SECTION("a stale source says since when and how often data is expected") {
    s.sources[0].stale = true;
    s.sources[0].expected_every_ms = 60'000;
    const auto p = health_problems(s);
    REQUIRE(p.size() == 1);
    CHECK_THAT(p[0], Catch::Contains("\"tram-bom-1\" is stale") && Catch::Contains("2025-11-28T22:09:59.000Z") &&
                         Catch::Contains("expected every 1 min"));
  }
  SECTION("a storage fault and refused readings, most urgent first") {
    s.backlog.outbox.fault = "disk full: cannot store new data in /var/lib/ioc-edge/outbox.db";
    s.backlog.outbox.held = 40;
    s.backlog.held.push_back({1, 40, "ioc/bac-kan/x/data/s", "not authorized", 40, kNow});
    const auto p = health_problems(s);
    REQUIRE(p.size() == 2);
    CHECK_THAT(p[0], Catch::StartsWith("storage fault: disk full"));
    CHECK_THAT(p[1], Catch::Contains("refused 40 readings (not authorized on ioc/bac-kan/x/data/s)") &&
                         Catch::Contains("ioc-edge outbox requeue"));
  }
  SECTION("bad readings, a backlog and a salvaged file are not problems") {
    s.sources[0].bad = 500;
    s.backlog.outbox.pending = 1'000'000;
    s.backlog.outbox.corruption = "salvaged";
    CHECK(health_problems(s).empty());
  }
}

TEST_CASE("the JSON keeps the /status shape and adds health, priorities and the stale-source fields", "[ops][json]") {
  auto s = healthy();
  s.sources[1].down = true;
  s.sources[1].last_error = "timeout";
  s.problems = health_problems(s);
  const auto j = nlohmann::json::parse(render_json(s));
  for (const char* k : {"version", "site", "province", "store", "now", "uptime_s", "uplink", "backlog", "sources"})
    CHECK(j.contains(k));
  for (const char* k : {"url", "state", "since", "last_error", "connects", "connect_failures", "messages_sent",
                        "readings_sent", "bytes_sent", "publish_failures", "mqtt_version", "rejected_messages",
                        "rejected_readings", "last_rejection", "delivery_rate_bytes_per_s", "backlog_budget_bytes",
                        "inflight"})
    CHECK(j["uplink"].contains(k));
  for (const char* k : {"readings", "by_priority", "oldest_age_s", "last_seq", "file_bytes", "max_bytes", "appended",
                        "removed", "evicted", "refused", "removing", "commits", "commit_latency_ms", "held", "fault",
                        "corruption"})
    CHECK(j["backlog"].contains(k));
  CHECK(j["backlog"]["by_priority"]["normal"] == 1500);
  CHECK(j["backlog"]["priorities"]["normal"]["bytes"] == 90000);
  CHECK(j["backlog"]["priorities"]["low"]["bytes"].is_null());
  CHECK(j["backlog"]["held"]["readings"] == 0);
  const auto& src = j["sources"][1];
  for (const char* k : {"name", "type", "priority", "state", "last_error", "last_error_at", "produced", "stored",
                        "refused", "errors", "overruns", "messages", "redelivered", "bad_input", "last_stored", "good",
                        "bad", "last_good", "stale", "stale_since", "expected_every_s"})
    CHECK(src.contains(k));
  CHECK(src["state"] == "down");
  CHECK(src["stale"] == false);
  CHECK(j["health"]["ok"] == false);
  CHECK(j["health"]["problems"][0] == "source \"dong-ho-dien\" is down: timeout");
}

TEST_CASE("the page escapes what it shows, keeps Vietnamese intact, needs nothing external and puts problems first",
          "[ops][html]") {
  CHECK(html_escape("<b>\"x\" & 'y'</b>") == "&lt;b&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/b&gt;");
  auto s = healthy();
  s.sources[0].title = "Trạm bơm Cầu Rào";
  s.sources[1].down = true;
  s.sources[1].last_error = "<script>alert(1)</script> & \"quotes\"";
  s.uplink.link.last_error = "<img src=x>";
  s.backlog.outbox.held = 7;
  s.backlog.held.push_back({11, 17, "ioc/bac-kan/bk-cho-don/data/<x>", "not authorized", 7, kNow - 1000});
  s.problems = health_problems(s);
  const auto html = render_html(s, 10);
  INFO(html);
  CHECK_THAT(html, Catch::StartsWith("<!DOCTYPE html>"));
  CHECK_THAT(html, Catch::Contains("<meta charset=\"utf-8\">"));
  CHECK_THAT(html, Catch::Contains("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"));
  CHECK_THAT(html, Catch::Contains("<meta http-equiv=\"refresh\" content=\"10\">"));
  CHECK_THAT(html, Catch::Contains("Trạm bơm Cầu Rào"));
  CHECK_THAT(html, Catch::Contains("UBND xã Chợ Đồn"));
  CHECK_THAT(html, Catch::Contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot;"));
  CHECK_THAT(html, Catch::Contains("&lt;img src=x&gt;"));
  CHECK_THAT(html, Catch::Contains("data/&lt;x&gt;"));
  CHECK_THAT(html, Catch::Contains("ioc-edge outbox requeue"));
  CHECK(html.find("<script") == std::string::npos);
  CHECK(html.find("<img") == std::string::npos);
  CHECK(html.find("<link") == std::string::npos);
  CHECK(html.find("src=\"") == std::string::npos);
  CHECK(html.find("url(") == std::string::npos);
  // The down source comes before the healthy one, marked.
  const auto down = html.find("id=\"source-dong-ho-dien\"");
  const auto up = html.find("id=\"source-tram-bom-1\"");
  REQUIRE(down != std::string::npos);
  REQUIRE(up != std::string::npos);
  CHECK(down < up);
  const auto article = html.rfind("<article", down);
  REQUIRE(article != std::string::npos);
  CHECK(html.substr(article, down - article) == "<article class=\"card bad\" ");
  CHECK_THAT(html, Catch::Contains("1,500 readings"));
}

TEST_CASE("human figures", "[ops]") {
  CHECK(human_duration(500) == "500 ms");
  CHECK(human_duration(45'000) == "45 s");
  CHECK(human_duration(17 * 60'000 + 5000) == "17 min");
  CHECK(human_duration(3 * 3'600'000 + 5 * 60'000) == "3 h 5 min");
  CHECK(human_duration(50 * 3'600'000ll) == "2 d 2 h");
  CHECK(human_bytes(512) == "512 B");
  CHECK(human_bytes(1536) == "1.5 KiB");
  CHECK(human_bytes(2ull << 30) == "2.0 GiB");
  CHECK(with_thousands(1234567) == "1,234,567");
  CHECK(with_thousands(12) == "12");
}

TEST_CASE("[status] link_down_after and a source's title are read and checked", "[ops][settings]") {
  const std::string base = "[gateway]\nsite = \"s\"\nprovince = \"p\"\ndata_dir = \"/tmp/x\"\n[uplink]\nurl = "
                           "\"mqtt://127.0.0.1:1883\"\n";
  auto ok = load_settings_text(base + "[status]\nlink_down_after = \"2m\"\n[[source]]\nname = \"a\"\ntype = "
                                      "\"generator\"\ntitle = \"Trạm bơm Cầu Rào\"\n",
                               "f.toml", builtin_drivers());
  INFO(ok.diagnostics.format());
  REQUIRE(ok.settings);
  CHECK(ok.settings->status.link_down_after == std::chrono::minutes(2));
  CHECK(ok.settings->sources[0].title == "Trạm bơm Cầu Rào");
  auto def = load_settings_text(base, "f.toml", builtin_drivers());
  REQUIRE(def.settings);
  CHECK(def.settings->status.link_down_after == std::chrono::minutes(15));

  auto bad = load_settings_text(base + "[status]\nlink_down_after = \"0s\"\n[[source]]\nname = \"a\"\ntype = "
                                       "\"generator\"\ntitle = \"" + std::string(201, 'x') + "\"\n",
                                "f.toml", builtin_drivers());
  CHECK_FALSE(bad.settings);
  const auto report = bad.diagnostics.format();
  CHECK_THAT(report, Catch::Contains("f.toml:8:19: [status] link_down_after: must be at least"));
  CHECK_THAT(report, Catch::Contains("source \"a\": title: must be at most 200 bytes"));
}
