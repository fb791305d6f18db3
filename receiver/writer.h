#pragma once
// Writing a RowBatch (receiver/ingest.h) to PostgreSQL: its rows in one transaction, then the
// offices' and sources' bookkeeping in a short second one.
//
// Design note
// -----------
// A reading that arrives again must be stored once (docs/ioc-database.md, "Exactly once"). The
// batch's seq ranges are compared with those already received (seq_ranges, written in the same
// transaction as the rows): when none was received before, as for nearly every message, the rows
// are COPY'd straight into readings and events; otherwise into temporary staging tables and moved
// with `INSERT … SELECT … ON CONFLICT DO NOTHING`. A straight COPY that meets a seq another
// receiver committed meanwhile fails on the unique key (23505) and is done again through staging.
// Then, in a second short transaction: the offices (codes, last message, status, heartbeats) and
// the sources (last good reading, learned cadence). The caller acknowledges the batch's messages
// to the broker only after write() returned.
//
// Two receivers write at once (shared subscriptions): every statement that locks rows of a shared
// table (offices, sources, seq_ranges) takes them in key order, so two writers wait for each other
// instead of deadlocking; a deadlock or serialization failure anyway is retried by the caller
// (Error::retryable()).
//
// Invariants
//  1. write() commits the batch's rows or nothing (it rolls back before it throws); write_meta()
//     likewise the bookkeeping, which the caller retries on its own, never the rows again.
//  2. A blob without properties (MQTT 3.1.1) whose metadata event is neither in the database nor
//     in the batch is quarantined with that reason, in the same transaction.
#include <cstdint>
#include <memory>
#include <string>

#include "receiver/ingest.h"
#include "receiver/pg.h"

namespace ioc_receiver {

struct WriteResult {
  std::uint64_t readings = 0, duplicate_readings = 0, events = 0, duplicate_events = 0, blobs = 0, gaps = 0,
                quarantined = 0;
};

class Writer {
 public:
  // Connects (throws pg::Error) and creates this session's staging tables.
  explicit Writer(const std::string& conninfo);
  // The batch's rows (readings, events, gaps, blobs, seq ranges, quarantine) in one transaction.
  WriteResult write(const RowBatch& batch);
  // Then its bookkeeping: offices, statuses, heartbeats, sources. Idempotent but for heartbeats.
  void write_meta(const RowBatch& batch);
  // Whether a failed write may succeed if simply tried again at once (deadlock, serialization).
  static bool retryable(const pg::Error& e);
  // Whether the database refused the data itself (a value it cannot take), so that writing the
  // same messages again cannot succeed: the caller quarantines them one by one. Anything else (a
  // full disk, a read-only server, a timeout) is the database's state, and passes in time.
  static bool data_error(const pg::Error& e);

 private:
  WriteResult write_rows(const RowBatch& batch, bool allow_direct);
  std::uint64_t copy_rows(const std::string& table, const char* columns, const std::string& rows, std::size_t count,
                          bool direct);
  pg::Connection db_;
};

}  // namespace ioc_receiver
