#pragma once
// The outbox: the only durable state of the daemon (docs/design.md section 3).
//
// Design note
// -----------
// One SQLite database in WAL mode, one connection, owned by one thread (the "outbox" writer thread).
// Every statement runs on that thread: producers, the forwarder and the status API talk to it
// through queues. (SQLite 3.40.1 has a WAL-reset bug that needs two connections writing or
// checkpointing; a single connection cannot trigger it. Tools read the file read-only.)
//
// A record's life:
//
//     append() --commit--> PENDING --read()--> (in flight, known only to the forwarder)
//                          ^  ^  |                  |              |             |
//                          |  |  | evict            | PUBACK       | link lost / | PUBACK with a
//                          |  |  v (size/age)       v              | restart     | reason >= 0x80
//                          |  | DROPPED + gap   remove()           |             v
//                          |  +--------------------------------------+          hold()
//                          |                                                      |
//                          +---- requeue() or restart ---------------------- HELD (+ rejected event)
//
// Invariants
//  1. append()'s callback reports Committed only after the transaction holding the records has
//     committed (with sync = full: fsynced). A record is never reported committed and then lost,
//     except through eviction, which is always accounted for by a gap event.
//  2. A record is an Envelope (core/envelope.h): `count` readings of one source, kind and priority
//     (one poll, one batch from a producer, one blob) owning the consecutive seqs
//     [first_seq, last_seq]. Its rowid is last_seq, given explicitly as the previous highest seq
//     plus `count`, so seqs are strictly increasing and never reused in this store, even after the
//     table drains or the process is killed: the meta row `seq`, written by the transaction that
//     gives seqs, remembers the highest (stores made before schema 4 also have sqlite_sequence).
//     Records committed in one transaction get consecutive seqs in append order.
//     Counts and limits are in readings. Bodies are stored as BLOBs, byte for byte.
//  3. A record leaves the table only by remove() (the IOC acknowledged it) or by eviction.
//     Eviction takes the lowest priority first, oldest (lowest seq) first within it, held records
//     included, and in the same transaction queues a `gap` event (priority System) naming the
//     exact seqs dropped.
//  4. After a crash every record not removed is pending again; the outbox keeps no lease state.
//     Held records (the IOC broker refused them) are not read for sending; they still count
//     against max_size, and open() makes them pending again, as requeue() does.
//  5. Start-up reads only the meta table, one index probe (and one per priority, invariant 13),
//     the held table (a few rows) and O(1) pragmas: no table scan.
//  6. On SQLITE_FULL / I/O errors a transaction is rolled back, its appends are refused with the
//     error, nothing stored is touched, and new appends are refused without touching the disk until
//     a probe (every second) succeeds. A failed fsync is never retried: the process exits and
//     systemd restarts it (docs/dependencies.md).
//     Appends are refused while less than half the headroom (max_size / 32, 2..64 MiB) is free
//     on the disk, counting the pages deletes freed inside the database (new data reuses them;
//     the file never shrinks) but never less than a quarter of it on the disk itself (the WAL),
//     so deletes and checkpoints always have room; a refusal and a recovery are one log line each; a reserve file (<path>.reserve,
//     the other half) holds space against other programs and is released if even a delete fails;
//     it is set aside again once writes succeed. The WAL is kept under a quarter of the headroom.
//  8. Ages are measured on the store clock, not the wall clock: `at` is the store clock at append,
//     and the store clock is monotonic time while the daemon runs, persisted in each commit and
//     resumed at start (it began at the wall time when the store was made or upgraded, so rows
//     of older versions keep their ages). A wall clock that steps (an office box without a working
//     RTC that boots at an old date, then NTP steps it by weeks) neither evicts what waited for
//     the link nor stops eviction; time the daemon was not running does not age data.
// 10. Damage found while running (SQLITE_CORRUPT from any statement: a bad sector, a torn write
//     on cheap flash) does not stop the daemon or strand what is readable: the writer runs
//     quick_check for the log, copies every record it can read into a new file with the same
//     store id and the same seqs, names the seqs it could not read in a `gap` event (reason
//     `corrupt`), keeps the damaged file as "<path>.corrupt-<time>" (never overwriting one) and
//     goes on with the new file; the status says so (OutboxStats::corruption). A commit that
//     met the damage is retried once on the new file; a read that met it fails once and is
//     read again. More than three salvages in an hour exit (the disk is failing).
//  7. The file is bounded: max_page_count caps it at max_size plus headroom, so eviction, not the
//     disk, decides what is dropped when the office is offline for long.
//  9. Flash wear (docs/design.md, "Writes to flash"): every commit rewrites the pages it touches
//     (table and index tails, the meta row) into the WAL, so commits are made few. An append
//     waits at most `commit_interval` for company (or until 256 KiB or a quarter of
//     `max_queued` has gathered); its callback still runs only after the commit (invariant 1).
//     Deletes of acknowledged records wait up to `remove_delay` and ride with the next commit; a
//     crash then only resends what the IOC already has (it de-duplicates by seq). Deletes waiting
//     are applied before any eviction (so a gap event never names delivered data), when the link
//     comes up (apply_removes(), so nothing delivered is read again), at stop() and by flush(),
//     and at once while the disk is short of room (their pages are what new data needs; while
//     storage is faulted they go with the fault probe).
//     `pending` excludes them. New stores use `page_size` (1 KiB halves the bytes a small commit
//     writes), no AUTOINCREMENT (the highest seq lives in the meta row the commit writes anyway),
//     and secure_delete is off (Debian turns it on: it zeroes every freed page).
// 11. Rows are few: consecutive small batched records (under 1 KiB: an MQTT sensor's message)
//     of one priority, kind and source in one commit go into one row, up to `merge_readings`
//     readings and 16 KiB (and `merge_bytes`, one message's worth, so a read never splits a row).
//     A source that hands over one message at a time then costs a row per 16 KiB, not a row per
//     message; larger records (a poll) stay as they are, so salvage and eviction keep their
//     granularity. Each append still gets its own seqs (consecutive within the row).
// 12. Marks (core/reading.h) given with an append are written in the transaction that commits its
//     records: after a crash a source finds both or neither. A mark remembers the seqs of the
//     readings of the append it came with (what an idempotent HTTP answer repeats). A mark whose wall-clock expiry has
//     passed is left out of marks() and deleted (at most hourly, with a commit). Marks are not
//     records: they hold no seq, never count against pending and are never evicted. A salvage
//     (invariant 10) copies the readable ones.
// 13. The status figures per priority cost no scan: readings are the meta rows `count.N`;
//     payload bytes (the bodies' lengths) are the meta rows `bytes.N`, written in every
//     transaction that changes `count.N`, with `bytes_at.N` = the `count.N` they go with. A store
//     whose `bytes_at.N` disagrees with `count.N` (made before the tallies existed, or written by
//     an older version since) shows that priority's bytes as unknown until its readings reach
//     zero, when the tally restarts at 0 (also what corrects it, should it ever be off). The
//     oldest age per priority is one probe of the (prio, seq) index each, after each write.
//
// Schema (PRAGMA user_version): 1 one reading per row; 2 adds `n` (readings per row); 3 adds
// `state` (0 pending, 1 held), `meta` and the `held` table, and stores bodies as BLOBs; 4 keeps
// the highest seq in meta (`seq`, written by every commit), so new stores need no AUTOINCREMENT
// (older versions would reuse seqs of a drained version-4 store: they must refuse it). Each
// upgrade is ALTER TABLE ADD COLUMN with a default or a meta row: O(1), the table is not
// rewritten (old TEXT bodies read back as the same bytes). A file of a newer schema is refused,
// not touched. The `marks` table (invariant 12) came later without a new version: open() creates
// it if missing, and older versions ignore it.
//
// Thread-safety: every public member is thread-safe. Callbacks run on the writer thread and must
// not block or call back into the outbox synchronously (read()).
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/envelope.h"
#include "core/log.h"
#include "core/reading.h"

namespace spdlog {
class logger;
}
struct sqlite3;
struct sqlite3_stmt;

namespace ioc_edge {

struct OutboxOptions {
  std::string path;                              // the database file
  bool sync_full = true;                         // synchronous = FULL (power-loss safe) or NORMAL
  std::uint64_t max_size = 2ull << 30;           // bytes; then evict lowest priority, oldest first
  std::int64_t max_age_ms = 30ll * 86400 * 1000; // records older than this are evicted; 0 = never
  std::size_t max_queued = 200000;               // readings waiting for a commit before appends are refused
  std::chrono::milliseconds fault_probe{1000};   // while faulted, how often a write is tried again
  // Invariant 9: appends wait at most this long for company before their commit (0: at once), and
  // deletes of acknowledged records at most `remove_delay`.
  std::chrono::milliseconds commit_interval{0};
  std::chrono::milliseconds remove_delay{0};
  // For a new store only (an existing file keeps its own). 1 KiB: a commit of a few small records
  // rewrites a quarter of the bytes it would with 4 KiB pages (bench/README.md, disk writes).
  std::uint32_t page_size = 1024;
  // Invariant 11: consecutive small batched records of one priority, kind and source committed
  // together are stored as one row of at most this many readings and record_message_bytes (0: never).
  std::size_t merge_readings = 0;
  std::size_t merge_bytes = 0;
};

// A record as the producer hands it over. For batched kinds the body holds `count` readings framed
// by frame_reading() (core/envelope.h).
using NewRecord = Envelope;

enum class AppendStatus { Committed, Refused, Overloaded, Stopped };

struct AppendResult {
  AppendStatus status = AppendStatus::Stopped;
  std::string error;        // why, when not committed
  std::int64_t first_seq = 0;
  std::int64_t last_seq = 0;
};

// How much one read() may return: records that make at most `max_messages` messages (a message
// per kind and source among batched records, two per blob: its metadata event and its bytes), each message at most `max_readings`
// readings and about `max_bytes` (record_message_bytes; a record larger than that alone is still
// read, as a message of its own), and all of them together about `max_total_bytes` (0: one
// message's worth, `max_bytes`). The read stops at the first record that does not fit, so it
// is always a run of consecutive seqs.
struct ReadLimits {
  std::size_t max_readings = 500;
  std::size_t max_bytes = 256 * 1024;
  std::size_t max_messages = static_cast<std::size_t>(-1);
  std::size_t max_total_bytes = 0;
};

// Records the IOC broker refused, set aside (invariant 4), one entry per refused message.
struct HeldEntry {
  std::int64_t first_seq = 0;
  std::int64_t last_seq = 0;
  std::string topic;
  std::string reason;
  std::int64_t readings = 0;
  std::int64_t at_ms = 0;  // when it was refused
};

struct RequeueResult {
  std::int64_t readings = 0;  // readings made pending again
  std::int64_t lowest_seq[kPriorityLevels] = {};  // per priority, the lowest seq made pending (0: none)
};

struct OutboxStats {
  std::string store;                  // the store UUID
  std::int64_t pending = 0;           // readings in the table (held ones included)
  std::int64_t held = 0;              // readings set aside because the IOC broker refused them
  std::int64_t pending_by_prio[kPriorityLevels] = {};
  // Payload bytes of the pending readings per priority (held ones included; delivered ones whose
  // delete waits are left out in proportion to their count); -1 while unknown (invariant 13).
  std::int64_t bytes_by_prio[kPriorityLevels] = {};
  std::int64_t oldest_age_ms = 0;     // how long the oldest pending reading has waited (the store clock), 0 if none
  std::int64_t oldest_age_ms_by_prio[kPriorityLevels] = {};  // the same per priority
  std::int64_t last_seq = 0;          // highest seq ever committed
  std::uint64_t file_bytes = 0;       // pages in use * page size
  std::uint64_t appended = 0;         // readings committed since start
  std::uint64_t removed = 0;          // readings deleted after acknowledgement since start
  std::uint64_t evicted = 0;          // readings dropped by policy since start
  std::uint64_t refused = 0;          // readings refused (fault or overload) since start
  std::uint64_t commits = 0;          // transactions since start
  std::int64_t removing = 0;          // acknowledged readings whose delete waits for the next commit (not in `pending`)
  // How long appends waited for their commit (the acknowledgement latency producers see), since start.
  std::uint64_t acks = 0;
  double ack_p50_ms = 0, ack_p99_ms = 0, ack_max_ms = 0;
  double ack_sum_ms = 0;              // of all `acks` latencies (a Prometheus summary's _sum)
  std::string fault;                  // empty when healthy
  std::string corruption;             // the last salvage of a damaged file (invariant 10), empty if none
};

class Outbox {
 public:
  using AppendDone = std::function<void(const AppendResult&)>;

  // Opens (creating if needed) the database and starts the writer thread. On failure returns
  // nullptr and sets `error`. A database that SQLite reports as corrupt or not a database is moved
  // aside to "<path>.corrupt-<time>", reported, and a new one created.
  static std::unique_ptr<Outbox> open(const OutboxOptions& opts, const Clock& clock, std::string& error);
  ~Outbox();
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;

  // Queues records for the next group commit. `done` runs on the writer thread once the
  // transaction committed or failed. Never blocks on I/O.
  // `marks` (invariant 12) are written in the same transaction as `records`; an append may have
  // marks and no records.
  void append(std::vector<NewRecord> records, AppendDone done, std::vector<Mark> marks = {});
  // The marks whose key starts with `prefix`, expired ones left out, in key order. Blocks until the
  // writer thread has run the query (as read()). `ok`, when given, is false if the query failed.
  std::vector<Mark> marks(const std::string& prefix, bool* ok = nullptr);

  // Pending records of priority `prio` with after < last_seq < before, oldest first, holding at
  // most `max_readings` readings and about `max_bytes` of body (at least one record if any, even
  // a larger one). Blocks until the
  // writer thread has run the query. `ok`, when given, is false if the query failed (an empty
  // result then does not mean there is nothing to read).
  // `more`, when given, is true if the read stopped at a limit with records behind it.
  std::vector<Record> read(Priority prio, std::int64_t after, std::int64_t before, ReadLimits limits,
                           bool* ok = nullptr, bool* more = nullptr);
  std::vector<Record> read(Priority prio, std::int64_t after, std::int64_t before, std::size_t max_readings,
                           std::size_t max_bytes, bool* ok = nullptr) {
    return read(prio, after, before, ReadLimits{max_readings, max_bytes}, ok);
  }

  // Sets aside the records of `ranges` that the IOC broker refused (invariant 4) and, in the same
  // transaction, queues `event` (the rejected event; none when the refused records are the
  // gateway's own events, so that a refused event cannot breed events). Asynchronous.
  // `failed`, when given, runs on the writer thread if the transaction failed: the records are
  // then pending again, from the lowest seqs it names.
  void hold(std::vector<SeqRange> ranges, std::string topic, std::string reason, std::optional<Envelope> event,
            std::function<void(const RequeueResult&)> failed = nullptr);
  // Makes every held record pending again. Blocks until the writer thread has done it.
  RequeueResult requeue();
  // The held records, one entry per refused message (at most the first 100).
  std::vector<HeldEntry> held() const;

  // Deletes acknowledged records (asynchronously, within `remove_delay`; invariant 9).
  void remove(std::vector<SeqRange> ranges);
  // Commits the deletes that wait, before any read queued after this call (the forwarder calls it
  // when the link comes up and its cursors restart, so that delivered records are not sent again).
  void apply_removes();

  // Called on the writer thread after each transaction that added records.
  void set_on_commit(std::function<void()> fn);
  // Called on the writer thread after an eviction committed, with the readings it dropped per
  // source as its gap event counts them (the hourly roll-ups). Must not block.
  void set_on_evict(std::function<void(const std::map<std::string, std::int64_t>&)> fn);

  OutboxStats stats() const;
  const std::string& store_uuid() const { return store_uuid_; }

  // How long since the writer thread last went round its loop (it does at least every 5 s when
  // idle). A large value means it is stuck (a hung disk): the watchdog stops being pinged.
  std::chrono::milliseconds stalled_for() const;

  // Commits what is queued, stops the writer thread and closes the database. Idempotent.
  void stop();

  // Runs queued work now and waits for it (tests and benchmarks).
  void flush();
  // Commits the appends that wait now rather than within commit_interval: a sender is waiting for
  // their acknowledgements (an MQTT source's window is filling). Does not block.
  void commit_soon();

 private:
  Outbox(OutboxOptions opts, const Clock& clock);
  bool open_db(std::string& error);
  void run();
  struct QueuedAppend {
    std::vector<NewRecord> records;
    AppendDone done;
    std::chrono::steady_clock::time_point queued_at;
    std::vector<Mark> marks;
  };
  // Invariant 12, in the open transaction; `first_seq`: the first seq the transaction gave.
  bool write_marks(const std::vector<QueuedAppend>& appends, std::int64_t first_seq);
  std::vector<Envelope> merge_rows(const std::vector<QueuedAppend>& appends) const;  // invariant 11
  void commit_batch(std::vector<QueuedAppend>& appends, std::vector<SeqRange>& removes, bool keep_fault = false,
                    bool after_salvage = false);
  bool appends_due(std::chrono::steady_clock::time_point now) const;  // mu_ held
  bool removes_due(std::chrono::steady_clock::time_point now) const;  // mu_ held
  std::chrono::steady_clock::time_point removes_deadline() const;     // mu_ held
  void commit_removes_now();
  void count_removing(const std::vector<SeqRange>& ranges, int sign);  // the delivered readings not yet deleted
  void record_ack_latency(std::chrono::steady_clock::duration d);
  void enforce_limits();
  bool evict(Priority prio, std::size_t max_readings, std::int64_t at_before, const char* reason);
  void refresh_stats_after_delete();
  // Invariant 13, in the open transaction: the byte tallies of the priorities whose readings change
  // by `readings` (the meta `count.N` rows are written by the caller); bytes_after() is what
  // apply_bytes() makes them once the transaction committed.
  struct TallyChange {
    std::int64_t readings[kPriorityLevels] = {};
    std::int64_t bytes[kPriorityLevels] = {};
  };
  void load_bytes();  // at open, after the counts
  bool write_bytes(const TallyChange& change);
  void apply_bytes(const TallyChange& change);
  std::int64_t bytes_after(const TallyChange& change, int prio) const;  // -1: still unknown
  bool run_hold(const std::vector<SeqRange>& ranges, const std::string& topic, const std::string& reason,
                const std::optional<Envelope>& event);
  bool requeue_now(RequeueResult& out, std::string& error);
  void refresh_held();
  bool insert_envelope(const Envelope& e, std::int64_t seq, std::int64_t at);
  bool write_last_seq(std::int64_t seq);  // schema 4: meta `seq`, in the transaction that gave it
  void set_fault(const std::string& what);
  // COMMITs when `ok`, else (or if the commit fails) rolls back, sets `error` and exits on what
  // cannot be recovered in place; true if committed.
  bool end_transaction(bool ok, std::string& error);
  // A failed fsync: _Exit(1). Corruption: a salvage is due (invariant 10).
  void exit_if_unrecoverable(int rc, const std::string& what);
  bool salvage();  // invariant 10; true if the store is usable again (otherwise the process has exited)
  std::string aside_name() const;  // "<path>.corrupt-<time>", never an existing file
  void notify_commit();
  std::uint64_t headroom_bytes() const;
  std::uint64_t reserve_bytes() const;
  std::optional<std::string> low_on_disk() const;  // the refusal message when below the headroom
  void ensure_reserve();
  bool release_reserve();
  bool checkpoint_truncate();  // true if the WAL held frames and was emptied
  void clear_fault();
  bool exec(const char* sql);
  std::string errmsg() const;

  OutboxOptions opts_;
  const Clock& clock_;
  std::shared_ptr<spdlog::logger> log_;
  sqlite3* db_ = nullptr;
  sqlite3_stmt* insert_stmt_ = nullptr;  // prepared once: appends run it per record
  std::string store_uuid_;
  std::string dir_;  // the directory holding the database, for free-space checks
  std::int64_t page_size_ = 4096;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<QueuedAppend> queued_appends_;
  std::size_t queued_records_ = 0;  // readings, not records
  std::size_t queued_bytes_ = 0;    // of bodies
  std::chrono::steady_clock::time_point appends_since_{};  // when the oldest queued append came
  std::vector<SeqRange> queued_removes_;
  std::chrono::steady_clock::time_point removes_since_{};  // when the oldest queued delete came
  std::chrono::steady_clock::time_point removes_retry_at_{};  // a delete failed: not before then
  bool force_ = false;  // flush(): commit what waits now
  bool soon_ = false;   // commit_soon(): commit the appends that wait now
  std::deque<std::function<void()>> tasks_;
  std::function<void()> on_commit_;
  std::function<void(const std::map<std::string, std::int64_t>&)> on_evict_;  // guarded by mu_
  bool stopping_ = false;
  bool exited_ = false;  // the writer thread has left its loop: nothing queued will run
  std::string fault_;                 // guarded by mu_
  std::chrono::steady_clock::time_point fault_probe_at_{};

  // Stats written by the writer thread.
  std::atomic<std::int64_t> pending_by_prio_[kPriorityLevels] = {};
  std::atomic<std::int64_t> oldest_at_ms_{0};  // the store clock at the oldest append
  std::atomic<std::int64_t> oldest_at_ms_by_prio_[kPriorityLevels] = {};
  std::atomic<std::int64_t> bytes_by_prio_[kPriorityLevels] = {};  // -1: unknown (invariant 13)
  // The store clock (invariant 8): its value at open and the steady time then.
  std::int64_t store_clock_base_ = 0;
  std::chrono::steady_clock::time_point store_clock_steady_{};
  std::int64_t store_now() const;
  std::atomic<std::int64_t> held_{0};
  std::vector<HeldEntry> held_entries_;  // guarded by mu_
  ProgressStamp progress_;  // the writer's last loop turn or committed transaction; clear once it exits
  std::atomic<std::int64_t> last_seq_{0};
  std::atomic<std::uint64_t> file_bytes_{0};
  std::atomic<std::uint64_t> free_page_bytes_{0};  // pages freed by deletes, reused by new data
  std::atomic<bool> tight_on_disk_{false};  // under twice the headroom free: deletes are not deferred
  std::atomic<std::uint64_t> appended_{0}, removed_{0}, evicted_{0}, refused_{0}, commits_{0};
  std::chrono::steady_clock::time_point next_age_check_{};
  std::chrono::steady_clock::time_point next_mark_purge_{};  // invariant 12
  std::string corrupt_;             // writer thread: the damage found, when a salvage is due
  std::string corruption_report_;  // guarded by mu_
  std::int64_t low_water_ = 0;     // writer thread: every seq up to this one had left the table
  std::deque<std::chrono::steady_clock::time_point> salvages_;  // the last hour's
  std::atomic<std::int64_t> removing_by_prio_[kPriorityLevels] = {};  // readings in queued_removes_
  // Acknowledgement latency: buckets of a quarter octave from 50 us (the last one open-ended).
  static constexpr int kLatencyBuckets = 96;
  std::atomic<std::uint64_t> latency_[kLatencyBuckets] = {};
  std::atomic<std::int64_t> latency_max_us_{0};
  std::atomic<std::int64_t> latency_sum_us_{0};
  RateLimit evict_log_{std::chrono::seconds(60)};

  std::thread thread_;
};

}  // namespace ioc_edge
