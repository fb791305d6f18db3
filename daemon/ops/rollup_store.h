#pragma once
// Where the hourly roll-ups live: a small SQLite file beside the outbox, <data_dir>/rollups.db.
// The only place with SQL for them: the daemon writes through RollupStore, `ioc-edge report`
// reads through RollupReader.
//
// Design note
// -----------
// Why a file of its own and not a table in outbox.db: roll-ups are statistics, not data. Kept
// apart, they never count against `[buffer] max_size` (which would evict readings to make room
// for a year of counts), never take part in the outbox's salvage or eviction, and a report reads
// them without holding a read transaction open on the file the writer thread works hardest. The
// price is one more small transaction a minute, well inside the flash budget (below).
//
// Threads: RollupStore owns one thread ("rollups") with the only read-write connection;
// submit() is thread-safe and never blocks on I/O. RollupReader is a read-only connection for
// another process (SQLite WAL: readers never block the writer, and it never writes the database).
//
// Invariants
//  1. What submit() was given is written in one transaction with the deltas that wait; the
//     upserts add (ops/rollups.h), so deltas may be merged and retried without counting twice:
//     a delta is dropped from memory only after its transaction committed.
//  2. Flash wear (docs/design.md, "Writes to flash"): the Gateway submits once a minute
//     (`[report] write_every`), so the file sees one small commit a minute (the current hour's
//     rows: a few 1 KiB pages in the WAL, then one fsync; bench/README.md has the bytes). A crash
//     or power loss loses at most what was counted since the last commit: about the last minute.
//  3. Bounded: while writes fail (a full disk) deltas keep merging in memory, at most
//     kMaxPendingHours hours of them (older hours are dropped with an error line), and are
//     retried every minute. Rows older than the retention are deleted once a day.
//  4. A file that SQLite cannot read at open is moved aside (rollups.db.corrupt-<time>) and a new
//     one started: the roll-ups are not worth stopping the gateway for.
//  5. Schema in PRAGMA user_version (1). Source names are stored once (table `names`); the
//     hourly rows hold a small id.
//
// Schema 1:
//   names(id INTEGER PRIMARY KEY, name TEXT UNIQUE)
//   source_hours(hour, source -> names.id, good, bad, dropped, stale_ms, expected_milli, missed)
//       PRIMARY KEY (hour, source), WITHOUT ROWID
//   gateway_hours(hour PRIMARY KEY, run_ms, up_ms, outages, longest_outage_ms)
//   stale_periods(source -> names.id, since, until) PRIMARY KEY (source, since), WITHOUT ROWID
//   `hour` is the Unix time (s) of the UTC hour's start; since/until are ms.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "ops/rollups.h"

namespace spdlog {
class logger;
}
struct sqlite3;

namespace ioc_edge {

struct RollupStoreOptions {
  std::string path;                                                    // <data_dir>/rollups.db
  std::chrono::milliseconds retention = std::chrono::hours(24 * 400);  // [report] retention
  bool sync_full = true;  // FULL: a commit is on disk before the next minute's counting begins
};

class RollupStore {
 public:
  static constexpr std::size_t kMaxPendingHours = 72;

  // Opens (creating if needed) the file and starts the writer thread; nullptr and `error` on failure.
  static std::unique_ptr<RollupStore> open(const RollupStoreOptions& opts, const Clock& clock, std::string& error);
  ~RollupStore();
  RollupStore(const RollupStore&) = delete;
  RollupStore& operator=(const RollupStore&) = delete;

  // Queues `delta` for the writer thread, which writes it at once. Thread-safe, does not block.
  void submit(RollupDelta delta);
  // Writes what waits and returns when it is committed (or failed). Tests and benchmarks.
  bool flush();
  // Writes what waits, stops the thread, closes the file. Idempotent.
  void stop();

 private:
  RollupStore(RollupStoreOptions opts, const Clock& clock);
  bool open_db(std::string& error);
  void run();
  bool write(const RollupDelta& d);  // invariant 1: one transaction
  void purge();                      // invariant 3

  RollupStoreOptions opts_;
  const Clock& clock_;
  std::shared_ptr<spdlog::logger> log_;
  sqlite3* db_ = nullptr;

  std::mutex mu_;
  std::condition_variable cv_;
  RollupDelta pending_;        // guarded by mu_
  bool stopping_ = false;      // guarded by mu_
  std::uint64_t submitted_ = 0, handled_ = 0;  // guarded by mu_: submissions made and tried (flush() waits)
  bool failing_ = false;       // writer thread: the last write failed (one log line per change)
  std::chrono::steady_clock::time_point next_purge_{};
  std::thread thread_;
};

// Totals of one source over a period (sums of its hours).
struct SourceTotals {
  std::string name;
  SourceHour sum;
};

// A stale period of a source, as stored (until: its end, or the last time it was counted).
struct StalePeriod {
  std::string source;
  std::int64_t since_ms = 0, until_ms = 0;
};

struct RollupTotals {
  std::vector<SourceTotals> sources;  // by name
  GatewayHour gateway;                // sums; longest_outage_ms the largest
  std::int64_t gateway_hours = 0;     // hours with a gateway row (the daemon ran in them)
  std::int64_t first_hour = 0, last_hour = 0;  // the first and last such hour (Unix s)
  std::vector<StalePeriod> stale;     // overlapping the period, by source then since
};

// `ioc-edge report`'s view: opens the file read-only (never creates or changes it; fine while the
// daemon writes it). Not thread-safe; one per report.
class RollupReader {
 public:
  // nullptr and `error` (naming the file and what to do) when it is missing or unreadable.
  static std::unique_ptr<RollupReader> open(const std::string& path, std::string& error);
  ~RollupReader();
  RollupReader(const RollupReader&) = delete;
  RollupReader& operator=(const RollupReader&) = delete;

  // Sums of the hours starting in [from_ms, to_ms), in one read transaction.
  bool read(std::int64_t from_ms, std::int64_t to_ms, RollupTotals& out, std::string& error);
  // The first and last hour with any gateway row (0, 0 when none).
  std::pair<std::int64_t, std::int64_t> coverage();

 private:
  RollupReader() = default;
  sqlite3* db_ = nullptr;
  std::string path_;
};

}  // namespace ioc_edge
