#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "core/envelope.h"
#include "core/reading.h"

using namespace ioc_edge;

TEST_CASE("UTF-8 validation accepts Vietnamese and rejects malformed bytes", "[reading]") {
  CHECK(valid_utf8("Mực nước sông Cầu"));
  CHECK(valid_utf8(""));
  CHECK(valid_utf8("\xF0\x9F\x8C\x8A"));         // U+1F30A
  CHECK_FALSE(valid_utf8("\xC3"));               // truncated
  CHECK_FALSE(valid_utf8("\xC0\xAF"));           // overlong '/'
  CHECK_FALSE(valid_utf8("\xED\xA0\x80"));       // surrogate
  CHECK_FALSE(valid_utf8("\xF4\x90\x80\x80"));   // > U+10FFFF
  CHECK_FALSE(valid_utf8("ok\xFFok"));
}

TEST_CASE("timestamps are RFC 3339 UTC with milliseconds", "[reading]") {
  CHECK(format_rfc3339_ms(0) == "1970-01-01T00:00:00.000Z");
  CHECK(format_rfc3339_ms(1795903799500) == "2026-11-28T22:09:59.500Z");
  CHECK(format_rfc3339_ms(1795903799999) == "2026-11-28T22:09:59.999Z");  // same second: cached prefix
  CHECK(format_rfc3339_ms(1795903800007) == "2026-11-28T22:10:00.007Z");  // next second: new prefix
  CHECK(format_rfc3339_ms(-1) == "1969-12-31T23:59:59.999Z");
}

TEST_CASE("a reading body is JSON with every field, escaped", "[reading]") {
  Reading r;
  r.point = "mực \"nước\"\n";
  r.ts_ms = 1795903799500;
  r.value = 12.5;
  r.unit = "m3/h";
  const auto j = nlohmann::json::parse(reading_body_json("trạm-1", r));
  CHECK(j["point"] == "mực \"nước\"\n");
  CHECK(j["source"] == "trạm-1");
  CHECK(j["value"] == 12.5);
  CHECK(j["unit"] == "m3/h");
  CHECK(j["quality"] == "good");
  CHECK(j["ts"] == "2026-11-28T22:09:59.500Z");
  CHECK_FALSE(j.contains("error"));

  Reading bad;
  bad.point = "p";
  bad.quality = Quality::Bad;
  bad.error = "timeout";
  const auto jb = nlohmann::json::parse(reading_body_json("s", bad));
  CHECK(jb["value"].is_null());
  CHECK(jb["error"] == "timeout");
  CHECK_FALSE(jb.contains("unit"));

  Reading obj;
  obj.point = "record";
  obj.value = JsonText{R"({"a":[1,2]})"};
  CHECK(nlohmann::json::parse(reading_body_json("s", obj))["value"]["a"][1] == 2);
  Reading i;
  i.point = "count";
  i.value = std::int64_t{9007199254740993};
  CHECK(nlohmann::json::parse(reading_body_json("s", i))["value"].get<std::int64_t>() == 9007199254740993);
}

TEST_CASE("a batch splices seq into each stored body", "[batch]") {
  Reading r;
  r.point = "p0";
  r.value = true;
  std::vector<Record> recs;
  for (std::int64_t seq : {7, 8, 10}) recs.push_back({seq, seq, Priority::Normal, Kind::Data, "s", reading_body_json("s", r)});
  std::vector<const Record*> ptrs;
  for (auto& x : recs) ptrs.push_back(&x);
  const auto j = nlohmann::json::parse(build_batch({"site-1", "6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d", R"({"unit_code":"01843"})"},
                                                   1795903799500, ptrs));
  CHECK(j["schema"] == "ioc-edge/batch/1");
  CHECK(j["site"] == "site-1");
  CHECK(j["org"]["unit_code"] == "01843");
  CHECK(j["sent_at"] == "2026-11-28T22:09:59.500Z");
  REQUIRE(j["readings"].size() == 3);
  CHECK(j["readings"][0]["seq"] == 7);
  CHECK(j["readings"][2]["seq"] == 10);
  CHECK(j["readings"][2]["value"] == true);

  const auto ranges = seq_ranges(ptrs);
  REQUIRE(ranges.size() == 2);
  CHECK(ranges[0].first == 7);
  CHECK(ranges[0].last == 8);
  CHECK(ranges[1].first == 10);
  CHECK(ranges[1].last == 10);
}

TEST_CASE("a batch gives each line of a several-reading record its own seq", "[batch]") {
  Reading a, b, c;
  a.point = "l1";
  a.value = 230.5;
  b.point = "l2";
  b.value = std::int64_t{7};
  c.point = "l3";
  c.quality = Quality::Bad;
  c.error = "timeout";
  std::string body;
  append_reading_json(body, "meter", a);
  body += '\n';
  append_reading_json(body, "meter", b);
  body += '\n';
  append_reading_json(body, "meter", c);
  std::vector<Record> recs;
  recs.push_back({41, 43, Priority::Normal, Kind::Data, "meter", body});
  recs.push_back({44, 44, Priority::Normal, Kind::Data, "meter", reading_body_json("meter", a)});
  recs.push_back({50, 50, Priority::Normal, Kind::Data, "meter", reading_body_json("meter", b)});
  std::vector<const Record*> ptrs;
  for (auto& x : recs) ptrs.push_back(&x);
  const auto j = nlohmann::json::parse(build_batch({"site-1", "6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d", ""}, 0, ptrs));
  REQUIRE(j["readings"].size() == 5);
  CHECK(j["readings"][0]["seq"] == 41);
  CHECK(j["readings"][0]["point"] == "l1");
  CHECK(j["readings"][0]["value"] == 230.5);
  CHECK(j["readings"][1]["seq"] == 42);
  CHECK(j["readings"][1]["value"] == 7);
  CHECK(j["readings"][2]["seq"] == 43);
  CHECK(j["readings"][2]["error"] == "timeout");
  CHECK(j["readings"][3]["seq"] == 44);
  CHECK(j["readings"][4]["seq"] == 50);
  CHECK_FALSE(j.contains("org"));

  const auto ranges = seq_ranges(ptrs);
  REQUIRE(ranges.size() == 2);
  CHECK(ranges[0].first == 41);
  CHECK(ranges[0].last == 44);
  CHECK(ranges[1].first == 50);
}

TEST_CASE("a JSON value with raw newlines between tokens stays one line and the same JSON", "[reading]") {
  Reading r;
  r.point = "record";
  r.value = JsonText{"{\n  \"ten\": \"Tr\\u1ea7n\\nA\",\n  \"n\": [1,\n2]\n}"};
  const auto body = reading_body_json("he-thong", r);
  CHECK(body.find('\n') == std::string::npos);
  const auto j = nlohmann::json::parse(body);
  CHECK(j["value"]["ten"] == "Tr\u1ea7n\nA");
  CHECK(j["value"]["n"] == nlohmann::json::parse("[1,2]"));
}
