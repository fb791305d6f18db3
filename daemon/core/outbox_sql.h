#pragma once
// Internal to the outbox (outbox.cpp, outbox_salvage.cpp, outbox_reader.cpp): the only files with SQL in them.
#include <sqlite3.h>

#include <cstdint>
#include <string>

#include "core/sqlite_util.h"

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

using sqlite::exec;
using sqlite::is_corrupt;
using sqlite::Stmt;

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
