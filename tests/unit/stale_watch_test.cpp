// The stale-source watch on a fake clock: stale after 3 x expected_every without a good reading,
// recovered when one comes, bad readings do not count, a source that never had one, sources that
// come and go.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "ops/stale_watch.h"
#include "support/fakes.h"

using namespace ioc_edge;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

struct Watched {
  test::FakeClock clock;
  SourceCounters counters;
  test::CapturingSink sink;
  StaleWatch watch{clock};
  std::chrono::milliseconds every = 5s;

  std::vector<SourceView> views() { return {{"tram-bom-1", every, &counters, &sink}}; }
  // One tick a second for `d`.
  void run_for(std::chrono::milliseconds d) {
    for (auto t = 0ms; t < d; t += 1s) {
      clock.advance(1s);
      watch.tick(views());
    }
  }
  // The pipeline's bookkeeping when a batch with a good reading is committed.
  void good() {
    ++counters.good;
    counters.last_good_ms = clock.now_ms();
  }
  std::vector<std::string> event_names() {
    std::lock_guard lk(sink.mu);
    std::vector<std::string> out;
    for (const auto& e : sink.events) out.push_back(e.point);
    return out;
  }
  json event_value(std::size_t i) {
    std::lock_guard lk(sink.mu);
    return json::parse(std::get<JsonText>(sink.events.at(i).value).text);
  }
};

}  // namespace

TEST_CASE("stale after 3 x expected_every without a good reading, recovered when one comes", "[stale]") {
  Watched w;
  w.watch.tick(w.views());  // watching begins
  w.good();
  w.run_for(14s);  // 14 s since the good reading: not yet
  CHECK(w.event_names().empty());
  CHECK_FALSE(w.counters.stale);
  w.run_for(1s);  // 15 s = 3 x 5 s
  REQUIRE(w.event_names() == std::vector<std::string>{"source_stale"});
  CHECK(w.counters.stale);
  CHECK(w.counters.stale_since_ms == w.clock.now_ms());
  const auto stale = w.event_value(0);
  CHECK(stale["event"] == "source_stale");
  CHECK(stale["expected_every_s"] == 5.0);
  CHECK(stale["silent_s"] == 15.0);
  CHECK(stale["last_good"] == format_rfc3339_ms(w.clock.now_ms() - 15000));
  const auto stale_at = w.clock.now_ms();

  w.run_for(60s);  // one event per transition
  CHECK(w.event_names().size() == 1);

  w.good();
  w.run_for(1s);
  REQUIRE(w.event_names() == std::vector<std::string>{"source_stale", "source_recovered"});
  CHECK_FALSE(w.counters.stale);
  CHECK(w.counters.stale_since_ms == 0);
  const auto rec = w.event_value(1);
  CHECK(rec["event"] == "source_recovered");
  CHECK(rec["stale_s"] == 61.0);
  CHECK(rec["stale_since"] == format_rfc3339_ms(stale_at));
  CHECK(rec["expected_every_s"] == 5.0);

  // Events are ordinary readings for the event topic.
  std::lock_guard lk(w.sink.mu);
  CHECK(w.sink.events[0].ts_ms == stale_at);
  CHECK(w.sink.events[0].quality == Quality::Good);
}

TEST_CASE("good readings keep a source fresh; the time of the last one counts, not the tick", "[stale]") {
  Watched w;
  w.watch.tick(w.views());
  for (int i = 0; i < 20; ++i) {  // one every 4 s for 80 s
    w.run_for(4s);
    w.good();
  }
  w.run_for(1s);
  CHECK(w.event_names().empty());
  // A reading stored half a second into a tick interval: 15 s later, counted from it.
  w.clock.advance(500ms);
  w.good();
  w.clock.advance(500ms);
  w.watch.tick(w.views());
  w.run_for(14s);  // 14.5 s since the reading
  CHECK(w.event_names().empty());
  w.run_for(1s);
  CHECK(w.event_names() == std::vector<std::string>{"source_stale"});
  CHECK(w.event_value(0)["silent_s"] == 15.5);
}

TEST_CASE("bad readings do not keep a source fresh", "[stale]") {
  Watched w;
  w.watch.tick(w.views());
  w.good();
  for (int i = 0; i < 15; ++i) {
    w.clock.advance(1s);
    ++w.counters.bad;  // the device answers with errors every second
    w.counters.last_ok_ms = w.clock.now_ms();
    w.watch.tick(w.views());
  }
  CHECK(w.event_names() == std::vector<std::string>{"source_stale"});
}

TEST_CASE("a source that never had a good reading is stale 3 x expected_every after the watch began", "[stale]") {
  Watched w;
  for (int i = 0; i < 10; ++i) {  // not yet listed: not watched
    w.clock.advance(1s);
    w.watch.tick({});
  }
  w.watch.tick(w.views());
  w.watch.tick({});  // a tick without it (removed), then back: it starts afresh
  w.watch.tick(w.views());
  w.run_for(14s);
  CHECK(w.event_names().empty());
  w.run_for(1s);
  REQUIRE(w.event_names() == std::vector<std::string>{"source_stale"});
  CHECK(w.event_value(0)["last_good"].is_null());
  CHECK(w.event_value(0)["silent_s"] == 15.0);
}

TEST_CASE("sources that are not watched, removed or replaced", "[stale]") {
  Watched w;
  SECTION("expected_every 0: never stale") {
    w.every = 0ms;
    w.run_for(1h);
    CHECK(w.event_names().empty());
    CHECK_FALSE(w.counters.stale);
  }
  SECTION("removed while stale: forgotten without an event; watching stops clears the flag") {
    w.run_for(16s);
    REQUIRE(w.counters.stale);
    w.every = 0ms;  // a reload turned watching off
    w.watch.tick(w.views());
    CHECK_FALSE(w.counters.stale);
    w.watch.tick({});
    w.every = 5s;
    w.run_for(15s);  // back (from the first of these ticks), measured afresh
    CHECK(w.event_names() == std::vector<std::string>{"source_stale"});
    w.run_for(1s);
    CHECK(w.event_names() == std::vector<std::string>{"source_stale", "source_stale"});
  }
  SECTION("replaced (new counters): starts fresh, the old counters are never touched again") {
    w.run_for(16s);
    REQUIRE(w.counters.stale);
    SourceCounters replacement;
    std::vector<SourceView> v{{"tram-bom-1", 5s, &replacement, &w.sink}};
    w.watch.tick(v);
    for (int i = 0; i < 14; ++i) {
      w.clock.advance(1s);
      w.watch.tick(v);
    }
    CHECK_FALSE(replacement.stale);
    CHECK(w.event_names().size() == 1);
    w.clock.advance(1s);
    w.watch.tick(v);
    CHECK(replacement.stale);
    CHECK(w.event_names().size() == 2);
  }
}

TEST_CASE("a wall clock that steps neither makes a source stale nor hides it", "[stale]") {
  Watched w;
  w.watch.tick(w.views());
  w.good();
  w.run_for(5s);
  w.clock.wall_ms_ += 3'600'000;  // NTP sets the clock an hour forward
  w.run_for(1s);
  CHECK(w.event_names().empty());
  w.good();  // stored at the new wall time
  w.run_for(14s);
  CHECK(w.event_names().empty());
  w.run_for(1s);
  CHECK(w.event_names() == std::vector<std::string>{"source_stale"});
}
