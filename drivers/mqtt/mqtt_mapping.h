#pragma once
// How an MQTT message becomes readings: topic filters, name templates from topic levels, JSON
// flattening and pointer mapping, plain values, timestamps. Pure functions; no I/O, no threads.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/reading.h"
#include "drivers/mqtt/mqtt_config.h"

namespace ioc_edge::mqtt {

// MQTT topic filter matching (MQTT 3.1.1 section 4.7): '+' one level, '#' the rest (and the parent
// level itself); topics starting with '$' do not match filters starting with a wildcard.
bool topic_matches(std::string_view filter, std::string_view topic);
// What is wrong with a topic filter, or empty: non-empty, at most 65535 bytes, valid UTF-8, no NUL,
// '#' only as the whole last level, '+' only as a whole level.
std::string filter_problem(std::string_view filter);

std::vector<std::string_view> topic_levels(std::string_view topic);

// JSON pointers and timestamps: drivers/shared/json_mapping.h, shared with the http-poll source.
using ioc_edge::parse_timestamp;
using ioc_edge::pointer_problem;

// Literal text with placeholders {N} (topic level N, 0-based) and {-N} (N-th level from the end,
// {-1} is the last). "{{" and "}}" are literal braces.
class NameTemplate {
 public:
  NameTemplate() = default;
  // Empty error on success; otherwise what is wrong ("{x}: not a level number").
  static NameTemplate parse(std::string_view text, std::string& error);
  bool empty() const { return parts_.empty(); }
  // The topic levels a topic needs for expand() to succeed (0: the template has no placeholders).
  std::size_t min_levels() const;
  // The name for a topic's levels; nullopt and `error` ("topic has 2 levels, {3} needs 4") when a
  // level is missing.
  std::optional<std::string> expand(const std::vector<std::string_view>& levels, std::string& error) const;

 private:
  struct Part {
    std::string text;
    int level = 0;
    bool is_level = false;
  };
  std::vector<Part> parts_;
};


// The outcome of mapping one message.
struct Mapped {
  std::vector<Reading> readings;   // what to store (may be some even when `error` is set)
  std::string error;               // the first problem, naming where ("/readings/2: ..."); empty if none
  // What kind of bad input `error` is, for the counters: "malformed_json", "invalid_utf8",
  // "no_match" (a pointer matching nothing), "bad_timestamp", "too_many_points", "bad_value",
  // "bad_point_name", "empty_payload". Empty when `error` is.
  std::string kind;
};

// The compiled mapping of one source (templates parsed, pointers checked) built once from Config.
class Mapper {
 public:
  // Fails (returns nullopt with `error`) only on a template or pointer that parse_config accepted
  // but cannot compile: parse_config checks the same things.
  static std::optional<Mapper> build(const Config& cfg, std::string& error);

  // The reading source name for a topic: the configured template expanded, or nullopt (with
  // `error`) when a level is missing or the result is not a valid source name. Empty template:
  // returns `own_name`.
  std::optional<std::string> source_for(const std::vector<std::string_view>& levels, std::string_view own_name,
                                        std::string& error) const;
  // The point for value, binary and event messages: the `point` template expanded ({-1} default).
  std::optional<std::string> point_for(const std::vector<std::string_view>& levels, std::string& error) const;

  // json format, kind data: explicit fields, or every number / bool / string leaf named by its
  // path ("ENERGY.Power", array items "a.0"); null leaves are skipped (a null field too; a field
  // naming an object or array gets its JSON text); the ts_pointer's leaf is the
  // timestamp, not a point. At most 1,000 points per message (more is an error; none stored).
  // Invalid JSON, invalid UTF-8 in a string, a pointer matching nothing, an unreadable ts: error.
  Mapped map_json(std::string_view payload, const std::vector<std::string_view>& levels, std::int64_t now_ms) const;
  // json format, kind event: one reading, point from point_for(), value the whole document
  // (compact JSON text), ts from ts_pointer or now.
  Mapped map_event(std::string_view payload, const std::vector<std::string_view>& levels, std::int64_t now_ms) const;
  // value format: "23.5" / "-4" (numbers; integers stay integers), "true"/"false"/"ON"/"OFF" (any
  // case: booleans), anything else a string (must be valid UTF-8, at most 256 KiB); surrounding
  // whitespace is trimmed; an empty payload is an error.
  Mapped map_value(std::string_view payload, const std::vector<std::string_view>& levels, std::int64_t now_ms) const;

 private:
  // Copies of what mapping needs from the Config, so a Mapper does not depend on its lifetime.
  NameTemplate source_, point_;
  std::vector<Field> fields_;
  std::vector<std::vector<std::string>> field_tokens_;  // each field's pointer, split and unescaped
  TimeSpec ts_;
  std::vector<std::string> ts_tokens_;  // ts_.pointer split and unescaped (when not empty)
  std::string unit_;
  std::uint64_t max_payload_ = 0;
};

}  // namespace ioc_edge::mqtt
