#pragma once
// A read-only view of an outbox file, for `ioc-edge outbox stats|peek|export` while the daemon runs
// (or after it stopped, or on a copy taken from a dead machine).
//
// The file is opened with SQLITE_OPEN_READONLY: this connection can never write, so it is never a
// second writer beside the daemon. The WAL lets it read a consistent snapshot (one read
// transaction) while the daemon goes on committing; the daemon's checkpoints wait for it, so the
// WAL may grow for as long as a long export runs, and shrinks again after. SQL lives here and in
// outbox.cpp / outbox_salvage.cpp only (outbox_sql.h).
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/envelope.h"
#include "core/reading.h"

struct sqlite3;

namespace ioc_edge {

class OutboxReader {
 public:
  // Opens `path` read-only and starts its snapshot. Null and `error` when the file is missing, is
  // not an outbox, or was written by a newer ioc-edge.
  static std::unique_ptr<OutboxReader> open(const std::string& path, std::string& error);
  ~OutboxReader();
  OutboxReader(const OutboxReader&) = delete;
  OutboxReader& operator=(const OutboxReader&) = delete;

  struct SourceStats {
    std::string source;
    Kind kind = Kind::Data;
    std::int64_t records = 0;
    std::int64_t readings = 0;
    std::int64_t body_bytes = 0;
    std::int64_t first_seq = 0;  // the lowest seq it owns
    std::int64_t last_seq = 0;
    std::int64_t held = 0;       // readings refused by the IOC broker and set aside
  };
  struct Stats {
    std::string store;
    int schema = 0;
    std::int64_t last_seq = 0;   // the highest seq ever given
    std::int64_t records = 0;
    std::int64_t readings = 0;   // held ones included
    std::int64_t held = 0;
    std::int64_t by_priority[kPriorityLevels] = {};
    std::int64_t body_bytes = 0;
    std::int64_t first_seq = 0;  // the lowest seq waiting (0: none)
    std::int64_t marks = 0;
    std::vector<SourceStats> by_source;  // by source, then kind
  };
  // One pass over the table (seconds for gigabytes). False and `error` on a read error.
  bool stats(Stats& out, std::string& error);

  // Every record waiting, held ones too, in seq order from the first seq above `after_seq`; the
  // callback returns false to stop. Only records of `source` when it is not empty.
  bool for_each(std::int64_t after_seq, const std::string& source,
                const std::function<bool(const Record& record, bool held)>& fn, std::string& error);

 private:
  OutboxReader() = default;
  sqlite3* db_ = nullptr;
};

}  // namespace ioc_edge
