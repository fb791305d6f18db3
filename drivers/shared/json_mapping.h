#pragma once
// JSON documents from devices and local systems as readings: parsing with a depth limit and a
// worded error, RFC 6901 pointers, JSON values as reading values, timestamps in the forms devices
// write them, and the config keys that say which form (ts_format, timezone). Shared by the drivers
// that read JSON (mqtt, http-poll). Pure functions; no I/O, no threads.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/json_value.h"
#include "core/reading.h"

namespace ioc_edge {

class TableReader;

// How a timestamp in a document is written.
enum class TsFormat : std::uint8_t {
  Auto,      // a string is RFC 3339; a number is Unix seconds (below 1e11) or milliseconds
  Rfc3339,   // "2026-11-30T10:00:00.5+07:00"; without an offset, `timezone` applies
  Unix,      // seconds since 1970 (fractions allowed), a number or a numeric string
  UnixMs,    // milliseconds since 1970
  Pattern,   // a strftime pattern (ts_format contains '%'), read in `timezone`
};

struct TimeSpec {
  std::string pointer;           // ts_pointer (JSON pointer); empty: the time of receipt
  TsFormat format = TsFormat::Auto;
  std::string pattern;           // for Pattern: e.g. "%Y-%m-%dT%H:%M:%S" (Tasmota's local time)
  bool local_zone = false;       // timezone = "local": the machine's zone (its DST rules)
  int offset_minutes = 0;        // timezone = "+07:00" (or "UTC", the default: 0)
};

// Reads the keys ts_format and timezone (docs in drivers/mqtt/README.md) into `ts`, reporting bad
// values through the reader. The caller decides whether they apply (only with a ts pointer).
void read_ts_format(TableReader& r, TimeSpec& ts);

// `text` read with spec.pattern (strptime; fractions of a second after it; a %z in it wins over
// the spec's zone), or nullopt and `error` ("... does not match ts_format ...").
std::optional<std::int64_t> parse_time_pattern(const std::string& text, const TimeSpec& spec, std::string& error);
// "+07:00", "-03:30", "+0700", "+07" -> minutes east of UTC (at most 14 hours); nullopt otherwise.
std::optional<int> parse_utc_offset(std::string_view text);

// External text in a message: quoted, cut at 64 bytes (on a character boundary).
std::string quote_text(std::string_view s);
// `s` without leading and trailing spaces, tabs, CR and LF.
std::string_view trim_space(std::string_view s);

// Parses a JSON document. On failure returns a discarded value, `kind` is "empty_payload",
// "malformed_json" or "invalid_utf8" and `error` says where ("invalid JSON: parse error at line 1,
// column 6: ..."; "invalid UTF-8 at byte 12"; "JSON nested deeper than 64 levels"). Documents
// nested deeper than `max_depth` are refused before the parser sees them, so nothing recursive
// (the parser, dump(), a flattener) can run off the stack.
nlohmann::json parse_json(std::string_view text, int max_depth, std::string& kind, std::string& error);

// What is wrong with a JSON pointer (RFC 6901: "" or "/a/b", "~0" is '~' and "~1" is '/'), or empty.
std::string pointer_problem(std::string_view pointer);
// The pointer's tokens, unescaped; false with `error` when it is not a pointer.
bool split_json_pointer(std::string_view pointer, std::vector<std::string>& tokens, std::string& error);
// The value the tokens name in `doc`, or nullptr. Array indexes are decimal without leading zeros.
const nlohmann::json* resolve_json_pointer(const nlohmann::json& doc, const std::vector<std::string>& tokens);

// compact_json() and json_to_value(): core/json_value.h (the HTTP ingest uses them too).
// "null", "an object", "an array", "a string", "a boolean", "a number".
std::string_view json_type_name(const nlohmann::json& v);

// A number written as text: "23.5", "-4", ".5" (not "inf", "nan").
struct ParsedNumber {
  bool ok = false;
  bool integral = false;
  std::int64_t i = 0;
  double d = 0;
};
ParsedNumber read_number_text(std::string_view s);

// A timestamp from a JSON value as `spec` says; nullopt and `error` when it cannot be read.
// RFC 3339 text is read by core's parse_rfc3339_ms (core/reading.h).
std::optional<std::int64_t> parse_timestamp(const nlohmann::json& value, const TimeSpec& spec, std::string& error);

}  // namespace ioc_edge
