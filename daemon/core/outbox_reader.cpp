#include "core/outbox_reader.h"

#include <sqlite3.h>

#include <map>
#include <tuple>

#include "core/outbox_sql.h"

namespace ioc_edge {

using outbox_sql::Stmt;

// The schema the daemon writes; an older file is upgraded when the daemon opens it.
constexpr int kNewestSchema = outbox_sql::kSchemaVersion;

std::unique_ptr<OutboxReader> OutboxReader::open(const std::string& path, std::string& error) {
  std::unique_ptr<OutboxReader> r(new OutboxReader);
  if (sqlite3_open_v2(path.c_str(), &r->db_, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
    error = "cannot open " + path + " read-only: " + (r->db_ ? sqlite3_errmsg(r->db_) : "out of memory") +
            " (is [gateway] data_dir right? does this user may read it? try sudo)";
    return nullptr;
  }
  sqlite3_busy_timeout(r->db_, 5000);
  int schema = 0;
  {
    Stmt uv(r->db_, "PRAGMA user_version");
    if (!uv || uv.step() != SQLITE_ROW) {
      error = path + " cannot be read: " + sqlite3_errmsg(r->db_);
      return nullptr;
    }
    schema = static_cast<int>(uv.i64(0));
  }
  if (schema > kNewestSchema) {
    error = path + " was written by a newer ioc-edge (schema " + std::to_string(schema) + ", this one reads up to " +
            std::to_string(kNewestSchema) + ")";
    return nullptr;
  }
  if (schema < kNewestSchema) {
    error = path + " has schema " + std::to_string(schema) +
            "; start this version of the daemon once to upgrade it (it is not an outbox if it is 0)";
    return nullptr;
  }
  if (!outbox_sql::exec(r->db_, "BEGIN")) {
    error = "cannot start reading " + path + ": " + sqlite3_errmsg(r->db_);
    return nullptr;
  }
  return r;
}

OutboxReader::~OutboxReader() {
  if (db_) {
    outbox_sql::exec(db_, "COMMIT");
    sqlite3_close_v2(db_);
  }
}

bool OutboxReader::stats(Stats& out, std::string& error) {
  out = Stats{};
  out.schema = kNewestSchema;
  {
    Stmt q(db_, "SELECT key, value FROM meta WHERE key IN ('store', 'seq')");
    while (q && q.step() == SQLITE_ROW) {
      if (q.text(0) == "store") out.store = q.text(1);
      if (q.text(0) == "seq") out.last_seq = q.i64(1);
    }
  }
  {
    Stmt q(db_, "SELECT count(*) FROM marks");
    if (q && q.step() == SQLITE_ROW) out.marks = q.i64(0);
  }
  // One pass in seq order; the sums per source stay small (one entry per source and kind).
  Stmt q(db_, "SELECT seq, n, prio, kind, source, length(body), state FROM records ORDER BY seq");
  if (!q) {
    error = std::string("cannot read the records: ") + sqlite3_errmsg(db_);
    return false;
  }
  std::map<std::tuple<std::string, int>, SourceStats> sums;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) {
    const auto seq = q.i64(0), n = q.i64(1), prio = q.i64(2), kind = q.i64(3), bytes = q.i64(5);
    const bool held = q.i64(6) != 0;
    auto& s = sums[{q.text(4), static_cast<int>(kind)}];
    if (s.records == 0) {
      s.source = q.text(4);
      s.kind = kind_from_int(kind).value_or(Kind::Data);
      s.first_seq = seq - n + 1;
    }
    ++s.records;
    s.readings += n;
    s.body_bytes += bytes;
    s.last_seq = seq;
    if (held) s.held += n;
    ++out.records;
    out.readings += n;
    out.body_bytes += bytes;
    if (held) out.held += n;
    if (prio >= 0 && prio < kPriorityLevels) out.by_priority[prio] += n;
    if (out.first_seq == 0) out.first_seq = seq - n + 1;
  }
  if (rc != SQLITE_DONE) {
    error = std::string("reading the records failed: ") + sqlite3_errmsg(db_);
    return false;
  }
  for (auto& [key, s] : sums) out.by_source.push_back(std::move(s));
  return true;
}

bool OutboxReader::for_each(std::int64_t after_seq, const std::string& source,
                            const std::function<bool(const Record& record, bool held)>& fn, std::string& error) {
  Stmt q(db_, source.empty()
                  ? "SELECT seq, n, prio, kind, source, body, meta, state FROM records WHERE seq>? ORDER BY seq"
                  : "SELECT seq, n, prio, kind, source, body, meta, state FROM records WHERE seq>? AND source=? "
                    "ORDER BY seq");
  if (!q) {
    error = std::string("cannot read the records: ") + sqlite3_errmsg(db_);
    return false;
  }
  q.bind(1, after_seq);
  if (!source.empty()) q.bind(2, source);
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) {
    Record r;
    r.last_seq = q.i64(0);
    r.first_seq = r.last_seq - q.i64(1) + 1;
    const auto prio = q.i64(2);
    r.prio = prio >= 0 && prio < kPriorityLevels ? static_cast<Priority>(prio) : Priority::Normal;
    const auto kind = kind_from_int(q.i64(3));
    if (!kind) {
      error = "record seq " + std::to_string(r.last_seq) + " has a kind (" + std::to_string(q.i64(3)) +
              ") this version does not know";
      return false;
    }
    r.kind = *kind;
    r.source = q.text(4);
    r.body = q.bytes(5);
    r.meta = q.text(6);
    if (!fn(r, q.i64(7) != 0)) return true;
  }
  if (rc != SQLITE_DONE) {
    error = std::string("reading the records failed: ") + sqlite3_errmsg(db_);
    return false;
  }
  return true;
}

}  // namespace ioc_edge
