#pragma once
// What goes up: the envelope, one typed unit of the outbox, and its codec (docs/design.md section 4).
//
// Every outbox record is an Envelope: what kind of message it becomes, which source it belongs to,
// its bytes, how many readings (seqs) it owns and a little metadata. This file is the only place
// that knows
//   - how readings are framed in a body (one compact JSON object without "seq" per line),
//   - how big the message built from records will be (the one size estimate the pipeline, the
//     outbox and the forwarder share),
//   - which topic each kind goes to (one table), and
//   - how records become MQTT messages (a batch for data/event/cmd-result, the raw bytes for a blob).
// Pure functions and plain values; no I/O, no threads.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/reading.h"
#include "core/uplink.h"

namespace ioc_edge {

// The unit the outbox stores and the forwarder sends.
struct Envelope {
  Priority prio = Priority::Normal;
  Kind kind = Kind::Data;
  std::string source;       // the source's name; for cmd-result, the command id
  std::string body;         // batched kinds: framed reading lines; blob: the bytes themselves
  std::uint32_t count = 1;  // readings (seqs) it owns; a blob owns one
  std::string meta;         // blob: a compact JSON object of string members (point, ts, content_type); else empty
};

// A stored envelope as read back for sending: it owns the seqs first_seq..last_seq.
struct Record {
  std::int64_t first_seq = 0;
  std::int64_t last_seq = 0;
  Priority prio = Priority::Normal;
  Kind kind = Kind::Data;
  std::string source;
  std::string body;
  std::string meta;
  std::size_t count() const { return static_cast<std::size_t>(last_seq - first_seq + 1); }
};

// The kind table: how each kind travels. Batched kinds carry readings in an ioc-edge/batch/1 JSON
// document, several records per message; a blob is one record, one message, its body the payload.
struct KindInfo {
  Kind kind;
  std::string_view name;    // "data", "event", "blob", "cmd-result": also the topic family
  bool batched;
};
const KindInfo& kind_info(Kind k);
// The kind stored as `value` in the outbox, or nullopt if this build does not know it.
std::optional<Kind> kind_from_int(std::int64_t value);

// "{prefix}/{family}/{source}", e.g. "ioc/thai-nguyen/bk-cho-don/data/tram-bom-1".
std::string topic_for(std::string_view prefix, Kind kind, std::string_view source);

// --- Framing ----------------------------------------------------------------------------------

// Appends one reading to a batched envelope's body (a newline before it if the body is not
// empty) and counts it. Compact JSON never holds a raw newline: strings escape it and JSON text
// values have theirs turned into spaces (see append_reading_json).
// `reading_source`, when not empty, names the reading's own source (a device a source derives,
// e.g. from MQTT topic levels); otherwise the reading carries the record's source.
void frame_reading(Envelope& e, const Reading& r, std::string_view reading_source = {});
// The number of framed readings in a batched body (lines); an empty body holds none.
std::size_t framed_count(std::string_view body);

// --- Sizes ------------------------------------------------------------------------------------

// Bytes a batch message adds around its readings' lines: the document header (schema, site, store,
// sent_at, org) and the closing brackets.
struct BatchHeader {
  std::string site;
  std::string store;
  std::string org_json;  // a compact JSON object, or empty for none
};
std::size_t batch_overhead(const BatchHeader& header);
// Bytes a record adds to a message: for batched kinds its lines plus the spliced "seq" of each
// reading and the separators; for a blob its body. The message is at most
// batch_overhead + the sum of this over its records.
std::size_t record_message_bytes(Kind kind, std::size_t body_bytes, std::size_t count);
// The largest seq in bytes (19 digits) plus `"seq":` and separators: what a reading's line grows by.
inline constexpr std::size_t kSeqOverhead = 28;

// The upper bounds of the [uplink] message size keys (documented in config/ioc-edge.toml): a
// message ties up the link while it travels, and brokers cap packet sizes (Mosquitto's
// message_size_limit, EMQX's max_packet_size, 1 MiB by default there).
inline constexpr std::uint64_t kMaxBatchBytes = 16ull << 20;
inline constexpr std::uint64_t kMaxBlobBytes = 64ull << 20;

// --- Messages ---------------------------------------------------------------------------------

// {"schema":"ioc-edge/batch/1","site":..,"store":..,"sent_at":..,["org":..,]"readings":[...]}
// Each line of a record's body is one reading; it gets its seq (first_seq, first_seq + 1, ...)
// spliced in front.
std::string build_batch(const BatchHeader& header, std::int64_t sent_at_ms, const std::vector<const Record*>& records);

// The message for a group of records of one kind and source (a blob: exactly one record). A blob's
// metadata travels as MQTT v5 user properties: site, store, seq, source, then its own members.
Message build_message(std::string_view prefix, const BatchHeader& header, std::int64_t sent_at_ms,
                      const std::vector<const Record*>& group);

// Consecutive seqs [first, last], all of one priority, covering whole records (what the outbox's
// remove() deletes and hold() sets aside: every record whose last_seq lies in the range).
struct SeqRange {
  std::int64_t first = 0;
  std::int64_t last = 0;
  Priority prio = Priority::Normal;
};

// Consecutive runs of the records' seqs (records of one priority), for Outbox::remove().
std::vector<SeqRange> seq_ranges(const std::vector<const Record*>& records);

// A blob's metadata as stored in Envelope::meta (a compact JSON object of string members: point,
// ts, content_type, size, sha256, origin; empty ones left out), and back as pairs.
struct BlobMeta {
  std::string_view point;
  std::int64_t ts_ms = 0;
  std::string_view content_type;
  std::size_t size = 0;
  std::string_view sha256;  // lowercase hex
  std::string_view origin;  // e.g. the camera's MQTT topic
  std::string_view source;  // the device's own source name when it differs from the record's
};
std::string blob_meta_json(const BlobMeta& m);
std::vector<std::pair<std::string, std::string>> blob_meta_pairs(std::string_view meta_json);

// SHA-256 of `bytes`, 64 lowercase hex digits (OpenSSL).
std::string sha256_hex(std::string_view bytes);
// Base64 (RFC 4648, with padding) of `bytes` (OpenSSL).
std::string base64(std::string_view bytes);

// The metadata event of a blob record, sent before its bytes under both MQTT versions (MQTT 3.1.1
// has no user properties): a batch on {prefix}/event/{source} holding one reading with the blob's
// seq, its ts and point, and the value {"kind":"blob","content_type":..,"size":N,"sha256":..,
// "origin":..} (docs/schema/README.md).
Message build_blob_event(std::string_view prefix, const BatchHeader& header, std::int64_t sent_at_ms,
                         const Record& blob);

}  // namespace ioc_edge
