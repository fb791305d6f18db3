// The outbox's invariants (daemon/core/outbox.h), against a real SQLite file.
#include <catch2/catch.hpp>

#include <future>
#include <set>

#include <nlohmann/json.hpp>
#include <sqlite3.h>

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
  CHECK(low.front().seq == 1);
  CHECK(low.back().seq == 9);
  CHECK(std::is_sorted(low.begin(), low.end(), [](auto& a, auto& b) { return a.seq < b.seq; }));
  auto high = read_all(*ob, Priority::High);
  REQUIRE(high.size() == 3);
  CHECK(high.front().seq == 4);
  // after/before/max bound the read
  auto mid = ob->read(Priority::Low, 2, 8, 100, 1 << 20);
  REQUIRE(mid.size() == 2);
  CHECK(mid[0].seq == 3);
  CHECK(mid[1].seq == 7);
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
  for (auto& r : read_all(*ob, Priority::Normal)) left.insert(r.seq);
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
  CHECK(st.oldest_at_ms == clock.now_ms());
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
    for (auto& r : read_all(*ob, static_cast<Priority>(p))) present.insert(r.seq);
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
