// check-config's promise: every class of problem is reported with its line and column.
#include <catch2/catch.hpp>

#include <filesystem>

#include "drivers/builtin.h"
#include "settings/settings.h"
#include "support/support.h"

using namespace ioc_edge;

namespace {

const char* kValid = R"([gateway]
site = "bk-cho-don"
province = "bac-kan"
data_dir = "/tmp/x"

[uplink]
url = "mqtt://127.0.0.1:1883"

[[source]]
name = "tram-bom-1"
type = "generator"
rate = 200
points = 4
)";

LoadResult load(const std::string& text) { return load_settings_text(text, "f.toml", builtin_drivers()); }

// The formatted report, for matching whole "FILE:LINE:COL: message" lines.
std::string report(const std::string& text) { return load(text).diagnostics.format(); }

std::string replace(std::string text, const std::string& from, const std::string& to) {
  const auto pos = text.find(from);
  REQUIRE(pos != std::string::npos);
  return text.replace(pos, from.size(), to);
}

}  // namespace

TEST_CASE("a valid file loads with its defaults", "[settings]") {
  auto res = load(kValid);
  INFO(res.diagnostics.format());
  REQUIRE(res.settings);
  const auto& s = *res.settings;
  CHECK(s.gateway.topic_prefix == "ioc/bac-kan/bk-cho-don");
  CHECK(s.uplink.client_id == "ioc-edge-bk-cho-don");
  CHECK(s.uplink.batch_max_readings == 500);
  CHECK(s.uplink.max_inflight == 100);
  CHECK(s.uplink.backlog_rate == Approx(2.0 * 1024 * 1024));
  CHECK(s.buffer.max_size == (2ull << 30));
  CHECK(s.buffer.max_age == std::chrono::hours(24 * 30));
  CHECK(s.buffer.sync_full);
  CHECK(s.buffer.commit_interval == std::chrono::seconds(2));
  CHECK(s.status.host == "127.0.0.1");
  CHECK(s.status.port == 8787);
  REQUIRE(s.sources.size() == 1);
  CHECK(s.sources[0].driver->type == "generator");
  CHECK(s.sources[0].priority == Priority::Normal);
}

TEST_CASE("syntax errors give the line and column", "[settings]") {
  const auto out = report("[gateway]\nsite = \"x\nprovince = \"y\"\n");
  CHECK_THAT(out, Catch::StartsWith("f.toml:2:"));
  CHECK_THAT(out, Catch::Contains("syntax error"));
}

TEST_CASE("wrong types are named with their position", "[settings]") {
  const auto out = report(replace(kValid, "rate = 200", "rate = \"fast\""));
  CHECK_THAT(out, Catch::Contains("f.toml:12:8: source \"tram-bom-1\": rate: expected a number, got a string"));
  const auto out2 = report(replace(kValid, "site = \"bk-cho-don\"", "site = 17"));
  CHECK_THAT(out2, Catch::Contains("f.toml:2:8: [gateway] site: expected a string, got an integer"));
}

TEST_CASE("unknown keys are errors with a did-you-mean", "[settings]") {
  const auto out = report(replace(kValid, "points = 4", "pionts = 4"));
  CHECK_THAT(out, Catch::Contains("f.toml:13:1: source \"tram-bom-1\": unknown key 'pionts' (did you mean 'points'?)"));
  const auto out2 = report(std::string(kValid) + "[bufer]\nmax_size = \"1GiB\"\n");
  CHECK_THAT(out2, Catch::Contains("unknown key 'bufer' (did you mean 'buffer'?)"));
  const auto out3 = report(replace(kValid, "url = ", "uplink_url = \"x\"\nurl = "));
  CHECK_THAT(out3, Catch::Contains("f.toml:7:1: [uplink] unknown key 'uplink_url'"));
}

TEST_CASE("missing required keys and sections are named", "[settings]") {
  const auto out = report(replace(kValid, "province = \"bac-kan\"\n", ""));
  CHECK_THAT(out, Catch::Contains("f.toml:1:1: [gateway] missing required key 'province'"));
  const auto out2 = report(replace(kValid, "[uplink]\nurl = \"mqtt://127.0.0.1:1883\"\n", ""));
  CHECK_THAT(out2, Catch::Contains("missing required section [uplink]"));
  const auto out3 = report(replace(kValid, "name = \"tram-bom-1\"\n", ""));
  CHECK_THAT(out3, Catch::Contains("f.toml:9:1: source #1: missing required key 'name'"));
}

TEST_CASE("bad enum values list the allowed ones", "[settings]") {
  const auto out = report(std::string(kValid) + "\n[buffer]\nsync = \"ful\"\n");
  CHECK_THAT(out, Catch::Contains("f.toml:16:8: [buffer] sync: \"ful\" is not one of \"full\", \"normal\" (did you mean \"full\"?)"));
  const auto out2 = report(replace(kValid, "type = \"generator\"", "type = \"generatr\""));
  CHECK_THAT(out2, Catch::Contains("f.toml:11:8: source \"tram-bom-1\": type: unknown source type \"generatr\" (did you mean \"generator\"?)"));
}

TEST_CASE("commit_interval is a duration of at most 10 s", "[settings]") {
  const auto ok = load(std::string(kValid) + "\n[buffer]\ncommit_interval = \"250ms\"\n");
  REQUIRE(ok.settings);
  CHECK(ok.settings->buffer.commit_interval == std::chrono::milliseconds(250));
  const auto out = report(std::string(kValid) + "\n[buffer]\ncommit_interval = \"30s\"\n");
  CHECK_THAT(out, Catch::Contains("[buffer] commit_interval: must be at most 10s"));
}

TEST_CASE("unparsable sizes, durations and rates are explained", "[settings]") {
  const auto out = report(std::string(kValid) + "\n[buffer]\nmax_size = \"2 gigs\"\nmax_age = \"30 days\"\n");
  CHECK_THAT(out, Catch::Contains("f.toml:16:12: [buffer] max_size: cannot read \"2 gigs\" as a size"));
  CHECK_THAT(out, Catch::Contains("f.toml:17:11: [buffer] max_age: cannot read \"30 days\" as a duration"));
  const auto out2 = report(replace(kValid, "url = \"mqtt://127.0.0.1:1883\"", "url = \"mqtt://127.0.0.1:1883\"\nbacklog_rate = \"2MiB\""));
  CHECK_THAT(out2, Catch::Contains("f.toml:8:16: [uplink] backlog_rate: cannot read \"2MiB\" as a rate"));
}

TEST_CASE("out-of-range values and bad ids are reported", "[settings]") {
  const auto out = report(replace(kValid, "points = 4", "points = 0"));
  CHECK_THAT(out, Catch::Contains("f.toml:13:10: source \"tram-bom-1\": points: must be 1..100000, got 0"));
  const auto out2 = report(replace(kValid, "site = \"bk-cho-don\"", "site = \"bk/cho don\""));
  CHECK_THAT(out2, Catch::Contains("[gateway] site: \"bk/cho don\" must be"));
  const auto out3 = report(replace(kValid, "url = \"mqtt://127.0.0.1:1883\"", "url = \"http://ioc\""));
  CHECK_THAT(out3, Catch::Contains("f.toml:7:7: [uplink] url: \"http://ioc\" is not an MQTT URL"));
}

TEST_CASE("every problem in a file is reported, not just the first", "[settings]") {
  std::string text = replace(kValid, "points = 4", "points = -1\ncolour = \"red\"");
  text = replace(text, "site = \"bk-cho-don\"", "site = 1");
  auto res = load(text);
  CHECK_FALSE(res.settings);
  CHECK(res.diagnostics.list().size() == 3);
}

TEST_CASE("mqtts needs a CA file and an existing key pair", "[settings]") {
  const auto out = report(replace(kValid, "mqtt://127.0.0.1:1883", "mqtts://127.0.0.1:8883"));
  CHECK_THAT(out, Catch::Contains("[uplink] missing required key 'ca_file'"));
  const auto out2 = report(replace(kValid, "url = \"mqtt://127.0.0.1:1883\"",
                                   "url = \"mqtts://127.0.0.1:8883\"\nca_file = \"/nonexistent/ca.pem\"\ncert_file = \"/nonexistent/c.pem\""));
  CHECK_THAT(out2, Catch::Contains("f.toml:8:11: [uplink] ca_file: cannot read file \"/nonexistent/ca.pem\""));
  CHECK_THAT(out2, Catch::Contains("cert_file and key_file go together"));
}

TEST_CASE("duplicate source names are refused", "[settings]") {
  const std::string text = std::string(kValid) + "\n[[source]]\nname = \"tram-bom-1\"\ntype = \"generator\"\n";
  CHECK_THAT(report(text), Catch::Contains("f.toml:16:8: source \"tram-bom-1\": name: \"tram-bom-1\" is used by another source"));
}

TEST_CASE("sizes and durations parse in every documented form", "[settings]") {
  CHECK(parse_size("2GiB") == (2ull << 30));
  CHECK(parse_size("512MB") == 512'000'000ull);
  CHECK(parse_size("64KiB") == 65536ull);
  CHECK(parse_size("100") == 100ull);
  CHECK_FALSE(parse_size("GiB"));
  CHECK_FALSE(parse_size("2XB"));
  CHECK(parse_duration("30s") == std::chrono::seconds(30));
  CHECK(parse_duration("1h30m") == std::chrono::minutes(90));
  CHECK(parse_duration("7d") == std::chrono::hours(168));
  CHECK(parse_duration("250ms") == std::chrono::milliseconds(250));
  CHECK_FALSE(parse_duration("30"));
  CHECK_FALSE(parse_duration("5 s"));
}

TEST_CASE("the shipped configuration and every example load cleanly", "[settings][docs]") {
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  const fs::path root = test::repo_root();
  for (const auto& dir : {root / "config", root / "config" / "examples"})
    if (fs::exists(dir))
      for (const auto& e : fs::directory_iterator(dir))
        // ioc-receiver's file is the other program's, loaded by receiver_settings_test.cpp.
        if (e.path().extension() == ".toml" && e.path().filename() != "ioc-receiver.toml") files.push_back(e.path());
  for (const auto& e : fs::directory_iterator(root / "drivers"))
    if (fs::exists(e.path() / "example.toml")) files.push_back(e.path() / "example.toml");
  REQUIRE(files.size() >= 2);
  for (const auto& f : files) {
    auto text = test::read_file(f.string());
    // A driver's example.toml holds only [[source]] tables: give it the rest of a file.
    if (text.find("\n[gateway]") == std::string::npos && !text.starts_with("[gateway]"))
      text = "[gateway]\nsite = \"s\"\nprovince = \"p\"\n[uplink]\nurl = \"mqtt://127.0.0.1:1883\"\n" + text;
    auto res = load_settings_text(text, f.string(), builtin_drivers(), /*check_files=*/false);
    INFO(f.string() << "\n" << res.diagnostics.format());
    CHECK(res.settings);
  }
}

TEST_CASE("expected_every: a key of every source, defaulting to the poll interval of polled sources",
          "[settings][stale]") {
  using std::chrono::milliseconds;
  using namespace std::chrono_literals;
  const std::string head = "[gateway]\nsite = \"s\"\nprovince = \"p\"\n[uplink]\nurl = \"mqtt://127.0.0.1:1883\"\n";
  const auto every_of = [&](const std::string& source) {
    auto res = load(head + source);
    INFO(res.diagnostics.format());
    REQUIRE(res.settings);
    return res.settings->sources.at(0).expected_every;
  };
  // generator: the interval between readings, at least 1 s.
  CHECK(every_of("[[source]]\nname = \"g\"\ntype = \"generator\"\nrate = 200\n") == 1s);
  CHECK(every_of("[[source]]\nname = \"g\"\ntype = \"generator\"\nrate = 0.1\n") == 10s);
  CHECK(every_of("[[source]]\nname = \"g\"\ntype = \"generator\"\nrate = 0.5\ntick = \"3s\"\n") == 3s);
  // modbus: the shortest schedule among its points.
  const std::string modbus = "[[source]]\nname = \"m\"\ntype = \"modbus\"\nurl = \"tcp://127.0.0.1:502\"\nevery = \"30s\"\n";
  CHECK(every_of(modbus + "  [[source.point]]\n  name = \"a\"\n  address = 0\n  every = \"1m\"\n"
                          "  [[source.point]]\n  name = \"b\"\n  address = 1\n  every = \"15m\"\n") == 60s);
  CHECK(every_of(modbus + "  [[source.point]]\n  name = \"a\"\n  address = 0\n  every = \"10s\"\n"
                          "  [[source.point]]\n  name = \"b\"\n  address = 1\n") == 10s);
  CHECK(every_of(modbus + "  [[source.point]]\n  name = \"a\"\n  address = 0\n  every = \"200ms\"\n") == 1s);
  // http-poll: every.
  CHECK(every_of("[[source]]\nname = \"h\"\ntype = \"http-poll\"\nurl = \"http://127.0.0.1:8080/x\"\nevery = \"15m\"\n"
                 "point = \"x\"\n") == 15min);
  // Sources that are sent data are not watched unless they say so; an explicit value wins.
  CHECK(every_of("[[source]]\nname = \"q\"\ntype = \"mqtt\"\nurl = \"mqtt://127.0.0.1:1883\"\ntopics = [\"a/#\"]\n") ==
        0ms);
  CHECK(every_of("[[source]]\nname = \"q\"\ntype = \"mqtt\"\nurl = \"mqtt://127.0.0.1:1883\"\ntopics = [\"a/#\"]\n"
                 "expected_every = \"5m\"\n") == 5min);
  CHECK(every_of("[[source]]\nname = \"g\"\ntype = \"generator\"\nrate = 200\nexpected_every = \"1h\"\n") == 1h);
}

TEST_CASE("expected_every errors name the file, line and column; [report] keys are checked", "[settings][stale]") {
  const auto out = report(replace(kValid, "points = 4", "points = 4\nexpected_every = \"500ms\""));
  CHECK_THAT(out, Catch::Contains("f.toml:14:18: source \"tram-bom-1\": expected_every: must be at least 1000 ms, got \"500ms\""));
  const auto out2 = report(replace(kValid, "points = 4", "points = 4\nexpected_every = 5"));
  CHECK_THAT(out2, Catch::Contains("f.toml:14:18: source \"tram-bom-1\": expected_every: expected a duration string"));
  const auto out3 = report(replace(kValid, "points = 4", "points = 4\nexpected_evry = \"5s\""));
  CHECK_THAT(out3, Catch::Contains("f.toml:14:1: source \"tram-bom-1\": unknown key 'expected_evry'"));

  auto ok = load(std::string(kValid) + "\n[report]\nretention = \"800d\"\nutc_offset = \"+05:30\"\nwrite_every = \"5m\"\n");
  INFO(ok.diagnostics.format());
  REQUIRE(ok.settings);
  CHECK(ok.settings->report.retention == std::chrono::hours(24 * 800));
  CHECK(ok.settings->report.utc_offset_minutes == 330);
  CHECK(ok.settings->report.write_every == std::chrono::minutes(5));
  auto defaults = load(kValid);
  REQUIRE(defaults.settings);
  CHECK(defaults.settings->report.retention == std::chrono::hours(24 * 400));
  CHECK(defaults.settings->report.utc_offset_minutes == 420);
  CHECK(defaults.settings->report.write_every == std::chrono::minutes(1));
  const auto bad = report(std::string(kValid) + "\n[report]\nutc_offset = \"Asia/Ho_Chi_Minh\"\nwrite_every = \"2h\"\n");
  CHECK_THAT(bad, Catch::Contains("[report] utc_offset: \"Asia/Ho_Chi_Minh\" is not a UTC offset"));
  CHECK_THAT(bad, Catch::Contains("[report] write_every: must be at most 1h"));
  CHECK(parse_offset_minutes("+07:00") == 420);
  CHECK(parse_offset_minutes("-03:30") == -210);
  CHECK(parse_offset_minutes("+0700") == 420);
  CHECK(parse_offset_minutes("+07") == 420);
  CHECK(parse_offset_minutes("Z") == 0);
  CHECK_FALSE(parse_offset_minutes("+07:"));
  CHECK_FALSE(parse_offset_minutes("+15:00"));
  CHECK_FALSE(parse_offset_minutes("7"));
}
