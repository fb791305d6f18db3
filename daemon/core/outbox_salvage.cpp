// Invariant 10 of the outbox (core/outbox.h): a file found damaged while running is salvaged into a
// new one, record by record, with the same store id and seqs; what cannot be read is named.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <type_traits>

#include "core/gateway_events.h"
#include "core/outbox.h"
#include "core/outbox_sql.h"

namespace ioc_edge {

using outbox_sql::Stmt;

namespace {

constexpr std::int64_t kCopyBatch = 5000;         // rows per transaction of the new file
constexpr std::int64_t kMaxProbes = 1'000'000;    // bounds the search for readable rows
constexpr std::size_t kMaxSalvagesPerHour = 3;

struct Row {
  std::int64_t seq = 0, n = 0, prio = 0, kind = 0, at = 0;
  std::string source, body, meta;
  std::int64_t first() const { return seq - n + 1; }
};

enum class Step { Row, End, Error };

// The next row of `q`, checked: SQLite has no page checksums, so a damaged page can also read back
// as rows that make no sense. A row is kept only if it fits what the writer wrote, all its seqs
// above `after` (the last row copied).
Step next_row(Stmt& q, std::int64_t after, std::int64_t last_seq, Row& r) {
  const int rc = q.step();
  if (rc == SQLITE_DONE) return Step::End;
  if (rc != SQLITE_ROW) return Step::Error;
  r.seq = q.i64(0);
  r.n = q.i64(1);
  r.prio = q.i64(2);
  r.kind = q.i64(3);
  r.at = q.i64(4);
  const auto* src = sqlite3_column_text(q.get(), 5);
  const auto* body = sqlite3_column_blob(q.get(), 6);
  const int body_bytes = sqlite3_column_bytes(q.get(), 6);
  if (!src || (!body && body_bytes > 0)) return Step::Error;  // an overflow page could not be read
  r.source = q.text(5);
  r.body.assign(static_cast<const char*>(body), static_cast<std::size_t>(body_bytes));
  r.meta = q.text(7);
  const auto kind = kind_from_int(r.kind);
  if (r.seq <= after || r.seq > last_seq || r.n < 1 || r.n > 10'000'000 || r.first() <= after || r.prio < 0 ||
      r.prio >= kPriorityLevels || !kind)
    return Step::Error;
  if (kind_info(*kind).batched ? std::max<std::size_t>(1, framed_count(r.body)) != static_cast<std::size_t>(r.n)
                               : r.n != 1)
    return Step::Error;
  return Step::Row;
}

const char* kSelectAfter =
    "SELECT seq, n, prio, kind, at, source, body, meta FROM records WHERE seq > ? ORDER BY seq";

// The first readable row with its last seq above `from` (Step::Row), none (End), or damage in the
// way (Error); its seqs must all be above `after`.
Step probe(sqlite3* db, std::int64_t from, std::int64_t after, std::int64_t last_seq, Row& r) {
  Stmt q(db, kSelectAfter);
  if (!q) return Step::Error;
  q.bind(1, from);
  return next_row(q, after, last_seq, r);
}

bool fsync_path(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

std::string Outbox::aside_name() const {
  std::error_code ec;
  const auto base = opts_.path + ".corrupt-" + std::to_string(clock_.now_ms() / 1000);
  auto aside = base;
  // Never overwrite an earlier one (an RTC-less box boots at the same time every time).
  for (int k = 2; std::filesystem::exists(aside, ec) && k < 10000; ++k) aside = base + "-" + std::to_string(k);
  return aside;
}

bool Outbox::salvage() {
  namespace fs = std::filesystem;
  const std::string what = corrupt_;
  corrupt_.clear();
  const auto now_steady = clock_.steady();
  while (!salvages_.empty() && now_steady - salvages_.front() > std::chrono::hours(1)) salvages_.pop_front();
  if (salvages_.size() >= kMaxSalvagesPerHour) {
    log_->critical("database {} was found damaged again ({}) after {} salvages within an hour; the disk is failing; "
                   "exiting",
                   opts_.path, what, salvages_.size());
    spdlog::shutdown();
    std::_Exit(1);
  }
  salvages_.push_back(now_steady);
  progress_.mark(clock_);

  // For the log: what SQLite itself finds (stops at the first 20 problems).
  std::string check;
  {
    Stmt qc(db_, "PRAGMA quick_check(20)");
    int rc;
    while (qc && (rc = qc.step()) == SQLITE_ROW) check += (check.empty() ? "" : "; ") + qc.text(0);
    if (!qc || check.empty()) check = "quick_check could not run: " + errmsg();
    std::replace(check.begin(), check.end(), '\n', ' ');  // one line per event
  }
  log_->error("database {} is damaged ({}); quick_check: {}; salvaging every readable record into a new file", opts_.path,
              what, check.substr(0, 1000));

  const std::string tmp = opts_.path + ".salvage";
  std::error_code ec;
  for (const char* suffix : {"", "-journal", "-wal", "-shm"}) fs::remove(tmp + suffix, ec);
  sqlite3* dst = nullptr;
  auto fail = [&](const std::string& why) {
    if (dst) sqlite3_close_v2(dst);
    fs::remove(tmp, ec);
    log_->critical("cannot salvage {}: {}; exiting (the damaged file stays in place)", opts_.path, why);
    spdlog::shutdown();
    std::_Exit(1);
    return false;
  };
  if (sqlite3_open_v2(tmp.c_str(), &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr) !=
      SQLITE_OK)
    return fail(std::string("cannot create ") + tmp + ": " + (dst ? sqlite3_errmsg(dst) : "out of memory"));
  // The new file is not the store until it is complete and renamed into place; a crash before that
  // leaves the damaged file where it was, and the next start salvages it again.
  outbox_sql::exec(dst, ("PRAGMA page_size=" + std::to_string(opts_.page_size)).c_str());
  outbox_sql::exec(dst, "PRAGMA journal_mode=OFF");
  outbox_sql::exec(dst, "PRAGMA synchronous=OFF");
  if (!outbox_sql::exec(dst, "BEGIN") || !outbox_sql::create_schema(dst))
    return fail(std::string("cannot create its schema: ") + sqlite3_errmsg(dst));

  const std::int64_t last_seq = last_seq_;
  std::int64_t cursor = low_water_;  // seqs at or below it had all left the table
  std::vector<SeqRun> lost;
  std::int64_t counts[kPriorityLevels] = {};
  std::int64_t bytes[kPriorityLevels] = {};  // invariant 13: the salvaged file's tallies are exact
  std::int64_t salvaged = 0, rows = 0, probes = 0;
  Stmt ins(dst, "INSERT INTO records(seq, n, prio, kind, at, source, body, meta) VALUES(?,?,?,?,?,?,?,?)");
  if (!ins) return fail(std::string("cannot prepare: ") + sqlite3_errmsg(dst));
  auto copy = [&](const Row& r) {
    ins.bind(1, r.seq).bind(2, r.n).bind(3, r.prio).bind(4, r.kind).bind(5, r.at).bind(6, r.source);
    ins.bind_blob(7, r.body);
    if (r.meta.empty())
      ins.bind_null(8);
    else
      ins.bind(8, r.meta);
    const bool ok = ins.step() == SQLITE_DONE;
    ins.reset();
    if (!ok) return false;
    counts[r.prio] += r.n;
    bytes[r.prio] += static_cast<std::int64_t>(r.body.size());
    salvaged += r.n;
    cursor = r.seq;
    if (++rows % kCopyBatch == 0) {
      progress_.mark(clock_);  // a long copy is progress, for the watchdog
      return outbox_sql::exec(dst, "COMMIT") && outbox_sql::exec(dst, "BEGIN");
    }
    return true;
  };

  for (;;) {
    // Stream the rows from the cursor until the end or damage.
    Step step;
    {
      Stmt scan(db_, kSelectAfter);
      if (scan) scan.bind(1, cursor);
      Row r;
      while (scan && (step = next_row(scan, cursor, last_seq, r)) == Step::Row)
        if (!copy(r)) return fail(std::string("cannot write ") + tmp + ": " + sqlite3_errmsg(dst));
      if (!scan) step = Step::Error;
    }
    if (step == Step::End) break;
    // Damage after `cursor`: find the first readable row beyond it, by steps that double, then
    // by halving back to the smallest start that reads.
    Row found;
    std::int64_t step_size = 1, hit = 0;
    Step res = Step::Error;
    while (cursor + step_size <= last_seq && probes < kMaxProbes) {
      ++probes;
      res = probe(db_, cursor + step_size, cursor, last_seq, found);
      if (res != Step::Error) break;
      step_size *= 2;
    }
    if (res == Step::Row) {
      hit = cursor + step_size;
      std::int64_t lo = cursor + step_size / 2;  // probes from lo failed (or lo is the cursor)
      while (hit - lo > 1 && probes < kMaxProbes) {
        ++probes;
        const std::int64_t mid = lo + (hit - lo) / 2;
        Row r;
        if (probe(db_, mid, cursor, last_seq, r) == Step::Row) {
          hit = mid;
          found = std::move(r);
        } else {
          lo = mid;
        }
      }
      if (found.first() > cursor + 1) lost.push_back({cursor + 1, found.first() - 1});
      if (!copy(found)) return fail(std::string("cannot write ") + tmp + ": " + sqlite3_errmsg(dst));
      continue;  // the scan goes on after the row found
    }
    // Nothing readable beyond the damage (or the search ran out): the rest is named.
    if (cursor < last_seq) lost.push_back({cursor + 1, last_seq});
    break;
  }

  // The unreadable seqs, named to the IOC; new seqs above everything the damaged file gave.
  std::int64_t seq = last_seq;
  std::int64_t unreadable = 0;
  for (const auto& r : lost) unreadable += r.last - r.first + 1;
  const auto now = store_now();
  for (const auto& e : gap_events("corrupt", std::nullopt, lost, {}, clock_.now_ms())) {
    ++seq;
    ins.bind(1, seq).bind(2, static_cast<std::int64_t>(e.count)).bind(3, static_cast<std::int64_t>(e.prio));
    ins.bind(4, static_cast<std::int64_t>(e.kind)).bind(5, now).bind(6, e.source).bind_blob(7, e.body).bind_null(8);
    const bool ok = ins.step() == SQLITE_DONE;
    ins.reset();
    if (!ok) return fail(std::string("cannot write ") + tmp + ": " + sqlite3_errmsg(dst));
    counts[static_cast<int>(e.prio)] += static_cast<std::int64_t>(e.count);
    bytes[static_cast<int>(e.prio)] += static_cast<std::int64_t>(e.body.size());
  }
  {  // Invariant 12: the readable marks go with the records (a damaged marks table loses only marks).
    Stmt get(db_, "SELECT key, value, expires, first, last FROM marks");
    Stmt put(dst, "INSERT OR REPLACE INTO marks VALUES(?, ?, ?, ?, ?)");
    std::int64_t copied = 0;
    int rc = SQLITE_ERROR;
    if (get && put) {
      while ((rc = get.step()) == SQLITE_ROW) {
        const auto key = get.text(0), value = get.bytes(1);
        put.bind(1, key).bind_blob(2, value).bind(3, get.i64(2)).bind(4, get.i64(3)).bind(5, get.i64(4));
        if (put.step() != SQLITE_DONE) return fail(std::string("cannot write ") + tmp + ": " + sqlite3_errmsg(dst));
        put.reset();
        ++copied;
      }
    }
    if (rc != SQLITE_DONE)
      log_->error("salvage: the marks of {} could not all be read ({} copied): {}", opts_.path, copied, errmsg());
  }
  {
    Stmt meta(dst, "INSERT OR REPLACE INTO meta VALUES(?, ?)");
    auto put = [&](const std::string& key, auto value) {
      meta.bind(1, key);
      if constexpr (std::is_same_v<decltype(value), std::string>)
        meta.bind(2, value);
      else
        meta.bind(2, static_cast<std::int64_t>(value));
      const bool ok = meta.step() == SQLITE_DONE;
      meta.reset();
      return ok;
    };
    bool ok = put(std::string("store"), store_uuid_) && put(std::string("clock"), now) &&
              put(std::string("seq"), seq) && put(std::string("held"), 0);
    for (int p = 0; p < kPriorityLevels && ok; ++p)
      ok = put("count." + std::to_string(p), counts[p]) && put("bytes." + std::to_string(p), bytes[p]) &&
           put("bytes_at." + std::to_string(p), counts[p]);
    if (!ok || !outbox_sql::exec(dst, "COMMIT"))
      return fail(std::string("cannot finish ") + tmp + ": " + sqlite3_errmsg(dst));
  }
  if (sqlite3_close_v2(dst) != SQLITE_OK) return fail("cannot close " + tmp);
  dst = nullptr;
  if (!fsync_path(tmp, O_RDONLY)) return fail("cannot flush " + tmp + " to disk");

  // Swap: the damaged file keeps its name aside (a hard link, so the store path always holds a
  // database), its WAL goes with it (it must never be applied to the new file), then the new file
  // takes the store's name in one rename.
  sqlite3_finalize(insert_stmt_);
  insert_stmt_ = nullptr;
  sqlite3_close_v2(db_);
  db_ = nullptr;
  const auto aside = aside_name();
  fs::create_hard_link(opts_.path, aside, ec);
  if (ec) fs::copy_file(opts_.path, aside, ec);
  for (const char* suffix : {"-wal", "-shm"})
    if (fs::exists(opts_.path + suffix, ec)) fs::rename(opts_.path + suffix, aside + suffix, ec);
  fs::rename(tmp, opts_.path, ec);
  if (ec) {
    log_->critical("cannot move the salvaged file {} into place: {}; exiting", tmp, ec.message());
    spdlog::shutdown();
    std::_Exit(1);
  }
  fsync_path(dir_, O_RDONLY | O_DIRECTORY);

  std::string error;
  if (!open_db(error)) {
    log_->critical("cannot open the salvaged store {}: {}; exiting", opts_.path, error);
    spdlog::shutdown();
    std::_Exit(1);
  }
  std::string ranges;
  for (std::size_t i = 0; i < lost.size() && i < 5; ++i)
    ranges += (i ? ", " : "") + std::to_string(lost[i].first) + ".." + std::to_string(lost[i].last);
  if (lost.size() > 5) ranges += ", ...";
  const auto report = format_rfc3339_ms(clock_.now_ms()) + ": the buffer file was damaged (" + what + "); " +
                      std::to_string(salvaged) + " readings were salvaged and are sent as usual; " +
                      std::to_string(unreadable) + " seqs could not be read" +
                      (lost.empty() ? std::string() : " (" + ranges + ", named to the IOC in a gap event)") +
                      "; the damaged file is kept as " + aside;
  log_->error("{}", report);
  {
    std::lock_guard lk(mu_);
    corruption_report_ = report;
  }
  notify_commit();  // the gap event is new data for the forwarder
  return true;
}

}  // namespace ioc_edge
