// The outbox's invariants (daemon/core/outbox.h), against a real SQLite file.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <future>
#include <set>

#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include "core/gateway_events.h"
#include "core/outbox.h"
#include "support/fakes.h"
#include "support/support.h"

using namespace ioc_edge;
using namespace std::chrono_literals;

namespace {

std::vector<NewRecord> records(std::size_t n, Priority p = Priority::Normal, const std::string& source = "s",
                               std::size_t body_size = 40) {
  std::vector<NewRecord> out;
  for (std::size_t i = 0; i < n; ++i)
    out.push_back({p, Kind::Data, source, "{\"x\":\"" + std::string(body_size, 'a') + "\"}"});
  return out;
}

AppendResult append_sync(Outbox& ob, std::vector<NewRecord> recs) {
  std::promise<AppendResult> p;
  auto f = p.get_future();
  ob.append(std::move(recs), [&](const AppendResult& r) { p.set_value(r); });
  return f.get();
}

std::unique_ptr<Outbox> open(const OutboxOptions& o, const Clock& clock) {
  std::string err;
  auto ob = Outbox::open(o, clock, err);
  INFO(err);
  REQUIRE(ob);
  return ob;
}

std::vector<Record> read_all(Outbox& ob, Priority p) {
  return ob.read(p, 0, std::numeric_limits<std::int64_t>::max(), 1'000'000, 1ull << 40);
}

}  // namespace

TEST_CASE("appends commit with consecutive, increasing seqs", "[outbox]") {
  test::TempDir dir;
  test::FakeClock clock;
  auto ob = open({dir.file("o.db")}, clock);
  auto a = append_sync(*ob, records(3));
  auto b = append_sync(*ob, records(2));
  REQUIRE(a.status == AppendStatus::Committed);
  CHECK(a.first_seq == 1);
  CHECK(a.last_seq == 3);
  CHECK(b.first_seq == 4);
  CHECK(b.last_seq == 5);
  CHECK(ob->stats().pending == 5);
  CHECK(ob->stats().last_seq == 5);
}

TEST_CASE("seqs are never reused, even after the table drains and the store reopens", "[outbox]") {
  test::TempDir dir;
  test::FakeClock clock;
  std::string store;
  {
    auto ob = open({dir.file("o.db")}, clock);
    store = ob->store_uuid();
    append_sync(*ob, records(10));
    ob->remove({{1, 10, Priority::Normal}});
    ob->flush();
    CHECK(ob->stats().pending == 0);
  }
  auto ob = open({dir.file("o.db")}, clock);
  CHECK(ob->store_uuid() == store);  // made once and kept
  CHECK(ob->stats().pending == 0);
  auto r = append_sync(*ob, records(1));
  CHECK(r.first_seq == 11);
}

TEST_CASE("reads go oldest first within a priority, and respect the bounds", "[outbox]") {
  test::TempDir dir;
  test::FakeClock clock;
  auto ob = open({dir.file("o.db")}, clock);
  append_sync(*ob, records(3, Priority::Low));
  append_sync(*ob, records(3, Priority::High));
  append_sync(*ob, records(3, Priority::Low));
  auto low = read_all(*ob, Priority::Low);
  REQUIRE(low.size() == 6);
  CHECK(low.front().last_seq == 1);
  CHECK(low.back().last_seq == 9);
  CHECK(std::is_sorted(low.begin(), low.end(), [](auto& a, auto& b) { return a.last_seq < b.last_seq; }));
  auto high = read_all(*ob, Priority::High);
  REQUIRE(high.size() == 3);
  CHECK(high.front().last_seq == 4);
  // after/before/max bound the read
  auto mid = ob->read(Priority::Low, 2, 8, 100, 1 << 20);
  REQUIRE(mid.size() == 2);
  CHECK(mid[0].last_seq == 3);
  CHECK(mid[1].last_seq == 7);
  CHECK(ob->read(Priority::Low, 0, 100, 2, 1 << 20).size() == 2);
  CHECK(ob->read(Priority::Low, 0, 100, 100, 1).size() == 1);  // max_bytes: at least one
  CHECK(ob->stats().pending_by_prio[static_cast<int>(Priority::Low)] == 6);
}

TEST_CASE("remove deletes exactly the acknowledged ranges", "[outbox]") {
  test::TempDir dir;
  test::FakeClock clock;
  auto ob = open({dir.file("o.db")}, clock);
  append_sync(*ob, records(10));
  ob->remove({{2, 4, Priority::Normal}, {9, 9, Priority::Normal}, {5, 6, Priority::High}});
  ob->flush();
  std::set<std::int64_t> left;
  for (auto& r : read_all(*ob, Priority::Normal)) left.insert(r.last_seq);
  CHECK(left == std::set<std::int64_t>{1, 5, 6, 7, 8, 10});
  CHECK(ob->stats().pending == 6);
  CHECK(ob->stats().removed == 4);
}

TEST_CASE("counters survive a restart without a table scan", "[outbox]") {
  test::TempDir dir;
  test::FakeClock clock;
  {
    auto ob = open({dir.file("o.db")}, clock);
    append_sync(*ob, records(7, Priority::High));
    append_sync(*ob, records(5, Priority::Low));
    ob->remove({{1, 2, Priority::High}});
    ob->flush();
  }
  auto ob = open({dir.file("o.db")}, clock);
  const auto st = ob->stats();
  CHECK(st.pending == 10);
  CHECK(st.pending_by_prio[static_cast<int>(Priority::High)] == 5);
  CHECK(st.pending_by_prio[static_cast<int>(Priority::Low)] == 5);
  CHECK(st.last_seq == 12);
  CHECK(st.oldest_age_ms == 0);
}

TEST_CASE("max_size evicts the oldest lowest-priority records with an exact gap event", "[outbox][eviction]") {
  test::TempDir dir;
  test::FakeClock clock;
  OutboxOptions o{dir.file("o.db")};
  o.max_size = 1 << 20;  // 1 MiB
  auto ob = open(o, clock);
  // High-priority records first, then enough low-priority ones to pass the limit.
  append_sync(*ob, records(200, Priority::High, "важный", 1000));
  for (int i = 0; i < 30; ++i) append_sync(*ob, records(100, Priority::Low, "tram-bom-1", 1000));
  ob->flush();
  const auto st = ob->stats();
  REQUIRE(st.evicted > 0);
  CHECK(st.file_bytes <= o.max_size);

  // Exactly the evicted seqs are gone, and the gap events name exactly them.
  std::set<std::int64_t> present;
  for (int p = 0; p < kPriorityLevels; ++p)
    for (auto& r : read_all(*ob, static_cast<Priority>(p))) present.insert(r.last_seq);
  auto events = read_all(*ob, Priority::System);
  REQUIRE_FALSE(events.empty());
  std::set<std::int64_t> named;
  std::int64_t counted = 0;
  for (const auto& e : events) {
    CHECK(e.kind == Kind::Event);
    CHECK(e.source == "_gateway");
    const auto v = nlohmann::json::parse(e.body)["value"];
    CHECK(v["event"] == "gap");
    CHECK(v["reason"] == "max_size");
    CHECK(v["priority"] == "low");
    counted += v["count"].get<std::int64_t>();
    for (const auto& r : v["ranges"])
      for (auto s = r[0].get<std::int64_t>(); s <= r[1].get<std::int64_t>(); ++s) CHECK(named.insert(s).second);
  }
  CHECK(counted == static_cast<std::int64_t>(st.evicted));
  CHECK(named.size() == st.evicted);
  // Every seq committed for data is either present or named in a gap, never both.
  for (std::int64_t s = 1; s <= 3200; ++s) CHECK((present.count(s) + named.count(s)) == 1);
  // The oldest low-priority records went first; high priority untouched.
  CHECK(*named.begin() == 201);
  CHECK(ob->stats().pending_by_prio[static_cast<int>(Priority::High)] == 200);
}

TEST_CASE("max_age evicts old records with a gap event", "[outbox][eviction]") {
  test::TempDir dir;
  test::FakeClock clock;
  OutboxOptions o{dir.file("o.db")};
  o.max_age_ms = 60'000;
  auto ob = open(o, clock);
  append_sync(*ob, records(5));
  clock.advance(50s);
  append_sync(*ob, records(5));
  clock.advance(20s);  // the first five are now 70 s old, the next five 20 s
  append_sync(*ob, records(1));  // wakes the writer; age checks run every few seconds of steady time
  ob->flush();
  REQUIRE(test::wait_until([&] { return ob->stats().evicted == 5; }, 10s));
  auto events = read_all(*ob, Priority::System);
  REQUIRE(events.size() == 1);
  const auto v = nlohmann::json::parse(events[0].body)["value"];
  CHECK(v["reason"] == "max_age");
  CHECK(v["ranges"] == nlohmann::json::parse("[[1,5]]"));
  CHECK(v["sources"]["s"] == 5);
}

TEST_CASE("a file that is not a database is moved aside, not deleted", "[outbox]") {
  test::TempDir dir;
  test::FakeClock clock;
  test::write_file(dir.file("o.db"), std::string(8192, 'x'));
  auto ob = open({dir.file("o.db")}, clock);
  CHECK(append_sync(*ob, records(1)).status == AppendStatus::Committed);
  bool kept = false;
  for (const auto& e : std::filesystem::directory_iterator(dir.path()))
    kept |= e.path().filename().string().rfind("o.db.corrupt-", 0) == 0;
  CHECK(kept);
}

TEST_CASE("the database passes an integrity check after heavy use", "[outbox]") {
  test::TempDir dir;
  test::FakeClock clock;
  {
    OutboxOptions o{dir.file("o.db")};
    o.sync_full = false;
    auto ob = open(o, clock);
    for (int i = 0; i < 20; ++i) append_sync(*ob, records(500));
    ob->remove({{1, 5000, Priority::Normal}});
    ob->flush();
  }
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(dir.file("o.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, nullptr);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  CHECK(std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, 0))) == "ok");
  sqlite3_finalize(st);
  sqlite3_close(db);
}

namespace {

// One record holding `n` readings, one JSON object per line, as the pipeline stores a poll.
NewRecord chunk(std::uint32_t n, Priority p = Priority::Normal, const std::string& source = "s",
                std::size_t body_size = 40) {
  NewRecord r{p, Kind::Data, source, {}, n};
  for (std::uint32_t i = 0; i < n; ++i) {
    if (i) r.body += '\n';
    r.body += "{\"i\":" + std::to_string(i) + ",\"x\":\"" + std::string(body_size, 'a') + "\"}";
  }
  return r;
}

}  // namespace

TEST_CASE("a record of several readings owns a range of seqs and is read, counted and removed whole",
          "[outbox][chunks]") {
  test::TempDir dir;
  test::FakeClock clock;
  auto ob = open({dir.file("o.db")}, clock);
  std::vector<NewRecord> batch;
  batch.push_back(chunk(100));
  batch.push_back(chunk(1));
  batch.push_back(chunk(50));
  const auto a = append_sync(*ob, std::move(batch));
  REQUIRE(a.status == AppendStatus::Committed);
  CHECK(a.first_seq == 1);
  CHECK(a.last_seq == 151);
  CHECK(ob->stats().pending == 151);
  CHECK(ob->stats().last_seq == 151);
  CHECK(ob->stats().appended == 151);

  auto all = read_all(*ob, Priority::Normal);
  REQUIRE(all.size() == 3);
  CHECK(all[0].first_seq == 1);
  CHECK(all[0].last_seq == 100);
  CHECK(all[0].count() == 100);
  CHECK(all[1].first_seq == 101);
  CHECK(all[1].last_seq == 101);
  CHECK(all[2].first_seq == 102);
  CHECK(all[2].last_seq == 151);
  CHECK(std::count(all[0].body.begin(), all[0].body.end(), '\n') == 99);

  // max_readings never splits a record: 120 readings allow the first two records (101), not the third.
  auto part = ob->read(Priority::Normal, 0, 1000, 120, 1 << 20);
  REQUIRE(part.size() == 2);
  CHECK(part.back().last_seq == 101);
  // A record larger than the limit is still read, alone, so it can never block the queue.
  auto big = ob->read(Priority::Normal, 0, 1000, 10, 1 << 20);
  REQUIRE(big.size() == 1);
  CHECK(big[0].count() == 100);
  // The cursor is the last seq of what was read.
  auto rest = ob->read(Priority::Normal, 101, 1000, 1000, 1 << 20);
  REQUIRE(rest.size() == 1);
  CHECK(rest[0].first_seq == 102);

  // Removal counts readings, and the next append continues after the highest seq.
  ob->remove({{1, 101, Priority::Normal}});
  ob->flush();
  CHECK(ob->stats().pending == 50);
  CHECK(ob->stats().removed == 101);
  const auto b = append_sync(*ob, records(2));
  CHECK(b.first_seq == 152);
  CHECK(b.last_seq == 153);
}

TEST_CASE("seqs of several-reading records are not reused after the table drains and the store reopens",
          "[outbox][chunks]") {
  test::TempDir dir;
  test::FakeClock clock;
  {
    auto ob = open({dir.file("o.db")}, clock);
    std::vector<NewRecord> batch;
    batch.push_back(chunk(40));
    append_sync(*ob, std::move(batch));
    ob->remove({{1, 40, Priority::Normal}});
    ob->flush();
    CHECK(ob->stats().pending == 0);
  }
  auto ob = open({dir.file("o.db")}, clock);
  CHECK(ob->stats().last_seq == 40);
  CHECK(append_sync(*ob, records(1)).first_seq == 41);
}

TEST_CASE("eviction drops whole several-reading records and its gap event names every seq in them",
          "[outbox][chunks][eviction]") {
  test::TempDir dir;
  test::FakeClock clock;
  OutboxOptions o{dir.file("o.db")};
  o.max_size = 1 << 20;
  auto ob = open(o, clock);
  for (int i = 0; i < 40; ++i) {
    std::vector<NewRecord> batch;
    batch.push_back(chunk(100, Priority::Normal, "dong-ho-" + std::to_string(i % 3), 300));
    append_sync(*ob, std::move(batch));
  }
  ob->flush();
  const auto st = ob->stats();
  REQUIRE(st.evicted > 0);
  CHECK(st.evicted % 100 == 0);  // whole records only
  CHECK(st.file_bytes <= o.max_size);
  std::set<std::int64_t> present, named;
  for (auto& r : read_all(*ob, Priority::Normal))
    for (auto s = r.first_seq; s <= r.last_seq; ++s) present.insert(s);
  std::int64_t per_source_total = 0;
  for (const auto& e : read_all(*ob, Priority::System)) {
    CHECK(e.count() == 1);
    present.insert(e.first_seq);  // gap events take seqs of their own
    const auto v = nlohmann::json::parse(e.body)["value"];
    for (const auto& r : v["ranges"])
      for (auto s = r[0].get<std::int64_t>(); s <= r[1].get<std::int64_t>(); ++s) CHECK(named.insert(s).second);
    for (const auto& [src, c] : v["sources"].items()) per_source_total += c.get<std::int64_t>();
  }
  CHECK(named.size() == st.evicted);
  CHECK(per_source_total == static_cast<std::int64_t>(st.evicted));
  for (std::int64_t s = 1; s <= ob->stats().last_seq; ++s) CHECK((present.count(s) + named.count(s)) == 1);
  CHECK(*named.begin() == 1);
}

TEST_CASE("a version-1 store (one reading per row) is upgraded in place and keeps its data and seqs",
          "[outbox][chunks]") {
  test::TempDir dir;
  test::FakeClock clock;
  const auto path = dir.file("o.db");
  {  // The schema and rows exactly as ioc-edge 0.1.0 wrote them.
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    const char* sql =
        "PRAGMA journal_mode=WAL;"
        "CREATE TABLE records(seq INTEGER PRIMARY KEY AUTOINCREMENT, prio INTEGER NOT NULL, kind INTEGER NOT NULL,"
        " at INTEGER NOT NULL, source TEXT NOT NULL, body TEXT NOT NULL);"
        "CREATE INDEX records_prio_seq ON records(prio, seq);"
        "CREATE TABLE meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
        "INSERT INTO meta VALUES('count.0',0),('count.1',2),('count.2',0),('count.3',0),"
        " ('store','11111111-2222-4333-8444-555555555555');"
        "INSERT INTO records(seq, prio, kind, at, source, body) VALUES"
        " (7, 1, 0, AT, 'old', '{\"point\":\"a\"}'), (8, 1, 0, AT, 'old', '{\"point\":\"b\"}');"
        "PRAGMA user_version=1;";
    std::string script = sql;
    for (auto at = script.find("AT,"); at != std::string::npos; at = script.find("AT,"))
      script.replace(at, 2, std::to_string(clock.now_ms()));  // fresh, so max_age keeps them
    REQUIRE(sqlite3_exec(db, script.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  }
  auto ob = open({path}, clock);
  CHECK(ob->store_uuid() == "11111111-2222-4333-8444-555555555555");
  CHECK(ob->stats().pending == 2);
  auto old = read_all(*ob, Priority::Normal);
  REQUIRE(old.size() == 2);
  CHECK(old[0].first_seq == 7);
  CHECK(old[0].last_seq == 7);
  CHECK(old[1].body == "{\"point\":\"b\"}");
  std::vector<NewRecord> batch;
  batch.push_back(chunk(5));
  const auto r = append_sync(*ob, std::move(batch));
  CHECK(r.first_seq == 9);
  CHECK(r.last_seq == 13);
  ob->remove({{7, 8, Priority::Normal}});
  ob->flush();
  CHECK(ob->stats().pending == 5);
  ob->stop();

  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, nullptr);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  CHECK(sqlite3_column_int(st, 0) == 4);
  sqlite3_finalize(st);
  sqlite3_close(db);
}

TEST_CASE("seqs continue above the rows present even if the stored highest seq was lost", "[outbox][chunks]") {
  test::TempDir dir;
  test::FakeClock clock;
  {
    auto ob = open({dir.file("o.db")}, clock);
    std::vector<NewRecord> batch;
    batch.push_back(chunk(5));
    append_sync(*ob, std::move(batch));
  }
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(dir.file("o.db").c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db, "DELETE FROM meta WHERE key='seq'", nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  auto ob = open({dir.file("o.db")}, clock);
  const auto r = append_sync(*ob, records(1));
  CHECK(r.status == AppendStatus::Committed);
  CHECK(r.first_seq == 6);
}

TEST_CASE("the writer thread stamps its progress for the watchdog", "[outbox][watchdog]") {
  test::TempDir dir;
  test::FakeClock clock;
  auto ob = open({dir.file("o.db")}, clock);
  clock.advance(60s);  // as if the writer had not turned for a minute
  ob->flush();         // it turns now
  CHECK(ob->stalled_for() < 1s);
  ob->stop();
  clock.advance(60s);
  CHECK(ob->stalled_for() == 0s);  // a stopped outbox is not a stuck one
}

TEST_CASE("read and flush after stop answer at once instead of waiting for a writer that is gone", "[outbox]") {
  test::TempDir dir;
  test::FakeClock clock;
  auto ob = open({dir.file("o.db")}, clock);
  append_sync(*ob, records(3));
  ob->stop();
  bool ok = true;
  CHECK(ob->read(Priority::Normal, 0, 100, 10, 1 << 20, &ok).empty());
  CHECK_FALSE(ok);  // "empty" here does not mean "nothing pending"
  ob->flush();      // returns
  AppendResult res;
  ob->append(records(1), [&](const AppendResult& r) { res = r; });
  CHECK(res.status == AppendStatus::Stopped);
}

TEST_CASE("a record whose lines do not match its count is refused, not stored", "[outbox][chunks]") {
  test::TempDir dir;
  test::FakeClock clock;
  auto ob = open({dir.file("o.db")}, clock);
  std::vector<NewRecord> bad;
  bad.push_back({Priority::Normal, Kind::Data, "s", "{\"a\":1}\n{\"a\":2}", 3});
  const auto r = append_sync(*ob, std::move(bad));
  CHECK(r.status == AppendStatus::Refused);
  ob->flush();
  CHECK(ob->stats().pending == 0);
  CHECK(ob->stats().last_seq == 0);  // no seqs were given away
}

namespace {

std::string query_text(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  std::string out;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW &&
      sqlite3_column_text(st, 0))
    out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

Envelope blob_envelope(std::string bytes, const std::string& source = "cam") {
  Envelope e;
  e.kind = Kind::Blob;
  e.source = source;
  e.body = std::move(bytes);
  e.count = 1;
  e.meta = blob_meta_json({"snapshot", 1795903799500, "image/jpeg", 0, {}, {}, {}});
  return e;
}

}  // namespace

TEST_CASE("a schema-2 store is upgraded in place to 3: every pending record and seq kept, rows not rewritten",
          "[outbox][schema]") {
  test::TempDir dir;
  test::FakeClock clock;
  const auto path = dir.file("o.db");
  {  // The schema and rows exactly as ioc-edge 0.2.0 wrote them: records of several readings.
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    std::string script =
        "PRAGMA journal_mode=WAL;"
        "CREATE TABLE records(seq INTEGER PRIMARY KEY AUTOINCREMENT, prio INTEGER NOT NULL, kind INTEGER NOT NULL,"
        " at INTEGER NOT NULL, source TEXT NOT NULL, body TEXT NOT NULL, n INTEGER NOT NULL DEFAULT 1);"
        "CREATE INDEX records_prio_seq ON records(prio, seq);"
        "CREATE TABLE meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
        "INSERT INTO meta VALUES('count.0',0),('count.1',4),('count.2',1),('count.3',0),"
        " ('store','11111111-2222-4333-8444-555555555555');"
        "INSERT INTO records(seq, n, prio, kind, at, source, body) VALUES"
        " (3, 3, 1, 0, AT, 'meter', '{\"point\":\"a\"}\n{\"point\":\"b\"}\n{\"point\":\"c\"}'),"
        " (4, 1, 2, 1, AT, 'meter', '{\"point\":\"source_down\"}'),"
        " (9, 1, 1, 0, AT, 'meter', '{\"point\":\"d\"}');"
        "PRAGMA user_version=2;";
    for (auto at = script.find("AT,"); at != std::string::npos; at = script.find("AT,"))
      script.replace(at, 2, std::to_string(clock.now_ms()));
    REQUIRE(sqlite3_exec(db, script.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  }
  auto ob = open({path}, clock);
  CHECK(ob->stats().pending == 5);
  CHECK(ob->stats().last_seq == 9);
  auto normal = read_all(*ob, Priority::Normal);
  REQUIRE(normal.size() == 2);
  CHECK(normal[0].first_seq == 1);
  CHECK(normal[0].last_seq == 3);
  CHECK(normal[0].body == "{\"point\":\"a\"}\n{\"point\":\"b\"}\n{\"point\":\"c\"}");
  CHECK(normal[1].first_seq == 9);
  auto high = read_all(*ob, Priority::High);
  REQUIRE(high.size() == 1);
  CHECK(high[0].kind == Kind::Event);
  // New records get the next seqs and BLOB bodies; the old rows were not rewritten (still TEXT).
  std::vector<NewRecord> more;
  more.push_back(blob_envelope(std::string("\xff\xd8\x00jpeg", 7)));
  const auto r = append_sync(*ob, std::move(more));
  CHECK(r.first_seq == 10);
  ob->stop();
  CHECK(query_text(path, "PRAGMA user_version") == "4");
  CHECK(query_text(path, "SELECT typeof(body) FROM records WHERE seq=3") == "text");
  CHECK(query_text(path, "SELECT typeof(body) FROM records WHERE seq=10") == "blob");
  CHECK(query_text(path, "PRAGMA integrity_check") == "ok");
}

TEST_CASE("a store of a newer schema is refused and left untouched", "[outbox][schema]") {
  test::TempDir dir;
  test::FakeClock clock;
  const auto path = dir.file("o.db");
  {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, "PRAGMA journal_mode=WAL; CREATE TABLE future(x); PRAGMA user_version=5;", nullptr,
                         nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  }
  std::string err;
  auto ob = Outbox::open({path}, clock, err);
  CHECK_FALSE(ob);
  CHECK_THAT(err, Catch::Contains("newer ioc-edge (schema 5, this build knows 4)"));
  CHECK(query_text(path, "PRAGMA user_version") == "5");
  CHECK(query_text(path, "SELECT count(*) FROM sqlite_master WHERE name='records'") == "0");
}

TEST_CASE("a blob is stored and read back byte for byte, alone", "[outbox][blob]") {
  test::TempDir dir;
  test::FakeClock clock;
  auto ob = open({dir.file("o.db")}, clock);
  std::string bytes(1 << 20, '\0');
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>((i * 131 + 7) & 0xFF);
  std::vector<NewRecord> recs = records(2);
  recs.push_back(blob_envelope(bytes));
  auto more = records(2);
  recs.insert(recs.end(), more.begin(), more.end());
  REQUIRE(append_sync(*ob, std::move(recs)).status == AppendStatus::Committed);
  // Two data records, then the blob ends the read; the rest comes with the next.
  auto first = ob->read(Priority::Normal, 0, 1000, 1000, 2 << 20);
  REQUIRE(first.size() == 3);
  CHECK(first[2].kind == Kind::Blob);
  CHECK(first[2].body == bytes);
  CHECK(first[2].meta == blob_meta_json({"snapshot", 1795903799500, "image/jpeg", 0, {}, {}, {}}));
  // A blob is one seq; a blob that claims more is refused.
  auto bad = blob_envelope("x");
  bad.count = 2;
  std::vector<NewRecord> one{bad};
  CHECK(append_sync(*ob, std::move(one)).status == AppendStatus::Refused);
}

TEST_CASE("a read makes at most max_messages messages, however many sources it spans", "[outbox][window]") {
  test::TempDir dir;
  test::FakeClock clock;
  auto ob = open({dir.file("o.db")}, clock);
  std::vector<NewRecord> recs;
  for (int i = 0; i < 40; ++i) {
    auto one = records(1, Priority::Normal, "src-" + std::to_string(i % 8));
    recs.push_back(one.front());
  }
  append_sync(*ob, std::move(recs));
  ReadLimits lim{1000, 1 << 20, 3};
  auto got = ob->read(Priority::Normal, 0, 1000, lim);
  std::set<std::string> sources;
  for (const auto& r : got) sources.insert(r.source);
  CHECK(sources.size() == 3);
  CHECK(got.size() == 3);  // src-0, src-1, src-2 and then src-3 would be a fourth message
  lim.max_messages = 8;
  got = ob->read(Priority::Normal, 0, 1000, lim);
  CHECK(got.size() == 40);
}

TEST_CASE("a read fills one message per source up to its limits, within the read's total bytes",
          "[outbox][window]") {
  test::TempDir dir;
  test::FakeClock clock;
  auto ob = open({dir.file("o.db")}, clock);
  std::vector<NewRecord> recs;
  for (int i = 0; i < 40; ++i) recs.push_back(records(1, Priority::Normal, i % 2 ? "b" : "a").front());
  append_sync(*ob, std::move(recs));  // a, b, a, b, ...
  // Three readings a message: a,b,a,b,a,b and then a fourth "a" would overflow its message.
  ReadLimits lim{3, 1 << 20, 8, 8 << 20};
  auto got = ob->read(Priority::Normal, 0, 1000, lim);
  CHECK(got.size() == 6);
  CHECK(got.back().last_seq == 6);
  // Without a total, the read holds one message's worth of bytes: the two sources share it.
  const auto one = record_message_bytes(Kind::Data, got.front().body.size(), 1);
  lim = ReadLimits{1000, 5 * one, 8};
  got = ob->read(Priority::Normal, 0, 1000, lim);
  CHECK(got.size() == 5);
  // With a total of four messages' worth, each source's message fills to its own limit.
  lim.max_total_bytes = 4 * 5 * one;
  got = ob->read(Priority::Normal, 0, 1000, lim);
  CHECK(got.size() == 10);  // 5 of a, 5 of b: the sixth "a" would overflow its message
}

TEST_CASE("consecutive records of one source committed together share a row of at most one message",
          "[outbox][merge]") {
  test::TempDir dir;
  test::FakeClock clock;
  OutboxOptions o{dir.file("o.db")};
  o.merge_readings = 3;
  o.merge_bytes = 1 << 20;
  o.commit_interval = std::chrono::hours(1);  // the appends below wait for one commit together
  auto ob = open(o, clock);
  std::vector<std::future<AppendResult>> acks;
  std::vector<std::promise<AppendResult>> promises(7);
  const char* sources[] = {"a", "a", "a", "a", "a", "b", "a"};
  for (int i = 0; i < 7; ++i) {
    acks.push_back(promises[i].get_future());
    ob->append(records(1, Priority::Normal, sources[i]), [&, i](const AppendResult& r) { promises[i].set_value(r); });
  }
  ob->flush();
  for (int i = 0; i < 7; ++i) {  // each append its own seq, in order
    const auto r = acks[i].get();
    CHECK(r.status == AppendStatus::Committed);
    CHECK(r.first_seq == i + 1);
    CHECK(r.last_seq == i + 1);
  }
  const auto rows = ob->read(Priority::Normal, 0, 1000, ReadLimits{1000, 1 << 20, 100, 8 << 20});
  REQUIRE(rows.size() == 4);  // a a a | a | b | a
  CHECK(rows[0].first_seq == 1);
  CHECK(rows[0].last_seq == 3);
  CHECK(framed_count(rows[0].body) == 3);
  CHECK(rows[1].first_seq == 4);
  CHECK(rows[1].last_seq == 5);
  CHECK(rows[2].source == "b");
  CHECK(rows[3].first_seq == 7);
  CHECK(ob->stats().pending == 7);
  // Deleting a part of a row is not possible: the forwarder removes what it read, whole rows.
  ob->remove({{1, 3, Priority::Normal}});
  ob->flush();
  CHECK(ob->stats().pending == 4);
}

TEST_CASE("records of a page or more keep their own rows; merged rows stop at 16 KiB", "[outbox][merge]") {
  test::TempDir dir;
  test::FakeClock clock;
  OutboxOptions o{dir.file("o.db")};
  o.merge_readings = 1000;
  o.merge_bytes = 1 << 20;
  auto ob = open(o, clock);
  append_sync(*ob, records(4, Priority::Normal, "s", 2000));  // a poll's worth each: not merged
  CHECK(ob->read(Priority::Normal, 0, 1000, ReadLimits{1000, 1 << 20, 100, 8 << 20}).size() == 4);
  append_sync(*ob, records(100, Priority::Normal, "s", 500));  // about 50 KiB of small records
  const auto rows = ob->read(Priority::Normal, 4, 1000, ReadLimits{1000, 1 << 20, 100, 8 << 20});
  CHECK(rows.size() >= 4);
  CHECK(rows.size() <= 5);
  for (const auto& r : rows) CHECK(r.body.size() <= 16 * 1024);
}

TEST_CASE("without merge limits every record is its own row", "[outbox][merge]") {
  test::TempDir dir;
  test::FakeClock clock;
  auto ob = open({dir.file("o.db")}, clock);
  append_sync(*ob, records(5));
  CHECK(ob->read(Priority::Normal, 0, 1000, ReadLimits{1000, 1 << 20, 100, 8 << 20}).size() == 5);
}

TEST_CASE("held records are not read, still counted, named by an event, and pending again on requeue or restart",
          "[outbox][held]") {
  test::TempDir dir;
  test::FakeClock clock;
  const auto path = dir.file("o.db");
  {
    auto ob = open({path}, clock);
    append_sync(*ob, records(10));  // seqs 1..10
    Refusal refusal{"ioc/bac-kan/x/data/s", 0x87, "not authorized", {{3, 6, Priority::Normal}}, 4, "s"};
    ob->hold({{3, 6, Priority::Normal}}, refusal.topic, "not authorized", rejected_event(refusal, clock.now_ms()));
    ob->flush();
    const auto st = ob->stats();
    CHECK(st.held == 4);
    CHECK(st.pending == 11);  // ten readings and the rejected event
    auto left = read_all(*ob, Priority::Normal);
    CHECK(left.size() == 6);
    for (const auto& r : left) CHECK((r.last_seq < 3 || r.last_seq > 6));
    const auto held = ob->held();
    REQUIRE(held.size() == 1);
    CHECK(held[0].first_seq == 3);
    CHECK(held[0].last_seq == 6);
    CHECK(held[0].readings == 4);
    CHECK(held[0].reason == "not authorized");
    auto ev = read_all(*ob, Priority::System);
    REQUIRE(ev.size() == 1);
    CHECK(ev[0].last_seq == 11);
    const auto v = nlohmann::json::parse(ev[0].body)["value"];
    CHECK(v["event"] == "rejected");
    CHECK(v["reason_code"] == 0x87);
    CHECK(v["topic"] == "ioc/bac-kan/x/data/s");
    CHECK(v["ranges"] == nlohmann::json::parse("[[3,6]]"));
    CHECK(v["count"] == 4);

    const auto rq = ob->requeue();
    CHECK(rq.readings == 4);
    CHECK(rq.lowest_seq[static_cast<int>(Priority::Normal)] == 3);
    CHECK(ob->stats().held == 0);
    CHECK(ob->held().empty());
    CHECK(read_all(*ob, Priority::Normal).size() == 10);

    ob->hold({{8, 9, Priority::Normal}}, "t", "packet too large", std::nullopt);  // no event this time
    ob->flush();
    CHECK(ob->stats().held == 2);
    CHECK(ob->stats().pending == 11);
  }
  auto ob = open({path}, clock);  // a restart makes them pending again
  CHECK(ob->stats().held == 0);
  CHECK(ob->held().empty());
  CHECK(read_all(*ob, Priority::Normal).size() == 10);
}

TEST_CASE("evicting held records keeps the held count exact", "[outbox][held]") {
  test::TempDir dir;
  test::FakeClock clock;
  OutboxOptions o{dir.file("o.db")};
  o.max_age_ms = 60'000;
  auto ob = open(o, clock);
  append_sync(*ob, records(5));
  ob->hold({{1, 5, Priority::Normal}}, "t", "not authorized", std::nullopt);
  ob->flush();
  REQUIRE(ob->stats().held == 5);
  clock.advance(std::chrono::minutes(2));
  append_sync(*ob, records(1));  // a write, and the age check is due
  REQUIRE(test::wait_until([&] { ob->flush(); return ob->stats().evicted == 5; }, 10s));
  CHECK(ob->stats().held == 0);
  CHECK(ob->held().empty());
}

TEST_CASE("a restart makes every held record pending again, even ones the held table lost", "[outbox][held]") {
  test::TempDir dir;
  test::FakeClock clock;
  const auto path = dir.file("o.db");
  {
    auto ob = open({path}, clock);
    append_sync(*ob, records(6));
    ob->hold({{2, 4, Priority::Normal}}, "t", "not authorized", std::nullopt);
    ob->flush();
    REQUIRE(ob->stats().held == 3);
  }
  {  // The description and the count drift away from the rows (what an age eviction across a clock step can do).
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, "DELETE FROM held; UPDATE meta SET value=0 WHERE key='held'", nullptr, nullptr, nullptr) ==
            SQLITE_OK);
    sqlite3_close(db);
  }
  auto ob = open({path}, clock);
  CHECK(read_all(*ob, Priority::Normal).size() == 6);
  CHECK(query_text(path, "SELECT count(*) FROM records WHERE state<>0") == "0");
}

TEST_CASE("a held record that is acknowledged after all leaves the held count", "[outbox][held]") {
  test::TempDir dir;
  test::FakeClock clock;
  auto ob = open({dir.file("o.db")}, clock);
  append_sync(*ob, records(5));
  ob->hold({{1, 5, Priority::Normal}}, "t", "quota exceeded", std::nullopt);
  ob->flush();
  REQUIRE(ob->stats().held == 5);
  ob->remove({{1, 3, Priority::Normal}});  // an earlier copy's PUBACK
  ob->flush();
  CHECK(ob->stats().held == 2);
  CHECK(ob->stats().pending == 2);
  ob->stop();
  CHECK(query_text(dir.file("o.db"), "SELECT value FROM meta WHERE key='held'") == "2");
}

TEST_CASE("ages follow the store clock: wall clock steps of 40 days neither evict nor stop eviction",
          "[outbox][clock]") {
  test::TempDir dir;
  test::FakeClock clock;
  constexpr std::int64_t kDay = 86'400'000;
  OutboxOptions o{dir.file("o.db")};
  o.max_age_ms = 30 * kDay;
  {  // An RTC-less box boots 40 days behind and buffers during an outage.
    clock.wall_ms_ -= 40 * kDay;
    auto ob = open(o, clock);
    append_sync(*ob, records(498));
    clock.steady_ms_ += 60'000;
    ob->flush();
  }
  // NTP steps the clock forward by 40 days and the daemon restarts: nothing is dropped as old.
  clock.wall_ms_ += 40 * kDay;
  clock.steady_ms_ += 5'000;
  {
    auto ob = open(o, clock);
    append_sync(*ob, records(1));  // a write; the age check runs
    clock.steady_ms_ += 10'000;
    ob->flush();
    ob->flush();
    const auto st = ob->stats();
    CHECK(st.evicted == 0);
    CHECK(st.pending == 499);
    CHECK(st.oldest_age_ms >= 60'000);
    CHECK(st.oldest_age_ms < 5 * 60'000);  // about a minute of running, not 40 days
    // A step back by 40 days while running: ages stay positive and keep growing.
    clock.wall_ms_ -= 40 * kDay;
    clock.steady_ms_ += 1'000;
    CHECK(ob->stats().oldest_age_ms > st.oldest_age_ms);
    // ... and eviction still happens once the data really is 30 days old.
    clock.steady_ms_ += 31 * kDay;
    append_sync(*ob, records(1));
    REQUIRE(test::wait_until([&] { ob->flush(); return ob->stats().evicted == 499; }, 10s));
  }
}

TEST_CASE("two corrupt files moved aside in the same second are both kept", "[outbox][corrupt]") {
  test::TempDir dir;
  test::FakeClock clock;  // stands still: an RTC-less box boots at the same time every time
  const auto path = dir.file("o.db");
  test::write_file(path, std::string(8192, 'x'));
  open({path}, clock)->stop();
  test::write_file(path, std::string(8192, 'y'));
  open({path}, clock)->stop();
  std::set<std::string> aside;
  for (const auto& e : std::filesystem::directory_iterator(dir.path()))
    if (e.path().filename().string().rfind("o.db.corrupt-", 0) == 0 &&
        e.path().filename().string().find("-wal") == std::string::npos &&
        e.path().filename().string().find("-shm") == std::string::npos)
      aside.insert(test::read_file(e.path().string()));
  CHECK(aside == std::set<std::string>{std::string(8192, 'x'), std::string(8192, 'y')});
}

// Invariant 9: few commits (flash wear), every promise kept.
TEST_CASE("appends wait up to commit_interval for company and are acknowledged only by their commit",
          "[outbox][commit]") {
  test::TempDir dir;
  test::FakeClock clock;
  OutboxOptions o{dir.file("o.db")};
  o.commit_interval = 200ms;
  auto ob = open(o, clock);
  const auto commits_before = ob->stats().commits;
  std::atomic<int> done{0};
  std::vector<AppendResult> results(3);
  for (int i = 0; i < 3; ++i)
    ob->append(records(2), [&, i](const AppendResult& r) {
      results[static_cast<std::size_t>(i)] = r;
      ++done;
    });
  // The clock stands still: nothing is acknowledged, because nothing is committed yet.
  CHECK_FALSE(test::wait_until([&] { return done.load() > 0; }, 300ms));
  CHECK(ob->stats().pending == 0);
  clock.advance(200ms);
  REQUIRE(test::wait_until([&] { return done.load() == 3; }, 5s));
  CHECK(ob->stats().commits == commits_before + 1);  // one transaction for the three
  for (int i = 0; i < 3; ++i) {
    CHECK(results[static_cast<std::size_t>(i)].status == AppendStatus::Committed);
    CHECK(results[static_cast<std::size_t>(i)].first_seq == 1 + 2 * i);
  }
  const auto st = ob->stats();
  CHECK(st.acks == 3);
  CHECK(st.ack_p50_ms > 0);
  CHECK(st.ack_max_ms >= st.ack_p99_ms);
  ob->stop();
  auto again = open(o, clock);
  CHECK(again->stats().pending == 6);
}

TEST_CASE("appends of more than 256 KiB are committed without waiting for the interval", "[outbox][commit]") {
  test::TempDir dir;
  test::FakeClock clock;
  OutboxOptions o{dir.file("o.db")};
  o.commit_interval = 10000ms;
  auto ob = open(o, clock);
  const auto r = append_sync(*ob, records(300, Priority::Normal, "s", 4000));  // 1.2 MB: the clock stands still
  CHECK(r.status == AppendStatus::Committed);
  CHECK(r.last_seq == 300);
}

TEST_CASE("stop commits appends that were still waiting for company", "[outbox][commit]") {
  test::TempDir dir;
  test::FakeClock clock;
  OutboxOptions o{dir.file("o.db")};
  o.commit_interval = 10000ms;
  std::promise<AppendResult> p;
  {
    auto ob = open(o, clock);
    ob->append(records(4), [&](const AppendResult& r) { p.set_value(r); });
    ob->stop();
  }
  CHECK(p.get_future().get().status == AppendStatus::Committed);
  auto again = open(o, clock);
  CHECK(again->stats().pending == 4);
}

TEST_CASE("deletes of delivered records wait for company, are not pending meanwhile, and survive stop",
          "[outbox][commit]") {
  test::TempDir dir;
  test::FakeClock clock;
  OutboxOptions o{dir.file("o.db")};
  o.remove_delay = 1000ms;
  {
    auto ob = open(o, clock);
    auto a = append_sync(*ob, records(5));
    auto b = append_sync(*ob, records(5));
    ob->remove({{a.first_seq, a.last_seq, Priority::Normal}});
    const auto st = ob->stats();
    CHECK(st.pending == 5);   // delivered readings are not counted as waiting
    CHECK(st.removing == 5);
    CHECK_FALSE(test::wait_until([&] { return ob->stats().removed > 0; }, 300ms));  // the clock stands still
    clock.advance(1000ms);
    REQUIRE(test::wait_until([&] { return ob->stats().removed == 5; }, 5s));
    CHECK(ob->stats().removing == 0);
    CHECK(ob->stats().pending == 5);
    ob->remove({{b.first_seq, b.last_seq, Priority::Normal}});
    ob->stop();  // commits the delete that waits
  }
  auto again = open(o, clock);
  CHECK(again->stats().pending == 0);
  CHECK(again->stats().last_seq == 10);
}

TEST_CASE("apply_removes commits the waiting deletes before a later read", "[outbox][commit]") {
  test::TempDir dir;
  test::FakeClock clock;
  OutboxOptions o{dir.file("o.db")};
  o.remove_delay = 3600000ms;
  auto ob = open(o, clock);
  auto a = append_sync(*ob, records(3));
  append_sync(*ob, records(2));
  ob->remove({{a.first_seq, a.last_seq, Priority::Normal}});
  CHECK(read_all(*ob, Priority::Normal).size() == 5);  // still in the table (the cursor skips them)
  ob->apply_removes();
  const auto left = read_all(*ob, Priority::Normal);
  REQUIRE(left.size() == 2);
  CHECK(left.front().first_seq == 4);
  CHECK(ob->stats().removed == 3);
}

TEST_CASE("delivered records waiting for their delete are never evicted as lost", "[outbox][commit][eviction]") {
  test::TempDir dir;
  test::FakeClock clock;
  OutboxOptions o{dir.file("o.db")};
  o.remove_delay = 3600000ms;
  o.max_age_ms = 60'000;
  auto ob = open(o, clock);
  auto a = append_sync(*ob, records(4));
  ob->remove({{a.first_seq, a.last_seq, Priority::Normal}});
  clock.advance(120s);  // past max_age, long before the delete would go on its own: the age check runs
  REQUIRE(test::wait_until([&] { return ob->stats().removed == 4; }, 10s));
  ob->flush();
  CHECK(ob->stats().evicted == 0);
  CHECK(read_all(*ob, Priority::System).empty());  // no gap event names delivered data
}

namespace {

std::vector<std::int64_t> int_column(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  std::vector<std::int64_t> out;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK);
  while (sqlite3_step(st) == SQLITE_ROW) out.push_back(sqlite3_column_int64(st, 0));
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

}  // namespace

TEST_CASE("garbage pages mid-file: every readable record is delivered, the rest named in a gap event",
          "[outbox][corrupt]") {
  test::TempDir dir;
  test::FakeClock clock;
  const auto path = dir.file("o.db");
  std::string store;
  {
    auto ob = open({path}, clock);
    store = ob->store_uuid();
    std::promise<AppendResult> marked;
    ob->append({}, [&](const AppendResult& r) { marked.set_value(r); }, {{"src/file/1", "done", 0}});
    REQUIRE(marked.get_future().get().status == AppendStatus::Committed);
    for (int i = 0; i < 40; ++i) {  // 20,000 readings in records of 5, about 600 pages
      std::vector<NewRecord> batch;
      for (int k = 0; k < 100; ++k) batch.push_back(chunk(5));
      REQUIRE(append_sync(*ob, std::move(batch)).status == AppendStatus::Committed);
    }
  }  // stop() checkpoints everything into the file
  constexpr std::int64_t kReadings = 20000;
  const auto page_size = int_column(path, "PRAGMA page_size").at(0);
  const auto pages = int_column(path, "PRAGMA page_count").at(0);
  const auto leaves = int_column(path, "SELECT pageno FROM dbstat WHERE name='records' AND pagetype='leaf'");
  const std::int64_t first_bad = pages / 2;
  const auto bad_leaves = std::count_if(leaves.begin(), leaves.end(),
                                        [&](std::int64_t p) { return p >= first_bad && p < first_bad + 8; });
  REQUIRE(bad_leaves > 0);  // the damage hits records, not only the index
  test::write_garbage_pages(path, first_bad, 8, page_size);

  auto ob = open({path}, clock);  // the header is fine: nothing is noticed at open
  std::set<std::int64_t> delivered;
  std::int64_t cursor = 0;
  int failed_reads = 0;
  for (int round = 0; round < 1000; ++round) {  // the forwarder's loop: read, deliver, remove
    bool ok = false;
    auto recs = ob->read(Priority::Normal, cursor, std::numeric_limits<std::int64_t>::max(), ReadLimits{500, 1 << 20},
                         &ok);
    if (!ok) {
      ++failed_reads;
      continue;  // read again: the outbox salvaged the file meanwhile
    }
    if (recs.empty()) break;
    std::vector<SeqRange> acked;
    for (const auto& r : recs) {
      for (auto s = r.first_seq; s <= r.last_seq; ++s) CHECK(delivered.insert(s).second);
      acked.push_back({r.first_seq, r.last_seq, r.prio});
    }
    cursor = recs.back().last_seq;
    ob->remove(std::move(acked));
  }
  // The damage is met by a read (which fails once) or, when deletes near it rebalance the tree
  // first, by a commit (retried on the salvaged file): either way the reads never stall on it.
  CHECK(failed_reads <= 2);

  // The unreadable seqs, named: reason corrupt, no priority (it could not be read either).
  std::set<std::int64_t> named;
  int gaps = 0;
  for (const auto& e : read_all(*ob, Priority::System)) {
    const auto v = nlohmann::json::parse(e.body)["value"];
    REQUIRE(v["event"] == "gap");
    CHECK(v["reason"] == "corrupt");
    CHECK_FALSE(v.contains("priority"));
    ++gaps;
    std::int64_t count = 0;
    for (const auto& r : v["ranges"])
      for (auto s = r[0].get<std::int64_t>(); s <= r[1].get<std::int64_t>(); ++s, ++count) CHECK(named.insert(s).second);
    CHECK(v["count"] == count);
    CHECK(e.first_seq > kReadings);  // new seqs, above everything the damaged file gave
  }
  CHECK(gaps == 1);
  CHECK_FALSE(named.empty());
  for (const auto s : named) CHECK(delivered.count(s) == 0);
  std::int64_t missing = 0;
  for (std::int64_t s = 1; s <= kReadings; ++s) missing += delivered.count(s) == 0 && named.count(s) == 0;
  CHECK(missing == 0);  // every seq either delivered or named
  // Only what sat on the damaged leaves is named, not what follows them.
  const double per_leaf = static_cast<double>(kReadings) / static_cast<double>(leaves.size());
  INFO("delivered " << delivered.size() << ", named " << named.size() << ", damaged leaves " << bad_leaves
                    << ", readings per leaf " << per_leaf);
  CHECK(static_cast<double>(named.size()) <= (static_cast<double>(bad_leaves) + 1) * per_leaf * 1.5);
  CHECK(delivered.size() + named.size() == static_cast<std::size_t>(kReadings));

  const auto st = ob->stats();
  CHECK(st.store == store);  // the same store: the IOC's de-duplication by (store, seq) still holds
  const auto marks_kept = ob->marks("src/");  // invariant 12: the readable marks go with the records
  REQUIRE(marks_kept.size() == 1);
  CHECK(marks_kept[0].value == "done");
  CHECK_THAT(st.corruption, Catch::Contains("damaged") && Catch::Contains("salvaged") && Catch::Contains(".corrupt-"));
  CHECK(append_sync(*ob, records(1)).first_seq > kReadings + gaps);
  bool kept = false;
  for (const auto& e : std::filesystem::directory_iterator(dir.path()))
    kept |= e.path().filename().string().rfind("o.db.corrupt-", 0) == 0;
  CHECK(kept);  // the damaged file is kept for recovery by hand
  ob->stop();
  auto again = open({path}, clock);  // the salvaged file is a healthy store
  again->stop();
  CHECK(query_text(path, "PRAGMA quick_check") == "ok");
}

TEST_CASE("marks are committed with their records, survive a reopen, and expire", "[outbox][marks]") {
  test::TempDir dir;
  test::FakeClock clock;
  const auto path = dir.file("o.db");
  {
    auto ob = open({path}, clock);
    std::promise<AppendResult> p;
    ob->append(records(3), [&](const AppendResult& r) { p.set_value(r); },
               {{"a/file/1", "rows 3", 0}, {"a/idem/k", "{\"accepted\":3}", clock.now_ms() + 60'000}, {"b/x", "1", 0}});
    REQUIRE(p.get_future().get().status == AppendStatus::Committed);
    // A mark alone (no records) is an append too.
    std::promise<AppendResult> q;
    ob->append({}, [&](const AppendResult& r) { q.set_value(r); }, {{"a/file/1", "done", 0}});
    const auto r = q.get_future().get();
    CHECK(r.status == AppendStatus::Committed);
    CHECK(r.first_seq == 0);
    CHECK(ob->stats().pending == 3);  // marks are not records
  }
  auto ob = open({path}, clock);
  bool ok = false;
  auto a = ob->marks("a/", &ok);
  CHECK(ok);
  REQUIRE(a.size() == 2);
  CHECK(a[0].key == "a/file/1");
  CHECK(a[0].value == "done");  // replaced by the later append
  CHECK(a[0].first_seq == 0);  // its latest write came with no readings
  CHECK(a[1].key == "a/idem/k");
  CHECK(a[1].first_seq == 1);  // the seqs of the readings it was committed with
  CHECK(a[1].last_seq == 3);
  CHECK(ob->marks("b/").size() == 1);
  CHECK(ob->marks("c/").empty());
  clock.advance(61s);
  a = ob->marks("a/");
  REQUIRE(a.size() == 1);  // the expired one is left out
  CHECK(a[0].key == "a/file/1");
  append_sync(*ob, records(1));  // a commit purges it from the table too
  ob->stop();
  CHECK(int_column(path, "SELECT count(*) FROM marks WHERE key='a/idem/k'").at(0) == 0);
  CHECK(int_column(path, "SELECT count(*) FROM marks").at(0) == 2);
}

TEST_CASE("marks are refused with their records when the append is refused", "[outbox][marks]") {
  test::TempDir dir;
  test::FakeClock clock;
  auto ob = open({dir.file("o.db")}, clock);
  std::promise<AppendResult> p;
  // Out of bounds: refused as a producer bug, nothing stored.
  ob->append(records(2), [&](const AppendResult& r) { p.set_value(r); }, {{"a/k", std::string(70 * 1024, 'x'), 0}});
  CHECK(p.get_future().get().status == AppendStatus::Refused);
  CHECK(ob->marks("a/").empty());
  CHECK(ob->stats().pending == 0);
}

TEST_CASE("a store made before marks existed gets the table at open", "[outbox][marks]") {
  test::TempDir dir;
  test::FakeClock clock;
  const auto path = dir.file("o.db");
  { open({path}, clock); }
  {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, "DROP TABLE marks", nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  }
  auto ob = open({path}, clock);
  std::promise<AppendResult> p;
  ob->append(records(1), [&](const AppendResult& r) { p.set_value(r); }, {{"a/k", "v", 0}});
  REQUIRE(p.get_future().get().status == AppendStatus::Committed);
  CHECK(ob->marks("a/").size() == 1);
}

TEST_CASE("an eviction tells its listener the readings it dropped per source, as its gap event counts them",
          "[outbox][eviction][rollups]") {
  test::TempDir dir;
  test::FakeClock clock;
  OutboxOptions o{dir.file("o.db")};
  o.max_age_ms = 60'000;
  auto ob = open(o, clock);
  std::mutex mu;
  std::map<std::string, std::int64_t> dropped;
  ob->set_on_evict([&](const std::map<std::string, std::int64_t>& per_source) {
    std::lock_guard lk(mu);
    for (const auto& [source, n] : per_source) dropped[source] += n;
  });
  append_sync(*ob, records(3, Priority::Normal, "tram-bom-1"));
  append_sync(*ob, records(2, Priority::Normal, "mot-cua"));
  clock.advance(70s);
  append_sync(*ob, records(1));
  ob->flush();
  REQUIRE(test::wait_until([&] { return ob->stats().evicted == 5; }, 10s));
  std::lock_guard lk(mu);
  CHECK(dropped == std::map<std::string, std::int64_t>{{"mot-cua", 2}, {"tram-bom-1", 3}});
}
