#include "core/outbox.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>

#include "core/gateway_events.h"
#include "core/log.h"
#include "core/outbox_sql.h"

namespace ioc_edge {

using outbox_sql::is_corrupt;
using outbox_sql::kCreateHeld;
using outbox_sql::kCreateHeldIndex;
using outbox_sql::kCreateMarks;
using outbox_sql::Stmt;

namespace {

using outbox_sql::kSchemaVersion;
constexpr std::size_t kMaxHeldEntriesShown = 100;
constexpr std::int64_t kHeadroomBytes = 16ll << 20;  // room above max_size for deletes and the gap event
constexpr std::size_t kEvictChunk = 50000;
// Disk kept free for deletes and checkpoints (the "headroom"): max_size / 32, within 2..64 MiB.
// Appends are refused when less than half of it is free on the disk; the other half is held by the
// reserve file, released when even deletes fail. The WAL is checkpointed before it outgrows a
// quarter of it, so a checkpoint never needs more disk than the headroom holds.
constexpr std::uint64_t kHeadroomMin = 2ull << 20;
constexpr std::uint64_t kHeadroomMax = 64ull << 20;
// Bodies waiting for a commit that make a commit worth it at once (invariant 9): a commit of
// 256 KiB pays its few rewritten pages many times over, and a busy office (10,000 readings/s)
// keeps at most that much waiting in memory.
constexpr std::size_t kCommitBytes = 256u << 10;
// Invariant 11: records under a page are merged, into rows of at most 16 KiB (the smallest
// backlog message, so a row never holds a slow link longer than the backlog may).
constexpr std::size_t kSmallRecordBytes = 1024;
constexpr std::size_t kMergedRowBytes = 16u << 10;
constexpr std::size_t kRemoveRanges = 4096;  // deletes queued that are committed at once

std::size_t readings_in(const std::vector<NewRecord>& records) {
  std::size_t n = 0;
  for (const auto& r : records) n += r.count;
  return n;
}

std::string make_uuid_v4() {
  unsigned char b[16];
  std::ifstream f("/dev/urandom", std::ios::binary);
  f.read(reinterpret_cast<char*>(b), sizeof b);
  b[6] = static_cast<unsigned char>((b[6] & 0x0F) | 0x40);
  b[8] = static_cast<unsigned char>((b[8] & 0x3F) | 0x80);
  char out[37];
  std::snprintf(out, sizeof out, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
  return out;
}


}  // namespace

Outbox::Outbox(OutboxOptions opts, const Clock& clock)
    : opts_(std::move(opts)), clock_(clock), log_(logger("outbox")) {}

std::unique_ptr<Outbox> Outbox::open(const OutboxOptions& opts, const Clock& clock, std::string& error) {
  // SQLite's memory statistics take a global mutex on every allocation; we do not read them.
  // Only possible before SQLite initializes (otherwise a harmless SQLITE_MISUSE).
  static std::once_flag once;
  std::call_once(once, [] { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
  std::unique_ptr<Outbox> ob(new Outbox(opts, clock));
  if (!ob->open_db(error)) return nullptr;
  ob->progress_.mark(clock);
  ob->thread_ = std::thread([p = ob.get()] {
    pthread_setname_np(pthread_self(), "outbox");
    p->run();
  });
  return ob;
}

Outbox::~Outbox() { stop(); }

bool Outbox::exec(const char* sql) {
  char* err = nullptr;
  const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
  if (err) sqlite3_free(err);
  return rc == SQLITE_OK;
}

std::string Outbox::errmsg() const { return db_ ? sqlite3_errmsg(db_) : "no database"; }

bool Outbox::open_db(std::string& error) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path path(opts_.path);
  if (path.has_parent_path()) fs::create_directories(path.parent_path(), ec);
  dir_ = path.has_parent_path() ? path.parent_path().string() : ".";

  for (int attempt = 0; attempt < 2; ++attempt) {
    if (db_) {
      sqlite3_close_v2(db_);
      db_ = nullptr;
    }
    int rc = sqlite3_open_v2(opts_.path.c_str(), &db_,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) {
      error = "cannot open " + opts_.path + ": " + errmsg();
      return false;
    }
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, 5000);
    // A new file takes the page size before WAL mode writes its first page (invariant 9).
    if (std::error_code size_ec; fs::file_size(path, size_ec) == 0 || size_ec)
      exec(("PRAGMA page_size=" + std::to_string(opts_.page_size)).c_str());
    // The first statement that reads the header tells a database from garbage.
    rc = sqlite3_exec(db_, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr);
    if (rc == SQLITE_OK) rc = sqlite3_exec(db_, "SELECT count(*) FROM sqlite_master", nullptr, nullptr, nullptr);
    if (is_corrupt(rc) && attempt == 0) {
      // Never overwrite an earlier one (an RTC-less box boots at the same time every time).
      const auto aside = aside_name();
      sqlite3_close_v2(db_);
      db_ = nullptr;
      fs::rename(path, aside, ec);
      for (const char* suffix : {"-wal", "-shm"}) fs::rename(opts_.path + suffix, aside + suffix, ec);
      log_->error("database {} is corrupt ({}); moved aside to {} and starting a new store; the old file is kept "
                  "for recovery",
                  opts_.path, sqlite3_errstr(rc), aside);
      continue;
    }
    if (rc != SQLITE_OK) {
      error = "cannot use " + opts_.path + ": " + errmsg();
      return false;
    }
    break;
  }

  {
    Stmt jm(db_, "PRAGMA journal_mode");
    if (!jm || jm.step() != SQLITE_ROW || jm.text(0) != "wal") {
      error = "cannot switch " + opts_.path + " to WAL mode: " + errmsg();
      return false;
    }
  }
  exec(opts_.sync_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
  exec("PRAGMA temp_store=MEMORY");
  exec("PRAGMA secure_delete=OFF");  // Debian builds SQLite with it on: every freed page would be zeroed (written)
  exec("PRAGMA cache_size=-512");  // 512 KiB page cache: appends touch the tail, reads the head

  int user_version = 0;
  {
    Stmt uv(db_, "PRAGMA user_version");
    if (uv && uv.step() == SQLITE_ROW) user_version = static_cast<int>(uv.i64(0));
  }
  if (user_version > kSchemaVersion) {
    error = opts_.path + " was written by a newer ioc-edge (schema " + std::to_string(user_version) +
            ", this build knows " + std::to_string(kSchemaVersion) + "); refusing to touch it";
    return false;
  }
  if (user_version == 0) {
    const bool ok = exec("BEGIN IMMEDIATE") && outbox_sql::create_schema(db_) && exec("COMMIT");
    if (!ok) {
      error = "cannot create the outbox schema in " + opts_.path + ": " + errmsg();
      exec("ROLLBACK");
      return false;
    }
  } else if (user_version < kSchemaVersion) {
    // O(1) each: SQLite stores a column's default in the schema and old rows read it (1 reading
    // each, state pending, no meta); the table is not rewritten. The partial index of held rows
    // is built by one read of the table (it starts empty).
    const bool ok =
        exec("BEGIN IMMEDIATE") &&
        (user_version >= 2 || exec("ALTER TABLE records ADD COLUMN n INTEGER NOT NULL DEFAULT 1")) &&
        (user_version >= 3 || (exec("ALTER TABLE records ADD COLUMN state INTEGER NOT NULL DEFAULT 0") &&
                               exec("ALTER TABLE records ADD COLUMN meta TEXT") && exec(kCreateHeld) &&
                               exec(kCreateHeldIndex) && exec("INSERT OR IGNORE INTO meta VALUES('held',0)"))) &&
        exec("INSERT OR IGNORE INTO meta VALUES('seq', max(coalesce((SELECT seq FROM sqlite_sequence WHERE "
             "name='records'), 0), coalesce((SELECT max(seq) FROM records), 0)))") &&
        exec("PRAGMA user_version=4") && exec("COMMIT");
    if (!ok) {
      error = "cannot upgrade the outbox schema in " + opts_.path + " from version " + std::to_string(user_version) +
              ": " + errmsg();
      exec("ROLLBACK");
      return false;
    }
    log_->info("upgraded {} from schema version {} to 4 (typed envelopes, held records, seq in meta)", opts_.path,
               user_version);
  }

  if (!exec(kCreateMarks)) {  // invariant 12: stores made before marks existed
    error = "cannot add the marks table to " + opts_.path + ": " + errmsg();
    return false;
  }
  {
    Stmt get(db_, "SELECT value FROM meta WHERE key='store'");
    if (get && get.step() == SQLITE_ROW) store_uuid_ = get.text(0);
  }
  if (store_uuid_.empty()) {
    store_uuid_ = make_uuid_v4();
    Stmt put(db_, "INSERT INTO meta VALUES('store', ?)");
    put.bind(1, store_uuid_);
    if (put.step() != SQLITE_DONE) {
      error = "cannot write the store id to " + opts_.path + ": " + errmsg();
      return false;
    }
    log_->info("created a new store {} in {}", store_uuid_, opts_.path);
  }

  {
    Stmt ps(db_, "PRAGMA page_size");
    if (ps && ps.step() == SQLITE_ROW) page_size_ = ps.i64(0);
    const auto max_pages = static_cast<std::int64_t>((opts_.max_size + kHeadroomBytes) / page_size_);
    exec(("PRAGMA max_page_count=" + std::to_string(max_pages)).c_str());
    const auto wal_pages = static_cast<std::int64_t>(headroom_bytes() / 4 / static_cast<std::uint64_t>(page_size_));
    exec(("PRAGMA wal_autocheckpoint=" + std::to_string(std::max<std::int64_t>(64, wal_pages))).c_str());
    exec(("PRAGMA journal_size_limit=" + std::to_string(headroom_bytes() / 4)).c_str());
  }
  {  // The store clock (invariant 8), or its start: the wall clock, which older rows' `at` used.
    store_clock_base_ = clock_.now_ms();
    Stmt get(db_, "SELECT value FROM meta WHERE key='clock'");
    if (get && get.step() == SQLITE_ROW) {
      store_clock_base_ = get.i64(0);
    } else {
      Stmt put(db_, "INSERT OR REPLACE INTO meta VALUES('clock', ?)");
      put.bind(1, store_clock_base_);
      if (put.step() != SQLITE_DONE) {
        error = "cannot write the store clock to " + opts_.path + ": " + errmsg();
        return false;
      }
    }
    store_clock_steady_ = clock_.steady();
  }
  {
    Stmt counts(db_, "SELECT key, value FROM meta WHERE key LIKE 'count.%'");
    while (counts && counts.step() == SQLITE_ROW) {
      const auto key = counts.text(0);
      const int p = key.back() - '0';
      if (p >= 0 && p < kPriorityLevels) pending_by_prio_[p] = counts.i64(1);
    }
    load_bytes();
    Stmt meta_seq(db_, "SELECT value FROM meta WHERE key='seq'");
    if (meta_seq && meta_seq.step() == SQLITE_ROW) last_seq_ = meta_seq.i64(0);
    Stmt seq(db_, "SELECT seq FROM sqlite_sequence WHERE name='records'");  // stores made before schema 4
    if (seq && seq.step() == SQLITE_ROW) last_seq_ = std::max(last_seq_.load(), seq.i64(0));
    // Seqs are given from last_seq_ (invariant 2); never below a row that exists. O(log n).
    Stmt top(db_, "SELECT max(seq) FROM records");
    if (top && top.step() == SQLITE_ROW) last_seq_ = std::max(last_seq_.load(), top.i64(0));
  }
  bool any_held = false;
  {
    Stmt h(db_, "SELECT value FROM meta WHERE key='held'");
    if (h && h.step() == SQLITE_ROW) held_ = h.i64(0);
    Stmt probe(db_, "SELECT 1 FROM records WHERE state<>0 LIMIT 1");  // the partial index: O(1)
    any_held = probe && probe.step() == SQLITE_ROW;
  }
  if (held_ > 0 || any_held) {  // invariant 4: a restart makes what the IOC refused pending again
    RequeueResult rq;
    std::string why;
    if (requeue_now(rq, why))
      log_->warn("{} readings that the IOC broker refused before the restart are pending again; they will be sent "
                 "once more",
                 rq.readings);
    else
      log_->error("cannot make the readings the IOC broker refused pending again: {}", why);
  }
  refresh_held();
  ensure_reserve();
  refresh_stats_after_delete();
  log_->info("opened {} (store {}, {} readings pending, last seq {}, sync {})", opts_.path, store_uuid_,
             stats().pending, last_seq_.load(), opts_.sync_full ? "full" : "normal");
  return true;
}

void Outbox::append(std::vector<NewRecord> records, AppendDone done, std::vector<Mark> marks) {
  AppendResult refused;
  for (const auto& m : marks) {
    if (!m.key.empty() && m.key.size() <= kMaxMarkKeyBytes && m.value.size() <= kMaxMarkValueBytes) continue;
    log_->critical("refused an append with a mark of {} key bytes and {} value bytes", m.key.size(), m.value.size());
    refused_ += readings_in(records);
    if (done) done({AppendStatus::Refused, "internal error: a mark's key or value is out of bounds", 0, 0});
    return;
  }
  // Invariant 2: a record's body holds exactly `count` lines, one per seq it is given. A mismatch
  // is a bug in the producer; storing it would send fewer (or broken) readings than were counted.
  for (const auto& r : records) {
    if (!kind_info(r.kind).batched) {
      if (r.count == 1) continue;
      log_->critical("refused a {} record of source \"{}\" that claims {} readings", kind_info(r.kind).name, r.source,
                     r.count);
      refused_ += readings_in(records);
      if (done) done({AppendStatus::Refused, "internal error: a blob owns exactly one seq", 0, 0});
      return;
    }
    const auto lines = std::max<std::size_t>(1, framed_count(r.body));
    if (r.count == 0 || lines == r.count) continue;
    log_->critical("refused a record of source \"{}\" that claims {} readings but holds {} lines", r.source, r.count,
                   lines);
    refused_ += readings_in(records);
    if (done) done({AppendStatus::Refused, "internal error: a record's readings do not match its count", 0, 0});
    return;
  }
  {
    std::lock_guard lk(mu_);
    if (stopping_) {
      refused = {AppendStatus::Stopped, "the outbox is stopping", 0, 0};
    } else if (!fault_.empty() && clock_.steady() < fault_probe_at_) {
      refused = {AppendStatus::Refused, fault_, 0, 0};
    } else if (queued_records_ + readings_in(records) > opts_.max_queued && queued_records_ > 0) {
      refused = {AppendStatus::Overloaded,
                 "the outbox is behind (" + std::to_string(queued_records_) + " readings waiting for a commit)", 0, 0};
    } else {
      const auto now = clock_.steady();
      if (!fault_.empty()) fault_probe_at_ = now + opts_.fault_probe;  // this append is the probe
      if (queued_appends_.empty()) appends_since_ = now;
      queued_records_ += readings_in(records);
      for (const auto& r : records) queued_bytes_ += r.body.size();
      queued_appends_.push_back({std::move(records), std::move(done), now, std::move(marks)});
      if (appends_due(now)) cv_.notify_one();  // otherwise the writer wakes at the deadline
      return;
    }
  }
  refused_ += readings_in(records);
  if (done) done(refused);
}

std::vector<Record> Outbox::read(Priority prio, std::int64_t after, std::int64_t before, ReadLimits limits,
                                 bool* ok, bool* more) {
  const std::size_t max_readings = std::max<std::size_t>(1, limits.max_readings), max_bytes = limits.max_bytes;
  const std::size_t max_messages = std::max<std::size_t>(1, limits.max_messages);
  const std::size_t max_total = limits.max_total_bytes ? limits.max_total_bytes : max_bytes;
  // Rows <= readings: at most max_readings in each of max_messages messages.
  const auto max_rows = static_cast<std::int64_t>(
      std::min<std::size_t>(max_readings * std::min<std::size_t>(max_messages, 1u << 16), 1u << 30));
  std::promise<std::vector<Record>> result;
  auto fut = result.get_future();
  bool query_ok = true, cut = false;
  if (ok) *ok = false;
  {
    std::lock_guard lk(mu_);
    if (exited_) return {};
    tasks_.emplace_back([&, this] {
      std::vector<Record> out;
      Stmt q(db_,
             "SELECT seq, n, kind, source, body, meta FROM records WHERE prio=? AND seq>? AND seq<? AND state=0 "
             "ORDER BY seq LIMIT ?");
      if (!q) {
        log_->error("reading pending records failed: {}", errmsg());
        query_ok = false;
        result.set_value(std::move(out));
        return;
      }
      q.bind(1, static_cast<std::int64_t>(prio)).bind(2, after).bind(3, before);
      q.bind(4, max_rows);
      std::size_t bytes = 0;
      // The messages these records make: one per (kind, source) of batched records, two per blob
      // (its metadata event and its bytes).
      struct Group {
        Kind kind;
        std::string source;
        std::size_t readings = 0, bytes = 0;
      };
      std::vector<Group> groups;
      std::size_t blobs = 0;
      int rc;
      while ((rc = q.step()) == SQLITE_ROW) {
        const std::int64_t n = std::max<std::int64_t>(1, q.i64(1));
        const auto kind = kind_from_int(q.i64(2)).value_or(Kind::Event);
        const auto row_bytes = record_message_bytes(kind, static_cast<std::size_t>(sqlite3_column_bytes(q.get(), 4)),
                                                    static_cast<std::size_t>(n));
        if (!out.empty() && bytes + row_bytes > max_total) {
          cut = true;
          break;
        }
        const auto src = reinterpret_cast<const char*>(sqlite3_column_text(q.get(), 3));
        const std::string_view source = src ? src : "";
        const bool batched = kind_info(kind).batched;
        auto group = batched ? std::find_if(groups.begin(), groups.end(),
                                            [&](const Group& g) { return g.kind == kind && g.source == source; })
                             : groups.end();
        if (group == groups.end()) {
          const std::size_t messages = groups.size() + 2 * blobs + (batched ? 1 : 2);
          if (!out.empty() && messages > max_messages) {  // a read never outgrows the window
            cut = true;
            break;
          }
          if (batched) {
            groups.push_back({kind, std::string(source)});
            group = std::prev(groups.end());
          } else {
            ++blobs;
          }
        } else if (group->readings + static_cast<std::size_t>(n) > max_readings ||
                   group->bytes + row_bytes > max_bytes) {
          cut = true;  // its message is full: the next read starts a new one
          break;
        }
        if (group != groups.end()) {
          group->readings += static_cast<std::size_t>(n);
          group->bytes += row_bytes;
        }
        Record r;
        r.last_seq = q.i64(0);
        r.first_seq = r.last_seq - n + 1;
        r.prio = prio;
        r.kind = kind;
        r.source = std::string(source);
        r.body = q.bytes(4);
        r.meta = q.text(5);
        bytes += row_bytes;
        out.push_back(std::move(r));
        if (bytes >= max_total || !batched || static_cast<std::int64_t>(out.size()) >= max_rows) {  // a blob travels alone
          cut = true;  // perhaps nothing is behind; the next read finds out
          break;
        }
      }
      if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        log_->error("reading pending records failed: {}", errmsg());
        query_ok = false;
        if (is_corrupt(sqlite3_extended_errcode(db_)) && corrupt_.empty()) corrupt_ = errmsg();
      }
      result.set_value(std::move(out));
    });
    cv_.notify_one();
  }
  auto records = fut.get();  // the promise is set after query_ok and cut are written
  if (ok) *ok = query_ok;
  if (more) *more = cut;
  return records;
}

std::vector<Mark> Outbox::marks(const std::string& prefix, bool* ok) {
  std::promise<std::vector<Mark>> result;
  auto fut = result.get_future();
  bool query_ok = true;
  if (ok) *ok = false;
  {
    std::lock_guard lk(mu_);
    if (exited_) return {};
    tasks_.emplace_back([&, this] {
      std::vector<Mark> out;
      Stmt q(db_,
             "SELECT key, value, expires, first, last FROM marks WHERE key >= ?1 AND substr(key, 1, length(?1)) = ?1"
             " AND (expires = 0 OR expires > ?2) ORDER BY key");
      int rc = SQLITE_ERROR;
      if (q) {
        q.bind(1, prefix).bind(2, clock_.now_ms());
        while ((rc = q.step()) == SQLITE_ROW) out.push_back({q.text(0), q.bytes(1), q.i64(2), q.i64(3), q.i64(4)});
      }
      if (rc != SQLITE_DONE) {
        log_->error("reading marks failed: {}", errmsg());
        query_ok = false;
        if (is_corrupt(sqlite3_extended_errcode(db_)) && corrupt_.empty()) corrupt_ = errmsg();
      }
      result.set_value(std::move(out));
    });
    cv_.notify_one();
  }
  auto out = fut.get();
  if (ok) *ok = query_ok;
  return out;
}

bool Outbox::write_marks(const std::vector<QueuedAppend>& appends, std::int64_t first_seq) {
  bool any = false;
  for (const auto& a : appends) any = any || !a.marks.empty();
  const auto steady = clock_.steady();
  const bool purge = steady >= next_mark_purge_;
  if (!any && !purge) return true;
  if (any) {
    Stmt put(db_, "INSERT OR REPLACE INTO marks(key, value, expires, first, last) VALUES(?, ?, ?, ?, ?)");
    if (!put) return false;
    std::int64_t next = first_seq;  // the appends' seqs follow one another (invariant 2)
    for (const auto& a : appends) {
      const auto count = static_cast<std::int64_t>(readings_in(a.records));
      for (const auto& m : a.marks) {
        put.bind(1, m.key).bind_blob(2, m.value).bind(3, m.expires_ms);
        put.bind(4, count ? next : 0).bind(5, count ? next + count - 1 : 0);
        if (put.step() != SQLITE_DONE) return false;
        put.reset();
      }
      next += count;
    }
  }
  if (purge) {
    Stmt del(db_, "DELETE FROM marks WHERE expires <> 0 AND expires <= ?");
    if (!del) return false;
    del.bind(1, clock_.now_ms());
    if (del.step() != SQLITE_DONE) return false;
    next_mark_purge_ = steady + std::chrono::hours(1);
  }
  return true;
}

void Outbox::remove(std::vector<SeqRange> ranges) {
  std::lock_guard lk(mu_);
  if (queued_removes_.empty()) removes_since_ = clock_.steady();
  count_removing(ranges, +1);
  queued_removes_.insert(queued_removes_.end(), ranges.begin(), ranges.end());
  if (removes_due(clock_.steady())) cv_.notify_one();
}

void Outbox::count_removing(const std::vector<SeqRange>& ranges, int sign) {
  for (const auto& r : ranges) removing_by_prio_[static_cast<int>(r.prio)] += sign * (r.last - r.first + 1);
}

void Outbox::apply_removes() {
  std::lock_guard lk(mu_);
  if (exited_) return;
  tasks_.emplace_back([this] { commit_removes_now(); });
  cv_.notify_one();
}

bool Outbox::appends_due(std::chrono::steady_clock::time_point now) const {
  if (queued_appends_.empty()) return false;
  return now >= appends_since_ + opts_.commit_interval || queued_bytes_ >= kCommitBytes ||
         queued_records_ >= std::max<std::size_t>(1, opts_.max_queued / 4);
}

std::chrono::steady_clock::time_point Outbox::removes_deadline() const {
  // Short of disk, what was delivered leaves at once: its pages are the room new data needs. A
  // delete that failed waits for the fault probe.
  const auto due = tight_on_disk_.load(std::memory_order_relaxed) || queued_removes_.size() >= kRemoveRanges
                       ? removes_since_
                       : removes_since_ + opts_.remove_delay;
  return std::max(due, removes_retry_at_);
}

bool Outbox::removes_due(std::chrono::steady_clock::time_point now) const {
  return !queued_removes_.empty() && now >= removes_deadline();
}

void Outbox::commit_removes_now() {
  std::vector<QueuedAppend> none;
  std::vector<SeqRange> removes;
  {
    std::lock_guard lk(mu_);
    removes.swap(queued_removes_);
  }
  if (!removes.empty()) commit_batch(none, removes);
}

void Outbox::record_ack_latency(std::chrono::steady_clock::duration d) {
  const auto us = std::max<std::int64_t>(1, std::chrono::duration_cast<std::chrono::microseconds>(d).count());
  // Bucket b holds latencies up to 50 us * 2^(b/4).
  const int b = std::clamp(static_cast<int>(std::ceil(4.0 * std::log2(static_cast<double>(us) / 50.0))), 0,
                           kLatencyBuckets - 1);
  latency_[b].fetch_add(1, std::memory_order_relaxed);
  latency_sum_us_.fetch_add(us, std::memory_order_relaxed);
  auto prev = latency_max_us_.load(std::memory_order_relaxed);
  while (us > prev && !latency_max_us_.compare_exchange_weak(prev, us, std::memory_order_relaxed)) {
  }
}

void Outbox::set_on_commit(std::function<void()> fn) {
  std::lock_guard lk(mu_);
  on_commit_ = std::move(fn);
}

void Outbox::set_on_evict(std::function<void(const std::map<std::string, std::int64_t>&)> fn) {
  std::lock_guard lk(mu_);
  on_evict_ = std::move(fn);
}

void Outbox::commit_soon() {
  std::lock_guard lk(mu_);
  if (soon_ || queued_appends_.empty()) return;
  soon_ = true;
  cv_.notify_one();
}

void Outbox::flush() {
  std::promise<void> done;
  auto fut = done.get_future();
  {
    std::lock_guard lk(mu_);
    if (exited_) return;
    // Tasks run before the commit of what is queued; queue the marker behind one full cycle.
    force_ = true;
    tasks_.emplace_back([&, this] {
      std::lock_guard lk2(mu_);
      tasks_.emplace_back([&] { done.set_value(); });
    });
    cv_.notify_one();
  }
  fut.wait();
}

OutboxStats Outbox::stats() const {
  OutboxStats s;
  s.store = store_uuid_;
  for (int p = 0; p < kPriorityLevels; ++p) {
    const auto removing = removing_by_prio_[p].load();
    s.pending_by_prio[p] = std::max<std::int64_t>(0, pending_by_prio_[p].load() - removing);
    s.pending += s.pending_by_prio[p];
    s.removing += removing;
    // The tally covers the table, delivered records whose delete waits included; those are left
    // out in proportion, so that bytes go to zero with the readings (exact when none waits).
    const auto in_table = pending_by_prio_[p].load(), bytes = bytes_by_prio_[p].load();
    s.bytes_by_prio[p] = bytes < 0      ? -1
                         : in_table <= 0 ? 0
                                         : static_cast<std::int64_t>(static_cast<double>(bytes) *
                                                                     static_cast<double>(s.pending_by_prio[p]) /
                                                                     static_cast<double>(in_table));
  }
  std::uint64_t counts[kLatencyBuckets];
  for (int b = 0; b < kLatencyBuckets; ++b) s.acks += counts[b] = latency_[b].load(std::memory_order_relaxed);
  const auto percentile = [&](double q) {
    const auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(s.acks)));
    std::uint64_t seen = 0;
    for (int b = 0; b < kLatencyBuckets; ++b)
      if ((seen += counts[b]) >= rank) return 0.05 * std::exp2(b / 4.0);  // the bucket's upper bound, ms
    return 0.0;
  };
  if (s.acks > 0) {
    s.ack_p50_ms = percentile(0.5);
    s.ack_p99_ms = percentile(0.99);
    s.ack_max_ms = static_cast<double>(latency_max_us_.load()) / 1000.0;
    s.ack_sum_ms = static_cast<double>(latency_sum_us_.load()) / 1000.0;
    s.ack_p50_ms = std::min(s.ack_p50_ms, s.ack_max_ms);
    s.ack_p99_ms = std::min(s.ack_p99_ms, s.ack_max_ms);
  }
  const auto oldest = oldest_at_ms_.load();
  const auto store_time = store_now();
  s.oldest_age_ms = oldest ? std::max<std::int64_t>(0, store_time - oldest) : 0;
  for (int p = 0; p < kPriorityLevels; ++p) {
    const auto at = oldest_at_ms_by_prio_[p].load();
    s.oldest_age_ms_by_prio[p] = at ? std::max<std::int64_t>(0, store_time - at) : 0;
  }
  s.held = held_;
  s.last_seq = last_seq_;
  s.file_bytes = file_bytes_;
  s.appended = appended_;
  s.removed = removed_;
  s.evicted = evicted_;
  s.refused = refused_;
  s.commits = commits_;
  std::lock_guard lk(mu_);
  s.fault = fault_;
  s.corruption = corruption_report_;
  return s;
}

void Outbox::stop() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
    cv_.notify_one();
  }
  if (thread_.joinable()) thread_.join();
  if (db_) {
    sqlite3_finalize(insert_stmt_);
    insert_stmt_ = nullptr;
    // The store clock resumes from here at the next start (invariant 8); the writer has exited.
    exec(("UPDATE meta SET value = " + std::to_string(store_now()) + " WHERE key = 'clock'").c_str());
    sqlite3_close_v2(db_);  // checkpoints the WAL into the database
    db_ = nullptr;
    log_->info("closed (last seq {}, {} readings pending)", last_seq_.load(), stats().pending);
  }
}

std::int64_t Outbox::store_now() const {
  return store_clock_base_ +
         std::chrono::duration_cast<std::chrono::milliseconds>(clock_.steady() - store_clock_steady_).count();
}

std::chrono::milliseconds Outbox::stalled_for() const { return progress_.stalled_for(clock_); }

void Outbox::run() {
  next_age_check_ = clock_.steady();
  for (;;) {
    progress_.mark(clock_);
    std::vector<QueuedAppend> appends;
    std::vector<SeqRange> removes;
    std::deque<std::function<void()>> tasks;
    bool stopping;
    {
      std::unique_lock lk(mu_);
      // Relative wait: the injected clock need not be std::chrono::steady_clock.
      auto until = next_age_check_;
      if (!queued_appends_.empty()) until = std::min(until, appends_since_ + opts_.commit_interval);
      if (!queued_removes_.empty()) until = std::min(until, removes_deadline());
      const auto wait = std::clamp(std::chrono::duration_cast<std::chrono::milliseconds>(until - clock_.steady()),
                                   std::chrono::milliseconds(0), std::chrono::milliseconds(5000));
      cv_.wait_for(lk, wait, [&] {
        const auto now = clock_.steady();
        return stopping_ || force_ || (soon_ && !queued_appends_.empty()) || !tasks_.empty() || appends_due(now) ||
               removes_due(now);
      });
      const auto now = clock_.steady();
      stopping = stopping_;
      const bool force = force_ || stopping;
      force_ = false;
      // Invariant 9: appends that waited long enough (or gathered enough) go now; deletes go when
      // they waited long enough themselves, or ride along with appends once half their wait is over.
      if (force || soon_ || appends_due(now)) {
        soon_ = false;
        appends.swap(queued_appends_);
        queued_records_ = 0;
        queued_bytes_ = 0;
      }
      const bool ride = !appends.empty() && now >= removes_since_ + opts_.remove_delay / 2 && now >= removes_retry_at_;
      if (force || ride || removes_due(now)) removes.swap(queued_removes_);
      tasks.swap(tasks_);
    }
    progress_.mark(clock_);
    for (auto& t : tasks) t();
    // Limits change only when something was written, or when data ages; reads (the forwarder's
    // hot path while draining) need neither the size pragmas nor the age scan.
    const bool wrote = !appends.empty() || !removes.empty();
    if (!corrupt_.empty()) salvage();  // a read met damage
    if (wrote) commit_batch(appends, removes);
    if (wrote || clock_.steady() >= next_age_check_) enforce_limits();
    if (!corrupt_.empty()) salvage();  // a commit, hold or eviction met damage
    if (stopping) {
      std::lock_guard lk(mu_);
      // Deletes that failed even now (a full disk) are not waited for: after the restart their
      // records are sent once more, which the IOC de-duplicates.
      if (!removes.empty() && !queued_removes_.empty() && clock_.steady() < removes_retry_at_) {
        log_->warn("stopping with {} deliveries not yet deleted; they will be sent again after the restart",
                   queued_removes_.size());
        count_removing(queued_removes_, -1);
        queued_removes_.clear();
      }
      if (queued_appends_.empty() && queued_removes_.empty() && tasks_.empty()) {
        exited_ = true;
        progress_.clear();  // a stopped writer is not a stuck one
        break;
      }
    }
  }
}

void Outbox::commit_batch(std::vector<QueuedAppend>& appends, std::vector<SeqRange>& removes, bool keep_fault,
                          bool after_salvage) {
  const std::int64_t now = store_now();
  std::int64_t delta[kPriorityLevels] = {};
  TallyChange tally;  // invariant 13
  std::int64_t removed_now = 0, held_delta = 0;
  std::int64_t first_seq = 0, last_seq = 0;
  int rc = SQLITE_OK;
  std::string failed_step;

  auto fail = [&](const char* step) {
    failed_step = step;
    rc = sqlite3_extended_errcode(db_);
  };

  // Below the headroom: refuse new data before SQLite would hit the wall (invariant 6), but go on
  // deleting what was delivered, which is how the space comes back.
  if (!appends.empty()) {
    if (const auto low = low_on_disk()) {
      std::size_t refused = 0;
      for (auto& a : appends) refused += readings_in(a.records);
      refused_ += refused;
      set_fault(*low);
      for (auto& a : appends)
        if (a.done) a.done({AppendStatus::Refused, *low, 0, 0});
      appends.clear();
      keep_fault = true;
      if (removes.empty()) return;
    }
  }

  if (!exec("BEGIN IMMEDIATE")) {
    fail("begin");
  } else {
    {
      std::int64_t seq = last_seq_;  // this thread is the only writer: the highest seq ever given
      for (auto& row : merge_rows(appends)) {
        const std::int64_t n = row.count;
        if (!insert_envelope(row, seq + n, now)) {
          fail("insert");
          break;
        }
        if (first_seq == 0) first_seq = seq + 1;
        seq += n;
        last_seq = seq;
        delta[static_cast<int>(row.prio)] += n;
        tally.bytes[static_cast<int>(row.prio)] += static_cast<std::int64_t>(row.body.size());
      }
    }
    if (failed_step.empty() && !appends.empty() && !write_marks(appends, first_seq)) fail("write marks");
    if (failed_step.empty() && !removes.empty()) {
      Stmt del(db_, "DELETE FROM records WHERE seq BETWEEN ? AND ? AND prio=? RETURNING n, state, length(body)");
      for (const auto& r : removes) {
        del.bind(1, r.first).bind(2, r.last).bind(3, static_cast<std::int64_t>(r.prio));
        std::int64_t n = 0;
        int step;
        while ((step = del.step()) == SQLITE_ROW) {
          n += del.i64(0);
          tally.bytes[static_cast<int>(r.prio)] -= del.i64(2);
          // A copy sent before it was refused (after a rewind) was acknowledged after all.
          if (del.i64(1) != 0) held_delta -= del.i64(0);
        }
        if (step != SQLITE_DONE) {
          fail("delete");
          break;
        }
        del.reset();
        delta[static_cast<int>(r.prio)] -= n;
        removed_now += n;
      }
    }
    if (failed_step.empty()) {
      Stmt upd(db_, "UPDATE meta SET value = value + ? WHERE key = ?");
      for (int p = 0; p < kPriorityLevels && failed_step.empty(); ++p) {
        if (delta[p] == 0) continue;
        const std::string key = "count." + std::to_string(p);
        upd.bind(1, delta[p]).bind(2, key);
        if (upd.step() != SQLITE_DONE) fail("update counters");
        upd.reset();
      }
      if (failed_step.empty() && held_delta != 0) {
        const std::string key = "held";
        upd.bind(1, held_delta).bind(2, key);
        if (upd.step() != SQLITE_DONE) fail("update counters");
      }
      for (int p = 0; p < kPriorityLevels; ++p) tally.readings[p] = delta[p];
      if (failed_step.empty() && !write_bytes(tally)) fail("update counters");
      Stmt clk(db_, "UPDATE meta SET value = ? WHERE key = 'clock'");  // invariant 8: resumed from here
      clk.bind(1, now);
      if (failed_step.empty() && clk.step() != SQLITE_DONE) fail("update the store clock");
      if (failed_step.empty() && last_seq != 0 && !write_last_seq(last_seq)) fail("update the last seq");
    }
    if (failed_step.empty() && !exec("COMMIT")) fail("commit");
  }

  if (!failed_step.empty()) {
    const std::string what = std::string(sqlite3_errstr(rc)) + " (" + errmsg() + ") during " + failed_step;
    exec("ROLLBACK");
    exit_if_unrecoverable(rc, what);
    if (!corrupt_.empty() && !after_salvage && salvage()) {  // invariant 10: once more, on the salvaged file
      commit_batch(appends, removes, keep_fault, /*after_salvage=*/true);
      return;
    }
    std::size_t n = 0;
    for (auto& a : appends) n += readings_in(a.records);
    refused_ += n;
    const std::string reason =
        (rc & 0xFF) == SQLITE_FULL ? "disk full: cannot store new data in " + opts_.path : "storage error: " + what;
    set_fault(reason);
    for (auto& a : appends)
      if (a.done) a.done({AppendStatus::Refused, reason, 0, 0});
    appends.clear();
    if (!removes.empty()) {
      // Deleting needs WAL space too. The reserve file exists for this moment: give its space
      // back so that what the IOC acknowledged can leave and the buffer can drain (invariant 6).
      // First give back the WAL's space (its frames are committed; a checkpoint moves them into
      // the database file, where deletes only free pages), then the reserve.
      if ((rc & 0xFF) == SQLITE_FULL && !keep_fault && (checkpoint_truncate() || release_reserve())) {
        commit_batch(appends, removes, /*keep_fault=*/true);
        return;
      }
      if ((rc & 0xFF) == SQLITE_FULL && keep_fault && release_reserve()) {
        commit_batch(appends, removes, /*keep_fault=*/true);
        return;
      }
      // Acknowledged records stay until a delete commits (a resend is harmless); retried with
      // the next probe, not in a loop.
      std::lock_guard lk(mu_);
      queued_removes_.insert(queued_removes_.begin(), removes.begin(), removes.end());
      removes_retry_at_ = clock_.steady() + opts_.fault_probe;
    }
    return;
  }

  ++commits_;
  progress_.mark(clock_);  // progress, for the watchdog
  apply_bytes(tally);  // before the counts it is computed from change
  for (int p = 0; p < kPriorityLevels; ++p) pending_by_prio_[p] += delta[p];
  if (last_seq != 0) last_seq_ = last_seq;
  std::size_t n = 0;
  for (auto& a : appends) n += readings_in(a.records);
  appended_ += n;
  removed_ += static_cast<std::uint64_t>(removed_now);
  count_removing(removes, -1);
  if (held_delta != 0) {
    held_ += held_delta;
    refresh_held();
  }
  if (!keep_fault)
    clear_fault();  // the released reserve does not mean the disk has room again
  else
    checkpoint_truncate();  // keep the WAL from eating the space the deletes just freed

  if (n > 0) notify_commit();  // before the producers hear of it, so that what they see as stored is sendable
  std::int64_t next = first_seq;
  const auto committed_at = clock_.steady();
  for (auto& a : appends) {
    const auto count = static_cast<std::int64_t>(readings_in(a.records));
    record_ack_latency(committed_at - a.queued_at);
    if (a.done) a.done({AppendStatus::Committed, {}, count ? next : 0, count ? next + count - 1 : 0});
    next += count;
  }
}

// Copies, not moves: a commit that met damage is tried again with the same appends (invariant 10).
std::vector<Envelope> Outbox::merge_rows(const std::vector<QueuedAppend>& appends) const {
  std::vector<Envelope> rows;
  bool last_small = false;  // the last row was made of small records only
  const auto row_bytes = std::min(opts_.merge_bytes, kMergedRowBytes);
  for (const auto& a : appends)
    for (const auto& r : a.records) {
      if (r.count == 0) continue;
      const bool small = kind_info(r.kind).batched && r.meta.empty() && r.body.size() < kSmallRecordBytes;
      if (small && last_small) {  // invariant 11
        auto& last = rows.back();
        const auto count = static_cast<std::size_t>(last.count) + static_cast<std::size_t>(r.count);
        if (last.kind == r.kind && last.prio == r.prio && last.source == r.source && count <= opts_.merge_readings &&
            record_message_bytes(r.kind, last.body.size() + 1 + r.body.size(), count) <= row_bytes) {
          last.body += '\n';
          last.body += r.body;
          last.count = static_cast<decltype(last.count)>(count);
          continue;
        }
      }
      rows.push_back(r);
      last_small = small;
    }
  return rows;
}

bool Outbox::write_last_seq(std::int64_t seq) {
  Stmt sq(db_, "UPDATE meta SET value = ? WHERE key = 'seq'");
  sq.bind(1, seq);
  return sq.step() == SQLITE_DONE;
}

bool Outbox::insert_envelope(const Envelope& e, std::int64_t seq, std::int64_t at) {
  if (!insert_stmt_ &&
      sqlite3_prepare_v3(db_, "INSERT INTO records(seq, n, prio, kind, at, source, body, meta) VALUES(?,?,?,?,?,?,?,?)",
                         -1, SQLITE_PREPARE_PERSISTENT, &insert_stmt_, nullptr) != SQLITE_OK)
    return false;
  sqlite3_stmt* st = insert_stmt_;
  sqlite3_bind_int64(st, 1, seq);
  sqlite3_bind_int64(st, 2, e.count);
  sqlite3_bind_int64(st, 3, static_cast<std::int64_t>(e.prio));
  sqlite3_bind_int64(st, 4, static_cast<std::int64_t>(e.kind));
  sqlite3_bind_int64(st, 5, at);
  sqlite3_bind_text(st, 6, e.source.data(), static_cast<int>(e.source.size()), SQLITE_STATIC);
  sqlite3_bind_blob(st, 7, e.body.data(), static_cast<int>(e.body.size()), SQLITE_STATIC);
  if (e.meta.empty())
    sqlite3_bind_null(st, 8);
  else
    sqlite3_bind_text(st, 8, e.meta.data(), static_cast<int>(e.meta.size()), SQLITE_STATIC);
  const int rc = sqlite3_step(st);
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return rc == SQLITE_DONE;
}

void Outbox::hold(std::vector<SeqRange> ranges, std::string topic, std::string reason, std::optional<Envelope> event,
                  std::function<void(const RequeueResult&)> failed) {
  std::lock_guard lk(mu_);
  if (exited_ || stopping_) return;  // stays pending: sent (and refused) again after the restart
  tasks_.emplace_back([this, ranges = std::move(ranges), topic = std::move(topic), reason = std::move(reason),
                       event = std::move(event), failed = std::move(failed)] {
    if (run_hold(ranges, topic, reason, event) || !failed) return;
    RequeueResult back;
    for (const auto& r : ranges) {
      auto& low = back.lowest_seq[static_cast<int>(r.prio)];
      if (low == 0 || r.first < low) low = r.first;
    }
    failed(back);
  });
  cv_.notify_one();
}

bool Outbox::run_hold(const std::vector<SeqRange>& ranges, const std::string& topic, const std::string& reason,
                      const std::optional<Envelope>& event) {
  const auto now = clock_.now_ms();
  std::int64_t held_now = 0, seq = last_seq_;
  bool ok = exec("BEGIN IMMEDIATE");
  for (const auto& r : ranges) {
    if (!ok) break;
    Stmt upd(db_, "UPDATE records SET state=1 WHERE seq BETWEEN ? AND ? AND prio=? AND state=0 RETURNING n");
    upd.bind(1, r.first).bind(2, r.last).bind(3, static_cast<std::int64_t>(r.prio));
    std::int64_t n = 0;
    int step;
    while ((step = upd.step()) == SQLITE_ROW) n += upd.i64(0);
    ok = step == SQLITE_DONE;
    if (ok && n > 0) {
      Stmt ins(db_, "INSERT INTO held(first, last, prio, topic, reason, readings, at) VALUES(?,?,?,?,?,?,?)");
      ins.bind(1, r.first).bind(2, r.last).bind(3, static_cast<std::int64_t>(r.prio)).bind(4, topic).bind(5, reason);
      ins.bind(6, n).bind(7, now);
      ok = ins.step() == SQLITE_DONE;
    }
    held_now += n;
  }
  if (ok && held_now > 0) {
    Stmt upd(db_, "UPDATE meta SET value = value + ? WHERE key = 'held'");
    upd.bind(1, held_now);
    ok = upd.step() == SQLITE_DONE;
  }
  const bool with_event = event && held_now > 0;
  if (ok && with_event) {
    ok = insert_envelope(*event, seq + event->count, store_now());
    if (ok) {
      seq += event->count;
      ok = write_last_seq(seq);
    }
    if (ok) {
      Stmt upd(db_, "UPDATE meta SET value = value + ? WHERE key = ?");
      const std::string key = "count." + std::to_string(static_cast<int>(event->prio));
      upd.bind(1, static_cast<std::int64_t>(event->count)).bind(2, key);
      ok = upd.step() == SQLITE_DONE;
    }
  }
  TallyChange tally;  // invariant 13
  if (with_event) {
    tally.readings[static_cast<int>(event->prio)] = event->count;
    tally.bytes[static_cast<int>(event->prio)] = static_cast<std::int64_t>(event->body.size());
    ok = ok && write_bytes(tally);
  }
  std::string what;
  if (!end_transaction(ok, what)) {
    log_->error("cannot set aside the readings the IOC broker refused ({}): {}; they stay pending and are sent "
                "again",
                reason, what);
    return false;
  }
  progress_.mark(clock_);
  held_ += held_now;
  if (with_event) {
    apply_bytes(tally);
    pending_by_prio_[static_cast<int>(event->prio)] += event->count;
    last_seq_ = seq;
    notify_commit();  // the rejected event is new data for the forwarder
  }
  refresh_held();
  return true;
}

bool Outbox::requeue_now(RequeueResult& out, std::string& error) {
  // Every held row (the partial index finds them), not only those the held table describes.
  bool ok = exec("BEGIN IMMEDIATE");
  std::int64_t total = 0;
  if (ok) {
    Stmt upd(db_, "UPDATE records SET state=0 WHERE state<>0 RETURNING n, seq, prio");
    int step;
    while ((step = upd.step()) == SQLITE_ROW) {
      total += upd.i64(0);
      const std::int64_t first = upd.i64(1) - upd.i64(0) + 1;
      auto& low = out.lowest_seq[std::clamp<std::int64_t>(upd.i64(2), 0, kPriorityLevels - 1)];
      if (low == 0 || first < low) low = first;
    }
    ok = step == SQLITE_DONE;
  }
  ok = ok && exec("DELETE FROM held") && exec("UPDATE meta SET value = 0 WHERE key = 'held'");
  if (!end_transaction(ok, error)) {
    out = {};
    return false;
  }
  out.readings = total;
  held_ = 0;
  return true;
}

RequeueResult Outbox::requeue() {
  std::promise<RequeueResult> result;
  auto fut = result.get_future();
  {
    std::lock_guard lk(mu_);
    if (exited_) return {};
    tasks_.emplace_back([&, this] {
      RequeueResult out;
      std::string why;
      if (!requeue_now(out, why))
        log_->error("requeue failed: {}", why);
      else if (out.readings > 0)
        log_->warn("requeue: {} readings the IOC broker refused are pending again", out.readings);
      refresh_held();
      if (out.readings > 0) notify_commit();
      result.set_value(out);
    });
    cv_.notify_one();
  }
  return fut.get();
}

void Outbox::refresh_held() {
  std::vector<HeldEntry> entries;
  Stmt q(db_, "SELECT first, last, topic, reason, readings, at FROM held ORDER BY first LIMIT ?");
  q.bind(1, static_cast<std::int64_t>(kMaxHeldEntriesShown));
  while (q && q.step() == SQLITE_ROW)
    entries.push_back({q.i64(0), q.i64(1), q.text(2), q.text(3), q.i64(4), q.i64(5)});
  std::lock_guard lk(mu_);
  held_entries_ = std::move(entries);
}

std::vector<HeldEntry> Outbox::held() const {
  std::lock_guard lk(mu_);
  return held_entries_;
}

// Invariant 13: a priority's byte tally is known when it was written with the count it goes with.
void Outbox::load_bytes() {
  std::int64_t bytes[kPriorityLevels], at[kPriorityLevels];
  std::fill(std::begin(bytes), std::end(bytes), -1);
  std::fill(std::begin(at), std::end(at), -1);
  Stmt q(db_, "SELECT key, value FROM meta WHERE key LIKE 'bytes%'");
  while (q && q.step() == SQLITE_ROW) {
    const auto key = q.text(0);
    const int p = key.back() - '0';
    if (p < 0 || p >= kPriorityLevels) continue;
    if (key.rfind("bytes_at.", 0) == 0)
      at[p] = q.i64(1);
    else if (key.rfind("bytes.", 0) == 0)
      bytes[p] = q.i64(1);
  }
  for (int p = 0; p < kPriorityLevels; ++p) {
    const auto readings = pending_by_prio_[p].load();
    bytes_by_prio_[p] = readings <= 0 ? 0 : (bytes[p] >= 0 && at[p] == readings ? bytes[p] : -1);
  }
}

std::int64_t Outbox::bytes_after(const TallyChange& change, int prio) const {
  if (pending_by_prio_[prio].load() + change.readings[prio] <= 0) return 0;  // empty: the tally (re)starts
  const auto known = bytes_by_prio_[prio].load();
  return known < 0 ? -1 : std::max<std::int64_t>(0, known + change.bytes[prio]);
}

bool Outbox::write_bytes(const TallyChange& change) {
  Stmt put(db_, "INSERT OR REPLACE INTO meta VALUES(?, ?)");
  if (!put) return false;
  for (int p = 0; p < kPriorityLevels; ++p) {
    if (change.readings[p] == 0 && change.bytes[p] == 0) continue;
    const auto bytes = bytes_after(change, p);
    if (bytes < 0) continue;  // unknown until this priority empties
    const std::string key = "bytes." + std::to_string(p), at_key = "bytes_at." + std::to_string(p);
    put.bind(1, key).bind(2, bytes);
    if (put.step() != SQLITE_DONE) return false;
    put.reset();
    put.bind(1, at_key).bind(2, pending_by_prio_[p].load() + change.readings[p]);
    if (put.step() != SQLITE_DONE) return false;
    put.reset();
  }
  return true;
}

void Outbox::apply_bytes(const TallyChange& change) {
  for (int p = 0; p < kPriorityLevels; ++p)
    if (change.readings[p] != 0 || change.bytes[p] != 0) bytes_by_prio_[p] = bytes_after(change, p);
}

void Outbox::refresh_stats_after_delete() {
  Stmt oldest(db_, "SELECT at, seq - n FROM records ORDER BY seq LIMIT 1");
  const int rc = oldest ? oldest.step() : SQLITE_ERROR;
  if (rc == SQLITE_ROW) {
    oldest_at_ms_ = oldest.i64(0);
    low_water_ = oldest.i64(1);
  } else if (rc == SQLITE_DONE) {
    oldest_at_ms_ = 0;
    low_water_ = last_seq_;
  } else if (is_corrupt(sqlite3_extended_errcode(db_)) && corrupt_.empty()) {
    corrupt_ = errmsg();  // the head of the table is damaged; the low-water mark stays as it was
  }
  {  // invariant 13: one probe of the (prio, seq) index per priority
    Stmt per_prio(db_,
                  "SELECT (SELECT at FROM records WHERE prio=0 ORDER BY seq LIMIT 1),"
                  " (SELECT at FROM records WHERE prio=1 ORDER BY seq LIMIT 1),"
                  " (SELECT at FROM records WHERE prio=2 ORDER BY seq LIMIT 1),"
                  " (SELECT at FROM records WHERE prio=3 ORDER BY seq LIMIT 1)");
    static_assert(kPriorityLevels == 4);
    if (per_prio && per_prio.step() == SQLITE_ROW)
      for (int p = 0; p < kPriorityLevels; ++p) oldest_at_ms_by_prio_[p] = per_prio.i64(p);
  }
  std::int64_t pages = 0, free_pages = 0;
  Stmt pc(db_, "PRAGMA page_count");
  if (pc && pc.step() == SQLITE_ROW) pages = pc.i64(0);
  Stmt fc(db_, "PRAGMA freelist_count");
  if (fc && fc.step() == SQLITE_ROW) free_pages = fc.i64(0);
  file_bytes_ = static_cast<std::uint64_t>((pages - free_pages) * page_size_);
  free_page_bytes_ = static_cast<std::uint64_t>(free_pages * page_size_);
  struct statvfs st {};
  tight_on_disk_ = ::statvfs(dir_.c_str(), &st) == 0 &&
                   static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize + free_page_bytes_ < 2 * headroom_bytes();
}

void Outbox::enforce_limits() {
  // Size: checked after every transaction (two O(1) pragmas).
  refresh_stats_after_delete();
  // Invariant 9: what was delivered leaves before anything is evicted.
  const auto removes_waiting = [this] {
    std::lock_guard lk(mu_);
    return !queued_removes_.empty();
  };
  if (file_bytes_ > opts_.max_size && removes_waiting()) {
    commit_removes_now();
    refresh_stats_after_delete();
  }
  for (int round = 0; round < 100 && file_bytes_ > opts_.max_size; ++round) {
    const std::int64_t pending = stats().pending;
    if (pending <= 0) break;
    // Free the excess plus 5% of the limit so that eviction does not run on every commit.
    const double per_reading = static_cast<double>(file_bytes_) / static_cast<double>(pending);
    const double target = static_cast<double>(file_bytes_ - opts_.max_size) + 0.05 * static_cast<double>(opts_.max_size);
    auto readings = static_cast<std::size_t>(target / std::max(per_reading, 1.0)) + 1;
    readings = std::min(readings, kEvictChunk);
    bool evicted_any = false;
    for (int p = 0; p < kPriorityLevels && !evicted_any; ++p) {
      if (pending_by_prio_[p] > 0) evicted_any = evict(static_cast<Priority>(p), readings, 0, "max_size");
    }
    if (!evicted_any) break;
  }
  // Age: checked every few seconds, oldest first; seq order is enqueue order.
  if (opts_.max_age_ms > 0 && clock_.steady() >= next_age_check_) {
    next_age_check_ = clock_.steady() + std::chrono::seconds(5);
    const std::int64_t cutoff = store_now() - opts_.max_age_ms;
    if (oldest_at_ms_ != 0 && oldest_at_ms_ < cutoff && removes_waiting()) {
      commit_removes_now();
      refresh_stats_after_delete();
    }
    for (int round = 0; round < 100; ++round) {
      if (oldest_at_ms_ == 0 || oldest_at_ms_ >= cutoff) break;
      bool any = false;
      for (int p = 0; p < kPriorityLevels; ++p)
        if (pending_by_prio_[p] > 0) any |= evict(static_cast<Priority>(p), kEvictChunk, cutoff, "max_age");
      if (!any) break;
    }
  } else if (opts_.max_age_ms <= 0) {
    next_age_check_ = clock_.steady() + std::chrono::hours(1);
  }
}

// Drops the oldest records of `prio` (only those enqueued before `at_before` when it is non-zero),
// whole records holding about `max_readings` readings (at least one record), and queues a gap
// event naming their seqs, in one transaction.
bool Outbox::evict(Priority prio, std::size_t max_readings, std::int64_t at_before, const char* reason) {
  struct Run {
    std::int64_t first, last;
  };
  std::vector<Run> runs;
  std::map<std::string, std::int64_t> per_source;
  std::int64_t count = 0;
  {
    Stmt q(db_, at_before ? "SELECT seq, n, source FROM records WHERE prio=? AND at<? ORDER BY seq LIMIT ?"
                          : "SELECT seq, n, source FROM records WHERE prio=? AND ?=0 ORDER BY seq LIMIT ?");
    q.bind(1, static_cast<std::int64_t>(prio)).bind(2, at_before).bind(3, static_cast<std::int64_t>(max_readings));
    while (static_cast<std::size_t>(count) < max_readings && q.step() == SQLITE_ROW) {
      const auto last = q.i64(0);
      const auto n = std::max<std::int64_t>(1, q.i64(1));
      const auto first = last - n + 1;
      if (!runs.empty() && runs.back().last + 1 == first)
        runs.back().last = last;
      else
        runs.push_back({first, last});
      per_source[q.text(2)] += n;
      count += n;
    }
  }
  if (count == 0) return false;

  std::vector<SeqRun> seq_runs;
  for (const auto& r : runs) seq_runs.push_back({r.first, r.last});
  const auto events = gap_events(reason, prio, seq_runs, per_source, clock_.now_ms());

  const std::int64_t last = runs.back().last;
  bool ok = exec("BEGIN IMMEDIATE");
  std::int64_t deleted = 0, deleted_held = 0;
  TallyChange tally;  // invariant 13
  if (ok) {
    Stmt del(db_, "DELETE FROM records WHERE prio=? AND seq<=? AND (?=0 OR at<?) RETURNING n, state, length(body)");
    del.bind(1, static_cast<std::int64_t>(prio)).bind(2, last).bind(3, at_before).bind(4, at_before);
    int step;
    while ((step = del.step()) == SQLITE_ROW) {
      deleted += del.i64(0);
      tally.bytes[static_cast<int>(prio)] -= del.i64(2);
      if (del.i64(1) != 0) deleted_held += del.i64(0);
    }
    ok = step == SQLITE_DONE;
  }
  if (ok && deleted_held > 0) {  // held entries whose records are gone
    Stmt dh(db_, "DELETE FROM held WHERE prio=? AND last<=?");
    dh.bind(1, static_cast<std::int64_t>(prio)).bind(2, last);
    ok = dh.step() == SQLITE_DONE;
  }
  std::int64_t gap_seq = last_seq_;
  const auto now = store_now();
  for (std::size_t i = 0; ok && i < events.size(); ++i) {
    ok = insert_envelope(events[i], gap_seq + 1, now);
    if (ok) ++gap_seq;
  }
  if (ok && !events.empty()) ok = write_last_seq(gap_seq);
  if (ok) {
    Stmt upd(db_, "UPDATE meta SET value = value + ? WHERE key = ?");
    const std::string key = "count." + std::to_string(static_cast<int>(prio));
    const std::string sys_key = "count." + std::to_string(static_cast<int>(Priority::System));
    upd.bind(1, -deleted).bind(2, key);
    ok = upd.step() == SQLITE_DONE;
    upd.reset();
    const auto sys = static_cast<std::int64_t>(events.size());
    upd.bind(1, sys).bind(2, sys_key);
    ok = ok && upd.step() == SQLITE_DONE;
    upd.reset();
    if (ok && deleted_held > 0) {
      const std::string held_key = "held";
      upd.bind(1, -deleted_held).bind(2, held_key);
      ok = upd.step() == SQLITE_DONE;
    }
  }
  if (ok) {
    tally.readings[static_cast<int>(prio)] -= deleted;
    tally.readings[static_cast<int>(Priority::System)] += static_cast<std::int64_t>(events.size());
    for (const auto& e : events) tally.bytes[static_cast<int>(Priority::System)] += static_cast<std::int64_t>(e.body.size());
    ok = write_bytes(tally);
  }
  std::string what;
  if (!end_transaction(ok, what)) {
    set_fault("cannot evict old data: " + what);
    return false;
  }
  if (deleted != count)  // invariant 3: the event names exactly what was deleted
    log_->critical("eviction deleted {} records but its gap event names {}", deleted, count);
  progress_.mark(clock_);  // progress, for the watchdog
  apply_bytes(tally);
  pending_by_prio_[static_cast<int>(prio)] -= deleted;
  pending_by_prio_[static_cast<int>(Priority::System)] += static_cast<std::int64_t>(events.size());
  last_seq_ = gap_seq;
  if (deleted_held > 0) {
    held_ -= deleted_held;
    refresh_held();
  }
  notify_commit();  // the gap event is new data for the forwarder
  {
    std::function<void(const std::map<std::string, std::int64_t>&)> cb;
    {
      std::lock_guard lk(mu_);
      cb = on_evict_;
    }
    if (cb) cb(per_source);
  }
  evicted_ += static_cast<std::uint64_t>(deleted);
  std::uint64_t suppressed = 0;
  if (evict_log_.allow(suppressed))
    log_->warn("buffer limit {} reached: dropped {} {}-priority readings (seq {}..{}), gap event queued for the IOC "
               "({} similar messages suppressed)",
               reason, deleted, to_string(prio), runs.front().first, last, suppressed);
  refresh_stats_after_delete();
  return true;
}

bool Outbox::end_transaction(bool ok, std::string& error) {
  if (ok && exec("COMMIT")) return true;
  const int rc = sqlite3_extended_errcode(db_);
  error = errmsg();
  exec("ROLLBACK");
  exit_if_unrecoverable(rc, error);
  return false;
}

void Outbox::exit_if_unrecoverable(int rc, const std::string& what) {
  if ((rc & 0xFF) == SQLITE_IOERR && (rc == SQLITE_IOERR_FSYNC || rc == SQLITE_IOERR_DIR_FSYNC)) {
    // docs/dependencies.md: a failed fsync must not be retried; the page cache may already have dropped
    // the dirty pages. Exit and let systemd restart us; the WAL tells SQLite what committed.
    log_->critical("fsync of {} failed: {}; exiting so that the database is recovered from disk", opts_.path, what);
    spdlog::shutdown();
    std::_Exit(1);
  }
  if (is_corrupt(rc) && corrupt_.empty()) corrupt_ = what;  // salvaged at the end of this loop turn
}

void Outbox::notify_commit() {
  std::function<void()> cb;
  {
    std::lock_guard lk(mu_);
    cb = on_commit_;
  }
  if (cb) cb();
}

void Outbox::set_fault(const std::string& what) {
  std::lock_guard lk(mu_);
  // One line per change of state, not per refusal (the numbers in the text change all the time).
  const auto kind = [](const std::string& s) { return s.substr(0, s.find(':')); };
  if (fault_.empty() || kind(fault_) != kind(what)) log_->error("{}; refusing new data and keeping what is stored; retrying every {} ms", what,
                                  opts_.fault_probe.count());
  fault_ = what;
  fault_probe_at_ = clock_.steady() + opts_.fault_probe;
}

void Outbox::clear_fault() {
  {
    std::lock_guard lk(mu_);
    if (fault_.empty()) return;
  }
  // A delete that succeeded does not mean there is room for new data: one state change, one line.
  if (low_on_disk()) return;
  std::lock_guard lk(mu_);
  log_->warn("storage recovered ({} cleared); accepting data again", fault_);
  fault_.clear();
  // The reserve comes back only where the disk has room for it besides the headroom; otherwise the
  // space would be taken from the data that just got room again.
  struct statvfs st {};
  if (::statvfs(dir_.c_str(), &st) == 0 &&
      static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize >= reserve_bytes() + headroom_bytes() / 2)
    ensure_reserve();
}

std::uint64_t Outbox::headroom_bytes() const {
  return std::clamp<std::uint64_t>(opts_.max_size / 32, kHeadroomMin, kHeadroomMax);
}

std::uint64_t Outbox::reserve_bytes() const { return headroom_bytes() / 2; }

std::optional<std::string> Outbox::low_on_disk() const {
  struct statvfs st {};
  if (::statvfs(dir_.c_str(), &st) != 0) return std::nullopt;
  const auto free_bytes = static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize;
  // Pages freed inside the database by deletes are reused by new data without growing the file
  // (the file never shrinks): they are room too. The WAL still needs the disk itself.
  const auto reusable = free_page_bytes_.load();
  if (free_bytes >= headroom_bytes() / 4 && free_bytes + reusable >= headroom_bytes() / 2) return std::nullopt;
  return "disk full: cannot store new data in " + opts_.path + ": " + std::to_string(free_bytes / 1024) +
         " KiB free on the disk and " + std::to_string(reusable / 1024) + " KiB free inside the buffer, and " +
         std::to_string(headroom_bytes() / 2 / 1024) +
         " KiB are kept free so that delivered data can always be deleted";
}

void Outbox::ensure_reserve() {
  const auto path = opts_.path + ".reserve";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) return;
  const int rc = ::posix_fallocate(fd, 0, static_cast<off_t>(reserve_bytes()));
  ::close(fd);
  if (rc != 0) {
    ::unlink(path.c_str());  // a partial reserve would only hide how full the disk is
    log_->warn("cannot set aside {} KiB of disk for deleting data when the disk is full: {}", reserve_bytes() / 1024,
               std::strerror(rc));
  }
}

bool Outbox::checkpoint_truncate() {
  int wal_frames = 0, moved = 0;
  const int rc = sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_TRUNCATE, &wal_frames, &moved);
  return rc == SQLITE_OK && wal_frames > 0;
}

bool Outbox::release_reserve() {
  const auto path = opts_.path + ".reserve";
  if (::unlink(path.c_str()) != 0) return false;
  log_->warn("disk full: released the {} KiB reserve so that acknowledged data can be deleted", reserve_bytes() / 1024);
  return true;
}

}  // namespace ioc_edge
