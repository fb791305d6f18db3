#pragma once
// Internal to the outbox (outbox.cpp, outbox_salvage.cpp, outbox_reader.cpp): the only files with SQL in them.
#include <sqlite3.h>

#include <cstdint>
#include <string>

namespace ioc_edge::outbox_sql {

// PRAGMA user_version. 1: one reading per row. 2: a row holds `n` readings, rowid = its last seq
// (ADD COLUMN n DEFAULT 1 turns a version-1 table into a valid version-2 one without rewriting it).
// 3: `state` (held), `meta`, the `held` table; bodies written as BLOBs (old TEXT bodies read back as
// the same bytes). 4: the highest seq in meta `seq` (new stores without AUTOINCREMENT).
constexpr int kSchemaVersion = 4;

// One row per message the IOC broker refused: its seqs, topic and reason (invariant 4).
constexpr const char* kCreateHeld =
    "CREATE TABLE IF NOT EXISTS held(first INTEGER NOT NULL, last INTEGER NOT NULL, prio INTEGER NOT NULL,"
    " topic TEXT NOT NULL, reason TEXT NOT NULL, readings INTEGER NOT NULL, at INTEGER NOT NULL)";
// The held records themselves, whatever the held table says: requeue() and the start-up check
// find them without a table scan.
constexpr const char* kCreateHeldIndex = "CREATE INDEX IF NOT EXISTS records_held ON records(prio, seq) WHERE state<>0";

// Invariant 12: what sources keep beside their data, written with it.
constexpr const char* kCreateMarks =
    "CREATE TABLE IF NOT EXISTS marks(key TEXT PRIMARY KEY, value BLOB NOT NULL, expires INTEGER NOT NULL,"
    " first INTEGER NOT NULL DEFAULT 0, last INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID";

// RAII prepared statement.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) {
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s_, nullptr) != SQLITE_OK) s_ = nullptr;
  }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  explicit operator bool() const { return s_ != nullptr; }
  sqlite3_stmt* get() const { return s_; }
  Stmt& bind(int i, std::int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  // SQLITE_STATIC: the string must outlive the step; temporaries are refused at compile time.
  Stmt& bind(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    return *this;
  }
  Stmt& bind(int i, std::string&& v) = delete;
  Stmt& bind_blob(int i, const std::string& v) {
    sqlite3_bind_blob(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    return *this;
  }
  Stmt& bind_blob(int i, std::string&& v) = delete;
  Stmt& bind_null(int i) {
    sqlite3_bind_null(s_, i);
    return *this;
  }
  int step() { return sqlite3_step(s_); }
  void reset() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  std::int64_t i64(int col) const { return sqlite3_column_int64(s_, col); }
  // TEXT and BLOB values alike, byte for byte (schema-2 bodies are TEXT, schema-3 ones BLOBs).
  std::string bytes(int col) const {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(s_, col));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(s_, col))) : std::string();
  }
  std::string text(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, col));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(s_, col))) : std::string();
  }

 private:
  sqlite3_stmt* s_ = nullptr;
};


inline bool is_corrupt(int rc) {
  rc &= 0xFF;
  return rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB;
}

inline bool exec(sqlite3* db, const char* sql) { return sqlite3_exec(db, sql, nullptr, nullptr, nullptr) == SQLITE_OK; }

// Schema 4 of a new store (docs in outbox.h), inside the caller's transaction.
inline bool create_schema(sqlite3* db) {
  return exec(db,
              "CREATE TABLE IF NOT EXISTS records("
              " seq INTEGER PRIMARY KEY,"  // the last seq of the row's readings (never reused: meta `seq`)
              " prio INTEGER NOT NULL,"
              " kind INTEGER NOT NULL,"
              " at INTEGER NOT NULL,"  // the store clock at append, ms (invariant 8)
              " source TEXT NOT NULL,"
              " body BLOB NOT NULL,"  // batched kinds: one reading's JSON (without seq) per line
              " n INTEGER NOT NULL DEFAULT 1,"
              " state INTEGER NOT NULL DEFAULT 0,"  // 0 pending, 1 held (refused by the IOC broker)
              " meta TEXT)") &&
         exec(db, "CREATE INDEX IF NOT EXISTS records_prio_seq ON records(prio, seq)") &&
         exec(db, kCreateHeldIndex) &&
         exec(db, "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID") &&
         exec(db,
              "INSERT OR IGNORE INTO meta VALUES('count.0',0),('count.1',0),('count.2',0),('count.3',0),"
              "('held',0),('seq',0)") &&
         exec(db, kCreateHeld) && exec(db, kCreateMarks) && exec(db, "PRAGMA user_version=4");
}

}  // namespace ioc_edge::outbox_sql
