#pragma once
// Turning the offices' MQTT messages into rows, without a database.
//
// Design note
// -----------
// The receiver's writer thread takes the messages the broker delivered, hands each to
// Ingest::add(), and writes the rows that accumulate in a RowBatch in one transaction
// (receiver/writer.h); only after that commit are the messages acknowledged. This file is the
// pure half: it knows the topics and the exchange structure (docs/schema/), and nothing about
// PostgreSQL but COPY's text format.
//
// What a message becomes (docs/ioc-database.md, "What arrives"):
//
//   {root}/{province}/{site}/data/{source}   batch -> readings (+ offices, sources, seq ranges)
//   {root}/{province}/{site}/event/{source}  batch -> events; a gap event also -> gaps
//   {root}/{province}/{site}/blob/{source}   bytes -> blobs (MQTT 5: metadata in user properties;
//                                            MQTT 3.1.1: matched to its event by SHA-256)
//   {root}/{province}/{site}/status          heartbeat / last will -> offices (+ heartbeats)
//
// Invariants
//  1. Every message becomes rows or exactly one quarantine row with a reason: it fails its schema,
//     its `site` is not its topic's, its topic is not one of the above, its payload cannot be
//     decompressed or was larger than the limit. Nothing is dropped silently, and nothing that
//     failed is stored as data.
//  2. A payload that begins with the zstd frame magic (28 B5 2F FD) is decompressed first, at most
//     `max_payload` bytes out (JSON never begins with that byte).
//  3. add() changes nothing in the batch when it quarantines: the message's rows are all or none.
//  4. Seqs are collected per (site, store) as sorted, merged ranges: what the writer adds to
//     seq_ranges in the same transaction as the rows.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mqtt_sub/mqtt_codec.h"
#include "receiver/findings.h"

namespace ioc_receiver {

enum class TopicKind { Data, Event, Blob, Status };

struct OfficeTopic {
  std::string province, site, source;  // source empty for status
  TopicKind kind = TopicKind::Data;
};

// `topic` under `root` ("ioc"): nullopt when it is none of the four shapes above.
std::optional<OfficeTopic> parse_office_topic(std::string_view topic, std::string_view root);

struct OfficeSeen {
  std::string province;
  std::optional<std::string> unit_code, agency_code, name;
};

struct SourceSeen {
  std::optional<std::string> last_reading_ts, last_good_ts;  // RFC 3339, the latest in the batch
};

struct StatusRow {
  std::string site, province, body, state;
  bool retained = false;  // a copy the broker kept: not a live heartbeat
  std::optional<std::string> ts;
  std::optional<std::int64_t> backlog, held;
};

struct BlobRow {
  std::string site, store, ts, source, point, content_type, sha256_hex, meta;
  std::int64_t seq = 0;
  std::string content;
};

// A MQTT 3.1.1 blob: bytes only, matched to its metadata event in the database by SHA-256.
struct UnmatchedBlob {
  std::string topic, site, province, source, sha256_hex, content;
};

struct QuarantineRow {
  std::string topic, reason, payload, properties;  // properties: JSON object text, "" for none
  std::optional<std::string> site_in_topic;
};

// The rows of many messages, written in one transaction.
struct RowBatch {
  std::string readings_copy;  // COPY text rows for stage_readings
  std::string events_copy;    // COPY text rows for stage_events
  std::string gaps_copy;      // COPY text rows for stage_gaps
  std::size_t readings = 0, events = 0, gaps = 0;
  std::vector<BlobRow> blobs;
  std::vector<UnmatchedBlob> unmatched_blobs;
  std::vector<StatusRow> statuses;
  std::vector<QuarantineRow> quarantine;
  std::map<std::string, OfficeSeen> offices;                         // by site
  std::map<std::pair<std::string, std::string>, SourceSeen> sources;  // by (site, source)
  std::map<std::pair<std::string, std::string>, std::vector<SeqRange>> seqs;  // by (site, store), merged
  std::size_t messages = 0;

  bool empty() const { return messages == 0; }
  // Readings, events, blobs and statuses: what batch_max_rows counts.
  std::size_t rows() const { return readings + events + blobs.size() + unmatched_blobs.size() + statuses.size(); }
  void clear();
};

struct IngestOptions {
  std::string topic_root = "ioc";
  std::size_t max_payload = 64u << 20;  // after decompression
};

struct IngestCounters {
  std::uint64_t messages = 0, readings = 0, events = 0, gaps = 0, blobs = 0, statuses = 0, quarantined = 0,
                decompressed = 0;
};

class Ingest {
 public:
  explicit Ingest(IngestOptions options) : options_(std::move(options)) {}
  // Adds one message's rows (or its quarantine row) to `batch`.
  void add(const ioc_edge::mqtt_wire::Publish& message, RowBatch& batch);
  // The quarantine row for a message the database refused even alone (receiver/writer.h).
  static QuarantineRow refused(const ioc_edge::mqtt_wire::Publish& message, const std::string& reason);
  const IngestCounters& counters() const { return counters_; }

 private:
  // Returns the reason to quarantine, or "" when the rows were added.
  std::string add_batch(const OfficeTopic& topic, const std::string& payload, RowBatch& batch);
  std::string add_blob(const OfficeTopic& topic, const ioc_edge::mqtt_wire::Publish& message, const std::string& payload,
                       RowBatch& batch);
  std::string add_status(const OfficeTopic& topic, const ioc_edge::mqtt_wire::Publish& message, const std::string& payload,
                         RowBatch& batch);
  void quarantine(const ioc_edge::mqtt_wire::Publish& message, const std::optional<OfficeTopic>& topic, std::string reason,
                  const std::string& payload, RowBatch& batch);

  IngestOptions options_;
  IngestCounters counters_;
};

// Adds [first, last] to a sorted list of disjoint, non-adjacent ranges, merging.
void add_range(std::vector<SeqRange>& ranges, std::int64_t first, std::int64_t last);

// Lowercase hex SHA-256 of `bytes`.
std::string sha256_hex(std::string_view bytes);

}  // namespace ioc_receiver
