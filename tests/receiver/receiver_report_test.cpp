// ioc-receiver report over known synthetic data: every figure checked exactly.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "receiver_rig.h"

using namespace ioc_edge::test;
using nlohmann::json;

namespace {

// The third quarter of 2026 for two offices (docs/ioc-database.md defines each figure):
//
// bk-a, store A: seqs 1..114 stamped in the quarter, 115 in October (outside it).
//   readings: seqs 1..80 of tram-bom-1 in July (1..5 bad), 81..90 of muc-nuoc in July,
//             102..110 of tram-bom-1 in September;
//   never received: 91..95 (a hole); 96..100 declared dropped by the gap event seq 101
//             (sources {"tram-bom-1": 5});
//   events: 111 source_stale and 112 source_recovered of tram-bom-1 (one hour), 113 a
//           source_recovered of muc-nuoc with no stale event in the quarter (stale since the
//           quarter began, for two hours), 114 refused (18 readings) of tram-bom-1.
//   heartbeats: 2026-06-30 23:55, then every 5 minutes from 2026-07-02 00:00 to 2026-09-30 23:55,
//           but none on 2026-08-10 from 00:05 to 05:55, and "offline" at 2026-09-01 12:00.
//   Late: [07-01 00:05, 07-02 00:00) 86,100 s; [08-10 00:10, 08-10 06:00) 21,000 s;
//         [09-01 12:00, 09-01 12:05) 300 s: 107,400 s of the quarter's 7,948,800 s.
// bk-b: known since June, no heartbeat and no data in the quarter: late from 00:10 on July 1st.
// bk-c: first seen on September 1st, a heartbeat every 5 minutes since: never late (the weeks
//       before it existed do not count against it).
const char* kData = R"sql(
INSERT INTO offices (site, province, unit_code, name, first_seen) VALUES
  ('bk-a', 'bac-kan', '01843', 'UBND xã A', '2026-06-01Z'), ('bk-b', 'bac-kan', NULL, 'UBND xã B', '2026-06-01Z');
INSERT INTO readings (site, store, seq, ts, source, point, value_num, quality, error)
  SELECT 'bk-a', 'aaaaaaaa-0000-4000-8000-000000000001', s, '2026-07-05Z'::timestamptz + s * interval '1 minute',
         'tram-bom-1', 'flow', s, CASE WHEN s <= 5 THEN 'bad' ELSE 'good' END, CASE WHEN s <= 5 THEN 'timeout' END
    FROM generate_series(1, 80) s;
INSERT INTO readings (site, store, seq, ts, source, point, value_num, quality)
  SELECT 'bk-a', 'aaaaaaaa-0000-4000-8000-000000000001', s, '2026-07-06Z'::timestamptz + s * interval '1 minute',
         'muc-nuoc', 'level', s, 'good' FROM generate_series(81, 90) s;
INSERT INTO readings (site, store, seq, ts, source, point, value_num, quality)
  SELECT 'bk-a', 'aaaaaaaa-0000-4000-8000-000000000001', s, '2026-09-05Z'::timestamptz + s * interval '1 minute',
         'tram-bom-1', 'flow', s, 'good' FROM generate_series(102, 110) s;
INSERT INTO readings (site, store, seq, ts, source, point, value_num, quality) VALUES
  ('bk-a', 'aaaaaaaa-0000-4000-8000-000000000001', 115, '2026-10-05Z', 'tram-bom-1', 'flow', 1, 'good');
INSERT INTO events (site, store, seq, ts, source, event, body) VALUES
  ('bk-a', 'aaaaaaaa-0000-4000-8000-000000000001', 101, '2026-08-01Z', '_gateway', 'gap',
   '{"event": "gap", "reason": "max_size", "ranges": [[96, 100]], "count": 5, "sources": {"tram-bom-1": 5}}'),
  ('bk-a', 'aaaaaaaa-0000-4000-8000-000000000001', 111, '2026-07-10 00:00Z', 'tram-bom-1', 'source_stale', '{}'),
  ('bk-a', 'aaaaaaaa-0000-4000-8000-000000000001', 112, '2026-07-10 01:00Z', 'tram-bom-1', 'source_recovered', '{}'),
  ('bk-a', 'aaaaaaaa-0000-4000-8000-000000000001', 113, '2026-07-01 02:00Z', 'muc-nuoc', 'source_recovered', '{}'),
  ('bk-a', 'aaaaaaaa-0000-4000-8000-000000000001', 114, '2026-08-02Z', 'tram-bom-1', 'refused', '{"event": "refused", "count": 18}');
INSERT INTO gaps VALUES ('bk-a', 'aaaaaaaa-0000-4000-8000-000000000001', 96, 100, 'max_size', '2026-08-01Z', 101);
INSERT INTO seq_ranges (site, store, first_seq, last_seq) VALUES
  ('bk-a', 'aaaaaaaa-0000-4000-8000-000000000001', 1, 90), ('bk-a', 'aaaaaaaa-0000-4000-8000-000000000001', 101, 101),
  ('bk-a', 'aaaaaaaa-0000-4000-8000-000000000001', 102, 115);
INSERT INTO heartbeats (site, received_at, state) VALUES ('bk-a', '2026-06-30 23:55Z', 'online');
INSERT INTO heartbeats (site, received_at, state)
  SELECT 'bk-a', t, CASE WHEN t = '2026-09-01 12:00Z' THEN 'offline' ELSE 'online' END
    FROM generate_series('2026-07-02Z'::timestamptz, '2026-09-30 23:55Z', interval '5 minutes') t
   WHERE t NOT BETWEEN '2026-08-10 00:05Z' AND '2026-08-10 05:55Z';
INSERT INTO offices (site, province, first_seen) VALUES ('bk-c', 'bac-kan', '2026-09-01Z');
INSERT INTO heartbeats (site, received_at, state)
  SELECT 'bk-c', t, 'online' FROM generate_series('2026-09-01Z'::timestamptz, '2026-09-30 23:55Z', interval '5 minutes') t;
)sql";

const json* office(const json& report, const std::string& site) {
  for (const auto& o : report["offices"])
    if (o["site"] == site) return &o;
  return nullptr;
}

const json* source(const json& o, const std::string& name) {
  for (const auto& s : o["sources"])
    if (s["source"] == name) return &s;
  return nullptr;
}

}  // namespace

TEST_CASE("the quarterly report over known data gives the exact figures", "[receiver][report]") {
  ReceiverRig rig;
  const auto config = rig.receiver_config("ioc-receiver-1", free_tcp_port());
  rig.migrate(config);
  rig.pg().psql(kData);

  const auto text = rig.command({"report", "--from", "2026-07-01", "--to", "2026-10-01", "--format", "json"}, config);
  const auto report = json::parse(text);
  INFO(report.dump(2));
  CHECK(report["from"] == "2026-07-01T00:00:00.000Z");
  CHECK(report["to"] == "2026-10-01T00:00:00.000Z");
  REQUIRE(report["offices"].size() == 3);

  const auto* a = office(report, "bk-a");
  REQUIRE(a);
  CHECK((*a)["seqs_expected"] == 114);
  CHECK((*a)["seqs_received"] == 104);
  CHECK((*a)["declared_dropped"] == 5);
  CHECK((*a)["holes"] == 5);
  CHECK((*a)["completeness_pct"].get<double>() == Approx(100.0 * 104 / 114).margin(0.006));
  CHECK((*a)["unit_code"] == "01843");
  REQUIRE((*a)["late"].size() == 3);
  CHECK((*a)["late"][0]["from"] == "2026-07-01T00:05:00.000Z");
  CHECK((*a)["late"][0]["to"] == "2026-07-02T00:00:00.000Z");
  CHECK((*a)["late"][1]["from"] == "2026-08-10T00:10:00.000Z");
  CHECK((*a)["late"][1]["to"] == "2026-08-10T06:00:00.000Z");
  CHECK((*a)["late"][2]["from"] == "2026-09-01T12:00:00.000Z");
  CHECK((*a)["late"][2]["to"] == "2026-09-01T12:05:00.000Z");
  CHECK((*a)["late_s"].get<double>() == Approx(107400));
  CHECK((*a)["availability_pct"].get<double>() == Approx(100.0 * (1 - 107400.0 / 7948800.0)).margin(0.006));

  const auto* pump = source(*a, "tram-bom-1");
  REQUIRE(pump);
  CHECK((*pump)["readings"] == 89);
  CHECK((*pump)["good"] == 84);
  CHECK((*pump)["bad"] == 5);
  CHECK((*pump)["last_good"] == "2026-09-05T01:50:00.000Z");
  CHECK((*pump)["declared_dropped"] == 5);
  CHECK((*pump)["refused"] == 18);
  REQUIRE((*pump)["stale"].size() == 1);
  CHECK((*pump)["stale_s"].get<double>() == Approx(3600));
  const auto* level = source(*a, "muc-nuoc");
  REQUIRE(level);
  CHECK((*level)["readings"] == 10);
  CHECK((*level)["good"] == 10);
  REQUIRE((*level)["stale"].size() == 1);
  CHECK((*level)["stale"][0]["from"] == "2026-07-01T00:00:00.000Z");
  CHECK((*level)["stale_s"].get<double>() == Approx(7200));

  const auto* b = office(report, "bk-b");
  REQUIRE(b);
  CHECK((*b)["seqs_expected"] == 0);
  CHECK((*b)["completeness_pct"].get<double>() == Approx(100.0));
  REQUIRE((*b)["late"].size() == 1);
  CHECK((*b)["late"][0]["from"] == "2026-07-01T00:10:00.000Z");
  CHECK((*b)["late"][0]["to"] == "2026-10-01T00:00:00.000Z");
  CHECK((*b)["availability_pct"].get<double>() == Approx(100.0 * 600 / 7948800.0).margin(0.006));

  const auto* c = office(report, "bk-c");
  REQUIRE(c);
  CHECK((*c)["late"].empty());
  CHECK((*c)["availability_pct"].get<double>() == Approx(100.0));

  // The other formats carry the same figures.
  const auto csv = rig.command({"report", "--from", "2026-07-01", "--to", "2026-10-01", "--format", "csv"}, config);
  CHECK_THAT(csv, Catch::Contains("bk-a") && Catch::Contains(",114,104,"));
  const auto html = rig.command({"report", "--from", "2026-07-01", "--to", "2026-10-01", "--format", "html"}, config);
  CHECK_THAT(html, Catch::Contains("<html") && Catch::Contains("UBND xã A"));
  const auto plain = rig.command({"report", "--from", "2026-07-01", "--to", "2026-10-01"}, config);
  CHECK_THAT(plain, Catch::Contains("104 of 114 seqs received"));
}

TEST_CASE("report refuses a period that is not one", "[receiver][report]") {
  ReceiverRig rig;
  const auto config = rig.receiver_config("ioc-receiver-1", free_tcp_port());
  const auto log = rig.tmp().file("bad-period.out");
  CHECK(run_to_exit({ioc_receiver_binary(), "report", "--from", "2026-10-01", "--to", "2026-07-01", "-c", config}, log) == 2);
  CHECK_THAT(read_file(log), Catch::Contains("--to after --from"));
  CHECK(run_to_exit({ioc_receiver_binary(), "report", "--from", "2026-02-30", "--to", "2026-07-01", "-c", config}, log) == 2);
}
