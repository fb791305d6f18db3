#include "receiver/writer.h"

#include <nlohmann/json.hpp>

namespace ioc_receiver {

namespace {

// Session-private staging tables, emptied at every commit.
constexpr const char* kStaging = R"sql(
SET TIME ZONE 'UTC';
CREATE TEMP TABLE stage_readings (LIKE readings INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE stage_events (LIKE events INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE stage_gaps (LIKE gaps) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE stage_seqs (site text, store uuid, first_seq bigint, last_seq bigint) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE stage_offices (site text, province text, unit_code text, agency_code text, name text)
  ON COMMIT DELETE ROWS;
CREATE TEMP TABLE stage_sources (site text, source text, last_reading_at timestamptz, last_good_at timestamptz)
  ON COMMIT DELETE ROWS;
)sql";

constexpr const char* kReadingColumns = "site, store, seq, ts, source, point, value_num, value_json, unit, quality, error";
constexpr const char* kEventColumns = "site, store, seq, ts, source, event, body";
constexpr const char* kGapColumns = "site, store, first_seq, last_seq, reason, declared_at, event_seq";

void put(std::string& out, const std::string& text) { out += pg::copy_escape(text); }
void put(std::string& out, const std::optional<std::string>& text) {
  if (text)
    put(out, *text);
  else
    out += "\\N";
}

std::string hex_bytea(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\\\\x";  // \x, escaped for COPY's text format
  out.reserve(3 + 2 * bytes.size());
  for (const unsigned char c : bytes) {
    out += kHex[c >> 4];
    out += kHex[c & 0xF];
  }
  return out;
}

void rollback(pg::Connection& db) noexcept {
  try {
    db.exec("ROLLBACK");
  } catch (...) {
  }
}

}  // namespace

Writer::Writer(const std::string& conninfo) : db_(conninfo) { db_.exec(kStaging); }

bool Writer::retryable(const pg::Error& e) {
  return e.sqlstate() == "40P01" || e.sqlstate() == "40001";  // deadlock, serialization failure
}

bool Writer::data_error(const pg::Error& e) {
  // Class 22 (data exception: a value out of range, an invalid byte sequence), 23 (integrity
  // constraint: a CHECK), 54 (program limit: a key too long for its index). Not 23514 from a row
  // that met a partition's bound while it was being attached: that passes on a second try.
  const auto& st = e.sqlstate();
  if (st.size() != 5 || st == "23505") return false;
  return st.rfind("22", 0) == 0 || (st.rfind("23", 0) == 0 && st != "23514") || st.rfind("54", 0) == 0;
}

WriteResult Writer::write(const RowBatch& batch) {
  WriteResult res;
  try {
    res = write_rows(batch, /*allow_direct=*/true);
  } catch (const pg::Error& e) {
    // Another receiver stored one of these seqs in the meantime: through staging, then.
    if (e.sqlstate() != "23505") throw;
    res = write_rows(batch, /*allow_direct=*/false);
  }
  return res;
}

// `rows` (COPY text, `count` of them) into `table`: straight, or through stage_<table> keeping
// what is there. Returns how many were stored.
std::uint64_t Writer::copy_rows(const std::string& table, const char* columns, const std::string& rows,
                                std::size_t count, bool direct) {
  if (direct) {
    db_.copy_in("COPY " + table + " (" + columns + ") FROM STDIN", rows);
    return count;
  }
  db_.copy_in("COPY stage_" + table + " (" + columns + ") FROM STDIN", rows);
  return static_cast<std::uint64_t>(db_.exec("INSERT INTO " + table + " (" + columns + ") SELECT " + columns +
                                             " FROM stage_" + table + " ON CONFLICT DO NOTHING")
                                        .affected());
}

WriteResult Writer::write_rows(const RowBatch& batch, bool allow_direct) {
  WriteResult res;
  std::vector<QuarantineRow> late_quarantine;
  db_.exec("BEGIN");
  try {
    // Whether any seq of the batch was received before (a resent message): if none was, the rows
    // go straight into their tables with COPY; otherwise through staging, keeping what is there.
    bool direct = allow_direct;
    if (!batch.seqs.empty()) {
      std::string copy;
      for (const auto& [key, ranges] : batch.seqs)
        for (const auto& r : ranges) {
          put(copy, key.first);
          copy += '\t' + key.second + '\t' + std::to_string(r.first) + '\t' + std::to_string(r.last) + '\n';
        }
      db_.copy_in("COPY stage_seqs FROM STDIN", copy);
      if (direct)
        direct = db_.exec("SELECT NOT EXISTS (SELECT 1 FROM stage_seqs s JOIN seq_ranges r USING (site, store) "
                          "WHERE r.first_seq <= s.last_seq AND r.last_seq >= s.first_seq)")
                     .text(0, 0) == "t";
      db_.exec("INSERT INTO seq_ranges AS r (site, store, first_seq, last_seq) "
               "SELECT site, store, first_seq, last_seq FROM stage_seqs ORDER BY site, store, first_seq "
               "ON CONFLICT (site, store, first_seq) DO UPDATE SET last_seq = greatest(r.last_seq, excluded.last_seq)");
    }
    if (batch.readings > 0) {
      res.readings = copy_rows("readings", kReadingColumns, batch.readings_copy, batch.readings, direct);
      res.duplicate_readings = batch.readings - res.readings;
    }
    if (batch.events > 0) {
      res.events = copy_rows("events", kEventColumns, batch.events_copy, batch.events, direct);
      res.duplicate_events = batch.events - res.events;
    }
    if (batch.gaps > 0) {
      db_.copy_in(std::string("COPY stage_gaps (") + kGapColumns + ") FROM STDIN", batch.gaps_copy);
      res.gaps = static_cast<std::uint64_t>(db_.exec(std::string("INSERT INTO gaps (") + kGapColumns + ") SELECT " +
                                                     kGapColumns + " FROM stage_gaps ON CONFLICT DO NOTHING")
                                                .affected());
    }
    for (const auto& b : batch.blobs) {
      res.blobs += static_cast<std::uint64_t>(
          db_.exec("INSERT INTO blobs (site, store, seq, ts, source, point, content_type, size, sha256, content, meta) "
                   "VALUES ($1, $2, $3, $4, $5, nullif($6, ''), nullif($7, ''), $8, decode($9, 'hex'), $10, $11::jsonb) "
                   "ON CONFLICT DO NOTHING",
                   {b.site, b.store, std::to_string(b.seq), b.ts, b.source, b.point, b.content_type,
                    std::to_string(b.content.size()), b.sha256_hex, b.content, b.meta},
                   {false, false, false, false, false, false, false, false, false, true, false})
              .affected());
    }
    for (const auto& b : batch.unmatched_blobs) {
      // Its metadata event: in the database already, or in this batch (inserted above).
      const auto event = db_.exec(
          "SELECT store::text, seq, ts, source, body::text FROM events WHERE site = $1 AND event = 'blob' "
          "AND body->>'sha256' = $2 ORDER BY received_at DESC LIMIT 1",
          {b.site, b.sha256_hex});
      if (event.rows() == 0) {
        QuarantineRow q;
        q.topic = b.topic;
        q.site_in_topic = b.site;
        q.reason = "blob without properties (MQTT 3.1.1) and no metadata event with its SHA-256 " + b.sha256_hex +
                   " has arrived: publish the event first (docs/schema/README.md, Blobs)";
        q.payload = b.content;
        late_quarantine.push_back(std::move(q));
        continue;
      }
      const auto meta = nlohmann::json::parse(std::string(event.text(0, 4)), nullptr, false);
      const auto text = [&](const char* k) -> std::optional<std::string> {
        if (meta.is_object() && meta.contains(k) && meta[k].is_string()) return meta[k].get<std::string>();
        return std::nullopt;
      };
      const auto seq = std::string(event.text(0, 1));
      const auto store = std::string(event.text(0, 0));
      res.blobs += static_cast<std::uint64_t>(
          db_.exec("INSERT INTO blobs (site, store, seq, ts, source, point, content_type, size, sha256, content, meta) "
                   "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, decode($9, 'hex'), $10, $11::jsonb) ON CONFLICT DO NOTHING",
                   {b.site, store, seq, std::string(event.text(0, 2)), std::string(event.text(0, 3)), text("point"),
                    text("content_type"), std::to_string(b.content.size()), b.sha256_hex, b.content,
                    std::string(event.text(0, 4))},
                   {false, false, false, false, false, false, false, false, false, true, false})
              .affected());
      db_.exec("INSERT INTO seq_ranges AS r (site, store, first_seq, last_seq) VALUES ($1, $2, $3, $3) "
               "ON CONFLICT (site, store, first_seq) DO UPDATE SET last_seq = greatest(r.last_seq, excluded.last_seq)",
               {b.site, store, seq});
    }
    if (!batch.quarantine.empty() || !late_quarantine.empty()) {
      std::string copy;
      const std::vector<QuarantineRow>* lists[] = {&batch.quarantine, &late_quarantine};
      for (const auto* list : lists)
        for (const auto& q : *list) {
          put(copy, q.topic);
          copy += '\t';
          put(copy, q.site_in_topic);
          copy += '\t';
          put(copy, q.reason);
          copy += '\t' + hex_bytea(q.payload) + '\t';
          put(copy, q.properties.empty() ? std::nullopt : std::optional(q.properties));
          copy += '\n';
          ++res.quarantined;
        }
      db_.copy_in("COPY quarantine (topic, site_in_topic, reason, payload, properties) FROM STDIN", copy);
    }
    db_.exec("COMMIT");
  } catch (...) {
    rollback(db_);
    throw;
  }
  return res;
}

// Offices (codes, last message, status), heartbeats and sources: a short transaction of its own
// after the rows', so two writers hold these shared rows only briefly.
void Writer::write_meta(const RowBatch& batch) {
  if (batch.offices.empty() && batch.sources.empty() && batch.statuses.empty()) return;
  db_.exec("BEGIN");
  try {
    // Offices first, in site order (the map is sorted): every writer locks them in one order.
    if (!batch.offices.empty()) {
      std::string copy;
      for (const auto& [site, o] : batch.offices) {
        put(copy, site);
        copy += '\t';
        put(copy, o.province);
        copy += '\t';
        put(copy, o.unit_code);
        copy += '\t';
        put(copy, o.agency_code);
        copy += '\t';
        put(copy, o.name);
        copy += '\n';
      }
      db_.copy_in("COPY stage_offices FROM STDIN", copy);
      db_.exec(
          "INSERT INTO offices AS o (site, province, unit_code, agency_code, name, last_message_at) "
          "SELECT site, province, unit_code, agency_code, name, now() FROM stage_offices ORDER BY site "
          "ON CONFLICT (site) DO UPDATE SET province = excluded.province, "
          "unit_code = coalesce(excluded.unit_code, o.unit_code), agency_code = coalesce(excluded.agency_code, "
          "o.agency_code), name = coalesce(excluded.name, o.name), last_message_at = now()");
    }
    for (const auto& s : batch.statuses) {
      const bool online = s.state == "online";
      if (s.retained) {
        // The broker's kept copy: the latest status it has, but not a heartbeat received now.
        db_.exec("UPDATE offices SET last_status = $2::jsonb, online = $3::boolean, "
                 "last_status_at = coalesce(last_status_at, least(coalesce($4::timestamptz, now()), now())), "
                 "last_heartbeat_at = CASE WHEN $3::boolean AND $4::timestamptz IS NOT NULL THEN "
                 "greatest(last_heartbeat_at, least($4::timestamptz, now())) ELSE last_heartbeat_at END "
                 "WHERE site = $1",
                 {s.site, s.body, online ? "true" : "false", s.ts});
      } else {
        db_.exec("UPDATE offices SET last_status = $2::jsonb, online = $3::boolean, last_status_at = now(), "
                 "last_heartbeat_at = CASE WHEN $3::boolean THEN now() ELSE last_heartbeat_at END WHERE site = $1",
                 {s.site, s.body, online ? "true" : "false"});
        db_.exec("INSERT INTO heartbeats (site, received_at, state, backlog, held) VALUES ($1, now(), $2, $3, $4)",
                 {s.site, s.state, s.backlog ? std::optional(std::to_string(*s.backlog)) : std::nullopt,
                  s.held ? std::optional(std::to_string(*s.held)) : std::nullopt});
      }
    }
    if (!batch.sources.empty()) {
      std::string copy;
      for (const auto& [key, s] : batch.sources) {
        put(copy, key.first);
        copy += '\t';
        put(copy, key.second);
        copy += '\t';
        put(copy, s.last_reading_ts);
        copy += '\t';
        put(copy, s.last_good_ts);
        copy += '\n';
      }
      db_.copy_in("COPY stage_sources FROM STDIN", copy);
      // The learned cadence: a moving average of the time between the newest good readings as
      // they arrive; one long silence moves it by at most 4 times its value (docs/ioc-database.md).
      db_.exec(
          "INSERT INTO sources AS s (site, source, last_reading_at, last_good_at) "
          "SELECT site, source, last_reading_at, last_good_at FROM stage_sources ORDER BY site, source "
          "ON CONFLICT (site, source) DO UPDATE SET "
          "last_reading_at = greatest(s.last_reading_at, excluded.last_reading_at), "
          "last_good_at = greatest(s.last_good_at, excluded.last_good_at), "
          "learned_every = CASE WHEN excluded.last_good_at > s.last_good_at THEN "
          "  CASE WHEN s.learned_every IS NULL THEN excluded.last_good_at - s.last_good_at "
          "  ELSE s.learned_every * 0.75 + least(excluded.last_good_at - s.last_good_at, s.learned_every * 4) * 0.25 "
          "  END ELSE s.learned_every END");
    }
    db_.exec("COMMIT");
  } catch (...) {
    rollback(db_);
    throw;
  }
}

}  // namespace ioc_receiver
