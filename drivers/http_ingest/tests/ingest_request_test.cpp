// The body of POST /v1/readings (drivers/http_ingest/ingest_request.h): what is taken, and the
// first bad field named by its JSON pointer.
#include <catch2/catch.hpp>

#include "drivers/http_ingest/ingest_config.h"
#include "drivers/http_ingest/ingest_request.h"

using namespace ioc_edge;
using namespace ioc_edge::http_ingest;

namespace {

constexpr std::int64_t kNow = 1'795'000'000'000;

ParseOptions options(std::vector<std::string> allowed = {"mot-cua", "mot-cua-*"}) {
  ParseOptions o;
  o.own_source = "mot-cua";
  o.now_ms = kNow;
  o.max_readings = 5;
  o.allowed = [allowed](const std::string& s) {
    for (const auto& p : allowed)
      if (source_allowed(p, s)) return true;
    return false;
  };
  return o;
}

Problem problem_of(const std::string& body, const ParseOptions& o = options()) {
  Parsed p;
  Problem problem;
  REQUIRE_FALSE(parse_request(body, o, p, problem));
  return problem;
}

}  // namespace

TEST_CASE("a request's readings: values of every JSON type, sources in runs, ts with any offset", "[http-ingest]") {
  Parsed p;
  Problem problem;
  const std::string body = R"({"batch_id":"b-1","readings":[
    {"point":"ho_so_tiep_nhan","value":12,"unit":"hồ sơ"},
    {"source":"mot-cua-hoso","point":"ty_le","value":97.5,"ts":"2026-11-30T08:00:00+07:00"},
    {"source":"mot-cua-hoso","point":"ghi_chu","value":"đúng hạn","ts":"2026-11-30T01:00:00Z"},
    {"source":"mot-cua","point":"ho_so","value":{"ma":"H01","trang_thai":"da_tra"},"quality":"uncertain","error":"chưa ký"},
    {"point":"may_in","value":null,"quality":"bad","error":"offline"}]})";
  REQUIRE(parse_request(body, options(), p, problem));
  CHECK(p.batch_id == "b-1");
  CHECK(p.readings == 5);
  REQUIRE(p.groups.size() == 3);  // mot-cua, mot-cua-hoso x2, mot-cua x2
  CHECK(p.groups[0].source == "mot-cua");
  CHECK(p.groups[1].source == "mot-cua-hoso");
  CHECK(p.groups[1].readings.size() == 2);
  CHECK(p.groups[2].readings.size() == 2);
  const auto& r0 = p.groups[0].readings[0];
  CHECK(std::get<std::int64_t>(r0.value) == 12);
  CHECK(r0.unit == "hồ sơ");
  CHECK(r0.ts_ms == kNow);  // no ts: the time of receipt
  CHECK(p.groups[1].readings[0].ts_ms == p.groups[1].readings[1].ts_ms);  // 08:00+07:00 == 01:00Z
  CHECK(std::get<std::string>(p.groups[1].readings[1].value) == "đúng hạn");
  const auto& rec = p.groups[2].readings[0];
  CHECK(std::get<JsonText>(rec.value).text == R"({"ma":"H01","trang_thai":"da_tra"})");
  CHECK(rec.quality == Quality::Uncertain);
  CHECK(rec.error == "chưa ký");
  CHECK(std::holds_alternative<std::monostate>(p.groups[2].readings[1].value));
  CHECK(p.groups[2].readings[1].quality == Quality::Bad);
}

TEST_CASE("the first bad field is named by its JSON pointer", "[http-ingest]") {
  struct Case {
    std::string body, kind, pointer, message;
  };
  const std::vector<Case> cases = {
      {R"({"readings":[{"point":"a","value":1},)", "malformed_json", "", "not JSON"},
      {"{\"readings\":[{\"point\":\"a\xC3\",\"value\":1}]}", "invalid_utf8", "", "at byte 24"},
      {R"([1,2])", "bad_field", "", "JSON object"},
      {R"({"readings":[]})", "bad_field", "/readings", "empty"},
      {R"({"readings":[],"x":1})", "bad_field", "/x", "unknown field"},
      {R"({"reading":[]})", "bad_field", "/reading", "unknown field"},
      {R"({"batch_id":"has space","readings":[{"point":"a","value":1}]})", "bad_field", "/batch_id", "printable"},
      {R"({"readings":{}})", "bad_field", "/readings", "array"},
      {R"({"readings":[{"point":"a","value":1},{"point":"b"}]})", "bad_field", "/readings/1/value", "missing"},
      {R"({"readings":[{"point":"a","value":1},{"point":"b","value":null}]})", "bad_field", "/readings/1/value", "quality"},
      {R"({"readings":[{"point":"","value":1}]})", "bad_field", "/readings/0/point", "non-empty"},
      {R"({"readings":[{"value":1}]})", "bad_field", "/readings/0/point", "missing"},
      {R"({"readings":[{"point":"a","value":1,"vlaue":2}]})", "bad_field", "/readings/0/vlaue", "unknown field"},
      {R"({"readings":[{"point":"a","value":1,"ts":"2026-11-30T08:00:00"}]})", "bad_field", "/readings/0/ts", "offset"},
      {R"({"readings":[{"point":"a","value":1,"ts":1795000000}]})", "bad_field", "/readings/0/ts", "RFC 3339"},
      {R"({"readings":[{"point":"a","value":1,"quality":"ok"}]})", "bad_field", "/readings/0/quality", "good"},
      {R"({"readings":[{"point":"a","value":1,"unit":5}]})", "bad_field", "/readings/0/unit", "string"},
      {R"({"readings":[{"point":"a","value":1,"source":"bad name"}]})", "bad_field", "/readings/0/source", "1-64 characters"},
      {R"({"readings":[{"point":"a","value":1e999}]})", "malformed_json", "", "not JSON"},
      {R"({"readings":[1,2,3,4,5,6]})", "too_many_readings", "/readings", "split"},
      {R"({"readings":[{"point":"a","value":1},{"point":"b","value":2,"source":"thue"}]})", "forbidden",
       "/readings/1/source", "may not write source \"thue\""},
  };
  for (const auto& c : cases) {
    INFO(c.body);
    const auto p = problem_of(c.body);
    CHECK(p.kind == c.kind);
    CHECK(p.pointer == c.pointer);
    CHECK_THAT(p.message, Catch::Contains(c.message));
    CHECK(p.status == (c.kind == "forbidden" ? 403 : 400));
  }
  // A value too large for the outbox is named with its reading.
  const auto big = problem_of(R"({"readings":[{"point":"a","value":")" + std::string(300 * 1024, 'x') + R"("}]})");
  CHECK(big.pointer == "/readings/0");
  CHECK_THAT(big.message, Catch::Contains("256 KiB"));
}

TEST_CASE("source patterns: a name, or a prefix ending in '*'", "[http-ingest]") {
  CHECK(source_allowed("mot-cua", "mot-cua"));
  CHECK_FALSE(source_allowed("mot-cua", "mot-cua-hoso"));
  CHECK(source_allowed("mot-cua-*", "mot-cua-hoso"));
  CHECK(source_allowed("mot-cua-*", "mot-cua-"));
  CHECK_FALSE(source_allowed("mot-cua-*", "mot-cua"));
  CHECK_FALSE(source_allowed("mot-cua-*", "thue"));
  CHECK(source_allowed("*", "anything"));
  CHECK(valid_batch_id("hs-2026-11-30-0042"));
  CHECK_FALSE(valid_batch_id(""));
  CHECK_FALSE(valid_batch_id(std::string(129, 'a')));
  CHECK_FALSE(valid_batch_id("a b"));
}
