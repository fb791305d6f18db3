#pragma once
// The reading model (docs/design.md section 4): one measured value, a plain value type.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "core/utf8.h"  // valid_utf8, utf8_error_at

namespace ioc_edge {

enum class Quality : std::uint8_t { Good, Uncertain, Bad };

// A JSON object or array already serialized compactly (records from local systems, event bodies).
struct JsonText {
  std::string text;
  bool operator==(const JsonText&) const = default;
};

// monostate = null (only meaningful with Quality::Bad).
using Value = std::variant<std::monostate, double, std::int64_t, bool, std::string, JsonText>;

// Delivery priority. Higher goes first; eviction takes the lowest first.
enum class Priority : std::uint8_t { Low = 0, Normal = 1, High = 2, System = 3 };
inline constexpr int kPriorityLevels = 4;

// Which kind of message a record becomes (its topic family and payload; see core/envelope.h).
// The values are stored in the outbox: never renumber.
enum class Kind : std::uint8_t { Data = 0, Event = 1, Blob = 2, CmdResult = 3 };

struct Reading {
  std::string point;
  std::int64_t ts_ms = 0;  // when measured, ms since epoch, UTC
  Value value;
  std::string unit;
  Quality quality = Quality::Good;
  std::string error;  // why the value is bad or uncertain; empty otherwise
  bool clock_unsynchronized = false;  // ts came from a clock not known to be right (set by the pipeline)
};

std::string_view to_string(Quality q);
std::string_view to_string(Priority p);

// "2026-11-28T22:09:59.500Z"
std::string format_rfc3339_ms(std::int64_t ms_since_epoch);
// RFC 3339 -> ms since epoch: "2026-11-30T10:00:00Z", "2026-11-30 17:00:00.25+07:00", fractions of
// any length (truncated to ms). Text without an offset is read at `default_offset_minutes` east of
// UTC, or in the machine's zone when `local_zone`. nullopt when it is not such a time.
std::optional<std::int64_t> parse_rfc3339_ms(std::string_view text, int default_offset_minutes = 0,
                                             bool local_zone = false);
// 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999Z: what an RFC 3339 text can hold; beyond it a
// number is a unit mistake, and the bounds keep the arithmetic far from overflow.
inline constexpr std::int64_t kMinTsMs = -62135596800000;
inline constexpr std::int64_t kMaxTsMs = 253402300799999;
// A wall-clock time -> ms since the epoch, at `offset_minutes` east of UTC or in the machine's zone
// (summer time by the zone's rules). nullopt for an impossible date or time or one out of range.
std::optional<std::int64_t> wall_time_ms(int year, int month, int day, int hour, int minute, int second, int millis,
                                         int offset_minutes, bool local_zone);

// Names that end up in MQTT topics and file names (site, province, source): 1-64 characters of
// A-Z a-z 0-9 _ . - starting with a letter or digit (no '/', '+', '#', spaces).
bool valid_id(std::string_view s);
std::string_view id_rule();  // the rule above in words, for error messages


// Appends `s` as a JSON string literal (quotes included). `s` must be valid UTF-8.
void append_json_string(std::string& out, std::string_view s);

// The stored body of a reading: a JSON object without "seq", e.g.
// {"ts":"...","source":"tram-bom-1","point":"p0","value":1.5,"unit":"V","quality":"good"}
// Compact: it never holds a raw newline (the outbox keeps one reading per line). The outbox stores
// this text and the forwarder splices "seq" in when it builds a batch.
void append_reading_json(std::string& out, std::string_view source, const Reading& r);
std::string reading_body_json(std::string_view source, const Reading& r);

// Why a reading cannot be stored as it is, or empty if it can (names and values bounded, UTF-8).
// The pipeline refuses such a batch; a driver may check first to say which reading it was.
std::string invalid_reason(const Reading& r);

// A small value a source keeps beside its data: written in the same outbox transaction as the
// readings it comes with, so after a crash both are there or neither is (Sink::push_batch). A
// spool source marks how far into a file it got and that a content was imported; the HTTP ingest
// keeps the answer it gave to an Idempotency-Key. Each source sees only its own marks.
struct Mark {
  std::string key;              // 1 to 256 bytes
  std::string value;            // at most 64 KiB
  std::int64_t expires_ms = 0;  // wall time (UTC ms) after which the outbox forgets it; 0: never
  // Read back only: the seqs of the readings committed with the mark's latest write (0: none).
  std::int64_t first_seq = 0, last_seq = 0;
};
inline constexpr std::size_t kMaxMarkKeyBytes = 256;
inline constexpr std::size_t kMaxMarkValueBytes = 64 * 1024;

}  // namespace ioc_edge
