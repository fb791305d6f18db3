// receiver/ingest.h: messages into rows, without a database.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>
#include <zstd.h>

#include "receiver/ingest.h"

using namespace ioc_receiver;
using ioc_edge::mqtt_wire::Publish;
using nlohmann::json;

namespace {

const std::string kStore = "6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d";

json batch(const std::string& site, std::int64_t first, int n, const std::string& source = "tram-bom-1") {
  json b = {{"schema", "ioc-edge/batch/1"}, {"site", site}, {"store", kStore}, {"sent_at", "2026-11-30T09:00:01.000Z"},
            {"org", {{"unit_code", "01843"}, {"name", "UBND xã Chợ Đồn"}}}, {"readings", json::array()}};
  for (int i = 0; i < n; ++i)
    b["readings"].push_back({{"seq", first + i}, {"ts", "2026-11-30T09:00:00.000Z"}, {"source", source},
                             {"point", "flow_rate"}, {"value", 12.5}, {"unit", "m3/h"}, {"quality", "good"}});
  return b;
}

Publish message(const std::string& topic, const std::string& payload) {
  Publish p;
  p.topic = topic;
  p.payload = payload;
  p.qos = 1;
  return p;
}

RowBatch ingest(const Publish& p) {
  Ingest in({"ioc"});
  RowBatch b;
  in.add(p, b);
  return b;
}

}  // namespace

TEST_CASE("office topics parse into province, site, kind and source", "[receiver][ingest]") {
  const auto t = parse_office_topic("ioc/bac-kan/bk-cho-don/data/tram-bom-1", "ioc");
  REQUIRE(t);
  CHECK(t->province == "bac-kan");
  CHECK(t->site == "bk-cho-don");
  CHECK(t->source == "tram-bom-1");
  CHECK(t->kind == TopicKind::Data);
  CHECK(parse_office_topic("ioc/bac-kan/bk-cho-don/status", "ioc")->kind == TopicKind::Status);
  CHECK(parse_office_topic("ioc/bac-kan/bk-cho-don/event/_gateway", "ioc")->kind == TopicKind::Event);
  CHECK(parse_office_topic("ioc/bac-kan/bk-cho-don/blob/cam-1", "ioc")->kind == TopicKind::Blob);
  CHECK_FALSE(parse_office_topic("ioc/bac-kan/bk-cho-don/cmd/x", "ioc"));
  CHECK_FALSE(parse_office_topic("ioc/bac-kan/bk-cho-don/data", "ioc"));
  CHECK_FALSE(parse_office_topic("ioc/bac-kan/bk-cho-don/data/a/b", "ioc"));
  CHECK_FALSE(parse_office_topic("ioc/bac-kan/bk-cho-don/status/x", "ioc"));
  CHECK_FALSE(parse_office_topic("other/bac-kan/bk-cho-don/data/x", "ioc"));
  CHECK_FALSE(parse_office_topic("ioc//bk-cho-don/data/x", "ioc"));
}

TEST_CASE("seq ranges merge whatever order the seqs come in", "[receiver][ingest]") {
  std::vector<SeqRange> r;
  add_range(r, 5, 5);
  add_range(r, 6, 9);
  add_range(r, 1, 2);
  add_range(r, 20, 20);
  add_range(r, 12, 14);
  CHECK(r == std::vector<SeqRange>{{1, 2}, {5, 9}, {12, 14}, {20, 20}});
  add_range(r, 3, 4);  // joins 1-2 and 5-9
  CHECK(r == std::vector<SeqRange>{{1, 9}, {12, 14}, {20, 20}});
  add_range(r, 10, 19);  // joins everything
  CHECK(r == std::vector<SeqRange>{{1, 20}});
  add_range(r, 7, 8);  // already in
  CHECK(r == std::vector<SeqRange>{{1, 20}});
}

TEST_CASE("a data batch becomes COPY rows with its seq ranges, its office and its source", "[receiver][ingest]") {
  auto b = batch("bk-cho-don", 41, 3);
  b["readings"][1]["quality"] = "bad";
  b["readings"][1]["value"] = nullptr;
  b["readings"][1]["error"] = "timeout\tafter 1 s\nand a \\ backslash";
  b["readings"][2]["value"] = {{"a", 1}};
  b["readings"][2].erase("unit");
  const auto rows = ingest(message("ioc/bac-kan/bk-cho-don/data/tram-bom-1", b.dump()));
  REQUIRE(rows.quarantine.empty());
  CHECK(rows.readings == 3);
  CHECK(rows.readings_copy ==
        "bk-cho-don\t" + kStore + "\t41\t2026-11-30T09:00:00.000Z\ttram-bom-1\tflow_rate\t12.5\t\\N\tm3/h\tgood\t\\N\n" +
            "bk-cho-don\t" + kStore +
            "\t42\t2026-11-30T09:00:00.000Z\ttram-bom-1\tflow_rate\t\\N\t\\N\tm3/h\tbad\ttimeout\\tafter 1 s\\nand a "
            "\\\\ backslash\n" +
            "bk-cho-don\t" + kStore + "\t43\t2026-11-30T09:00:00.000Z\ttram-bom-1\tflow_rate\t\\N\t{\"a\":1}\t\\N\tgood\t\\N\n");
  CHECK(rows.seqs.at({"bk-cho-don", kStore}) == std::vector<SeqRange>{{41, 43}});
  CHECK(rows.offices.at("bk-cho-don").province == "bac-kan");
  CHECK(rows.offices.at("bk-cho-don").unit_code == std::optional<std::string>("01843"));
  const auto& src = rows.sources.at({"bk-cho-don", "tram-bom-1"});
  CHECK(src.last_good_ts == std::optional<std::string>("2026-11-30T09:00:00.000Z"));
}

TEST_CASE("a gap event becomes an event row and gap rows", "[receiver][ingest]") {
  auto b = batch("bk-cho-don", 600, 1, "_gateway");
  b["readings"][0]["point"] = "gap";
  b["readings"][0].erase("unit");
  b["readings"][0]["value"] = {{"event", "gap"}, {"reason", "max_size"}, {"ranges", {{1, 500}, {510, 520}}}, {"count", 511}};
  const auto rows = ingest(message("ioc/bac-kan/bk-cho-don/event/_gateway", b.dump()));
  REQUIRE(rows.quarantine.empty());
  CHECK(rows.readings == 0);
  CHECK(rows.events == 1);
  CHECK(rows.gaps == 2);
  CHECK(rows.gaps_copy == "bk-cho-don\t" + kStore + "\t1\t500\tmax_size\t2026-11-30T09:00:00.000Z\t600\n" +
                              "bk-cho-don\t" + kStore + "\t510\t520\tmax_size\t2026-11-30T09:00:00.000Z\t600\n");
  CHECK(rows.seqs.at({"bk-cho-don", kStore}) == std::vector<SeqRange>{{600, 600}});
}

TEST_CASE("every bad message is quarantined once with a specific reason and adds no row", "[receiver][ingest]") {
  struct Case {
    std::string topic, payload, reason;
  };
  auto forged = batch("bk-na-ri", 1, 1);
  auto fine = batch("bk-cho-don", 1, 2);
  fine["readings"][1]["quality"] = "fine";
  auto bad_time = batch("bk-cho-don", 1, 1);
  bad_time["readings"][0]["ts"] = "2026-02-30T00:00:00.000Z";
  const std::vector<Case> cases = {
      {"ioc/bac-kan/bk-cho-don/data/x", forged.dump(), "site \"bk-na-ri\" in the message but \"bk-cho-don\" in its topic"},
      {"ioc/bac-kan/bk-cho-don/data/x", fine.dump(), "/readings/1/quality"},
      {"ioc/bac-kan/bk-cho-don/data/x", bad_time.dump(), "/readings/0/ts"},
      {"ioc/bac-kan/bk-cho-don/data/x", "[1, 2", "not JSON"},
      {"ioc/bac-kan/bk-cho-don/data/x", std::string("{\"a\": \"\xff\"}"), "not JSON"},
      {"ioc/bac-kan/bk-cho-don/data/x", std::string("\x28\xB5\x2F\xFD garbage", 12), "cannot decompress"},
      {"ioc/bac-kan/bk-cho-don/nonsense/x", "{}", "not an office topic"},
      {"ioc/bac-kan/bk-cho-don/status", "{\"state\": \"online\", \"site\": \"bk-cho-don\"}", "status.schema.json"},
  };
  for (const auto& c : cases) {
    INFO(c.topic << " " << c.payload);
    const auto rows = ingest(message(c.topic, c.payload));
    REQUIRE(rows.quarantine.size() == 1);
    CHECK_THAT(rows.quarantine[0].reason, Catch::Contains(c.reason));
    CHECK(rows.quarantine[0].payload == c.payload);
    CHECK(rows.readings == 0);
    CHECK(rows.seqs.empty());
    CHECK(rows.offices.empty());
  }
  // An oversized message: counted and quarantined without its bytes.
  auto big = message("ioc/bac-kan/bk-cho-don/data/x", "");
  big.oversized = true;
  big.payload_size = 70u << 20;
  const auto rows = ingest(big);
  REQUIRE(rows.quarantine.size() == 1);
  CHECK_THAT(rows.quarantine[0].reason, Catch::Contains("73400320 bytes"));
}

TEST_CASE("a zstd payload is decompressed, within the limit", "[receiver][ingest]") {
  const auto plain = batch("bk-cho-don", 1, 50).dump();
  std::string packed(ZSTD_compressBound(plain.size()), '\0');
  packed.resize(ZSTD_compress(packed.data(), packed.size(), plain.data(), plain.size(), 3));
  REQUIRE(packed.size() < plain.size());
  Ingest in({"ioc"});
  RowBatch rows;
  in.add(message("ioc/bac-kan/bk-cho-don/data/x", packed), rows);
  CHECK(rows.readings == 50);
  CHECK(in.counters().decompressed == 1);
  // A bomb: more than max_payload once inflated.
  Ingest small({"ioc", 1000});
  RowBatch refused;
  small.add(message("ioc/bac-kan/bk-cho-don/data/x", packed), refused);
  REQUIRE(refused.quarantine.size() == 1);
  CHECK_THAT(refused.quarantine[0].reason, Catch::Contains("larger than 1000 bytes"));
}

TEST_CASE("an MQTT 5 blob is checked against its properties", "[receiver][ingest]") {
  const std::string bytes = "\x89PNG not really";
  auto m = message("ioc/bac-kan/bk-cho-don/blob/cam-1", bytes);
  m.user_properties = {{"schema", "ioc-edge/blob/1"}, {"site", "bk-cho-don"}, {"store", kStore}, {"seq", "77"},
                       {"source", "cong-chinh"}, {"sent_at", "2026-11-30T09:00:01.000Z"}, {"point", "snapshot"},
                       {"ts", "2026-11-30T09:00:00.000Z"}, {"content_type", "image/png"},
                       {"size", std::to_string(bytes.size())}, {"sha256", sha256_hex(bytes)}};
  const auto rows = ingest(m);
  REQUIRE(rows.quarantine.empty());
  REQUIRE(rows.blobs.size() == 1);
  CHECK(rows.blobs[0].seq == 77);
  CHECK(rows.blobs[0].content == bytes);
  CHECK(rows.blobs[0].content_type == "image/png");
  CHECK(rows.seqs.at({"bk-cho-don", kStore}) == std::vector<SeqRange>{{77, 77}});
  // Bytes that do not match their sha256 property.
  auto changed = m;
  changed.payload[0] = 'X';
  const auto bad = ingest(changed);
  REQUIRE(bad.quarantine.size() == 1);
  CHECK_THAT(bad.quarantine[0].reason, Catch::Contains("SHA-256"));
  CHECK_THAT(bad.quarantine[0].properties, Catch::Contains("\"seq\":\"77\""));
  // Without properties (MQTT 3.1.1): left for the writer to match by SHA-256.
  const auto plain = ingest(message("ioc/bac-kan/bk-cho-don/blob/cam-1", bytes));
  REQUIRE(plain.unmatched_blobs.size() == 1);
  CHECK(plain.unmatched_blobs[0].sha256_hex == sha256_hex(bytes));
}

TEST_CASE("a retained heartbeat and a last will become status rows", "[receiver][ingest]") {
  const json hb = {{"state", "online"}, {"site", "bk-cho-don"}, {"store", kStore}, {"ts", "2026-11-30T09:00:00.000Z"},
                   {"version", "0.8.0"}, {"uptime_s", 5}, {"backlog", 12}, {"oldest_age_s", 1.5}, {"held", 0},
                   {"fault", nullptr}};
  auto m = message("ioc/bac-kan/bk-cho-don/status", hb.dump());
  m.retain = true;
  const auto rows = ingest(m);
  REQUIRE(rows.statuses.size() == 1);
  CHECK(rows.statuses[0].retained);
  CHECK(rows.statuses[0].backlog == std::optional<std::int64_t>(12));
  CHECK(rows.statuses[0].ts == std::optional<std::string>("2026-11-30T09:00:00.000Z"));
  const json will = {{"state", "offline"}, {"site", "bk-cho-don"}, {"store", kStore}};
  const auto w = ingest(message("ioc/bac-kan/bk-cho-don/status", will.dump()));
  REQUIRE(w.statuses.size() == 1);
  CHECK(w.statuses[0].state == "offline");
  CHECK_FALSE(w.statuses[0].ts);
}

TEST_CASE("U+0000 and a seq beyond 18 digits are quarantined before the database sees them", "[receiver][ingest]") {
  auto nul = batch("bk-cho-don", 1, 2);
  nul["readings"][1]["quality"] = "bad";
  nul["readings"][1]["value"] = nullptr;
  nul["readings"][1]["error"] = std::string("dev\0ice", 7);
  auto rows = ingest(message("ioc/bac-kan/bk-cho-don/data/x", nul.dump()));
  REQUIRE(rows.quarantine.size() == 1);
  CHECK(rows.quarantine[0].reason == "/readings/1/error: holds the character U+0000, which the database cannot store in text");
  CHECK(rows.readings == 0);
  auto huge = batch("bk-cho-don", 9223372036854775807LL, 1);
  rows = ingest(message("ioc/bac-kan/bk-cho-don/data/x", huge.dump()));
  REQUIRE(rows.quarantine.size() == 1);
  CHECK_THAT(rows.quarantine[0].reason, Catch::Contains("/readings/0/seq"));
  // A quarantine reason cut to length never splits a character.
  auto forged = batch(std::string(79, 'x') + "đ", 1, 1);
  rows = ingest(message("ioc/bac-kan/bk-cho-don/data/x", forged.dump()));
  REQUIRE(rows.quarantine.size() == 1);
  CHECK_THAT(rows.quarantine[0].reason, Catch::Contains(std::string(79, 'x') + "...\""));
}

TEST_CASE("a refused message keeps its site and properties in quarantine", "[receiver][ingest]") {
  auto m = message("ioc/bac-kan/bk-cho-don/blob/cam-1", "bytes");
  m.user_properties = {{"seq", "5"}};
  const auto q = Ingest::refused(m, "the database refused it: x");
  CHECK(q.site_in_topic == std::optional<std::string>("bk-cho-don"));
  CHECK(q.properties == "{\"seq\":\"5\"}");
}

#include "receiver/writer.h"

TEST_CASE("only the data's own faults count as the messages' fault", "[receiver][writer]") {
  using ioc_receiver::pg::Error;
  CHECK(Writer::data_error(Error("invalid byte sequence", "22021")));
  CHECK(Writer::data_error(Error("value too long", "22001")));
  CHECK(Writer::data_error(Error("check violation", "23514") ) == false);  // a partition being attached
  CHECK(Writer::data_error(Error("not null", "23502")));
  CHECK(Writer::data_error(Error("index row too large", "54000")));
  CHECK_FALSE(Writer::data_error(Error("unique", "23505")));
  CHECK_FALSE(Writer::data_error(Error("disk full", "53100")));
  CHECK_FALSE(Writer::data_error(Error("read-only transaction", "25006")));
  CHECK_FALSE(Writer::data_error(Error("statement timeout", "57014")));
  CHECK_FALSE(Writer::data_error(Error("connection lost", "", true)));
}
