// ioc-receiver's JSON Schema validator (receiver/json_schema.h): every keyword it implements, each
// with a case that passes only if the keyword is applied; the refusal of what it does not
// implement; the three built-in schemas of docs/schema/ on real-shaped and bad documents; and a
// table of verdicts that python3-jsonschema agrees with (checked by hand, not from this test).
#include <catch2/catch.hpp>

#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "receiver/json_schema.h"

// Failures show the message, not "{?}".
namespace Catch {
template <>
struct StringMaker<std::optional<std::string>> {
  static std::string convert(const std::optional<std::string>& v) { return v ? "\"" + *v + "\"" : "nullopt (valid)"; }
};
}  // namespace Catch

namespace {

using ioc_receiver::JsonSchema;
using nlohmann::json;

std::optional<std::string> error_of(const std::string& schema, const std::string& doc) {
  return JsonSchema::compile(json::parse(schema)).first_error(json::parse(doc));
}

bool accepts(const std::string& schema, const std::string& doc) { return !error_of(schema, doc); }

// The message of compile()'s std::invalid_argument, or "" when it compiles.
std::string compile_error(const std::string& schema) {
  try {
    JsonSchema::compile(json::parse(schema));
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

// `doc` with the value at `pointer` replaced (or added).
json with(json doc, const std::string& pointer, const json& value) {
  doc[json::json_pointer(pointer)] = value;
  return doc;
}

// `doc` without the member at `pointer`.
json without(json doc, const std::string& pointer) {
  const json::json_pointer p(pointer);
  doc[p.parent_pointer()].erase(p.back());
  return doc;
}

const char* const kStore = "6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d";
const char* const kSha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

json data_batch() {
  return json::parse(R"({
    "schema": "ioc-edge/batch/1", "site": "bk-cho-don", "store": "6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d",
    "sent_at": "2026-11-28T22:10:00.000Z",
    "org": {"unit_code": "01843", "agency_code": "000.00.00.H01", "name": "UBND xã Chợ Đồn"},
    "readings": [
      {"seq": 1042, "ts": "2026-11-28T22:09:59.500Z", "source": "tram-bom-1", "point": "flow_rate",
       "value": 12.5, "unit": "m3/h", "quality": "good"},
      {"seq": 1043, "ts": "2026-11-28T22:09:59.500Z", "source": "tram-bom-1", "point": "pump_on",
       "value": true, "quality": "good"},
      {"seq": 1044, "ts": "2026-11-28T22:09:59.500Z", "source": "tram-bom-1", "point": "level",
       "value": null, "quality": "bad", "error": "Modbus exception 2: illegal data address"},
      {"seq": 1045, "ts": "2026-11-28T22:09:58.000Z", "source": "phong-hop", "point": "climate",
       "value": {"temperature": 24.5, "humidity": 61}, "quality": "uncertain", "clock": "unsynchronized"},
      {"seq": 1046, "ts": "2026-11-28T22:09:57.250Z", "source": "mot-cua", "point": "ho_so",
       "value": "Hồ sơ đất đai số 12", "quality": "good"}
    ]})");
}

json event_batch() {
  return json::parse(R"({
    "schema": "ioc-edge/batch/1", "site": "bk-cho-don", "store": "6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d",
    "sent_at": "2026-11-30T09:15:01.000Z",
    "readings": [
      {"seq": 2001, "ts": "2026-11-30T09:15:00.000Z", "source": "_gateway", "point": "gap",
       "value": {"event": "gap", "reason": "max_size", "ranges": [[1, 500], [502, 502]], "priority": "low",
                 "count": 501, "sources": {"gen-1": 500, "tram-bom-1": 1}},
       "quality": "good"},
      {"seq": 2002, "ts": "2026-11-30T09:15:00.118Z", "source": "tram-bom-1", "point": "source_stale",
       "value": {"event": "source_stale", "expected_every_s": 5, "silent_s": 15.0,
                 "last_good": "2026-11-30T09:14:45.120Z"},
       "quality": "good"},
      {"seq": 2003, "ts": "2026-11-30T09:15:00.200Z", "source": "cam-2", "point": "source_stale",
       "value": {"event": "source_stale", "expected_every_s": 0.5, "silent_s": 1.5, "last_good": null},
       "quality": "good"},
      {"seq": 2004, "ts": "2026-11-30T09:20:12.118Z", "source": "tram-bom-1", "point": "source_recovered",
       "value": {"event": "source_recovered", "expected_every_s": 5, "stale_s": 312.0,
                 "stale_since": "2026-11-30T09:15:00.118Z"},
       "quality": "good"},
      {"seq": 2005, "ts": "2026-11-30T09:21:00.000Z", "source": "_gateway", "point": "rejected",
       "value": {"event": "rejected", "reason": "not authorized", "reason_code": 135,
                 "topic": "ioc/bac-kan/bk-cho-don/data/tram-bom-1", "ranges": [[1201, 1300]], "count": 100,
                 "sources": {"tram-bom-1": 100}},
       "quality": "good"},
      {"seq": 2006, "ts": "2026-11-30T09:22:00.000Z", "source": "cong-chinh", "point": "alarm",
       "value": {"event": "person", "camera": "cong-chinh", "score": 0.91}, "quality": "good"}
    ]})");
}

// A blob's metadata event as the gateway builds it (build_blob_event in daemon/core/envelope.cpp).
json blob_event() {
  return json::parse(R"({
    "schema": "ioc-edge/batch/1", "site": "bk-cho-don", "store": "6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d",
    "sent_at": "2026-11-30T09:00:01.000Z",
    "readings": [
      {"seq": 5120, "ts": "2026-11-30T09:00:00.123Z", "source": "cong-chinh", "point": "snapshot",
       "value": {"kind": "blob", "content_type": "image/jpeg", "size": 204800,
                 "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                 "origin": "frigate/cong-chinh/person/snapshot"},
       "quality": "good"}
    ]})");
}

// As Gateway::heartbeat_json() (daemon/gateway.cpp) makes it.
json heartbeat() {
  return json::parse(R"({"state": "online", "site": "bk-cho-don", "store": "6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d",
    "ts": "2026-11-28T22:10:00.000Z", "version": "0.8.0", "uptime_s": 3600, "backlog": 0, "oldest_age_s": 0.0,
    "held": 0, "fault": null})");
}

json will() {
  return json::parse(R"({"state": "offline", "site": "bk-cho-don", "store": "6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d"})");
}

// As build_message() (daemon/core/envelope.cpp) sets a blob's MQTT 5 user properties.
json blob_properties() {
  return json::parse(R"({"schema": "ioc-edge/blob/1", "site": "bk-cho-don",
    "store": "6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d", "seq": "5120", "source": "cong-chinh",
    "sent_at": "2026-11-30T09:00:01.000Z", "point": "snapshot", "ts": "2026-11-30T09:00:00.123Z",
    "content_type": "image/jpeg", "size": "204800",
    "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "origin": "frigate/cong-chinh/person/snapshot"})");
}

}  // namespace

// ---- Keywords ------------------------------------------------------------------------------------

TEST_CASE("type checks one type or a list and takes 1.0 as an integer", "[unit][receiver][json_schema]") {
  CHECK(accepts(R"({"type": "string"})", R"("x")"));
  CHECK(error_of(R"({"type": "string"})", "5") == "(root): 5 is not of type string");
  CHECK(error_of(R"({"type": "object"})", "[1]") == "(root): an array is not of type object");
  CHECK(accepts(R"({"type": "integer"})", "7"));
  CHECK(accepts(R"({"type": "integer"})", "-7"));
  CHECK(accepts(R"({"type": "integer"})", "7.0"));
  CHECK(error_of(R"({"type": "integer"})", "7.5") == "(root): 7.5 is not of type integer");
  CHECK(accepts(R"({"type": "number"})", "7"));
  CHECK(error_of(R"({"type": "number"})", R"("7")") == R"((root): "7" is not of type number)");
  CHECK(accepts(R"({"type": ["string", "null"]})", "null"));
  CHECK(error_of(R"({"type": ["number", "string", "boolean", "object", "null"]})", "[]") ==
        "(root): an array is not of type number, string, boolean, object or null");
  CHECK(error_of(R"({"type": "boolean"})", "0") == "(root): 0 is not of type boolean");
  CHECK(error_of(R"({"type": "null"})", "false") == "(root): false is not of type null");
}

TEST_CASE("const and enum compare as JSON values", "[unit][receiver][json_schema]") {
  CHECK(error_of(R"({"const": "ioc-edge/batch/1"})", R"("ioc-edge/batch/2")") ==
        R"((root): "ioc-edge/batch/2" is not "ioc-edge/batch/1")");
  CHECK(accepts(R"({"const": 1})", "1.0"));
  CHECK(accepts(R"({"const": {"a": [1, 2]}})", R"({"a": [1.0, 2]})"));
  CHECK(!accepts(R"({"const": {"a": [1, 2]}})", R"({"a": [2, 1]})"));
  CHECK(error_of(R"({"const": null})", "0") == "(root): 0 is not null");
  CHECK(error_of(R"({"enum": ["good", "uncertain", "bad"]})", R"("fine")") ==
        R"((root): "fine" is not one of "good", "uncertain", "bad")");
  CHECK(accepts(R"({"enum": ["good", 2]})", "2.0"));
  CHECK(!accepts(R"({"enum": []})", "1"));
}

TEST_CASE("properties required and additionalProperties name the member", "[unit][receiver][json_schema]") {
  const std::string schema = R"({"type": "object", "required": ["b", "a"],
    "properties": {"a": {"type": "string"}, "b": {"type": "object", "properties": {"c": {"minimum": 1}}}}})";
  CHECK(accepts(schema, R"({"a": "x", "b": {"c": 1}, "other": 1})"));
  CHECK(error_of(schema, R"({"a": 1, "b": {}})") == "/a: 1 is not of type string");
  CHECK(error_of(schema, R"({"a": "x", "b": {"c": 0}})") == "/b/c: 0 is less than the minimum 1");
  // Missing ones are named in the schema's order.
  CHECK(error_of(schema, R"({})") == R"((root): required property "b" is missing)");
  CHECK(error_of(schema, R"({"b": {}})") == R"((root): required property "a" is missing)");
  // properties and required do not apply to other types.
  CHECK(accepts(R"({"required": ["a"], "properties": {"a": {"type": "string"}}})", "[1]"));

  const std::string closed = R"({"properties": {"a": {}, "m": {}}, "additionalProperties": false})";
  CHECK(accepts(closed, R"({"a": 1, "m": 2})"));
  CHECK(error_of(closed, R"({"a": 1, "forged": 2, "m": 3})") == R"((root): property "forged" is not allowed)");
  CHECK(error_of(closed, R"({"0": 1})") == R"((root): property "0" is not allowed)");
  CHECK(error_of(closed, R"({"z": 1})") == R"((root): property "z" is not allowed)");
  // A name only in required is not in properties: additionalProperties applies to it.
  CHECK(!accepts(R"({"required": ["a"], "additionalProperties": false})", R"({"a": 1})"));

  const std::string counts = R"({"properties": {"total": {"type": "string"}},
    "additionalProperties": {"type": "integer", "minimum": 1}})";
  CHECK(accepts(counts, R"({"gen-1": 500, "total": "x"})"));
  CHECK(error_of(counts, R"({"gen-1": 0})") == "/gen-1: 0 is less than the minimum 1");
  CHECK(error_of(counts, R"({"total": 5})") == "/total: 5 is not of type string");
}

TEST_CASE("propertyNames checks every member name", "[unit][receiver][json_schema]") {
  const std::string schema = R"({"propertyNames": {"minLength": 1, "pattern": "^[a-z-]+$"}})";
  CHECK(accepts(schema, R"({"gen-a": 1})"));
  CHECK(error_of(schema, R"({"": 1})") == R"((root): property name "" is too short (0 characters, at least 1))");
  CHECK(error_of(schema, R"({"Gen": 1})") == R"((root): property name "Gen" does not match the pattern ^[a-z-]+$)");
}

TEST_CASE("$ref and $defs resolve local JSON pointers", "[unit][receiver][json_schema]") {
  const std::string schema = R"({"$defs": {"pos": {"type": "integer", "minimum": 1}, "a b": {"const": 2},
    "t~/": {"const": 3}}, "properties": {"n": {"$ref": "#/$defs/pos"}, "m": {"$ref": "#/$defs/a%20b"},
    "k": {"$ref": "#/$defs/t~0~1"}, "self": {"$ref": "#"}}})";
  CHECK(accepts(schema, R"({"n": 3, "m": 2, "k": 3, "self": {"n": 1}})"));
  CHECK(error_of(schema, R"({"n": 0})") == "/n: 0 is less than the minimum 1");
  CHECK(error_of(schema, R"({"m": 3})") == "/m: 3 is not 2");
  CHECK(error_of(schema, R"({"k": 2})") == "/k: 2 is not 3");
  CHECK(error_of(schema, R"({"self": {"self": {"n": "x"}}})") == R"(/self/self/n: "x" is not of type integer)");
  // The keywords next to a $ref apply as well (draft 2020-12).
  CHECK(error_of(R"({"$defs": {"s": {"type": "string"}}, "$ref": "#/$defs/s", "maxLength": 1})", R"("ab")") ==
        R"((root): "ab" is too long (2 characters, at most 1))");
}

TEST_CASE("minLength and maxLength count code points", "[unit][receiver][json_schema]") {
  // "Đồn" is 3 code points in 7 bytes of UTF-8.
  CHECK(accepts(R"({"maxLength": 3})", R"("Đồn")"));
  CHECK(accepts(R"({"minLength": 3})", R"("Đồn")"));
  CHECK(error_of(R"({"minLength": 4})", R"("Đồn")") == R"((root): "Đồn" is too short (3 characters, at least 4))");
  CHECK(error_of(R"({"maxLength": 2})", R"("Đồn")") == R"((root): "Đồn" is too long (3 characters, at most 2))");
  CHECK(accepts(R"({"minLength": 2, "maxLength": 2})", R"("😀😀")"));
  CHECK(accepts(R"({"minLength": 1})", "5"));  // strings only
}

TEST_CASE("pattern is an unanchored ECMA-262 search", "[unit][receiver][json_schema]") {
  CHECK(accepts(R"({"pattern": "b"})", R"("abc")"));
  CHECK(error_of(R"({"pattern": "^b"})", R"("abc")") == R"((root): "abc" does not match the pattern ^b)");
  // `$` is the very end, not before a final newline (PCRE2's default, and Python's).
  CHECK(accepts(R"({"pattern": "^a$"})", R"("a")"));
  CHECK(!accepts(R"({"pattern": "^a$"})", R"("a\n")"));
  // \d is ASCII only; `.` is one code point; \uXXXX is a code point.
  CHECK(!accepts(R"({"pattern": "^\\d$"})", R"("٣")"));
  CHECK(accepts(R"({"pattern": "^.$"})", R"("ồ")"));
  CHECK(accepts(R"({"pattern": "^\\u0110$"})", R"("Đ")"));
  CHECK(accepts(R"({"pattern": "x"})", "5"));  // strings only
}

TEST_CASE("format date-time is RFC 3339 with a calendar", "[unit][receiver][json_schema]") {
  const std::string schema = R"({"format": "date-time"})";
  for (const char* ok : {"2026-11-28T22:09:59.500Z", "2024-02-29T00:00:00Z", "2000-02-29T23:59:59.999999+07:00",
                         "2026-01-31t08:00:00z", "1998-12-31T23:59:60Z", "1998-12-31T16:59:60.5-07:00",
                         "2026-04-30T00:00:00-00:00"}) {
    INFO(ok);
    CHECK(accepts(schema, json(ok).dump()));
  }
  for (const char* bad : {"2026-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2026-04-31T00:00:00Z", "2026-11-28",
                          "2026-11-28 22:09:59Z", "2026-11-28T22:09:59", "2026-11-28T22:09:59.Z",
                          "2026-11-28T22:09:59+0700", "2026-11-28T22:09:59Z ", "2026-1-28T22:09:59Z",
                          "1998-12-31T22:59:60Z", "2026-11-28T22:09:59+24:00"}) {
    INFO(bad);
    CHECK(!accepts(schema, json(bad).dump()));
  }
  CHECK(error_of(schema, R"("2026-02-30T00:00:00.000Z")") ==
        R"((root): "2026-02-30T00:00:00.000Z" is not an RFC 3339 date-time: February 2026 has no day 30 (it has 28))");
  CHECK(error_of(schema, R"("2026-13-01T00:00:00Z")") ==
        R"((root): "2026-13-01T00:00:00Z" is not an RFC 3339 date-time: month 13 does not exist)");
  CHECK(error_of(schema, R"("2026-11-28T24:00:00Z")") ==
        R"((root): "2026-11-28T24:00:00Z" is not an RFC 3339 date-time: hour 24 does not exist)");
  CHECK(error_of(schema, R"("2026-11-28 22:09:59Z")") ==
        R"((root): "2026-11-28 22:09:59Z" is not an RFC 3339 date-time: expected YYYY-MM-DDTHH:MM:SS, an optional )"
        R"(fraction, then Z or +HH:MM)");
  CHECK(accepts(schema, "20261128"));  // strings only
}

TEST_CASE("format uuid takes 8-4-4-4-12 hex digits and other formats are annotations",
          "[unit][receiver][json_schema]") {
  const std::string schema = R"({"format": "uuid"})";
  CHECK(accepts(schema, json(kStore).dump()));
  CHECK(accepts(schema, R"("6F1C2A3E-6A8E-4F7E-9A65-3F8D2F0F4B1D")"));  // RFC 4122: either case
  CHECK(error_of(schema, R"("6f1c2a3e6a8e4f7e9a653f8d2f0f4b1d")") ==
        R"((root): "6f1c2a3e6a8e4f7e9a653f8d2f0f4b1d" is not a UUID (8-4-4-4-12 hexadecimal digits))");
  CHECK(!accepts(schema, R"("6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1g")"));
  CHECK(accepts(R"({"format": "email"})", R"("not an address")"));
}

TEST_CASE("minimum maximum and the exclusive bounds compare numbers exactly", "[unit][receiver][json_schema]") {
  CHECK(accepts(R"({"minimum": 1})", "1"));
  CHECK(error_of(R"({"minimum": 1})", "0.5") == "(root): 0.5 is less than the minimum 1");
  CHECK(accepts(R"({"maximum": 255})", "255.0"));
  CHECK(error_of(R"({"maximum": 255})", "256") == "(root): 256 is greater than the maximum 255");
  CHECK(error_of(R"({"exclusiveMinimum": 0})", "0") == "(root): 0 is not greater than the exclusive minimum 0");
  CHECK(accepts(R"({"exclusiveMinimum": 0})", "0.001"));
  CHECK(error_of(R"({"exclusiveMaximum": 10})", "10.0") == "(root): 10.0 is not less than the exclusive maximum 10");
  CHECK(accepts(R"({"exclusiveMaximum": 10})", "-3"));
  // 2^63 and 2^63 + 1 differ although a double cannot tell them apart.
  CHECK(!accepts(R"({"maximum": 9223372036854775808})", "9223372036854775809"));
  CHECK(accepts(R"({"minimum": -9223372036854775808})", "-9223372036854775808"));
  CHECK(accepts(R"({"minimum": 1})", R"("0")"));  // numbers only
}

TEST_CASE("minItems maxItems and items name the element", "[unit][receiver][json_schema]") {
  const std::string range = R"({"type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "integer", "minimum": 1}})";
  CHECK(accepts(range, "[1, 500]"));
  CHECK(error_of(range, "[1]") == "(root): an array of 1 item is too short (at least 2)");
  CHECK(error_of(range, "[1, 2, 3]") == "(root): an array of 3 items is too long (at most 2)");
  CHECK(error_of(range, "[1, 0]") == "/1: 0 is less than the minimum 1");
  CHECK(error_of(R"({"items": {"items": {"type": "string"}}})", R"([[], ["a", 2]])") ==
        "/1/1: 2 is not of type string");
  CHECK(error_of(R"({"items": false})", "[1]") == "/0: 1 is not allowed here (the schema is false)");
  CHECK(accepts(R"({"items": false})", "[]"));
  CHECK(accepts(R"({"minItems": 1})", "{}"));  // arrays only
}

TEST_CASE("allOf anyOf oneOf and not combine schemas", "[unit][receiver][json_schema]") {
  const std::string all = R"({"allOf": [{"type": "integer"}, {"minimum": 1}]})";
  CHECK(accepts(all, "3"));
  CHECK(error_of(all, "0") == "(root): 0 is less than the minimum 1");

  const std::string any = R"({"anyOf": [{"type": "string", "maxLength": 2}, {"type": "integer", "minimum": 10}]})";
  CHECK(accepts(any, R"("ab")"));
  CHECK(accepts(any, "12"));
  // Only one alternative takes the value's type: its own error says what is wrong.
  CHECK(error_of(any, "3") == "(root): 3 is less than the minimum 10");
  CHECK(error_of(any, "null") == "(root): null is not of type string or integer");

  const std::string one = R"({"oneOf": [{"type": "integer"}, {"type": "number", "minimum": 5}]})";
  CHECK(accepts(one, "3"));
  CHECK(accepts(one, "5.5"));
  CHECK(error_of(one, "7") == "(root): 7 matches alternatives 1 and 2 of oneOf; exactly one may match");
  CHECK(error_of(one, "2.5") == "(root): 2.5 is less than the minimum 5");
  CHECK(error_of(R"({"oneOf": [{"minLength": 3}, {"pattern": "^a"}]})", R"("b")") ==
        R"((root): "b" matches none of the 2 alternatives of oneOf)");

  const std::string timestamp_or_null = R"({"$defs": {"t": {"type": "string", "format": "date-time"}},
    "oneOf": [{"$ref": "#/$defs/t"}, {"type": "null"}]})";
  CHECK(accepts(timestamp_or_null, "null"));
  CHECK(error_of(timestamp_or_null, R"("yesterday")") ==
        R"((root): "yesterday" is not an RFC 3339 date-time: expected YYYY-MM-DDTHH:MM:SS, an optional fraction, )"
        R"(then Z or +HH:MM)");

  CHECK(accepts(R"({"not": {"type": "null"}})", "0"));
  CHECK(error_of(R"({"not": {"type": "null"}})", "null") ==
        R"((root): null matches the schema under "not", which it must not)");
}

TEST_CASE("if then and else pick the schema that applies", "[unit][receiver][json_schema]") {
  const std::string schema = R"({"if": {"required": ["quality"], "properties": {"quality": {"const": "bad"}}},
    "then": {"required": ["error"]}, "else": {"properties": {"error": false}}})";
  CHECK(accepts(schema, R"({"quality": "bad", "error": "timeout"})"));
  CHECK(error_of(schema, R"({"quality": "bad"})") == R"((root): required property "error" is missing)");
  CHECK(accepts(schema, R"({"quality": "good"})"));
  CHECK(error_of(schema, R"({"quality": "good", "error": "x"})") ==
        R"(/error: "x" is not allowed here (the schema is false))");
  CHECK(accepts(R"({"if": {"type": "string"}, "then": {"minLength": 2}})", "5"));
  CHECK(!accepts(R"({"if": {"type": "string"}, "then": {"minLength": 2}})", R"("a")"));
}

TEST_CASE("true and false are schemas", "[unit][receiver][json_schema]") {
  CHECK(accepts("true", R"({"anything": [1, 2]})"));
  CHECK(error_of("false", "1") == "(root): 1 is not allowed here (the schema is false)");
  CHECK(error_of(R"({"properties": {"x": false}})", R"({"x": null})") ==
        "/x: null is not allowed here (the schema is false)");
}

TEST_CASE("annotations are accepted and ignored", "[unit][receiver][json_schema]") {
  CHECK(accepts(R"({"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "https://x.invalid/s",
    "title": "t", "description": "d", "$comment": "c", "examples": [1], "default": 2, "type": "integer"})",
                "1"));
}

TEST_CASE("a path escapes member names and cuts long values", "[unit][receiver][json_schema]") {
  const std::string schema = R"({"additionalProperties": {"type": "integer"}})";
  CHECK(error_of(schema, R"({"a/b~c": "x"})") == R"(/a~1b~0c: "x" is not of type integer)");
  CHECK(error_of(schema, R"({"line\nbreak": "x"})") == R"(/line\u000abreak: "x" is not of type integer)");
  // Names and values are cut after 72 bytes.
  const std::string long_name(100, 'k');
  const auto long_value = std::string(80, 'v');
  CHECK(*JsonSchema::compile(json::parse(schema)).first_error(json{{long_name, long_value}}) ==
        "/" + std::string(72, 'k') + "...: \"" + std::string(72, 'v') + "\"... (80 bytes) is not of type integer");
  // A cut never splits a UTF-8 sequence ("ồ" is 3 bytes: 71 + 3 > 72).
  const auto text = std::string(71, 'a') + "ồ";
  CHECK(*JsonSchema::compile(json::parse(R"({"type": "integer"})")).first_error(json(text)) ==
        "(root): \"" + std::string(71, 'a') + "\"... (74 bytes) is not of type integer");
}

TEST_CASE("compile refuses what it does not implement", "[unit][receiver][json_schema]") {
  CHECK(compile_error(R"({"type": "object"})").empty());
  CHECK(compile_error(R"({"$defs": {"reading": {"patternProperties": {"^x": {}}}}})") ==
        "/$defs/reading: keyword \"patternProperties\" is not implemented by this validator (receiver/json_schema.h "
        "lists those that are)");
  CHECK(compile_error(R"({"properties": {"a": {"requried": ["x"]}}})") ==
        "/properties/a: keyword \"requried\" is not implemented by this validator (receiver/json_schema.h lists "
        "those that are)");
  CHECK(compile_error(R"({"uniqueItems": true})").rfind("(root): keyword \"uniqueItems\"", 0) == 0);
  CHECK(compile_error(R"({"$ref": "#/$defs/nothing"})") == R"((root): $ref: "#/$defs/nothing": the schema has nothing there)");
  CHECK(compile_error(R"({"$ref": "other.json#/a"})") ==
        R"((root): $ref: "other.json#/a": only references into the same schema ("#/$defs/...") are implemented)");
  CHECK(compile_error(R"({"$ref": "#anchor"})") == R"((root): $ref: "#anchor": not a JSON pointer (anchors are not implemented))");
  CHECK(compile_error(R"({"properties": {"a": {"pattern": "(unclosed"}}})").rfind(
            "/properties/a: pattern: \"(unclosed\" is not a regular expression PCRE2 can compile: ", 0) == 0);
  CHECK(compile_error(R"({"minLength": -1})") == "(root): minLength: must be a non-negative integer, not -1");
  CHECK(compile_error(R"({"minimum": "1"})") == R"((root): minimum: must be a number, not "1")");
  CHECK(compile_error(R"({"type": "float"})") == R"((root): type: "float" is not a JSON Schema type)");
  CHECK(compile_error(R"({"required": ["a", "a"]})") == R"((root): required: "a" is listed twice)");
  CHECK(compile_error(R"({"items": [{}]})").rfind("(root): items: an array of schemas", 0) == 0);
  CHECK(compile_error(R"({"then": {}})") == "(root): then/else without if: it would have no effect");
  CHECK(compile_error(R"({"$schema": "http://json-schema.org/draft-07/schema#"})").rfind(
            R"((root): $schema: "http://json-schema.org/draft-07/schema#" is not draft 2020-12)", 0) == 0);
  CHECK(compile_error(R"({"properties": {"a": {"$id": "x"}}})") ==
        "/properties/a: $id: only the root may have one (a nested $id moves the base of $ref)");
  CHECK(compile_error(R"({"allOf": []})") == "(root): allOf: must be a non-empty array of schemas");
  CHECK(compile_error(R"({"properties": {"a": 5}})") == "/properties/a: a schema must be an object or a boolean, not 5");
  CHECK(compile_error(R"({"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"allOf": [{"$ref": "#/$defs/a"}]}}})")
            .find("refers back to itself without descending into the document") != std::string::npos);
  // Recursion that descends into the document is fine.
  CHECK(compile_error(R"({"items": {"$ref": "#"}})").empty());
}

// ---- The built-in schemas ------------------------------------------------------------------------

TEST_CASE("batch_schema accepts the gateway's data event and blob batches", "[unit][receiver][json_schema]") {
  const auto& schema = ioc_receiver::batch_schema();
  CHECK(schema.first_error(data_batch()) == std::nullopt);
  CHECK(schema.first_error(event_batch()) == std::nullopt);
  CHECK(schema.first_error(blob_event()) == std::nullopt);
  CHECK(schema.first_error(without(data_batch(), "/org")) == std::nullopt);
  CHECK(schema.first_error(with(data_batch(), "/readings/0/seq", 1042.0)) == std::nullopt);
}

TEST_CASE("batch_schema rejects bad batches with the first problem", "[unit][receiver][json_schema]") {
  const auto& schema = ioc_receiver::batch_schema();
  const auto data = data_batch();
  CHECK(schema.first_error(with(data, "/schema", "ioc-edge/batch/2")) ==
        R"(/schema: "ioc-edge/batch/2" is not "ioc-edge/batch/1")");
  CHECK(schema.first_error(with(data, "/readings/0/forged", 1)) == R"(/readings/0: property "forged" is not allowed)");
  CHECK(schema.first_error(with(data, "/forged", 1)) == R"((root): property "forged" is not allowed)");
  CHECK(schema.first_error(with(data, "/org/phone", "0209")) == R"(/org: property "phone" is not allowed)");
  CHECK(schema.first_error(with(data, "/readings/1/ts", "2026-02-30T00:00:00.000Z")) ==
        R"(/readings/1/ts: "2026-02-30T00:00:00.000Z" is not an RFC 3339 date-time: February 2026 has no day 30 (it )"
        R"(has 28))");
  CHECK(schema.first_error(with(data, "/store", "6F1C2A3E-6A8E-4F7E-9A65-3F8D2F0F4B1D")) ==
        R"(/store: "6F1C2A3E-6A8E-4F7E-9A65-3F8D2F0F4B1D" does not match the pattern )"
        R"(^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$)");
  CHECK(schema.first_error(with(data, "/readings/3/quality", "fine")) ==
        R"(/readings/3/quality: "fine" is not one of "good", "uncertain", "bad")");
  CHECK(schema.first_error(without(data, "/readings/2/error")) == R"(/readings/2: required property "error" is missing)");
  CHECK(schema.first_error(with(data, "/readings/4/seq", 0)) == "/readings/4/seq: 0 is less than the minimum 1");
  CHECK(schema.first_error(with(data, "/readings/0/value", nullptr)) == R"(/readings/0/quality: "good" is not "bad")");
  CHECK(schema.first_error(with(data, "/readings", json::array())) ==
        "/readings: an array of 0 items is too short (at least 1)");
  CHECK(schema.first_error(without(data, "/sent_at")) == R"((root): required property "sent_at" is missing)");
  CHECK(schema.first_error(with(data, "/readings/0/value", json::array({1, 2}))) ==
        "/readings/0/value: an array is not of type number, string, boolean, object or null");
  CHECK(schema.first_error(with(data, "/readings/0/ts", "2026-11-28T22:09:59Z")) ==
        R"(/readings/0/ts: "2026-11-28T22:09:59Z" is too short (20 characters, at least 24))");
  CHECK(schema.first_error(with(data, "/readings/0/ts", "2026-11-28T22:09:59.500+07:00")) ==
        R"(/readings/0/ts: "2026-11-28T22:09:59.500+07:00" is too long (29 characters, at most 24))");
  CHECK(schema.first_error(with(data, "/readings/3/clock", "synchronized")) ==
        R"(/readings/3/clock: "synchronized" is not "unsynchronized")");
  CHECK(schema.first_error(json::array()) == "(root): an array is not of type object");

  const auto events = event_batch();
  CHECK(schema.first_error(with(events, "/readings/0/value/reason", "full")) ==
        R"(/readings/0/value/reason: "full" is not one of "max_size", "max_age", "corrupt")");
  CHECK(schema.first_error(with(events, "/readings/0/value/ranges/1", json::array({502, 503, 504}))) ==
        "/readings/0/value/ranges/1: an array of 3 items is too long (at most 2)");
  CHECK(schema.first_error(with(events, "/readings/0/value/sources/", 3)) ==
        R"(/readings/0/value/sources: property name "" is too short (0 characters, at least 1))");
  CHECK(schema.first_error(without(events, "/readings/0/value/count")) ==
        R"(/readings/0/value: required property "count" is missing)");
  CHECK(schema.first_error(with(events, "/readings/1/value/last_good", "2026-13-01T00:00:00.000Z")) ==
        R"(/readings/1/value/last_good: "2026-13-01T00:00:00.000Z" is not an RFC 3339 date-time: month 13 does not )"
        R"(exist)");
  CHECK(schema.first_error(with(events, "/readings/2/value/expected_every_s", 0)) ==
        "/readings/2/value/expected_every_s: 0 is not greater than the exclusive minimum 0");
  CHECK(schema.first_error(with(events, "/readings/4/value/reason_code", 16)) ==
        "/readings/4/value/reason_code: 16 is less than the minimum 128");
  CHECK(schema.first_error(with(events, "/readings/5/value/event", "")) ==
        R"(/readings/5/value/event: "" is too short (0 characters, at least 1))");
}

TEST_CASE("status_schema takes the heartbeat and the will", "[unit][receiver][json_schema]") {
  const auto& schema = ioc_receiver::status_schema();
  CHECK(schema.first_error(heartbeat()) == std::nullopt);
  CHECK(schema.first_error(with(with(heartbeat(), "/fault", "disk full: cannot store new data"), "/backlog", 18250)) ==
        std::nullopt);
  CHECK(schema.first_error(will()) == std::nullopt);

  CHECK(schema.first_error(with(will(), "/ts", "2026-11-28T22:10:00.000Z")) == R"((root): property "ts" is not allowed)");
  CHECK(schema.first_error(without(heartbeat(), "/fault")) == R"((root): required property "fault" is missing)");
  CHECK(schema.first_error(with(heartbeat(), "/state", "sleeping")) ==
        R"(/state: "sleeping" is not one of "online", "offline")");
  CHECK(schema.first_error(with(heartbeat(), "/backlog", -1)) == "/backlog: -1 is less than the minimum 0");
  CHECK(schema.first_error(with(heartbeat(), "/uptime_s", 1.5)) == "/uptime_s: 1.5 is not of type integer");
  CHECK(schema.first_error(with(heartbeat(), "/fault", "")) == R"(/fault: "" is too short (0 characters, at least 1))");
  CHECK(schema.first_error(with(heartbeat(), "/store", "none")) ==
        R"(/store: "none" is too short (4 characters, at least 36))");
  CHECK(schema.first_error(without(will(), "/state")) == R"((root): required property "state" is missing)");
}

TEST_CASE("blob_schema takes a blob's user properties", "[unit][receiver][json_schema]") {
  const auto& schema = ioc_receiver::blob_schema();
  CHECK(schema.first_error(blob_properties()) == std::nullopt);
  CHECK(schema.first_error(without(without(blob_properties(), "/content_type"), "/origin")) == std::nullopt);
  CHECK(schema.first_error(with(blob_properties(), "/size", "0")) == std::nullopt);

  CHECK(schema.first_error(with(blob_properties(), "/schema", "ioc-edge/batch/1")) ==
        R"(/schema: "ioc-edge/batch/1" is not "ioc-edge/blob/1")");
  CHECK(schema.first_error(with(blob_properties(), "/seq", "0")) ==
        R"(/seq: "0" does not match the pattern ^[1-9][0-9]{0,17}$)");
  CHECK(schema.first_error(with(blob_properties(), "/seq", "0120")).has_value());
  CHECK(schema.first_error(with(blob_properties(), "/seq", "1234567890123456789")).has_value());  // 19 digits
  CHECK(schema.first_error(with(blob_properties(), "/seq", 5120)) == "/seq: 5120 is not of type string");
  CHECK(schema.first_error(with(blob_properties(), "/sha256", std::string(kSha).substr(0, 63) + "F")) ==
        R"(/sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a0F" does not match the pattern )"
        R"(^[0-9a-f]{64}$)");
  CHECK(schema.first_error(without(blob_properties(), "/sha256")) == R"((root): required property "sha256" is missing)");
  CHECK(schema.first_error(with(blob_properties(), "/colour", "red")) == R"((root): property "colour" is not allowed)");
}

TEST_CASE("first_error may run on many threads at once", "[unit][receiver][json_schema]") {
  const auto& schema = ioc_receiver::batch_schema();
  const auto good = event_batch();
  const auto bad = with(data_batch(), "/store", "6F1C2A3E-6A8E-4F7E-9A65-3F8D2F0F4B1D");
  const auto expected = schema.first_error(bad);
  std::vector<int> failures(4, 0);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < failures.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 300; ++i) {
        if (schema.first_error(good)) ++failures[t];
        if (schema.first_error(bad) != expected) ++failures[t];
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(failures == std::vector<int>(4, 0));
}

// ---- Verdicts python3-jsonschema agrees with -------------------------------------------------------
//
// Each line: the schema (docs/schema/NAME.schema.json), the expected verdict, the document. The same
// verdicts were checked with tests/schema/validate.py (Draft202012Validator with a format checker);
// keep every document on lines of its own between R"J( and )J" so they can be extracted again.

namespace {

struct Verdict {
  const char* schema;
  bool valid;
  const char* doc;
};

const Verdict kVerdicts[] = {
    {"batch", true, R"J({"schema":"ioc-edge/batch/1","site":"s","store":"6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d","sent_at":"2026-11-28T22:10:00.000Z","readings":[{"seq":1,"ts":"2026-11-28T22:09:59.500Z","source":"a","point":"p","value":1,"quality":"good"}]})J"},
    {"batch", true, R"J({"schema":"ioc-edge/batch/1","site":"s","store":"6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d","sent_at":"2028-02-29T00:00:00.000Z","org":{"name":"UBND xã Chợ Đồn"},"readings":[{"seq":7.0,"ts":"2026-11-28T22:09:59.500Z","source":"a","point":"p","value":"x","unit":"m","quality":"uncertain","clock":"unsynchronized"}]})J"},
    {"batch", true, R"J({"schema":"ioc-edge/batch/1","site":"s","store":"6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d","sent_at":"2026-11-28T22:10:00.000Z","readings":[{"seq":3,"ts":"2026-11-28T22:09:59.500Z","source":"a","point":"p","value":null,"quality":"bad","error":"timeout"}]})J"},
    {"batch", true, R"J({"schema":"ioc-edge/batch/1","site":"s","store":"6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d","sent_at":"2026-11-28T22:10:00.000Z","readings":[{"seq":4,"ts":"2026-11-28T22:09:59.500Z","source":"_gateway","point":"gap","value":{"event":"gap","reason":"corrupt","ranges":[[5,9]],"count":5},"quality":"good"}]})J"},
    {"batch", true, R"J({"schema":"ioc-edge/batch/1","site":"s","store":"6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d","sent_at":"2026-11-28T22:10:00.000Z","readings":[{"seq":5,"ts":"2026-11-28T22:09:59.500Z","source":"a","point":"source_stale","value":{"event":"source_stale","expected_every_s":5,"silent_s":15.0,"last_good":null},"quality":"good"}]})J"},
    {"batch", true, R"J({"schema":"ioc-edge/batch/1","site":"s","store":"6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d","sent_at":"2026-11-28T22:10:00.000Z","readings":[{"seq":6,"ts":"2026-11-28T22:09:59.500Z","source":"a","point":"source_recovered","value":{"event":"source_recovered","expected_every_s":1,"stale_s":0,"stale_since":"2026-11-28T22:00:00.000Z"},"quality":"good"}]})J"},
    {"batch", true, R"J({"schema":"ioc-edge/batch/1","site":"s","store":"6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d","sent_at":"2026-11-28T22:10:00.000Z","readings":[{"seq":7,"ts":"2026-11-28T22:09:59.500Z","source":"_gateway","point":"rejected","value":{"event":"rejected","reason":"packet too large","reason_code":149,"topic":"t","ranges":[[1,2]],"count":2,"sources":{"a":2}},"quality":"good"}]})J"},
    {"batch", true, R"J({"schema":"ioc-edge/batch/1","site":"s","store":"6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d","sent_at":"2026-11-28T22:10:00.000Z","readings":[{"seq":8,"ts":"2026-11-28T22:09:59.500Z","source":"cam","point":"snapshot","value":{"kind":"blob","content_type":"image/jpeg","size":3,"sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},"quality":"good"}]})J"},
    {"batch", false, R"J({"schema":"ioc-edge/batch/2","site":"s","store":"6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d","sent_at":"2026-11-28T22:10:00.000Z","readings":[{"seq":1,"ts":"2026-11-28T22:09:59.500Z","source":"a","point":"p","value":1,"quality":"good"}]})J"},
    {"batch", false, R"J({"schema":"ioc-edge/batch/1","site":"s","store":"6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d","sent_at":"2026-11-28T22:10:00.000Z","readings":[]})J"},
    {"batch", false, R"J({"schema":"ioc-edge/batch/1","site":"s","store":"6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d","sent_at":"2026-11-28T22:10:00.000Z","readings":[{"seq":1,"ts":"2026-11-28T22:09:59.500Z","source":"a","point":"p","value":1,"quality":"good","forged":true}]})J"},
    {"batch", false, R"J({"schema":"ioc-edge/batch/1","site":"s","store":"6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d","sent_at":"2026-11-28T22:10:00.000Z","readings":[{"seq":1,"ts":"2026-02-30T00:00:00.000Z","source":"a","point":"p","value":1,"quality":"good"}]})J"},
    {"batch", false, R"J({"schema":"ioc-edge/batch/1","site":"s","store":"6F1C2A3E-6A8E-4F7E-9A65-3F8D2F0F4B1D","sent_at":"2026-11-28T22:10:00.000Z","readings":[{"seq":1,"ts":"2026-11-28T22:09:59.500Z","source":"a","point":"p","value":1,"quality":"good"}]})J"},
    {"batch", false, R"J({"schema":"ioc-edge/batch/1","site":"s","store":"6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d","sent_at":"2026-11-28T22:10:00.000Z","readings":[{"seq":1,"ts":"2026-11-28T22:09:59.500Z","source":"a","point":"p","value":1,"quality":"fine"}]})J"},
    {"batch", false, R"J({"schema":"ioc-edge/batch/1","site":"s","store":"6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d","sent_at":"2026-11-28T22:10:00.000Z","readings":[{"seq":1,"ts":"2026-11-28T22:09:59.500Z","source":"a","point":"p","value":1,"quality":"bad"}]})J"},
    {"batch", false, R"J({"schema":"ioc-edge/batch/1","site":"s","store":"6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d","sent_at":"2026-11-28T22:10:00.000Z","readings":[{"seq":0,"ts":"2026-11-28T22:09:59.500Z","source":"a","point":"p","value":1,"quality":"good"}]})J"},
    {"batch", false, R"J({"schema":"ioc-edge/batch/1","site":"s","store":"6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d","sent_at":"2026-11-28T22:10:00.000Z","readings":[{"seq":1,"ts":"2026-11-28T22:09:59.500Z","source":"a","point":"p","value":null,"quality":"good"}]})J"},
    {"batch", false, R"J({"schema":"ioc-edge/batch/1","site":"s","store":"6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d","sent_at":"2026-11-28T22:10:00.000Z","readings":[{"seq":1.5,"ts":"2026-11-28T22:09:59.500Z","source":"a","point":"p","value":1,"quality":"good"}]})J"},
    {"batch", false, R"J({"schema":"ioc-edge/batch/1","site":"s","store":"6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d","sent_at":"2026-11-28T22:10:00.000Z","readings":[{"seq":4,"ts":"2026-11-28T22:09:59.500Z","source":"_gateway","point":"gap","value":{"event":"gap","reason":"max_age","ranges":[[1,2,3]],"count":3},"quality":"good"}]})J"},
    {"batch", false, R"J({"schema":"ioc-edge/batch/1","site":"s","store":"6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d","sent_at":"2026-11-28T22:10:00.000Z","readings":[{"seq":4,"ts":"2026-11-28T22:09:59.500Z","source":"_gateway","point":"gap","value":{"event":"gap","reason":"full","ranges":[[1,3]],"count":3},"quality":"good"}]})J"},
    {"batch", false, R"J({"schema":"ioc-edge/batch/1","site":"s","store":"6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d","sent_at":"2026-11-28T22:10:00.000Z","readings":[{"seq":4,"ts":"2026-11-28T22:09:59.500Z","source":"_gateway","point":"gap","value":{"event":"gap","reason":"max_size","ranges":[[1,3]],"count":3,"sources":{"":3}},"quality":"good"}]})J"},
    {"batch", false, R"J({"schema":"ioc-edge/batch/1","site":"s","store":"6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d","sent_at":"2026-11-28T22:10:00.000Z","readings":[{"seq":5,"ts":"2026-11-28T22:09:59.500Z","source":"a","point":"source_stale","value":{"event":"source_stale","expected_every_s":5,"silent_s":15.0,"last_good":"yesterday"},"quality":"good"}]})J"},
    {"batch", false, R"J({"schema":"ioc-edge/batch/1","site":"s","store":"6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d","sent_at":"2026-11-28T22:10:00.000Z","readings":[{"seq":7,"ts":"2026-11-28T22:09:59.500Z","source":"_gateway","point":"rejected","value":{"event":"rejected","reason":"x","reason_code":100,"topic":"t","ranges":[[1,2]],"count":2},"quality":"good"}]})J"},
    {"batch", false, R"J({"schema":"ioc-edge/batch/1","site":"","store":"6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d","sent_at":"2026-11-28T22:10:00.000Z","readings":[{"seq":1,"ts":"2026-11-28T22:09:59.500Z","source":"a","point":"p","value":1,"quality":"good"}]})J"},
    {"batch", false, R"J({"schema":"ioc-edge/batch/1","site":"s","store":"6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d","sent_at":"2026-11-28T22:10:00.000Z","readings":[{"seq":1,"ts":"2026-11-28T22:09:59Z","source":"a","point":"p","value":1,"quality":"good"}]})J"},
    {"batch", false, R"J({"schema":"ioc-edge/batch/1","site":"s","store":"6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d","sent_at":"2026-11-28T22:10:00.000Z","readings":[{"seq":1,"ts":"2026-11-28T22:09:59.500Z","source":"a","point":"p","value":[1,2],"quality":"good"}]})J"},
    {"batch", false, R"J({"schema":"ioc-edge/batch/1","site":"s","store":"6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d","sent_at":"2026-11-28T22:10:00.000Z","readings":[{"seq":1,"ts":"2026-11-28T22:09:59.500Z","source":"a","point":"p","value":{"event":""},"quality":"good"}]})J"},
    {"status", true, R"J({"state":"online","site":"s","store":"6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d","ts":"2026-11-28T22:10:00.000Z","version":"0.8.0","uptime_s":3600,"backlog":0,"oldest_age_s":0.0,"held":0,"fault":null})J"},
    {"status", true, R"J({"state":"online","site":"s","store":"6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d","ts":"2026-11-28T22:10:00.000Z","version":"0.8.0","uptime_s":5,"backlog":18250,"oldest_age_s":12.345,"held":100,"fault":"disk full"})J"},
    {"status", true, R"J({"state":"offline","site":"s","store":"6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d"})J"},
    {"status", false, R"J({"state":"offline","site":"s","store":"6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d","ts":"2026-11-28T22:10:00.000Z"})J"},
    {"status", false, R"J({"state":"online","site":"s","store":"6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d","ts":"2026-11-28T22:10:00.000Z","version":"0.8.0","uptime_s":3600,"backlog":0,"oldest_age_s":0.0,"held":0})J"},
    {"status", false, R"J({"state":"sleeping","site":"s","store":"6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d"})J"},
    {"status", false, R"J({"state":"online","site":"s","store":"6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d","ts":"2026-11-28T22:10:00.000Z","version":"0.8.0","uptime_s":3600,"backlog":-1,"oldest_age_s":0.0,"held":0,"fault":null})J"},
    {"status", false, R"J({"state":"online","site":"s","store":"6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d","ts":"2026-11-28T22:10:00.000Z","version":"0.8.0","uptime_s":3600,"backlog":0,"oldest_age_s":0.0,"held":0,"fault":""})J"},
    {"status", false, R"J({"site":"s","store":"6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d"})J"},
    {"blob", true, R"J({"schema":"ioc-edge/blob/1","site":"s","store":"6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d","seq":"5120","source":"cam","sent_at":"2026-11-30T09:00:01.000Z","point":"snapshot","ts":"2026-11-30T09:00:00.123Z","content_type":"image/jpeg","size":"204800","sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","origin":"frigate/cam/snapshot"})J"},
    {"blob", true, R"J({"schema":"ioc-edge/blob/1","site":"s","store":"6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d","seq":"1","source":"cam","sent_at":"2026-11-30T09:00:01.000Z","point":"snapshot","ts":"2026-11-30T09:00:00.123Z","size":"0","sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"})J"},
    {"blob", false, R"J({"schema":"ioc-edge/blob/1","site":"s","store":"6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d","seq":"0","source":"cam","sent_at":"2026-11-30T09:00:01.000Z","point":"snapshot","ts":"2026-11-30T09:00:00.123Z","size":"3","sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"})J"},
    {"blob", false, R"J({"schema":"ioc-edge/blob/1","site":"s","store":"6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d","seq":"012","source":"cam","sent_at":"2026-11-30T09:00:01.000Z","point":"snapshot","ts":"2026-11-30T09:00:00.123Z","size":"3","sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"})J"},
    {"blob", false, R"J({"schema":"ioc-edge/blob/1","site":"s","store":"6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d","seq":"12","source":"cam","sent_at":"2026-11-30T09:00:01.000Z","point":"snapshot","ts":"2026-11-30T09:00:00.123Z","size":"3","sha256":"9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08"})J"},
    {"blob", false, R"J({"schema":"ioc-edge/blob/1","site":"s","store":"6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d","seq":"12","source":"cam","sent_at":"2026-11-30T09:00:01.000Z","point":"snapshot","ts":"2026-11-30T09:00:00.123Z","size":"3"})J"},
    {"blob", false, R"J({"schema":"ioc-edge/blob/1","site":"s","store":"6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d","seq":"12","source":"cam","sent_at":"2026-11-30T09:00:01.000Z","point":"snapshot","ts":"2026-11-30T09:00:00.123Z","size":"3","sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","colour":"red"})J"},
    {"blob", false, R"J({"schema":"ioc-edge/blob/1","site":"s","store":"6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d","seq":"12","source":"cam","sent_at":"2026-11-30T09:00:01.000Z","point":"snapshot","ts":"2026-11-30T09:00:00.123Z","size":204800,"sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"})J"},
};

const JsonSchema& builtin(const std::string& name) {
  if (name == "status") return ioc_receiver::status_schema();
  if (name == "blob") return ioc_receiver::blob_schema();
  return ioc_receiver::batch_schema();
}

}  // namespace

TEST_CASE("the built-in schemas give the verdicts python3-jsonschema gives", "[unit][receiver][json_schema]") {
  for (const auto& v : kVerdicts) {
    const auto error = builtin(v.schema).first_error(json::parse(v.doc));
    INFO(v.schema << ": " << v.doc);
    INFO(error.value_or("valid"));
    CHECK(!error == v.valid);
  }
}
