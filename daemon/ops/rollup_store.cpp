#include "ops/rollup_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <map>
#include <set>

#include "core/log.h"
#include "core/sqlite_util.h"

namespace ioc_edge {

namespace {

constexpr int kSchemaVersion = 1;
constexpr auto kRetryAfter = std::chrono::seconds(60);
constexpr auto kPurgeEvery = std::chrono::hours(24);

constexpr const char* kSchema =
    "CREATE TABLE IF NOT EXISTS names(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"
    "CREATE TABLE IF NOT EXISTS source_hours(hour INTEGER NOT NULL, source INTEGER NOT NULL,"
    " good INTEGER NOT NULL DEFAULT 0, bad INTEGER NOT NULL DEFAULT 0, dropped INTEGER NOT NULL DEFAULT 0,"
    " stale_ms INTEGER NOT NULL DEFAULT 0, expected_milli INTEGER NOT NULL DEFAULT 0,"
    " missed INTEGER NOT NULL DEFAULT 0, PRIMARY KEY(hour, source)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS gateway_hours(hour INTEGER PRIMARY KEY, run_ms INTEGER NOT NULL DEFAULT 0,"
    " up_ms INTEGER NOT NULL DEFAULT 0, outages INTEGER NOT NULL DEFAULT 0,"
    " longest_outage_ms INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS stale_periods(source INTEGER NOT NULL, since INTEGER NOT NULL,"
    " until INTEGER NOT NULL, PRIMARY KEY(source, since)) WITHOUT ROWID;"
    "PRAGMA user_version=1;";

using sqlite::exec;
using sqlite::is_corrupt;
using sqlite::Stmt;

// "<path>.corrupt-20261201T104700Z", never an existing file.
std::string aside_name(const std::string& path, std::int64_t now_ms) {
  const std::time_t t = static_cast<std::time_t>(now_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
  std::string name = path + ".corrupt-" + stamp;
  std::error_code ec;
  for (int i = 1; std::filesystem::exists(name, ec); ++i) name = path + ".corrupt-" + stamp + "-" + std::to_string(i);
  return name;
}

// Keeps the newest kMaxPendingHours hours of `d`; how many hours were dropped.
std::size_t trim_hours(RollupDelta& d, std::size_t keep) {
  std::set<std::int64_t> hours;
  for (const auto& [k, v] : d.sources) hours.insert(k.first);
  for (const auto& [k, v] : d.gateway) hours.insert(k);
  if (hours.size() <= keep) return 0;
  const auto cutoff = *std::next(hours.begin(), static_cast<std::ptrdiff_t>(hours.size() - keep));
  std::erase_if(d.sources, [&](const auto& e) { return e.first.first < cutoff; });
  std::erase_if(d.gateway, [&](const auto& e) { return e.first < cutoff; });
  return hours.size() - keep;
}

}  // namespace

RollupStore::RollupStore(RollupStoreOptions opts, const Clock& clock)
    : opts_(std::move(opts)), clock_(clock), log_(logger("rollups")) {}

std::unique_ptr<RollupStore> RollupStore::open(const RollupStoreOptions& opts, const Clock& clock, std::string& error) {
  std::unique_ptr<RollupStore> s(new RollupStore(opts, clock));
  if (!s->open_db(error)) return nullptr;
  s->thread_ = std::thread([p = s.get()] {
    pthread_setname_np(pthread_self(), "rollups");
    p->run();
  });
  return s;
}

RollupStore::~RollupStore() { stop(); }

bool RollupStore::open_db(std::string& error) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path path(opts_.path);
  if (path.has_parent_path()) fs::create_directories(path.parent_path(), ec);
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (db_) sqlite3_close_v2(std::exchange(db_, nullptr));
    if (sqlite3_open_v2(opts_.path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        nullptr) != SQLITE_OK) {
      error = "cannot open " + opts_.path + ": " + (db_ ? sqlite3_errmsg(db_) : "out of memory");
      return false;
    }
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, 5000);
    if (std::error_code size_ec; fs::file_size(path, size_ec) == 0 || size_ec)
      exec(db_, "PRAGMA page_size=1024");  // a minute's commit rewrites a few small pages (invariant 2)
    int rc = sqlite3_exec(db_, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr);
    if (rc == SQLITE_OK) rc = sqlite3_exec(db_, "SELECT count(*) FROM sqlite_master", nullptr, nullptr, nullptr);
    if (is_corrupt(rc) && attempt == 0) {  // invariant 4
      sqlite3_close_v2(std::exchange(db_, nullptr));
      const auto aside = aside_name(opts_.path, clock_.now_ms());
      fs::rename(path, aside, ec);
      for (const char* suffix : {"-wal", "-shm"}) fs::rename(opts_.path + suffix, aside + suffix, ec);
      log_->error("roll-up file {} is damaged ({}); moved aside to {}; hourly roll-ups start again from now",
                  opts_.path, sqlite3_errstr(rc), aside);
      continue;
    }
    if (rc != SQLITE_OK) {
      error = "cannot use " + opts_.path + ": " + sqlite3_errmsg(db_);
      return false;
    }
    break;
  }
  exec(db_, opts_.sync_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
  exec(db_, "PRAGMA secure_delete=OFF");
  exec(db_, "PRAGMA wal_autocheckpoint=256");           // 256 KiB of WAL
  exec(db_, "PRAGMA journal_size_limit=1048576");       // and it does not stay larger than 1 MiB
  int version = 0;
  {
    Stmt uv(db_, "PRAGMA user_version");
    if (uv.step() == SQLITE_ROW) version = static_cast<int>(uv.i64(0));
  }
  if (version > kSchemaVersion) {
    error = opts_.path + " was written by a newer ioc-edge (roll-up schema " + std::to_string(version) +
            "); refusing to touch it";
    return false;
  }
  if (version == 0 && !(exec(db_, "BEGIN IMMEDIATE") && exec(db_, kSchema) && exec(db_, "COMMIT"))) {
    error = "cannot create the roll-up tables in " + opts_.path + ": " + sqlite3_errmsg(db_);
    exec(db_, "ROLLBACK");
    return false;
  }
  return true;
}

void RollupStore::submit(RollupDelta delta) {
  if (delta.empty()) return;
  std::lock_guard lk(mu_);
  if (stopping_) return;
  pending_.merge(delta);
  ++submitted_;
  cv_.notify_all();  // the writer, and not only a flush() waiting on the same variable
}

bool RollupStore::flush() {
  std::unique_lock lk(mu_);
  if (!thread_.joinable() || stopping_) return false;
  const auto target = submitted_;
  ++submitted_;  // a write even when nothing waits, so the wait below ends
  cv_.notify_all();  // the writer, and not only a flush() waiting on the same variable
  cv_.wait(lk, [&] { return handled_ >= target + 1 || stopping_; });
  return pending_.empty();
}

void RollupStore::stop() {
  {
    std::lock_guard lk(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
  if (db_) sqlite3_close_v2(std::exchange(db_, nullptr));
}

void RollupStore::run() {
  auto retry_at = std::chrono::steady_clock::now();
  std::uint64_t seen = 0;  // submissions handled
  for (;;) {
    RollupDelta d;
    bool stopping;
    std::uint64_t upto;
    {
      std::unique_lock lk(mu_);
      cv_.wait_for(lk, kRetryAfter, [&] {
        return stopping_ || (submitted_ != seen && std::chrono::steady_clock::now() >= retry_at) ||
               (!pending_.empty() && std::chrono::steady_clock::now() >= retry_at);
      });
      stopping = stopping_;
      upto = submitted_;
      d = std::exchange(pending_, {});
    }
    if (std::chrono::steady_clock::now() >= next_purge_) purge();
    const bool ok = d.empty() || write(d);
    {
      std::lock_guard lk(mu_);
      if (!ok) {
        d.merge(pending_);  // invariant 1: kept until it commits
        pending_ = std::move(d);
        if (const auto dropped = trim_hours(pending_, kMaxPendingHours))
          log_->error("the roll-ups of {} hour(s) could not be written for {} hours and are dropped", dropped,
                      kMaxPendingHours);
        retry_at = std::chrono::steady_clock::now() + kRetryAfter;
      }
      seen = upto;
      handled_ = upto;
      cv_.notify_all();
      if (stopping) break;
    }
  }
}

bool RollupStore::write(const RollupDelta& d) {
  std::map<std::string, std::int64_t> ids;
  bool ok = exec(db_, "BEGIN IMMEDIATE");
  {
    Stmt put_name(db_, "INSERT OR IGNORE INTO names(name) VALUES(?)");
    Stmt get_id(db_, "SELECT id FROM names WHERE name=?");
    const auto id_of = [&](const std::string& name) -> std::int64_t {
      if (auto it = ids.find(name); it != ids.end()) return it->second;
      if (!put_name.bind(1, name).run()) return -1;
      get_id.bind(1, name);
      const std::int64_t id = get_id.step() == SQLITE_ROW ? get_id.i64(0) : -1;
      get_id.run();
      ids[name] = id;
      return id;
    };
    Stmt src(db_,
             "INSERT INTO source_hours(hour, source, good, bad, dropped, stale_ms, expected_milli, missed)"
             " VALUES(?,?,?,?,?,?,?,?) ON CONFLICT(hour, source) DO UPDATE SET good = good + excluded.good,"
             " bad = bad + excluded.bad, dropped = dropped + excluded.dropped, stale_ms = stale_ms + excluded.stale_ms,"
             " expected_milli = expected_milli + excluded.expected_milli, missed = missed + excluded.missed");
    for (const auto& [key, h] : d.sources) {
      if (!ok) break;
      const auto id = id_of(key.second);
      ok = id >= 0 && src.bind(1, key.first).bind(2, id).bind(3, h.good).bind(4, h.bad).bind(5, h.dropped)
                          .bind(6, h.stale_ms).bind(7, h.expected_milli).bind(8, h.missed).run();
    }
    Stmt gw(db_,
            "INSERT INTO gateway_hours(hour, run_ms, up_ms, outages, longest_outage_ms) VALUES(?,?,?,?,?)"
            " ON CONFLICT(hour) DO UPDATE SET run_ms = run_ms + excluded.run_ms, up_ms = up_ms + excluded.up_ms,"
            " outages = outages + excluded.outages,"
            " longest_outage_ms = max(longest_outage_ms, excluded.longest_outage_ms)");
    for (const auto& [hour, g] : d.gateway) {
      if (!ok) break;
      ok = gw.bind(1, hour).bind(2, g.run_ms).bind(3, g.up_ms).bind(4, g.outages).bind(5, g.longest_outage_ms).run();
    }
    Stmt st(db_,
            "INSERT INTO stale_periods(source, since, until) VALUES(?,?,?)"
            " ON CONFLICT(source, since) DO UPDATE SET until = max(until, excluded.until)");
    for (const auto& [key, until] : d.stale) {
      if (!ok) break;
      const auto id = id_of(key.first);
      ok = id >= 0 && st.bind(1, id).bind(2, key.second).bind(3, until).run();
    }
  }
  const bool committed = ok && exec(db_, "COMMIT");
  if (!committed) {
    const std::string why = sqlite3_errmsg(db_);
    exec(db_, "ROLLBACK");
    if (!failing_)
      log_->error("cannot write the hourly roll-ups to {}: {}; kept in memory and retried every minute", opts_.path,
                  why);
    failing_ = true;
    return false;
  }
  if (failing_) log_->warn("hourly roll-ups are written to {} again", opts_.path);
  failing_ = false;
  return true;
}

void RollupStore::purge() {
  next_purge_ = std::chrono::steady_clock::now() + kPurgeEvery;
  const std::int64_t cutoff_ms = clock_.now_ms() - opts_.retention.count();
  const std::int64_t cutoff_hour = hour_of(cutoff_ms);
  Stmt a(db_, "DELETE FROM source_hours WHERE hour < ?");
  Stmt b(db_, "DELETE FROM gateway_hours WHERE hour < ?");
  Stmt c(db_, "DELETE FROM stale_periods WHERE until < ?");
  const bool ok = exec(db_, "BEGIN IMMEDIATE") && a.bind(1, cutoff_hour).run() && b.bind(1, cutoff_hour).run() &&
                  c.bind(1, cutoff_ms).run() && exec(db_, "COMMIT");
  if (!ok) {
    log_->warn("cannot delete roll-ups older than {} days from {}: {}", opts_.retention.count() / 86'400'000,
               opts_.path, sqlite3_errmsg(db_));
    exec(db_, "ROLLBACK");
  }
}

// ---- the reader ----

RollupReader::~RollupReader() {
  if (db_) sqlite3_close_v2(db_);
}

std::unique_ptr<RollupReader> RollupReader::open(const std::string& path, std::string& error) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    error = "no roll-ups at " + path +
            ": the daemon writes them there (in its data_dir) once a minute while it runs; is this the daemon's "
            "configuration file (-c)?";
    return nullptr;
  }
  std::unique_ptr<RollupReader> r(new RollupReader());
  r->path_ = path;
  // With the daemon running (or killed) its -wal and -shm files exist and a read-only connection
  // shares them. Without them (a clean stop removes them; everything is in the file), a reader
  // would create them, owned by whoever runs the report (root), and lock the daemon out of its
  // own file at the next start: then read the file as immutable, which creates nothing. A daemon
  // that starts meanwhile writes nothing before its first `[report] write_every` (a minute), so
  // it does not change the file under the report.
  const bool shared = std::filesystem::exists(path + "-wal", ec) && std::filesystem::exists(path + "-shm", ec);
  std::string uri = "file:";
  for (const char c : path) {  // a URI path: '%', '?' and '#' escaped
    if (c == '%' || c == '?' || c == '#') {
      char hex[4];
      std::snprintf(hex, sizeof hex, "%%%02X", static_cast<unsigned char>(c));
      uri += hex;
    } else {
      uri += c;
    }
  }
  if (!shared) uri += "?immutable=1";
  if (sqlite3_open_v2(uri.c_str(), &r->db_, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI, nullptr) !=
      SQLITE_OK) {
    error = "cannot open " + path + " read-only: " + (r->db_ ? sqlite3_errmsg(r->db_) : "out of memory");
    return nullptr;
  }
  sqlite3_busy_timeout(r->db_, 5000);
  Stmt uv(r->db_, "PRAGMA user_version");
  const int rc = uv.step();
  if (rc != SQLITE_ROW) {
    error = "cannot read " + path + ": " + sqlite3_errmsg(r->db_) +
            " (run the report as the ioc-edge user or root: the daemon's files are not readable by others)";
    return nullptr;
  }
  const auto version = uv.i64(0);
  if (version != kSchemaVersion) {
    error = path + (version == 0 ? std::string(" holds no roll-ups yet") : " was written by a newer ioc-edge (schema " +
                                                                                std::to_string(version) + ")");
    return nullptr;
  }
  return r;
}

std::pair<std::int64_t, std::int64_t> RollupReader::coverage() {
  Stmt q(db_, "SELECT min(hour), max(hour) FROM gateway_hours");
  if (q.step() == SQLITE_ROW) return {q.i64(0), q.i64(1)};
  return {0, 0};
}

bool RollupReader::read(std::int64_t from_ms, std::int64_t to_ms, RollupTotals& out, std::string& error) {
  out = {};
  // Hours are named by their start in s: those starting in [from_ms, to_ms).
  const auto lo = static_cast<std::int64_t>(std::ceil(static_cast<double>(from_ms) / 1000.0));
  const auto hi = static_cast<std::int64_t>(std::ceil(static_cast<double>(to_ms) / 1000.0));
  const auto fail = [&](const char* what) {
    error = std::string("cannot read ") + what + " from " + path_ + ": " + sqlite3_errmsg(db_);
    exec(db_, "ROLLBACK");
    return false;
  };
  if (!exec(db_, "BEGIN")) return fail("the roll-ups");  // one snapshot for the three queries
  {
    // Summed here rather than by GROUP BY: the rows come in key order (hour, source), and sorting
    // a year of them by source for SQLite's grouping took three times as long as the sums.
    std::map<std::int64_t, std::string> names;
    Stmt n(db_, "SELECT id, name FROM names");
    if (!n) return fail("source names");
    int rc;
    while ((rc = n.step()) == SQLITE_ROW) names[n.i64(0)] = n.text(1);
    if (rc != SQLITE_DONE) return fail("source names");
    std::map<std::int64_t, SourceHour> sums;
    Stmt q(db_,
           "SELECT source, good, bad, dropped, stale_ms, expected_milli, missed FROM source_hours"
           " WHERE hour >= ?1 AND hour < ?2");
    if (!q) return fail("source hours");
    q.bind(1, lo).bind(2, hi);
    auto last = sums.end();
    while ((rc = q.step()) == SQLITE_ROW) {
      const auto id = q.i64(0);
      if (last == sums.end() || last->first != id) last = sums.try_emplace(id).first;
      last->second.add({q.i64(1), q.i64(2), q.i64(3), q.i64(4), q.i64(5), q.i64(6)});
    }
    if (rc != SQLITE_DONE) return fail("source hours");
    for (const auto& [id, sum] : sums) {
      const auto it = names.find(id);
      out.sources.push_back({it != names.end() ? it->second : "#" + std::to_string(id), sum});
    }
    std::sort(out.sources.begin(), out.sources.end(),
              [](const SourceTotals& a, const SourceTotals& b) { return a.name < b.name; });
  }
  {
    Stmt q(db_,
           "SELECT count(*), sum(run_ms), sum(up_ms), sum(outages), max(longest_outage_ms), min(hour), max(hour)"
           " FROM gateway_hours WHERE hour >= ?1 AND hour < ?2");
    if (!q) return fail("gateway hours");
    q.bind(1, lo).bind(2, hi);
    if (q.step() != SQLITE_ROW) return fail("gateway hours");
    out.gateway_hours = q.i64(0);
    out.gateway = {q.i64(1), q.i64(2), q.i64(3), q.i64(4)};
    out.first_hour = q.i64(5);
    out.last_hour = q.i64(6);
  }
  {
    Stmt q(db_,
           "SELECT n.name, s.since, s.until FROM stale_periods s JOIN names n ON n.id = s.source"
           " WHERE s.since < ?2 AND s.until > ?1 ORDER BY n.name, s.since");
    if (!q) return fail("stale periods");
    q.bind(1, from_ms).bind(2, to_ms);
    int rc;
    while ((rc = q.step()) == SQLITE_ROW) out.stale.push_back({q.text(0), q.i64(1), q.i64(2)});
    if (rc != SQLITE_DONE) return fail("stale periods");
  }
  exec(db_, "COMMIT");
  return true;
}

}  // namespace ioc_edge
