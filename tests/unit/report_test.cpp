// `ioc-edge report` over synthetic roll-ups written through the store into a real file: two days
// at +07:00 with known hours missing, known misses, stale periods, outages and drops; the exact
// figures in json and csv, the same in text and html; and the errors.
#include <catch2/catch.hpp>

#include <sstream>

#include <nlohmann/json.hpp>

#include "ops/report.h"
#include "ops/rollup_store.h"
#include "support/fakes.h"
#include "support/support.h"

using namespace ioc_edge;
using json = nlohmann::json;

namespace {

constexpr std::int64_t kStart = 1'782'838'800;      // 2026-07-01 00:00 +07:00 (2026-06-30T17:00Z), in s
constexpr std::int64_t kNow = 1'783'641'600'000;    // 2026-07-10T00:00Z
constexpr std::int64_t kH = 3600;
constexpr std::int64_t kHMs = 3'600'000;

std::int64_t hour(int i) { return kStart + i * kH; }
std::int64_t at_ms(int i, std::int64_t plus_ms = 0) { return hour(i) * 1000 + plus_ms; }

// The two days 2026-07-01 and 2026-07-02 (+07:00) are hours 0..47:
//  - the gateway ran in all but hours 10 and 11;
//  - the uplink was down for the second half of hour 20 (an outage of 30 min) and in hours 30
//    and 31 (an outage of 2 h);
//  - tram-bom-1 (expected every 10 s: 360 updates an hour, 4 points each) missed 90 updates in
//    hour 5 and 6 in hour 40; 12 bad readings in hour 7; the buffer dropped 500 of its readings
//    in hour 31; stale 05:10-05:25 on the first day and from 23:30 on the second day on into
//    the next (beyond the period);
//  - mot-cua is not watched (sent data; no expected_every): 25 readings an hour;
//  - hours -1 and 48 lie outside the period and must not count.
void write_synthetic(const std::string& path) {
  test::FakeClock clock;
  clock.wall_ms_ = kNow;
  std::string error;
  auto store = RollupStore::open({path}, clock, error);
  REQUIRE(store);
  RollupDelta d;
  for (int i = 0; i < 48; ++i) {
    if (i == 10 || i == 11) continue;
    GatewayHour g{kHMs, kHMs, 0, 0};
    if (i == 20) g = {kHMs, kHMs / 2, 1, kHMs / 2};
    if (i == 30) g = {kHMs, 0, 1, 2 * kHMs};
    if (i == 31) g = {kHMs, 0, 0, 0};
    d.gateway[hour(i)] = g;
    SourceHour t{4 * 360, 0, 0, 0, 360'000, 0};
    if (i == 5) t = {4 * 270, 0, 0, 900'000, 360'000, 90};
    if (i == 7) t.bad = 12;
    if (i == 31) t.dropped = 500;
    if (i == 40) t = {4 * 354, 0, 0, 0, 360'000, 6};
    if (i == 47) t.stale_ms = 1'800'000;
    d.sources[{hour(i), "tram-bom-1"}] = t;
    d.sources[{hour(i), "mot-cua"}] = {25, 0, 0, 0, 0, 0};
  }
  d.stale[{"tram-bom-1", at_ms(5, 600'000)}] = at_ms(5, 1'500'000);
  d.stale[{"tram-bom-1", at_ms(47, 1'800'000)}] = at_ms(49);
  // Outside the period.
  d.gateway[hour(-1)] = {kHMs, kHMs, 3, 60'000'000};
  d.gateway[hour(48)] = {kHMs, kHMs, 0, 0};
  d.sources[{hour(-1), "tram-bom-1"}] = {999, 999, 999, 999, 999'000, 999};
  d.sources[{hour(48), "tram-bom-1"}] = {4 * 360, 0, 0, kHMs, 360'000, 0};
  d.stale[{"tram-bom-1", at_ms(-1)}] = at_ms(-1, 10'000);
  store->submit(d);
  REQUIRE(store->flush());
}

struct Run {
  int code = -1;
  std::string out, err;
};

Run report(const std::string& db, const std::string& from, const std::string& to, const std::string& format,
           std::int64_t now = kNow) {
  ReportOptions o;
  o.db_path = db;
  o.from = from;
  o.to = to;
  o.format = format;
  o.site = "bk-cho-don";
  o.now_ms = now;
  std::ostringstream out, err;
  Run r;
  r.code = run_report(o, out, err);
  r.out = out.str();
  r.err = err.str();
  return r;
}

}  // namespace

TEST_CASE("report over synthetic hours: the exact figures in json", "[report]") {
  test::TempDir dir;
  const auto db = dir.file("rollups.db");
  write_synthetic(db);
  const auto r = report(db, "2026-07-01", "2026-07-02", "json");
  INFO(r.err);
  REQUIRE(r.code == 0);
  const auto j = json::parse(r.out);
  CHECK(j["report"] == "ioc-edge/report/1");
  CHECK(j["site"] == "bk-cho-don");
  CHECK(j["period"]["from"] == "2026-07-01");
  CHECK(j["period"]["to"] == "2026-07-02");
  CHECK(j["period"]["utc_offset"] == "+07:00");
  CHECK(j["period"]["start"] == "2026-06-30T17:00:00.000Z");
  CHECK(j["period"]["end"] == "2026-07-02T17:00:00.000Z");
  CHECK(j["period"]["seconds"] == 172'800);
  CHECK(j["data"]["hours"] == 46);
  CHECK(j["data"]["first_hour"] == "2026-06-30T17:00:00.000Z");
  CHECK(j["data"]["last_hour"] == "2026-07-02T16:00:00.000Z");

  const auto& g = j["gateway"];
  CHECK(g["running_s"] == 165'600);
  CHECK(g["running_pct"] == 95.83);
  CHECK(g["not_running_s"] == 7'200);
  CHECK(g["uplink_connected_s"] == 156'600);
  CHECK(g["uplink_availability_pct"] == 94.57);            // 156,600 / 165,600
  CHECK(g["uplink_availability_of_period_pct"] == 90.63);  // 156,600 / 172,800
  CHECK(g["outages"] == 2);
  CHECK(g["longest_outage_s"] == 7'200);

  REQUIRE(j["sources"].size() == 2);
  const auto& m = j["sources"][0];
  CHECK(m["name"] == "mot-cua");
  CHECK(m["watched"] == false);
  CHECK(m["expected"].is_null());
  CHECK(m["received"].is_null());
  CHECK(m["completeness_pct"].is_null());
  CHECK(m["good"] == 46 * 25);
  CHECK(m["bad"] == 0);
  CHECK(m["dropped"] == 0);
  CHECK(m["stale_periods"] == 0);

  const auto& t = j["sources"][1];
  CHECK(t["name"] == "tram-bom-1");
  CHECK(t["watched"] == true);
  CHECK(t["expected"] == 46 * 360);       // 16,560
  CHECK(t["received"] == 46 * 360 - 96);  // 16,464
  CHECK(t["completeness_pct"] == 99.42);
  CHECK(t["good"] == 65'856);
  CHECK(t["bad"] == 12);
  CHECK(t["dropped"] == 500);
  CHECK(t["stale_periods"] == 2);
  CHECK(t["stale_s"] == 900 + 1800);
  REQUIRE(t["stale"].size() == 2);
  CHECK(t["stale"][0] == json{{"since", "2026-06-30T22:10:00.000Z"}, {"until", "2026-06-30T22:25:00.000Z"}, {"seconds", 900}});
  // Cut at the end of the period.
  CHECK(t["stale"][1] == json{{"since", "2026-07-02T16:30:00.000Z"}, {"until", "2026-07-02T17:00:00.000Z"}, {"seconds", 1800}});
}

TEST_CASE("report over synthetic hours: the exact csv; text and html show the same figures", "[report]") {
  test::TempDir dir;
  const auto db = dir.file("rollups.db");
  write_synthetic(db);
  const auto csv = report(db, "2026-07-01", "2026-07-02", "csv");
  REQUIRE(csv.code == 0);
  CHECK(csv.out ==
        "row,name,expected,received,completeness_pct,stale_periods,stale_s,good,bad,dropped,running_s,"
        "not_running_s,uplink_connected_s,uplink_availability_pct,uplink_availability_of_period_pct,outages,"
        "longest_outage_s\n"
        "source,mot-cua,,,,0,0,1150,0,0,,,,,,,\n"
        "source,tram-bom-1,16560,16464,99.42,2,2700,65856,12,500,,,,,,,\n"
        "gateway,bk-cho-don,,,,,,,,,165600,7200,156600,94.57,90.63,2,7200\n");

  const auto text = report(db, "2026-07-01", "2026-07-02", "text");
  REQUIRE(text.code == 0);
  INFO(text.out);
  for (const char* s : {"site bk-cho-don", "2026-07-01 to 2026-07-02 (UTC+07:00)", "46 hours", "46 h 0 min (95.83% of the period)",
                        "not running        2 h 0 min", "availability 94.57%", "90.63% of the period",
                        "uplink outages     2", "the longest 2 h 0 min", "16,560", "16,464", "99.42%", "65,856",
                        "not watched", "1,150", "45 min 0 s",
                        "tram-bom-1  2026-07-01 05:10:00 to 2026-07-01 05:25:00  15 min 0 s",
                        "tram-bom-1  2026-07-02 23:30:00 to 2026-07-03 00:00:00  30 min 0 s"})
    CHECK(text.out.find(s) != std::string::npos);

  const auto html = report(db, "2026-07-01", "2026-07-02", "html");
  REQUIRE(html.code == 0);
  INFO(html.out);
  for (const char* s : {"<!DOCTYPE html>", "<meta charset=\"utf-8\">", "<style>", "bk-cho-don", "16,560", "16,464",
                        "99.42%", "94.57%", "90.63%", "2 h 0 min", "65,856", "not watched", "2026-07-01 05:10:00"})
    CHECK(html.out.find(s) != std::string::npos);
  for (const char* s : {"<link", "<script", "src=", "http://", "https://"})  // self-contained
    CHECK(html.out.find(s) == std::string::npos);
}

TEST_CASE("report: one day, another offset, a period that runs past now", "[report]") {
  test::TempDir dir;
  const auto db = dir.file("rollups.db");
  write_synthetic(db);
  SECTION("the first day alone") {
    const auto r = report(db, "2026-07-01", "2026-07-01", "json");
    REQUIRE(r.code == 0);
    const auto j = json::parse(r.out);
    CHECK(j["gateway"]["running_s"] == 22 * 3600);
    CHECK(j["gateway"]["outages"] == 1);
    CHECK(j["gateway"]["longest_outage_s"] == 1800);
    CHECK(j["sources"][1]["expected"] == 22 * 360);
    CHECK(j["sources"][1]["received"] == 22 * 360 - 90);
    CHECK(j["sources"][1]["stale_periods"] == 1);
  }
  SECTION("UTC days: hours 7 .. 30 make 2026-07-01") {
    ReportOptions o;
    o.db_path = db;
    o.from = o.to = "2026-07-01";
    o.format = "json";
    o.utc_offset_minutes = 0;
    o.now_ms = kNow;
    std::ostringstream out, err;
    REQUIRE(run_report(o, out, err) == 0);
    const auto j = json::parse(out.str());
    CHECK(j["period"]["utc_offset"] == "+00:00");
    CHECK(j["gateway"]["running_s"] == 22 * 3600);  // hours 7..30 less 10 and 11
    CHECK(j["sources"][1]["bad"] == 12);
    CHECK(j["sources"][1]["dropped"] == 0);  // hour 31 is the next day
  }
  SECTION("a period reaching past now ends now") {
    const auto r = report(db, "2026-07-01", "2026-07-31", "json", at_ms(24));
    REQUIRE(r.code == 0);
    const auto j = json::parse(r.out);
    CHECK(j["period"]["end"] == "2026-07-01T17:00:00.000Z");
    CHECK(j["period"]["seconds"] == 24 * 3600);
    CHECK(j["gateway"]["not_running_s"] == 2 * 3600);
  }
}

TEST_CASE("report errors: bad dates, from after to, no file, no data in the period", "[report]") {
  test::TempDir dir;
  const auto db = dir.file("rollups.db");
  write_synthetic(db);
  auto r = report(db, "2026-13-01", "2026-07-02", "text");
  CHECK(r.code == 2);
  CHECK(r.err == "ioc-edge report: --from \"2026-13-01\" is not a date like 2026-07-01\n");
  r = report(db, "2026-07-01", "1/7/2026", "text");
  CHECK(r.code == 2);
  CHECK(r.err.find("--to \"1/7/2026\" is not a date") != std::string::npos);
  r = report(db, "2026-07-02", "2026-07-01", "text");
  CHECK(r.code == 2);
  CHECK(r.err == "ioc-edge report: --from 2026-07-02 is after --to 2026-07-01\n");
  r = report(db, "2026-07-01", "2026-07-02", "xml");
  CHECK(r.code == 2);
  r = report(dir.file("missing.db"), "2026-07-01", "2026-07-02", "text");
  CHECK(r.code == 1);
  CHECK(r.err.find("no roll-ups at " + dir.file("missing.db")) != std::string::npos);
  r = report(db, "2026-06-01", "2026-06-29", "text");
  CHECK(r.code == 1);
  CHECK(r.err ==
        "ioc-edge report: no data from 2026-06-01 to 2026-06-29 (UTC+07:00): the gateway did not run in that period; "
        "the roll-ups cover 2026-06-30 23:00:00 to 2026-07-03 01:00:00 (UTC+07:00)\n");
  r = report(db, "2026-07-20", "2026-07-21", "text");
  CHECK(r.code == 1);
  CHECK(r.err.find("the period has not begun yet") != std::string::npos);
  CHECK(r.out.empty());
}
