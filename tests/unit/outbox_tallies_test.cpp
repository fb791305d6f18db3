// Outbox invariant 13: the status figures per priority (readings, payload bytes, oldest age) are
// kept without a scan, exactly, across restarts, and a store without byte tallies says "unknown"
// rather than a wrong figure.
#include <catch2/catch.hpp>

#include <future>
#include <map>

#include <sqlite3.h>

#include "core/gateway_events.h"
#include "core/outbox.h"
#include "support/fakes.h"
#include "support/support.h"

using namespace ioc_edge;
using namespace std::chrono_literals;

namespace {

constexpr int kLow = static_cast<int>(Priority::Low);
constexpr int kNormal = static_cast<int>(Priority::Normal);
constexpr int kHigh = static_cast<int>(Priority::High);
constexpr int kSystem = static_cast<int>(Priority::System);

std::vector<NewRecord> records(std::size_t n, Priority p, std::size_t body_size) {
  std::vector<NewRecord> out;
  for (std::size_t i = 0; i < n; ++i) out.push_back({p, Kind::Data, "s", std::string(body_size, 'a')});
  return out;
}

void append_sync(Outbox& ob, std::vector<NewRecord> recs) {
  std::promise<AppendResult> p;
  auto f = p.get_future();
  ob.append(std::move(recs), [&](const AppendResult& r) { p.set_value(r); });
  REQUIRE(f.get().status == AppendStatus::Committed);
}

std::unique_ptr<Outbox> open(const OutboxOptions& o, const Clock& clock) {
  std::string err;
  auto ob = Outbox::open(o, clock, err);
  INFO(err);
  REQUIRE(ob);
  return ob;
}

// What a scan of the table says: payload bytes per priority.
std::map<int, std::int64_t> bytes_on_disk(const std::string& path) {
  std::map<int, std::int64_t> out;
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "SELECT prio, sum(length(body)) FROM records GROUP BY prio", -1, &st, nullptr) ==
          SQLITE_OK);
  while (sqlite3_step(st) == SQLITE_ROW) out[sqlite3_column_int(st, 0)] = sqlite3_column_int64(st, 1);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

void exec(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  char* msg = nullptr;
  const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &msg);
  INFO((msg ? msg : ""));
  sqlite3_free(msg);
  sqlite3_close(db);
  REQUIRE(rc == SQLITE_OK);
}

void check_matches_disk(const Outbox& ob, const std::string& path) {
  const auto truth = bytes_on_disk(path);
  const auto st = ob.stats();
  for (int p = 0; p < kPriorityLevels; ++p) {
    INFO("priority " << p);
    CHECK(st.bytes_by_prio[p] == (truth.count(p) ? truth.at(p) : 0));
  }
}

}  // namespace

TEST_CASE("bytes and oldest age per priority follow appends, deletes and holds, and survive a restart",
          "[outbox][tallies]") {
  test::TempDir dir;
  test::FakeClock clock;
  const auto path = dir.file("o.db");
  {
    auto ob = open({path}, clock);
    auto st = ob->stats();
    for (int p = 0; p < kPriorityLevels; ++p) {
      CHECK(st.bytes_by_prio[p] == 0);  // a new store knows it holds nothing
      CHECK(st.oldest_age_ms_by_prio[p] == 0);
    }
    append_sync(*ob, records(3, Priority::High, 50));  // seqs 1..3
    clock.advance(10s);
    append_sync(*ob, records(2, Priority::Low, 100));  // seqs 4..5
    ob->flush();
    clock.advance(5s);
    st = ob->stats();
    CHECK(st.bytes_by_prio[kHigh] == 150);
    CHECK(st.bytes_by_prio[kLow] == 200);
    CHECK(st.bytes_by_prio[kNormal] == 0);
    CHECK(st.oldest_age_ms_by_prio[kHigh] == 15000);
    CHECK(st.oldest_age_ms_by_prio[kLow] == 5000);
    CHECK(st.oldest_age_ms_by_prio[kNormal] == 0);
    CHECK(st.oldest_age_ms == 15000);

    ob->remove({{1, 1, Priority::High}});
    ob->flush();
    st = ob->stats();
    CHECK(st.bytes_by_prio[kHigh] == 100);
    CHECK(st.oldest_age_ms_by_prio[kHigh] == 15000);  // seqs 2 and 3 came with seq 1

    // A refusal: the rejected event is new System data; the held readings still count.
    Refusal refusal{"ioc/p/s/data/s", 0x87, "not authorized", {{4, 4, Priority::Low}}, 1, "s"};
    ob->hold({{4, 4, Priority::Low}}, refusal.topic, "not authorized", rejected_event(refusal, clock.now_ms()));
    ob->flush();
    st = ob->stats();
    CHECK(st.bytes_by_prio[kLow] == 200);
    CHECK(st.bytes_by_prio[kSystem] > 0);
    check_matches_disk(*ob, path);

    ob->remove({{2, 3, Priority::High}});
    ob->flush();
    st = ob->stats();
    CHECK(st.bytes_by_prio[kHigh] == 0);
    CHECK(st.oldest_age_ms_by_prio[kHigh] == 0);
    check_matches_disk(*ob, path);
  }
  auto ob = open({path}, clock);
  check_matches_disk(*ob, path);
  CHECK(ob->stats().bytes_by_prio[kLow] == 200);
}

TEST_CASE("delivered readings whose delete waits leave the bytes with the count", "[outbox][tallies]") {
  test::TempDir dir;
  test::FakeClock clock;
  OutboxOptions o{dir.file("o.db")};
  o.remove_delay = 10s;  // deletes wait for company (invariant 9)
  auto ob = open(o, clock);
  append_sync(*ob, records(4, Priority::High, 50));
  ob->flush();
  ob->remove({{1, 2, Priority::High}});
  auto st = ob->stats();
  CHECK(st.pending_by_prio[kHigh] == 2);
  CHECK(st.bytes_by_prio[kHigh] == 100);
  ob->remove({{3, 4, Priority::High}});
  st = ob->stats();
  CHECK(st.pending_by_prio[kHigh] == 0);
  CHECK(st.bytes_by_prio[kHigh] == 0);
  ob->flush();
  CHECK(ob->stats().bytes_by_prio[kHigh] == 0);
}

TEST_CASE("eviction keeps the byte tallies exact", "[outbox][tallies][eviction]") {
  test::TempDir dir;
  test::FakeClock clock;
  const auto path = dir.file("o.db");
  OutboxOptions o{path};
  o.max_size = 1 << 20;
  auto ob = open(o, clock);
  append_sync(*ob, records(100, Priority::High, 1000));
  for (int i = 0; i < 20; ++i) append_sync(*ob, records(100, Priority::Low, 1000));
  ob->flush();
  const auto st = ob->stats();
  REQUIRE(st.evicted > 0);
  CHECK(st.bytes_by_prio[kSystem] > 0);  // the gap events
  check_matches_disk(*ob, path);
}

TEST_CASE("a store without byte tallies shows them as unknown until the priority drains", "[outbox][tallies]") {
  test::TempDir dir;
  test::FakeClock clock;
  const auto path = dir.file("o.db");
  {
    auto ob = open({path}, clock);
    append_sync(*ob, records(5, Priority::Normal, 40));  // seqs 1..5
    append_sync(*ob, records(2, Priority::Low, 40));     // seqs 6..7
  }
  SECTION("made before the tallies existed") { exec(path, "DELETE FROM meta WHERE key LIKE 'bytes%'"); }
  SECTION("written by an older version since (the counts moved without the tallies)") {
    exec(path, "UPDATE meta SET value = value + 1 WHERE key = 'count.1';"
               "INSERT INTO records(seq, prio, kind, at, source, body) VALUES(8, 1, 0, 0, 's', 'x');"
               "UPDATE meta SET value = 8 WHERE key = 'seq'");
    exec(path, "DELETE FROM meta WHERE key IN ('bytes.0', 'bytes_at.0')");
  }
  auto ob = open({path}, clock);
  auto st = ob->stats();
  CHECK(st.bytes_by_prio[kNormal] == -1);
  CHECK(st.bytes_by_prio[kLow] == -1);
  CHECK(st.bytes_by_prio[kHigh] == 0);  // empty: known
  append_sync(*ob, records(1, Priority::Normal, 40));
  ob->flush();
  CHECK(ob->stats().bytes_by_prio[kNormal] == -1);  // still unknown: never a wrong figure

  // Drained: the tally restarts at zero and is exact from then on.
  const auto last = ob->stats().last_seq;
  ob->remove({{1, last, Priority::Normal}});
  ob->flush();
  CHECK(ob->stats().pending_by_prio[kNormal] == 0);
  CHECK(ob->stats().bytes_by_prio[kNormal] == 0);
  append_sync(*ob, records(2, Priority::Normal, 40));
  ob->flush();
  CHECK(ob->stats().bytes_by_prio[kNormal] == 80);
  CHECK(ob->stats().bytes_by_prio[kLow] == -1);
  ob.reset();
  auto again = open({path}, clock);
  CHECK(again->stats().bytes_by_prio[kNormal] == 80);
  CHECK(again->stats().bytes_by_prio[kLow] == -1);
}
