#pragma once
// Writing a RowBatch (receiver/ingest.h) to PostgreSQL in one transaction.
//
// Design note
// -----------
// Rows are COPY'd into temporary staging tables (one round trip per table), then moved with
// `INSERT … SELECT … ON CONFLICT DO NOTHING`, so a reading that arrives again is stored once
// (docs/ioc-database.md, "Exactly once"). In the same transaction: the seq ranges received, the
// offices (codes, last message, status) and the sources (last good reading, learned cadence).
// The caller acknowledges the batch's messages to the broker only after write() returned.
//
// Two receivers write at once (shared subscriptions): every statement that locks rows of a shared
// table (offices, sources, seq_ranges) takes them in key order, so two writers wait for each other
// instead of deadlocking; a deadlock or serialization failure anyway is retried by the caller
// (Error::retryable()).
//
// Invariants
//  1. write() commits everything in the batch or nothing (it rolls back before it throws).
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
  WriteResult write(const RowBatch& batch);
  // Whether a failed write may succeed if simply tried again (deadlock, serialization failure).
  static bool retryable(const pg::Error& e);

 private:
  pg::Connection db_;
};

}  // namespace ioc_receiver
