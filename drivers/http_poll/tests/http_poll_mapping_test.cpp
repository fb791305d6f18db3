// How a polled JSON document becomes readings: records with point, value, ts and unit pointers;
// whole records as object values; one value with a fixed point name; and every problem named.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "drivers/http_poll/http_poll_mapping.h"

using namespace ioc_edge;
using namespace ioc_edge::http_poll;

namespace {

constexpr std::int64_t kNow = 1800000000000;             // 2027-01-15T08:00:00Z: the time of the answer

Mapped run(const Mapping& m, std::string_view body) {
  std::string error;
  auto mapper = Mapper::build(m, error);
  INFO(error);
  REQUIRE(mapper);
  return mapper->map(body, kNow);
}

// A health department's daily summary: one record per indicator.
const char* kSummary = R"({"don_vi":"TTYT Chợ Đồn","data":{"items":[
  {"chi_tieu":"so-ca-sot-xuat-huyet","gia_tri":12,"don_vi":"ca","ngay":"2026-11-30T00:00:00+07:00"},
  {"chi_tieu":"so-ca-tay-chan-mieng","gia_tri":3,"don_vi":"ca","ngay":"2026-11-30T00:00:00+07:00"},
  {"chi_tieu":"ty-le-tiem-chung","gia_tri":97.5,"don_vi":"%","ngay":"2026-11-30T00:00:00+07:00"}
]}})";

double num(const Reading& r) {
  if (const auto* d = std::get_if<double>(&r.value)) return *d;
  if (const auto* i = std::get_if<std::int64_t>(&r.value)) return static_cast<double>(*i);
  FAIL("not a number: " << r.point);
  return 0;
}

}  // namespace

TEST_CASE("http-poll mapping: records with point, value, ts and unit pointers", "[http-poll][mapping]") {
  Mapping m;
  m.records = "/data/items";
  m.point_pointer = "/chi_tieu";
  m.value_pointer = "/gia_tri";
  m.ts.pointer = "/ngay";
  m.unit_pointer = "/don_vi";
  const auto out = run(m, kSummary);
  CHECK(out.error.empty());
  CHECK(out.problems.empty());
  REQUIRE(out.readings.size() == 3);
  CHECK(out.readings[0].point == "so-ca-sot-xuat-huyet");
  CHECK(std::get<std::int64_t>(out.readings[0].value) == 12);
  CHECK(out.readings[0].unit == "ca");
  CHECK(format_rfc3339_ms(out.readings[0].ts_ms) == "2026-11-29T17:00:00.000Z");
  CHECK(out.readings[0].quality == Quality::Good);
  CHECK(num(out.readings[2]) == 97.5);
  CHECK(out.readings[2].unit == "%");
}

TEST_CASE("http-poll mapping: whole records as object values under one point name", "[http-poll][mapping]") {
  Mapping m;
  m.records = "/data/items";
  m.point = "chi-tieu-ngay";
  m.unit = "ca";
  const auto out = run(m, kSummary);
  REQUIRE(out.readings.size() == 3);
  for (const auto& r : out.readings) {
    CHECK(r.point == "chi-tieu-ngay");
    CHECK(r.ts_ms == kNow);  // no ts_pointer: the time of the answer
    CHECK(r.unit == "ca");
  }
  const auto* j = std::get_if<JsonText>(&out.readings[1].value);
  REQUIRE(j);
  const auto rec = nlohmann::json::parse(j->text);
  CHECK(rec["chi_tieu"] == "so-ca-tay-chan-mieng");
  CHECK(rec["gia_tri"] == 3);
}

TEST_CASE("http-poll mapping: a document that is one value, under a fixed point name", "[http-poll][mapping]") {
  Mapping m;
  m.point = "muc-nuoc";
  m.unit = "cm";
  SECTION("a bare number") {
    const auto out = run(m, " 123.5\n");
    REQUIRE(out.readings.size() == 1);
    CHECK(num(out.readings[0]) == 123.5);
    CHECK(out.readings[0].unit == "cm");
  }
  SECTION("a member of an object, its time in Unix seconds") {
    m.value_pointer = "/level";
    m.ts.pointer = "/t";
    m.ts.format = TsFormat::Unix;
    const auto out = run(m, R"({"level":87,"t":1796032800})");
    REQUIRE(out.readings.size() == 1);
    CHECK(num(out.readings[0]) == 87);
    CHECK(format_rfc3339_ms(out.readings[0].ts_ms) == "2026-11-30T10:00:00.000Z");
  }
  SECTION("the whole object as the value") {
    const auto out = run(m, R"({"level":87,"pump":"on"})");
    REQUIRE(out.readings.size() == 1);
    REQUIRE(std::holds_alternative<JsonText>(out.readings[0].value));
    CHECK(nlohmann::json::parse(std::get<JsonText>(out.readings[0].value).text)["pump"] == "on");
  }
  SECTION("records = \"\": the document itself is the array; times in milliseconds") {
    m.records = "";
    m.value_pointer = "/v";
    m.ts.pointer = "/t";
    m.ts.format = TsFormat::UnixMs;
    const auto out = run(m, R"([{"v":1,"t":1796032800123},{"v":2,"t":1796032801123}])");
    REQUIRE(out.readings.size() == 2);
    CHECK(format_rfc3339_ms(out.readings[1].ts_ms) == "2026-11-30T10:00:01.123Z");
  }
}

TEST_CASE("http-poll mapping: a document that cannot be read fails the poll with the reason", "[http-poll][mapping]") {
  Mapping m;
  m.records = "/data/items";
  m.point = "p";
  auto out = run(m, "<html><body>Service Unavailable</body></html>");
  CHECK(out.readings.empty());
  CHECK(out.kind == "malformed_json");
  CHECK_THAT(out.error, Catch::StartsWith("invalid JSON: parse error at line 1, column 1"));

  out = run(m, "");
  CHECK(out.kind == "empty_body");
  CHECK(out.error == "empty body");

  out = run(m, "{\"a\":\"\xC3\x28\"}");
  CHECK(out.kind == "invalid_utf8");
  CHECK(out.error == "invalid UTF-8 at byte 6");

  out = run(m, R"({"data":{}})");
  CHECK(out.kind == "no_match");
  CHECK(out.error == "records \"/data/items\" not found in the document");

  out = run(m, R"({"data":{"items":{"a":1}}})");
  CHECK(out.error == "records \"/data/items\" is an object, not an array");

  out = run(m, std::string(100, '[') + std::string(100, ']'));
  CHECK(out.error == "JSON nested deeper than 64 levels");
}

TEST_CASE("http-poll mapping: problems in single records are counted, the others stored", "[http-poll][mapping]") {
  Mapping m;
  m.records = "/items";
  m.point_pointer = "/name";
  m.value_pointer = "/v";
  m.ts.pointer = "/t";
  const auto out = run(m, R"({"items":[
    {"name":"a","v":1,"t":"2026-11-30T10:00:00Z"},
    {"v":2,"t":"2026-11-30T10:00:00Z"},
    {"name":{"x":1},"v":3},
    {"name":"d","t":"2026-11-30T10:00:00Z"},
    {"name":"e","v":5,"t":"yesterday"},
    {"name":"f","v":null,"t":"2026-11-30T10:00:00Z"},
    {"name":7,"v":true,"t":"2026-11-30T10:00:00Z"}
  ]})");
  CHECK(out.error.empty());
  // a stored; b: no name (skipped); c: a name that is no name (skipped); d: no value (bad);
  // e: time unreadable (uncertain, the time of the answer); f: null (skipped); 7: a number names it.
  REQUIRE(out.readings.size() == 4);
  CHECK(out.readings[0].point == "a");
  CHECK(out.readings[1].point == "d");
  CHECK(out.readings[1].quality == Quality::Bad);
  CHECK(out.readings[1].error == "value_pointer \"/v\" not found in record 3");
  CHECK(std::holds_alternative<std::monostate>(out.readings[1].value));
  CHECK(out.readings[2].point == "e");
  CHECK(out.readings[2].quality == Quality::Uncertain);
  CHECK(out.readings[2].ts_ms == kNow);
  CHECK_THAT(out.readings[2].error, Catch::Contains("\"yesterday\" is not an RFC 3339 time"));
  CHECK(out.readings[3].point == "7");
  CHECK(std::get<bool>(out.readings[3].value) == true);
  CHECK(out.problems.at("no_match") == 2);
  CHECK(out.problems.at("bad_point_name") == 1);
  CHECK(out.problems.at("bad_timestamp") == 1);  // c was skipped before its time was read
  CHECK(out.first_problem == "record 1: point_pointer \"/name\" not found");
}

TEST_CASE("http-poll mapping: a record the pipeline would refuse is left out, not the whole poll", "[http-poll][mapping]") {
  Mapping m;
  m.records = "";
  m.point = "ghi-chu";
  const std::string big(300 * 1024, 'x');
  const auto out = run(m, "[\"ngắn\", \"" + big + "\"]");
  REQUIRE(out.readings.size() == 1);
  CHECK(std::get<std::string>(out.readings[0].value) == "ngắn");
  CHECK(out.problems.at("bad_value") == 1);
  CHECK_THAT(out.first_problem, Catch::Contains("record 1: value of point \"ghi-chu\" is larger than 256 KiB"));
}

TEST_CASE("http-poll mapping: more records than one poll may hold are refused whole", "[http-poll][mapping]") {
  Mapping m;
  m.records = "";
  m.point = "p";
  std::string body = "[";
  for (std::size_t i = 0; i <= kMaxReadingsPerPoll; ++i) body += i ? ",1" : "1";
  body += "]";
  const auto out = run(m, body);
  CHECK(out.readings.empty());
  CHECK(out.kind == "too_many_records");
  CHECK_THAT(out.error, Catch::Contains("more than 100000 in one document"));
}
