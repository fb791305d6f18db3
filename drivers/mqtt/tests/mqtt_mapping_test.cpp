// How MQTT messages become readings: topic filters, name templates, JSON flattening and pointers,
// plain values, timestamps; with the payloads of Zigbee2MQTT, Tasmota and Frigate.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <limits>
#include <ctime>
#include <string>

#include <nlohmann/json.hpp>

#include "drivers/mqtt/mqtt_mapping.h"

using namespace ioc_edge;
using namespace ioc_edge::mqtt;
using nlohmann::json;

namespace {

constexpr std::int64_t kNow = 1800000000000;            // 2027-01-15T08:00:00Z: "the time of receipt"
constexpr std::int64_t k2026_11_30_10h = 1796032800000;  // 2026-11-30T10:00:00Z

const char* kZigbee =
    R"({"temperature":23.5,"humidity":61,"battery":100,"linkquality":120,"contact":true,"last_seen":"2026-11-30T10:00:00.000Z"})";
const char* kTasmotaSensor = R"({"Time":"2026-11-30T17:05:00","ENERGY":{"Total":12.5,"Power":230,"Voltage":229}})";
const char* kFrigate = R"({"type":"new",
 "before":{"id":"1764493200.123-abc","camera":"cong-chinh","frame_time":1764493200.123,"label":"person","sub_label":null,
           "top_score":0.0,"false_positive":true,"start_time":1764493200.123,"end_time":null,"score":0.79,
           "box":[424,500,536,712],"area":23744,"region":[256,256,768,768],"current_zones":[],"entered_zones":[],
           "has_clip":false,"has_snapshot":false},
 "after":{"id":"1764493200.123-abc","camera":"cong-chinh","frame_time":1764493200.5,"label":"person","sub_label":null,
          "top_score":0.84,"false_positive":false,"start_time":1764493200.123,"end_time":null,"score":0.84,
          "box":[430,498,540,716],"area":24420,"region":[256,256,768,768],"current_zones":["san-truoc"],
          "entered_zones":["san-truoc"],"has_clip":true,"has_snapshot":true}})";

Mapper mapper(const Config& cfg) {
  std::string error;
  auto m = Mapper::build(cfg, error);
  INFO(error);
  REQUIRE(m);
  return std::move(*m);
}

Config json_config() {
  Config c;
  c.url = "mqtt://127.0.0.1:1883";
  c.host = "127.0.0.1";
  c.topics = {"zigbee2mqtt/+"};
  c.point = "{-1}";
  return c;
}

const Reading* find(const Mapped& m, const std::string& point) {
  for (const auto& r : m.readings)
    if (r.point == point) return &r;
  return nullptr;
}

std::optional<std::int64_t> ts(const json& v, TsFormat f, int offset = 0, std::string pattern = {}) {
  TimeSpec spec;
  spec.pointer = "/t";
  spec.format = f;
  spec.offset_minutes = offset;
  spec.pattern = std::move(pattern);
  std::string error;
  return parse_timestamp(v, spec, error);
}

// Sets TZ for one test and restores it.
class ZoneGuard {
 public:
  explicit ZoneGuard(const char* tz) {
    if (const char* old = std::getenv("TZ")) old_ = old, had_ = true;
    ::setenv("TZ", tz, 1);
    ::tzset();
  }
  ~ZoneGuard() {
    if (had_) ::setenv("TZ", old_.c_str(), 1);
    else ::unsetenv("TZ");
    ::tzset();
  }

 private:
  std::string old_;
  bool had_ = false;
};

}  // namespace

TEST_CASE("topic filters match as MQTT says", "[mqtt][mapping]") {
  CHECK(topic_matches("zigbee2mqtt/cua-chinh", "zigbee2mqtt/cua-chinh"));
  CHECK_FALSE(topic_matches("zigbee2mqtt/cua-chinh", "zigbee2mqtt/cua-sau"));
  CHECK(topic_matches("zigbee2mqtt/+", "zigbee2mqtt/cua-chinh"));
  CHECK_FALSE(topic_matches("zigbee2mqtt/+", "zigbee2mqtt/cua-chinh/availability"));
  CHECK_FALSE(topic_matches("zigbee2mqtt/+", "zigbee2mqtt"));
  CHECK(topic_matches("tele/+/SENSOR", "tele/o-cam-1/SENSOR"));
  CHECK_FALSE(topic_matches("tele/+/SENSOR", "tele/o-cam-1/STATE"));
  // '#' takes every level below, and the parent level itself.
  CHECK(topic_matches("frigate/#", "frigate/events"));
  CHECK(topic_matches("frigate/#", "frigate/cong-chinh/person/snapshot"));
  CHECK(topic_matches("frigate/#", "frigate"));
  CHECK(topic_matches("a/+/#", "a/b"));
  CHECK(topic_matches("a/+/#", "a/b/c/d"));
  CHECK_FALSE(topic_matches("a/+/#", "a"));
  CHECK(topic_matches("#", "a/b/c"));
  CHECK_FALSE(topic_matches("a/b", "a/b/c"));
  CHECK_FALSE(topic_matches("a/b/c", "a/b"));
  CHECK_FALSE(topic_matches("a/b", "a/bc"));
  // Empty levels are levels.
  CHECK(topic_matches("a/+/b", "a//b"));
  CHECK(topic_matches("+/+", "/finance"));
  CHECK(topic_matches("/+", "/finance"));
  CHECK_FALSE(topic_matches("+", "/finance"));
  CHECK(topic_matches("a/+", "a/"));
  CHECK(topic_matches("a/#", "a/"));
  // "$" topics are the broker's: wildcards at the first level do not take them.
  CHECK_FALSE(topic_matches("#", "$SYS/broker/load"));
  CHECK_FALSE(topic_matches("+/broker/load", "$SYS/broker/load"));
  CHECK(topic_matches("$SYS/#", "$SYS/broker/load"));
  CHECK(topic_matches("$SYS/broker/+", "$SYS/broker/load"));
  CHECK(topic_matches("a/#", "a/$b"));
}

TEST_CASE("topic filter problems", "[mqtt][mapping]") {
  CHECK(filter_problem("zigbee2mqtt/+") == "");
  CHECK(filter_problem("#") == "");
  CHECK(filter_problem("+") == "");
  CHECK(filter_problem("+/+/#") == "");
  CHECK(filter_problem("$SYS/#") == "");
  CHECK(filter_problem("a//b") == "");
  CHECK(filter_problem("/") == "");
  CHECK(filter_problem("a/#/b") == "'#' must be the last level");
  CHECK_THAT(filter_problem("a#"), Catch::StartsWith("'#' must be a whole level"));
  CHECK_THAT(filter_problem("a/b#"), Catch::StartsWith("'#' must be a whole level"));
  CHECK_THAT(filter_problem("a/b+/c"), Catch::StartsWith("'+' must be a whole level"));
  CHECK_THAT(filter_problem("++"), Catch::StartsWith("'+' must be a whole level"));
  CHECK(filter_problem("") == "a topic filter must not be empty");
  CHECK(filter_problem("a/\xff") == "not valid UTF-8");
  CHECK(filter_problem(std::string("a\0b", 3)) == "contains a NUL character");
  CHECK(filter_problem(std::string(65536, 'a')) == "longer than 65535 bytes");
  CHECK(filter_problem(std::string(65535, 'a')) == "");
}

TEST_CASE("topic levels", "[mqtt][mapping]") {
  CHECK(topic_levels("a/b/c") == std::vector<std::string_view>{"a", "b", "c"});
  CHECK(topic_levels("a") == std::vector<std::string_view>{"a"});
  CHECK(topic_levels("") == std::vector<std::string_view>{""});
  CHECK(topic_levels("/a/") == std::vector<std::string_view>{"", "a", ""});
  CHECK(topic_levels("a//b") == std::vector<std::string_view>{"a", "", "b"});
}

TEST_CASE("JSON pointer problems", "[mqtt][mapping]") {
  CHECK(pointer_problem("") == "");
  CHECK(pointer_problem("/") == "");
  CHECK(pointer_problem("/ENERGY/Power") == "");
  CHECK(pointer_problem("/a~0b/c~1d/0") == "");
  CHECK_THAT(pointer_problem("ENERGY/Power"), Catch::Contains("starts with '/'"));
  CHECK_THAT(pointer_problem("/a~2"), Catch::Contains("'~' must be followed by 0 or 1"));
  CHECK_THAT(pointer_problem("/a~"), Catch::Contains("'~' must be followed by 0 or 1"));
}

TEST_CASE("name templates from topic levels", "[mqtt][mapping]") {
  std::string error;
  const std::vector<std::string_view> levels{"zigbee2mqtt", "cua-chinh", "availability"};

  auto last = NameTemplate::parse("{-1}", error);
  CHECK(error.empty());
  CHECK(last.min_levels() == 1);
  CHECK(last.expand(levels, error) == "availability");

  auto t = NameTemplate::parse("z2m-{1}.{-1}", error);
  CHECK(error.empty());
  CHECK(t.expand(levels, error) == "z2m-cua-chinh.availability");
  CHECK(t.min_levels() == 2);
  CHECK(NameTemplate::parse("{0}", error).expand(levels, error) == "zigbee2mqtt");
  CHECK(NameTemplate::parse("{-3}", error).expand(levels, error) == "zigbee2mqtt");
  // Literal braces.
  CHECK(NameTemplate::parse("{{x}}-{2}", error).expand(levels, error) == "{x}-availability");
  CHECK(error.empty());
  // Plain text: no levels needed.
  auto plain = NameTemplate::parse("cong-chinh", error);
  CHECK(plain.min_levels() == 0);
  CHECK(plain.expand({}, error) == "cong-chinh");
  CHECK(NameTemplate::parse("", error).empty());

  // Missing levels.
  const std::vector<std::string_view> two{"tele", "o-cam-1"};
  CHECK_FALSE(NameTemplate::parse("{3}", error).expand(two, error));
  CHECK(error == "topic has 2 levels, {3} needs 4");
  CHECK_FALSE(NameTemplate::parse("{-3}", error).expand(two, error));
  CHECK(error == "topic has 2 levels, {-3} needs 3");
  CHECK_FALSE(NameTemplate::parse("{1}", error).expand({"a"}, error));
  CHECK(error == "topic has 1 level, {1} needs 2");
  // An empty level is a level.
  CHECK(NameTemplate::parse("{-1}", error).expand({"a", ""}, error) == "");

  // Mistakes.
  const auto problem = [](std::string_view text) {
    std::string e;
    auto tpl = NameTemplate::parse(text, e);
    CHECK(tpl.empty());
    return e;
  };
  CHECK(problem("{x}") == "{x}: not a level number ({0} is the first level, {-1} the last)");
  CHECK_THAT(problem("{}"), Catch::StartsWith("{}: not a level number"));
  CHECK_THAT(problem("{+1}"), Catch::StartsWith("{+1}: not a level number"));
  CHECK_THAT(problem("{1.5}"), Catch::StartsWith("{1.5}: not a level number"));
  CHECK_THAT(problem("{-0}"), Catch::StartsWith("{-0}: counting from the end starts at {-1}"));
  CHECK_THAT(problem("{99999}"), Catch::StartsWith("{99999}: a topic has at most 32768 levels"));
  CHECK_THAT(problem("z2m-{1"), Catch::StartsWith("'{' without '}'"));
  CHECK_THAT(problem("z2m-}"), Catch::StartsWith("'}' without '{'"));
}

TEST_CASE("RFC 3339 times", "[mqtt][mapping][ts]") {
  CHECK(parse_rfc3339_ms("2026-11-30T10:00:00Z") == k2026_11_30_10h);
  CHECK(parse_rfc3339_ms("2026-11-30T10:00:00.000Z") == k2026_11_30_10h);
  CHECK(parse_rfc3339_ms("2026-11-30t10:00:00z") == k2026_11_30_10h);
  CHECK(parse_rfc3339_ms("2026-11-30 10:00:00Z") == k2026_11_30_10h);
  CHECK(parse_rfc3339_ms("2026-11-30T17:00:00+07:00") == k2026_11_30_10h);
  CHECK(parse_rfc3339_ms("2026-11-30T17:00:00+0700") == k2026_11_30_10h);
  CHECK(parse_rfc3339_ms("2026-11-30T06:30:00-03:30") == k2026_11_30_10h);
  // Fractions, to nanoseconds; milliseconds are kept.
  CHECK(parse_rfc3339_ms("2026-11-30T10:00:00.5Z") == k2026_11_30_10h + 500);
  CHECK(parse_rfc3339_ms("2026-11-30T10:00:00.123456789Z") == k2026_11_30_10h + 123);
  CHECK(parse_rfc3339_ms("2026-11-30T17:00:00.25+07:00") == k2026_11_30_10h + 250);
  // Without an offset: the default offset (Tasmota's local time).
  CHECK(parse_rfc3339_ms("2026-11-30T10:00:00") == k2026_11_30_10h);
  CHECK(parse_rfc3339_ms("2026-11-30T17:00:00", 7 * 60) == k2026_11_30_10h);
  CHECK(parse_rfc3339_ms("2026-11-30T17:00:00Z", 7 * 60) == k2026_11_30_10h + 7 * 3600000);
  // Leap days, the epoch, far years.
  CHECK(parse_rfc3339_ms("2028-02-29T00:00:00Z"));
  CHECK(parse_rfc3339_ms("1970-01-01T00:00:00Z") == 0);
  CHECK(parse_rfc3339_ms("9999-12-31T23:59:59.999Z") == 253402300799999);
  // Not RFC 3339.
  for (const char* bad : {"2026-11-30", "2026-11-30T10:00Z", "2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z",
                          "2026-11-31T00:00:00Z", "2026-11-30T24:00:00Z", "2026-11-30T10:60:00Z", "2026-11-30T10:00:00.Z",
                          "2026-11-30T10:00:00+25:00", "2026-11-30T10:00:00+07", "2026-11-30T10:00:00Zjunk",
                          "2026-11-30T10:00:00 ", "26-11-30T10:00:00Z", "", "yesterday"}) {
    INFO(bad);
    CHECK_FALSE(parse_rfc3339_ms(bad));
  }
}

TEST_CASE("RFC 3339 times without an offset, in the machine's zone", "[mqtt][mapping][ts]") {
  {
    ZoneGuard zone("ICT-7");  // Indochina Time, UTC+7, no summer time (as Asia/Ho_Chi_Minh)
    CHECK(parse_rfc3339_ms("2026-11-30T17:00:00", 0, true) == k2026_11_30_10h);
    CHECK(parse_rfc3339_ms("2026-11-30T10:00:00Z", 0, true) == k2026_11_30_10h);  // an offset wins
  }
  {
    ZoneGuard zone("CET-1CEST,M3.5.0,M10.5.0/3");  // summer time: UTC+2 in July, UTC+1 in November
    CHECK(parse_rfc3339_ms("2026-07-01T14:00:00", 0, true) == 1782907200000);  // 12:00Z
    CHECK(parse_rfc3339_ms("2026-11-30T11:00:00", 0, true) == k2026_11_30_10h);
  }
}

TEST_CASE("timestamps in every ts_format", "[mqtt][mapping][ts]") {
  // auto: strings are RFC 3339, numbers Unix seconds below 1e11 and milliseconds above.
  CHECK(ts("2026-11-30T10:00:00.000Z", TsFormat::Auto) == k2026_11_30_10h);
  CHECK(ts("2026-11-30T17:05:00", TsFormat::Auto, 7 * 60) == k2026_11_30_10h + 5 * 60000);
  CHECK(ts(1764493200.123, TsFormat::Auto) == 1764493200123);
  CHECK(ts(1764493200, TsFormat::Auto) == 1764493200000);
  CHECK(ts(1764493200123, TsFormat::Auto) == 1764493200123);
  CHECK(ts("1764493200", TsFormat::Auto) == 1764493200000);
  // rfc3339: strings only.
  CHECK(ts("2026-11-30T17:00:00+07:00", TsFormat::Rfc3339) == k2026_11_30_10h);
  CHECK_FALSE(ts(1764493200, TsFormat::Rfc3339));
  // unix, unix_ms: numbers or numeric strings.
  CHECK(ts(1764493200.123, TsFormat::Unix) == 1764493200123);
  CHECK(ts("1764493200.5", TsFormat::Unix) == 1764493200500);
  CHECK(ts(1764493200123, TsFormat::UnixMs) == 1764493200123);
  CHECK(ts("1764493200123", TsFormat::UnixMs) == 1764493200123);
  CHECK(ts(json(std::uint64_t{1764493200123}), TsFormat::UnixMs) == 1764493200123);
  CHECK_FALSE(ts(1e20, TsFormat::Unix));
  CHECK_FALSE(ts(std::numeric_limits<std::int64_t>::max(), TsFormat::Unix));
  CHECK_FALSE(ts("soon", TsFormat::Unix));
  CHECK_FALSE(ts(true, TsFormat::Unix));
  // Patterns, read at the configured offset; %z in the text wins.
  CHECK(ts("30/11/2026 17:00:00", TsFormat::Pattern, 7 * 60, "%d/%m/%Y %H:%M:%S") == k2026_11_30_10h);
  CHECK(ts("2026-11-30T17:05:00", TsFormat::Pattern, 7 * 60, "%Y-%m-%dT%H:%M:%S") == k2026_11_30_10h + 5 * 60000);
  CHECK(ts("2026-11-30 06:30:00", TsFormat::Pattern, -(3 * 60 + 30), "%Y-%m-%d %H:%M:%S") == k2026_11_30_10h);
  CHECK(ts("2026-11-30 17:00:00.250", TsFormat::Pattern, 7 * 60, "%Y-%m-%d %H:%M:%S") == k2026_11_30_10h + 250);
  CHECK(ts("2026-11-30 12:00:00 +0200", TsFormat::Pattern, 7 * 60, "%Y-%m-%d %H:%M:%S %z") == k2026_11_30_10h);

  TimeSpec spec;
  spec.format = TsFormat::Pattern;
  spec.pattern = "%Y-%m-%d %H:%M:%S";
  std::string error;
  CHECK_FALSE(parse_timestamp("30/11/2026", spec, error));
  CHECK(error == "\"30/11/2026\" does not match ts_format \"%Y-%m-%d %H:%M:%S\"");
  CHECK_FALSE(parse_timestamp("2026-11-30 10:00:00 ICT", spec, error));
  CHECK_THAT(error, Catch::Contains("has text after ts_format"));
  CHECK_FALSE(parse_timestamp("2026-02-30 10:00:00", spec, error));
  CHECK_FALSE(parse_timestamp(17, spec, error));
  CHECK(error == "expected a string in ts_format \"%Y-%m-%d %H:%M:%S\", got a number");
  spec.format = TsFormat::Auto;
  CHECK_FALSE(parse_timestamp("2026-13-01T00:00:00Z", spec, error));
  CHECK(error == "\"2026-13-01T00:00:00Z\" is not an RFC 3339 time such as \"2026-11-30T10:00:00Z\"");
  CHECK_FALSE(parse_timestamp(json::object(), spec, error));
  CHECK(error == "expected an RFC 3339 string or a Unix time, got an object");
  CHECK_FALSE(parse_timestamp(nullptr, spec, error));
  CHECK_THAT(error, Catch::EndsWith("got null"));
  spec.format = TsFormat::UnixMs;
  CHECK_FALSE(parse_timestamp("later", spec, error));
  CHECK(error == "expected a number of milliseconds since 1970, got \"later\"");
}

TEST_CASE("Zigbee2MQTT: every leaf is a point, last_seen the time", "[mqtt][mapping]") {
  auto cfg = json_config();
  cfg.source_name = "{1}";
  cfg.ts.pointer = "/last_seen";
  const auto m = mapper(cfg);
  const auto levels = topic_levels("zigbee2mqtt/cua-chinh");
  std::string error;
  CHECK(m.source_for(levels, "zigbee", error) == "cua-chinh");

  const auto out = m.map_json(kZigbee, levels, kNow);
  CHECK(out.error == "");
  CHECK(out.kind == "");
  REQUIRE(out.readings.size() == 5);
  CHECK_FALSE(find(out, "last_seen"));
  const auto* t = find(out, "temperature");
  REQUIRE(t);
  CHECK(std::get<double>(t->value) == 23.5);
  CHECK(t->ts_ms == k2026_11_30_10h);
  CHECK(t->quality == Quality::Good);
  CHECK(t->error.empty());
  CHECK(std::get<std::int64_t>(find(out, "humidity")->value) == 61);
  CHECK(std::get<std::int64_t>(find(out, "battery")->value) == 100);
  CHECK(std::get<std::int64_t>(find(out, "linkquality")->value) == 120);
  CHECK(std::get<bool>(find(out, "contact")->value) == true);
  for (const auto& r : out.readings) {
    CHECK(r.ts_ms == k2026_11_30_10h);
    CHECK(r.unit.empty());
  }

  // Without ts_pointer the time of receipt, and last_seen is a point like any other.
  const auto plain = mapper(json_config()).map_json(kZigbee, levels, kNow);
  REQUIRE(plain.readings.size() == 6);
  CHECK(std::get<std::string>(find(plain, "last_seen")->value) == "2026-11-30T10:00:00.000Z");
  CHECK(find(plain, "temperature")->ts_ms == kNow);

  // A Zigbee2MQTT device that does not know a value yet sends null: no reading, no error.
  const auto nulls = m.map_json(R"({"temperature":null,"humidity":61,"last_seen":"2026-11-30T10:00:00.000Z"})", levels, kNow);
  CHECK(nulls.error == "");
  REQUIRE(nulls.readings.size() == 1);
  CHECK(nulls.readings[0].point == "humidity");
}

TEST_CASE("source names from the topic", "[mqtt][mapping]") {
  auto cfg = json_config();
  std::string error;
  CHECK(mapper(cfg).source_for(topic_levels("zigbee2mqtt/x"), "zigbee", error) == "zigbee");
  cfg.source_name = "z2m-{1}";
  const auto m = mapper(cfg);
  CHECK(m.source_for(topic_levels("zigbee2mqtt/cua-chinh"), "zigbee", error) == "z2m-cua-chinh");
  CHECK_FALSE(m.source_for(topic_levels("zigbee2mqtt/cua chinh"), "zigbee", error));
  CHECK_THAT(error, Catch::StartsWith("source name \"z2m-cua chinh\" (from the topic) must be 1-64 characters"));
  CHECK_FALSE(m.source_for(topic_levels("zigbee2mqtt"), "zigbee", error));
  CHECK(error == "topic has 1 level, {1} needs 2");
  CHECK_FALSE(m.source_for(topic_levels("zigbee2mqtt/" + std::string(70, 'a')), "zigbee", error));

  cfg.point = "{-1}";
  CHECK_FALSE(mapper(cfg).point_for(topic_levels("stat/plug/"), error));
  CHECK_THAT(error, Catch::StartsWith("point name \"\" (from the topic) must be 1 to 256 bytes"));
}

TEST_CASE("Tasmota: SENSOR in local time, flattened, and POWER as a value", "[mqtt][mapping]") {
  auto cfg = json_config();
  cfg.topics = {"tele/+/SENSOR"};
  cfg.ts.pointer = "/Time";
  cfg.ts.offset_minutes = 7 * 60;  // timezone = "+07:00"; ts_format "auto"
  const auto m = mapper(cfg);
  const auto out = m.map_json(kTasmotaSensor, topic_levels("tele/o-cam-1/SENSOR"), kNow);
  CHECK(out.error == "");
  REQUIRE(out.readings.size() == 3);
  CHECK(std::get<double>(find(out, "ENERGY.Total")->value) == 12.5);
  CHECK(std::get<std::int64_t>(find(out, "ENERGY.Power")->value) == 230);
  CHECK(std::get<std::int64_t>(find(out, "ENERGY.Voltage")->value) == 229);
  CHECK_FALSE(find(out, "Time"));
  for (const auto& r : out.readings) CHECK(r.ts_ms == k2026_11_30_10h + 5 * 60000);  // 17:05 at +07:00 = 10:05Z

  // The same with a strftime pattern.
  cfg.ts.format = TsFormat::Pattern;
  cfg.ts.pattern = "%Y-%m-%dT%H:%M:%S";
  const auto by_pattern = mapper(cfg).map_json(kTasmotaSensor, topic_levels("tele/o-cam-1/SENSOR"), kNow);
  CHECK(by_pattern.error == "");
  REQUIRE(by_pattern.readings.size() == 3);
  CHECK(by_pattern.readings[0].ts_ms == k2026_11_30_10h + 5 * 60000);

  // stat/<device>/POWER "ON": format = "value", point "{-1}".
  auto value_cfg = json_config();
  value_cfg.format = Format::Value;
  value_cfg.topics = {"stat/+/POWER"};
  const auto power = mapper(value_cfg).map_value("ON", topic_levels("stat/o-cam-1/POWER"), kNow);
  CHECK(power.error == "");
  REQUIRE(power.readings.size() == 1);
  CHECK(power.readings[0].point == "POWER");
  CHECK(std::get<bool>(power.readings[0].value) == true);
  CHECK(power.readings[0].ts_ms == kNow);
}

TEST_CASE("explicit fields: pointers to points, one matching nothing", "[mqtt][mapping]") {
  auto cfg = json_config();
  cfg.fields = {{"power", "/ENERGY/Power", "W", 1, 1},
                {"energy", "/ENERGY/Total", "kWh", 2, 1},
                {"current", "/ENERGY/Current", "A", 3, 1},
                {"energy_all", "/ENERGY", "", 4, 1}};
  const auto out = mapper(cfg).map_json(kTasmotaSensor, topic_levels("tele/o-cam-1/SENSOR"), kNow);
  CHECK(out.error == "/ENERGY/Current: not found (field \"current\")");
  CHECK(out.kind == "no_match");
  REQUIRE(out.readings.size() == 3);
  CHECK(out.readings[0].point == "power");
  CHECK(out.readings[0].unit == "W");
  CHECK(std::get<std::int64_t>(out.readings[0].value) == 230);
  CHECK(out.readings[0].quality == Quality::Good);
  CHECK(out.readings[1].point == "energy");
  CHECK(out.readings[1].unit == "kWh");
  CHECK(std::get<double>(out.readings[1].value) == 12.5);
  // A pointer to an object gives the object, as JSON text.
  CHECK(std::get<JsonText>(out.readings[2].value).text == R"({"Power":230,"Total":12.5,"Voltage":229})");

  // Escapes and array indexes.
  cfg.fields = {{"slash", "/a~1b", "", 0, 0}, {"tilde", "/c~0d", "", 0, 0}, {"second", "/list/1", "", 0, 0},
                {"leading_zero", "/list/01", "", 0, 0}};
  const auto esc = mapper(cfg).map_json(R"({"a/b":1,"c~d":2,"list":[10,20]})", {"t"}, kNow);
  REQUIRE(esc.readings.size() == 3);
  CHECK(std::get<std::int64_t>(esc.readings[0].value) == 1);
  CHECK(std::get<std::int64_t>(esc.readings[1].value) == 2);
  CHECK(std::get<std::int64_t>(esc.readings[2].value) == 20);
  CHECK(esc.error == "/list/01: not found (field \"leading_zero\")");
}

TEST_CASE("Frigate: an event is the whole document", "[mqtt][mapping]") {
  auto cfg = json_config();
  cfg.event = true;
  cfg.topics = {"frigate/events"};
  cfg.ts.pointer = "/after/start_time";
  cfg.ts.format = TsFormat::Unix;
  const auto m = mapper(cfg);
  const auto out = m.map_event(kFrigate, topic_levels("frigate/events"), kNow);
  CHECK(out.error == "");
  REQUIRE(out.readings.size() == 1);
  const auto& r = out.readings[0];
  CHECK(r.point == "events");
  CHECK(r.ts_ms == 1764493200123);
  CHECK(r.quality == Quality::Good);
  const auto& text = std::get<JsonText>(r.value).text;
  CHECK(text.find('\n') == std::string::npos);
  CHECK(json::parse(text) == json::parse(kFrigate));
  CHECK(json::parse(text)["after"]["camera"] == "cong-chinh");

  // ts_format auto reads the float seconds too.
  cfg.ts.format = TsFormat::Auto;
  CHECK(mapper(cfg).map_event(kFrigate, topic_levels("frigate/events"), kNow).readings[0].ts_ms == 1764493200123);

  // An event without the time: kept, at the time of receipt, uncertain.
  const auto no_ts = m.map_event(R"({"type":"end","after":{"camera":"cong-chinh"}})", topic_levels("frigate/events"), kNow);
  CHECK(no_ts.error == "ts: /after/start_time: not found");
  CHECK(no_ts.kind == "bad_timestamp");
  REQUIRE(no_ts.readings.size() == 1);
  CHECK(no_ts.readings[0].ts_ms == kNow);
  CHECK(no_ts.readings[0].quality == Quality::Uncertain);
  CHECK(no_ts.readings[0].error == "ts: /after/start_time: not found");

  // Invalid JSON is not an event.
  const auto bad = m.map_event(R"({"type":"new",)", topic_levels("frigate/events"), kNow);
  CHECK(bad.readings.empty());
  CHECK_THAT(bad.error, Catch::StartsWith("invalid JSON: "));
  CHECK(bad.kind == "malformed_json");
  // A scalar document keeps its type.
  auto plain = json_config();
  plain.event = true;
  const auto scalar = mapper(plain).map_event("\"restarted\"", topic_levels("frigate/available"), kNow);
  REQUIRE(scalar.readings.size() == 1);
  CHECK(scalar.readings[0].point == "available");
  CHECK(std::get<std::string>(scalar.readings[0].value) == "restarted");
}

TEST_CASE("Frigate events flattened as data: arrays are numbered", "[mqtt][mapping]") {
  const auto out = mapper(json_config()).map_json(kFrigate, topic_levels("frigate/events"), kNow);
  CHECK(out.error == "");
  CHECK(std::get<std::string>(find(out, "after.camera")->value) == "cong-chinh");
  CHECK(std::get<std::int64_t>(find(out, "after.box.0")->value) == 430);
  CHECK(std::get<std::int64_t>(find(out, "after.box.3")->value) == 716);
  CHECK(std::get<std::string>(find(out, "after.current_zones.0")->value) == "san-truoc");
  CHECK(std::get<double>(find(out, "after.top_score")->value) == 0.84);
  CHECK_FALSE(find(out, "after.sub_label"));  // null
  CHECK_FALSE(find(out, "before.current_zones"));  // empty array: nothing
}

TEST_CASE("JSON payloads that cannot be mapped", "[mqtt][mapping]") {
  const auto m = mapper(json_config());
  const auto levels = topic_levels("zigbee2mqtt/cua-chinh");

  const auto bad = m.map_json(R"({"temperature":23.5,)", levels, kNow);
  CHECK(bad.readings.empty());
  CHECK_THAT(bad.error, Catch::StartsWith("invalid JSON: parse error at line 1, column 21"));
  CHECK(bad.kind == "malformed_json");
  CHECK_THAT(m.map_json("{\"a\":1} x", levels, kNow).error, Catch::StartsWith("invalid JSON: "));
  CHECK_THAT(m.map_json("{'a':1}", levels, kNow).error, Catch::StartsWith("invalid JSON: "));
  CHECK(m.map_json("", levels, kNow).error == "empty payload");
  CHECK(m.map_json("", levels, kNow).kind == "empty_payload");
  CHECK(m.map_json(" \n", levels, kNow).error == "empty payload");

  // Invalid UTF-8 in a string (Latin-1 "é") and outside one.
  const auto latin1 = m.map_json("{\"name\":\"caf\xe9\"}", levels, kNow);
  CHECK(latin1.readings.empty());
  CHECK(latin1.error == "invalid UTF-8 at byte 12");
  CHECK(latin1.kind == "invalid_utf8");
  CHECK(m.map_json("{\"a\":\"\xed\xa0\x80\"}", levels, kNow).error == "invalid UTF-8 at byte 6");  // a surrogate
  CHECK(m.map_json("\xff", levels, kNow).error == "invalid UTF-8 at byte 0");
  // Escaped lone surrogates are invalid JSON.
  CHECK_THAT(m.map_json(R"({"a":"\ud800"})", levels, kNow).error, Catch::StartsWith("invalid JSON: "));
  // Valid UTF-8 passes through.
  const auto vi = m.map_json(R"({"ten":"Cổng chính"})", levels, kNow);
  CHECK(std::get<std::string>(vi.readings.at(0).value) == "Cổng chính");

  // Nesting beyond 64 levels.
  const std::string deep = std::string(65, '[') + std::string(65, ']');
  CHECK(m.map_json(deep, levels, kNow).error == "JSON nested deeper than 64 levels");
  CHECK(m.map_json(deep, levels, kNow).kind == "malformed_json");
  CHECK(m.map_json(std::string(64, '[') + "1" + std::string(64, ']'), levels, kNow).error == "");
  const std::string huge_deep = std::string(100000, '[') + std::string(100000, ']');
  CHECK(m.map_event(huge_deep, levels, kNow).error == "JSON nested deeper than 64 levels");
  // Brackets inside strings do not count.
  CHECK(m.map_json("{\"a\":\"" + std::string(100, '[') + "\"}", levels, kNow).error == "");

  // A number a double cannot hold: the parser refuses the document.
  const auto inf = m.map_json(R"({"a":1e999,"b":2})", levels, kNow);
  CHECK(inf.error == "invalid JSON: number overflow parsing '1e999'");
  CHECK(inf.readings.empty());

  // max_payload.
  auto small = json_config();
  small.max_payload = 8;
  CHECK(mapper(small).map_json(R"({"a":1,"b":2})", levels, kNow).error ==
        "payload of 13 bytes is over max_payload (8 bytes)");
  CHECK(mapper(small).map_json(R"({"a":1,"b":2})", levels, kNow).kind == "oversized");
}

TEST_CASE("JSON numbers: integers stay integers", "[mqtt][mapping]") {
  const auto out = mapper(json_config()).map_json(
      R"({"i":-4,"big":9223372036854775807,"bigger":18446744073709551615,"f":1.0,"e":1e3,"t":false,"s":"open"})",
      {"x"}, kNow);
  CHECK(out.error == "");
  CHECK(std::get<std::int64_t>(find(out, "i")->value) == -4);
  CHECK(std::get<std::int64_t>(find(out, "big")->value) == 9223372036854775807);
  CHECK(std::get<double>(find(out, "bigger")->value) == Approx(18446744073709551615.0));
  CHECK(std::get<double>(find(out, "f")->value) == 1.0);
  CHECK(std::get<double>(find(out, "e")->value) == 1000.0);
  CHECK(std::get<bool>(find(out, "t")->value) == false);
  CHECK(std::get<std::string>(find(out, "s")->value) == "open");

  // A bare value: the topic's last level names it.
  const auto bare = mapper(json_config()).map_json("23.5", topic_levels("zigbee2mqtt/sensor/temperature"), kNow);
  REQUIRE(bare.readings.size() == 1);
  CHECK(bare.readings[0].point == "temperature");
  CHECK(std::get<double>(bare.readings[0].value) == 23.5);
  CHECK(mapper(json_config()).map_json("null", {"x"}, kNow).readings.empty());
}

TEST_CASE("flattened names: nesting, arrays, long keys, many points", "[mqtt][mapping]") {
  const auto m = mapper(json_config());
  const auto nested = m.map_json(R"({"a":[1,{"b":2},[3]],"c.d":{"e":4}})", {"x"}, kNow);
  CHECK(nested.error == "");
  CHECK(std::get<std::int64_t>(find(nested, "a.0")->value) == 1);
  CHECK(std::get<std::int64_t>(find(nested, "a.1.b")->value) == 2);
  CHECK(std::get<std::int64_t>(find(nested, "a.2.0")->value) == 3);
  CHECK(std::get<std::int64_t>(find(nested, "c.d.e")->value) == 4);
  // A top-level array.
  const auto arr = m.map_json(R"([{"t":1},{"t":2}])", {"x"}, kNow);
  CHECK(std::get<std::int64_t>(find(arr, "1.t")->value) == 2);

  // A name over 256 bytes: that leaf is an error, the rest is stored.
  const std::string key(251, 'k');  // "outer." + 251 bytes: 257
  const auto lng = m.map_json(R"({"ok":1,"outer":{")" + key + R"(":{"x/y":2}}})", {"x"}, kNow);
  REQUIRE(lng.readings.size() == 1);
  CHECK(lng.readings[0].point == "ok");
  CHECK(lng.error == "/outer/" + key + ": the point name would be over 256 bytes");
  CHECK(lng.kind == "bad_point_name");
  const std::string exact(256, 'k');  // 256 bytes is allowed
  CHECK(m.map_json(R"({")" + exact + R"(":1})", {"x"}, kNow).readings.at(0).point == exact);
  const auto slash = m.map_json(R"({"a/b":{")" + exact + R"(":1}})", {"x"}, kNow);
  CHECK(slash.error == "/a~1b/" + exact + ": the point name would be over 256 bytes");
  // An empty key at the top names no point.
  const auto empty_key = m.map_json(R"({"":1,"a":2})", {"x"}, kNow);
  CHECK(empty_key.error == "/: an empty key does not name a point");
  CHECK(empty_key.readings.size() == 1);

  // 1,000 points are fine; 1,001 are an error and none are stored.
  const auto object_of = [](int n) {
    std::string s = "{";
    for (int i = 0; i < n; ++i) s += (i ? ",\"p" : "\"p") + std::to_string(i) + "\":" + std::to_string(i);
    return s + "}";
  };
  const auto thousand = m.map_json(object_of(1000), {"x"}, kNow);
  CHECK(thousand.error == "");
  CHECK(thousand.readings.size() == 1000);
  const auto too_many = m.map_json(object_of(1001), {"x"}, kNow);
  CHECK(too_many.readings.empty());
  CHECK_THAT(too_many.error, Catch::StartsWith("more than 1000 points in one message"));
  CHECK(too_many.kind == "too_many_points");
  // nulls do not count.
  std::string with_nulls = object_of(1000);
  with_nulls.back() = ',';
  with_nulls += "\"n\":null}";
  CHECK(m.map_json(with_nulls, {"x"}, kNow).readings.size() == 1000);
}

TEST_CASE("an unreadable time: stored at the time of receipt, uncertain", "[mqtt][mapping][ts]") {
  auto cfg = json_config();
  cfg.ts.pointer = "/Time";
  const auto m = mapper(cfg);
  const auto out = m.map_json(R"({"Time":"2026-13-01T00:00:00","ENERGY":{"Power":230}})", {"x"}, kNow);
  const std::string why = "ts: /Time: \"2026-13-01T00:00:00\" is not an RFC 3339 time such as \"2026-11-30T10:00:00Z\"";
  CHECK(out.error == why);
  CHECK(out.kind == "bad_timestamp");
  REQUIRE(out.readings.size() == 1);
  CHECK(out.readings[0].point == "ENERGY.Power");
  CHECK(out.readings[0].ts_ms == kNow);
  CHECK(out.readings[0].quality == Quality::Uncertain);
  CHECK(out.readings[0].error == why);

  const auto missing = m.map_json(R"({"ENERGY":{"Power":230}})", {"x"}, kNow);
  CHECK(missing.error == "ts: /Time: not found");
  REQUIRE(missing.readings.size() == 1);
  CHECK(missing.readings[0].quality == Quality::Uncertain);

  auto with_field = cfg;
  with_field.fields = {{"power", "/ENERGY/Power", "W", 0, 0}, {"current", "/ENERGY/Current", "A", 0, 0}};
  const auto both = mapper(with_field).map_json(R"({"ENERGY":{"Power":230}})", {"x"}, kNow);
  CHECK(both.error == "ts: /Time: not found");
  CHECK(both.kind == "bad_timestamp");
  REQUIRE(both.readings.size() == 1);
  CHECK(both.readings[0].quality == Quality::Uncertain);

  const auto wrong_type = m.map_json(R"({"Time":true,"a":1})", {"x"}, kNow);
  CHECK(wrong_type.error == "ts: /Time: expected an RFC 3339 string or a Unix time, got a boolean");
  REQUIRE(wrong_type.readings.size() == 1);  // the boolean is the time's leaf, not a point
  CHECK(wrong_type.readings[0].point == "a");
}

TEST_CASE("plain values", "[mqtt][mapping]") {
  auto cfg = json_config();
  cfg.format = Format::Value;
  cfg.unit = "°C";
  const auto m = mapper(cfg);
  const auto levels = topic_levels("sensors/phong-hop/temperature");
  const auto value = [&](std::string_view payload) {
    auto out = m.map_value(payload, levels, kNow);
    INFO(std::string(payload) << ": " << out.error);
    REQUIRE(out.readings.size() == 1);
    CHECK(out.readings[0].point == "temperature");
    CHECK(out.readings[0].unit == "°C");
    CHECK(out.readings[0].ts_ms == kNow);
    return out.readings[0].value;
  };
  CHECK(std::get<double>(value("23.5")) == 23.5);
  CHECK(std::get<std::int64_t>(value("-4")) == -4);
  CHECK(std::get<std::int64_t>(value(" 42\r\n")) == 42);
  CHECK(std::get<double>(value("1e3")) == 1000.0);
  CHECK(std::get<double>(value("-0.5")) == -0.5);
  CHECK(std::get<double>(value("9223372036854775808")) == Approx(9223372036854775808.0));
  CHECK(std::get<bool>(value("ON")) == true);
  CHECK(std::get<bool>(value("off")) == false);
  CHECK(std::get<bool>(value("true")) == true);
  CHECK(std::get<bool>(value("False")) == false);
  CHECK(std::get<std::string>(value("open")) == "open");
  CHECK(std::get<std::string>(value("\"open\"")) == "\"open\"");  // text as sent
  CHECK(std::get<std::string>(value("nan")) == "nan");
  CHECK(std::get<std::string>(value("inf")) == "inf");
  CHECK(std::get<std::string>(value("+5")) == "+5");
  CHECK(std::get<std::string>(value("12 V")) == "12 V");
  CHECK(std::get<std::string>(value("Cổng mở")) == "Cổng mở");

  CHECK(m.map_value("", levels, kNow).error == "empty payload");
  CHECK(m.map_value("", levels, kNow).kind == "empty_payload");
  CHECK(m.map_value(" \t\n", levels, kNow).error == "empty payload");
  const auto bad = m.map_value(" caf\xe9", levels, kNow);
  CHECK(bad.readings.empty());
  CHECK(bad.error == "invalid UTF-8 at byte 4");
  CHECK(bad.kind == "invalid_utf8");
  CHECK(m.map_value("1e999", levels, kNow).error == "\"1e999\": number out of range");
  CHECK(m.map_value("1e999", levels, kNow).kind == "bad_value");
  CHECK_THAT(m.map_value(std::string(256 * 1024 + 1, 'x'), levels, kNow).error, Catch::Contains("is over the limit"));
  CHECK(m.map_value(std::string(256 * 1024, 'x'), levels, kNow).error == "");
  // The point comes from the topic.
  CHECK_THAT(m.map_value("1", topic_levels("sensors/"), kNow).error, Catch::StartsWith("point name \"\""));
  CHECK(m.map_value("1", topic_levels("sensors/"), kNow).kind == "bad_point_name");
  CHECK(m.map_value("1", levels, kNow).kind == "");
}

TEST_CASE("Mapper::build refuses what parse_config refuses", "[mqtt][mapping]") {
  std::string error;
  auto cfg = json_config();
  cfg.source_name = "{x}";
  CHECK_FALSE(Mapper::build(cfg, error));
  CHECK_THAT(error, Catch::StartsWith("source_name: {x}: not a level number"));
  cfg = json_config();
  cfg.fields = {{"p", "ENERGY", "", 0, 0}};
  CHECK_FALSE(Mapper::build(cfg, error));
  CHECK_THAT(error, Catch::StartsWith("field \"p\": pointer: "));
  cfg = json_config();
  cfg.ts.pointer = "/a~9";
  CHECK_FALSE(Mapper::build(cfg, error));
  CHECK_THAT(error, Catch::StartsWith("ts_pointer: "));
  // A Mapper keeps what it needs: the Config may go.
  std::optional<Mapper> m;
  {
    auto temp = json_config();
    temp.fields = {{"power", "/ENERGY/Power", "W", 0, 0}};
    m = Mapper::build(temp, error);
  }
  REQUIRE(m);
  CHECK(m->map_json(kTasmotaSensor, {"x"}, kNow).readings.at(0).unit == "W");
}
