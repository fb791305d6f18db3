// Hourly roll-ups: the tracker's counting on a fake clock (slots expected and missed, stale time,
// uplink time and outages, hours split exactly) and the store's upserts, retention and read-only
// reader.
#include <catch2/catch.hpp>

#include <filesystem>

#include "ops/rollup_store.h"
#include "ops/rollup_tracker.h"
#include "support/fakes.h"
#include "support/support.h"

using namespace ioc_edge;
using namespace std::chrono_literals;

namespace {

// 2025-11-24T16:00:00Z: FakeClock's start is on an hour.
constexpr std::int64_t kHourStart = 1'764'000'000'000;
constexpr std::int64_t kHour = kHourStart / 1000;  // its name in the roll-ups

struct Tracked {
  test::FakeClock clock;
  SourceCounters counters;
  std::chrono::milliseconds every = 10s;
  std::unique_ptr<RollupTracker> tracker;
  RollupDelta total;

  Tracked() { tracker = std::make_unique<RollupTracker>(clock); }
  std::vector<SourceView> views() { return {{"tram-bom-1", every, &counters, nullptr}}; }
  // The pipeline's bookkeeping for a committed poll of `points` good readings measured now.
  void poll(int points = 4) {
    counters.good += static_cast<std::uint64_t>(points);
    counters.last_good_ms = clock.now_ms();
    counters.good_times.add({{clock.now_ms(), clock.now_ms()}});
  }
  void tick(bool up = true) {
    tracker->tick(views(), up);
    total.merge(tracker->take());
  }
  SourceHour hour(std::int64_t h = kHour) { return total.sources[{h, "tram-bom-1"}]; }
};

}  // namespace

TEST_CASE("missed updates between two good readings: round(gap / E) - 1", "[rollups]") {
  CHECK(RollupTracker::missed_between(10'000, 10'000) == 0);
  CHECK(RollupTracker::missed_between(14'999, 10'000) == 0);  // jitter up to E/2 misses nothing
  CHECK(RollupTracker::missed_between(15'000, 10'000) == 1);
  CHECK(RollupTracker::missed_between(20'000, 10'000) == 1);  // one reading skipped
  CHECK(RollupTracker::missed_between(24'999, 10'000) == 1);
  CHECK(RollupTracker::missed_between(70'000, 10'000) == 6);
  CHECK(RollupTracker::missed_between(0, 10'000) == 0);
  CHECK(RollupTracker::missed_between(5'000, 10'000) == 0);
  CHECK(RollupTracker::missed_between(30'000, 0) == 0);
}

TEST_CASE("an hour of a source polled every 10 s with six polls missing", "[rollups]") {
  Tracked t;
  t.tick();  // the source is seen: watching begins on the hour
  for (int s = 1; s <= 3600; ++s) {
    t.clock.advance(1s);
    const bool missing = s > 1000 && s <= 1060;  // 1010 .. 1060: six polls
    if (s % 10 == 0 && !missing) t.poll();
    if (s == 2000) ++t.counters.bad;
    t.tick();
  }
  const auto h = t.hour();
  CHECK(h.expected_milli == 360'000);  // 3600 s / 10 s
  CHECK(h.missed == 6);
  CHECK(h.good == 4 * (359 - 6));  // polls at 10 .. 3590 s; the one at 3600 s is the next hour's
  CHECK(h.bad == 1);
  CHECK(h.stale_ms == 0);
  CHECK(t.total.gateway[kHour].run_ms == 3'600'000);
  CHECK(t.total.gateway[kHour].up_ms == 3'600'000);
  const auto next = t.hour(kHour + 3600);
  CHECK(next.good == 4);
  CHECK(next.expected_milli == 0);
}

TEST_CASE("readings with jitter, late batches and several in one tick miss nothing", "[rollups]") {
  Tracked t;
  t.every = 1s;
  t.tick();
  // Readings every second +-200 ms, committed two seconds at a time (commit_interval 2 s).
  std::int64_t ts = t.clock.now_ms();
  for (int s = 1; s <= 600; ++s) {
    t.clock.advance(1s);
    if (s % 2 == 0) {
      for (int k = 0; k < 2; ++k) {
        ts += 1000;
        const auto jitter = (s / 2 + k) % 3 == 0 ? 200 : (s / 2 + k) % 3 == 1 ? -200 : 0;
        t.counters.good_times.add({{ts + jitter, ts + jitter}});
        ++t.counters.good;
      }
    }
    t.tick();
  }
  CHECK(t.hour().expected_milli == 600'000);
  CHECK(t.hour().missed == 0);
  CHECK(t.hour().good == 600);
}

TEST_CASE("a source that stops: provisional misses as time passes, settled when it returns", "[rollups]") {
  Tracked t;
  t.tick();
  for (int s = 1; s <= 100; ++s) {
    t.clock.advance(1s);
    if (s % 10 == 0) t.poll();
    t.tick();
  }
  for (int s = 101; s <= 400; ++s) {  // silent for 300 s
    t.clock.advance(1s);
    t.tick();
  }
  // Counted 15 s behind (kArrivalLag): round((300 - 15) / 10) - 1 = 28 so far.
  CHECK(t.hour().missed == 28);
  t.clock.advance(10s);  // back at 410: the gap 100 -> 410 missed round(31) - 1 = 30
  t.poll();
  t.tick();
  CHECK(t.hour().missed == 30);
  SECTION("a late batch of old readings (before the last one seen) changes nothing") {
    t.counters.good_times.add({{kHourStart + 200'000, kHourStart + 300'000}});
    t.clock.advance(1s);
    t.tick();
    CHECK(t.hour().missed == 30);
  }
}

TEST_CASE("a never-good source misses from the start of watching; a source not watched counts readings only",
          "[rollups]") {
  Tracked t;
  t.tick();
  for (int s = 1; s <= 115; ++s) {
    t.clock.advance(1s);
    t.tick();
  }
  CHECK(t.hour().missed == 9);  // round((115 - 15) / 10) - 1
  Tracked u;
  u.every = 0ms;
  u.tick();
  for (int s = 1; s <= 100; ++s) {
    u.clock.advance(1s);
    u.poll();
    u.tick();
  }
  CHECK(u.hour().expected_milli == 0);
  CHECK(u.hour().missed == 0);
  CHECK(u.hour().good == 400);
}

TEST_CASE("an interval across an hour is split exactly", "[rollups]") {
  test::FakeClock clock;
  clock.wall_ms_ = kHourStart - 30'000;
  RollupTracker tracker(clock);
  SourceCounters c;
  std::vector<SourceView> v{{"tram-bom-1", 10s, &c, nullptr}};
  tracker.tick(v, true);
  clock.advance(60s);
  tracker.tick(v, true);
  auto d = tracker.take();
  CHECK(d.gateway[kHour - 3600].run_ms == 30'000);
  CHECK(d.gateway[kHour].run_ms == 30'000);
  CHECK(d.gateway[kHour - 3600].up_ms == 30'000);
  CHECK(d.gateway[kHour].up_ms == 30'000);
  CHECK(d.sources[{kHour - 3600, "tram-bom-1"}].expected_milli == 3000);
  CHECK(d.sources[{kHour, "tram-bom-1"}].expected_milli == 3000);
  CHECK(tracker.take().empty());  // take() starts afresh
}

TEST_CASE("stale time and the stale period follow the watch's flag", "[rollups]") {
  Tracked t;
  t.every = 5s;
  t.tick();
  std::int64_t since = 0;
  for (int s = 1; s <= 60; ++s) {
    t.clock.advance(1s);
    if (s == 10) {  // what the stale watch does at its tick
      t.counters.stale = true;
      t.counters.stale_since_ms = since = t.clock.now_ms();
    }
    if (s == 40) t.counters.stale = false;
    t.tick();
  }
  CHECK(t.hour().stale_ms == 30'000);
  REQUIRE(t.total.stale.size() == 1);
  CHECK(t.total.stale.begin()->first == std::pair<std::string, std::int64_t>{"tram-bom-1", since});
  CHECK(t.total.stale.begin()->second == since + 30'000);
  SECTION("removed while stale: the period ends then") {
    t.counters.stale = true;
    t.counters.stale_since_ms = t.clock.now_ms();
    const auto again = t.clock.now_ms();
    t.tick();
    t.clock.advance(5s);
    t.tracker->tick({}, true);
    t.total.merge(t.tracker->take());
    CHECK(t.total.stale[{"tram-bom-1", again}] == again + 5000);
  }
}

TEST_CASE("uplink: connected time, outages of 10 s or more, the longest", "[rollups]") {
  Tracked t;
  const auto up_at = [](int s) { return !(s < 2 || (s > 100 && s <= 130) || (s > 200 && s <= 205)); };
  t.tick(false);
  std::int64_t expected_up = 0;
  for (int s = 1; s <= 300; ++s) {
    t.clock.advance(1s);
    if (up_at(s - 1)) expected_up += 1000;
    t.tick(up_at(s));
  }
  const auto g = t.total.gateway[kHour];
  CHECK(g.run_ms == 300'000);
  CHECK(g.up_ms == expected_up);
  CHECK(g.outages == 1);                  // the connect at start (2 s) and a 6 s drop are not outages
  CHECK(g.longest_outage_ms == 31'000);   // last seen up at 100 s, up again at 131 s
}

TEST_CASE("an outage that runs across hours is counted once, in the hour it began, with its length so far",
          "[rollups]") {
  Tracked t;
  t.clock.wall_ms_ = kHourStart - 20'000;
  t.tracker = std::make_unique<RollupTracker>(t.clock);
  t.tick(true);
  for (int s = 1; s <= 80; ++s) {
    t.clock.advance(1s);
    t.tick(s <= 5 || s > 70);
  }
  const auto g = t.total.gateway[kHour - 3600];
  CHECK(g.outages == 1);
  CHECK(g.longest_outage_ms == 66'000);  // from 5 s to 71 s
  CHECK(t.total.gateway[kHour].outages == 0);
}

TEST_CASE("evicted readings count as dropped in the hour of the eviction; replaced sources start from zero",
          "[rollups]") {
  Tracked t;
  t.tick();
  t.poll(3);
  t.clock.advance(1s);
  t.tick();
  t.tracker->note_dropped({{"tram-bom-1", 500}, {"_gateway", 2}});
  SourceCounters replacement;
  replacement.good = 7;
  t.clock.advance(1s);
  t.tracker->tick({{"tram-bom-1", 10s, &replacement, nullptr}}, true);
  t.total.merge(t.tracker->take());
  CHECK(t.hour().dropped == 500);
  CHECK(t.hour().good == 3 + 7);
  CHECK(t.total.sources[{kHour, "_gateway"}].dropped == 2);
}

TEST_CASE("the store adds deltas up, keeps the longest outage and the latest until, and reads back", "[rollups]") {
  test::TempDir dir;
  test::FakeClock clock;
  const auto path = dir.file("rollups.db");
  std::string error;
  auto store = RollupStore::open({path}, clock, error);
  REQUIRE(store);
  RollupDelta a;
  a.sources[{kHour, "tram-bom-1"}] = {10, 1, 0, 500, 360'000, 2};
  a.sources[{kHour, "mot-cua"}] = {4, 0, 0, 0, 0, 0};
  a.gateway[kHour] = {1'800'000, 1'700'000, 1, 50'000};
  a.stale[{"tram-bom-1", kHourStart + 1000}] = kHourStart + 2000;
  RollupDelta b;
  b.sources[{kHour, "tram-bom-1"}] = {5, 0, 100, 500, 0, -1};
  b.gateway[kHour] = {1'800'000, 1'800'000, 0, 20'000};
  b.stale[{"tram-bom-1", kHourStart + 1000}] = kHourStart + 9000;
  store->submit(a);
  store->submit(b);
  REQUIRE(store->flush());

  auto reader = RollupReader::open(path, error);
  REQUIRE(reader);
  RollupTotals t;
  REQUIRE(reader->read(kHourStart, kHourStart + 3'600'000, t, error));
  REQUIRE(t.sources.size() == 2);
  CHECK(t.sources[0].name == "mot-cua");
  CHECK(t.sources[1].name == "tram-bom-1");
  CHECK(t.sources[1].sum == SourceHour{15, 1, 100, 1000, 360'000, 1});
  CHECK(t.gateway == GatewayHour{3'600'000, 3'500'000, 1, 50'000});
  CHECK(t.gateway_hours == 1);
  CHECK(t.first_hour == kHour);
  REQUIRE(t.stale.size() == 1);
  CHECK(t.stale[0].until_ms == kHourStart + 9000);
  // The hour after holds nothing.
  REQUIRE(reader->read(kHourStart + 3'600'000, kHourStart + 7'200'000, t, error));
  CHECK(t.gateway_hours == 0);
  CHECK(t.sources.empty());
  store->stop();
}

TEST_CASE("roll-ups older than the retention are deleted; the reader never creates a file", "[rollups]") {
  test::TempDir dir;
  test::FakeClock clock;
  const auto path = dir.file("rollups.db");
  std::string error;
  {
    auto store = RollupStore::open({path}, clock, error);
    REQUIRE(store);
    RollupDelta d;
    const std::int64_t old_hour = kHour - 401 * 86400, kept_hour = kHour - 399 * 86400;
    d.sources[{old_hour, "tram-bom-1"}] = {1, 0, 0, 0, 0, 0};
    d.gateway[old_hour] = {1000, 0, 0, 0};
    d.sources[{kept_hour, "tram-bom-1"}] = {2, 0, 0, 0, 0, 0};
    d.gateway[kept_hour] = {1000, 0, 0, 0};
    d.stale[{"tram-bom-1", old_hour * 1000}] = old_hour * 1000 + 5000;
    store->submit(d);
    REQUIRE(store->flush());
  }
  {
    auto store = RollupStore::open({path}, clock, error);  // purges when its thread first runs
    REQUIRE(store);
    REQUIRE(store->flush());
  }
  auto reader = RollupReader::open(path, error);
  REQUIRE(reader);
  RollupTotals t;
  REQUIRE(reader->read(0, kHourStart, t, error));
  CHECK(t.gateway_hours == 1);
  REQUIRE(t.sources.size() == 1);
  CHECK(t.sources[0].sum.good == 2);
  CHECK(t.stale.empty());

  // The store was closed cleanly: reading created no -wal or -shm (they would be left owned by
  // whoever ran the report).
  CHECK_FALSE(std::filesystem::exists(path + "-wal"));
  CHECK_FALSE(std::filesystem::exists(path + "-shm"));

  const auto missing = dir.file("nothing-here.db");
  CHECK_FALSE(RollupReader::open(missing, error));
  CHECK(error.find("no roll-ups at " + missing) != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(missing));
}
