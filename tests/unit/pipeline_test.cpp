// The pipeline between a source and the outbox (daemon/core/pipeline.h), with a real outbox.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <future>

#include <nlohmann/json.hpp>

#include "core/envelope.h"
#include "core/pipeline.h"
#include "support/fakes.h"
#include "support/support.h"

using namespace ioc_edge;
using namespace std::chrono_literals;

namespace {

struct Rig {
  test::TempDir dir;
  test::FakeClock clock;
  std::unique_ptr<Outbox> outbox;
  SourceCounters counters;
  std::unique_ptr<SourcePipeline> pipeline;

  explicit Rig(PipelineLimits limits) {
    std::string err;
    OutboxOptions o{dir.file("o.db")};
    o.sync_full = false;
    outbox = Outbox::open(o, clock, err);
    REQUIRE(outbox);
    pipeline = std::make_unique<SourcePipeline>(*outbox, "dong-ho", Priority::Normal, counters, limits, clock);
  }
  SinkResult push(std::vector<Reading> readings) {
    std::promise<SinkResult> p;
    auto f = p.get_future();
    pipeline->push(std::move(readings), [&](const SinkResult& r) { p.set_value(r); });
    return f.get();
  }
  std::vector<Record> stored(Priority prio = Priority::Normal) {
    return outbox->read(prio, 0, std::numeric_limits<std::int64_t>::max(), 1'000'000, 1ull << 40);
  }
};

std::vector<Reading> readings(std::size_t n, std::size_t name_size = 8) {
  std::vector<Reading> out;
  for (std::size_t i = 0; i < n; ++i) {
    Reading r;
    r.point = std::string(name_size, 'p') + std::to_string(i);
    r.ts_ms = 1795903799500;
    r.value = static_cast<double>(i);
    out.push_back(std::move(r));
  }
  return out;
}

std::size_t lines(const std::string& body) { return static_cast<std::size_t>(std::count(body.begin(), body.end(), '\n')) + 1; }

}  // namespace

TEST_CASE("a batch becomes records of at most batch_max_readings, with consecutive seqs", "[pipeline]") {
  Rig rig({500, 1 << 20});
  const auto res = rig.push(readings(1200));
  REQUIRE(res.status == SinkStatus::Stored);
  CHECK(res.first_seq == 1);
  CHECK(res.last_seq == 1200);
  const auto recs = rig.stored();
  REQUIRE(recs.size() == 3);
  CHECK(recs[0].count() == 500);
  CHECK(recs[1].count() == 500);
  CHECK(recs[2].count() == 200);
  CHECK(recs[2].last_seq == 1200);
  for (const auto& r : recs) CHECK(lines(r.body) == r.count());
  // Each line is the reading in order: the 501st reading opens the second record.
  const auto first_of_second = nlohmann::json::parse(recs[1].body.substr(0, recs[1].body.find('\n')));
  CHECK(first_of_second["point"] == "pppppppp500");
  CHECK(rig.counters.stored == 1200);
  CHECK(rig.counters.produced == 1200);
}

TEST_CASE("a record stays within one message; a reading too large for any message refuses its batch",
          "[pipeline]") {
  Rig rig({500, 1000});
  auto batch = readings(40);  // ~100 bytes each
  const auto res = rig.push(std::move(batch));
  REQUIRE(res.status == SinkStatus::Stored);
  CHECK(res.last_seq - res.first_seq + 1 == 40);
  std::size_t total = 0;
  for (const auto& r : rig.stored()) {
    CHECK(lines(r.body) == r.count());
    CHECK(record_message_bytes(Kind::Data, r.body.size(), r.count()) <= 1000);
    total += r.count();
  }
  CHECK(total == 40);

  auto big = readings(5);
  big[3].value = std::string(1500, 'x');  // larger than a message may hold on its own
  const auto refused = rig.push(std::move(big));
  CHECK(refused.status == SinkStatus::Invalid);
  CHECK_THAT(refused.error, Catch::Contains("reading of point \"pppppppp3\" takes"));
  CHECK_THAT(refused.error, Catch::Contains("batch_max_bytes"));
  rig.outbox->flush();
  CHECK(rig.outbox->stats().pending == 40);  // nothing of that batch was stored
  CHECK(rig.counters.errors == 1);
}

TEST_CASE("a blob is stored whole up to blob_max_bytes and refused above it", "[pipeline][blob]") {
  Rig rig({500, 1000, 4096});
  std::promise<SinkResult> p1, p2;
  Blob ok{"snapshot", 1795903799500, "image/jpeg", std::string(4096, '\xff')};
  rig.pipeline->blob(ok, [&](const SinkResult& r) { p1.set_value(r); });
  const auto stored = p1.get_future().get();
  REQUIRE(stored.status == SinkStatus::Stored);
  CHECK(stored.first_seq == stored.last_seq);
  CHECK(rig.stored(Priority::Normal).empty());  // blobs go below telemetry by default
  const auto recs = rig.stored(Priority::Low);
  REQUIRE(recs.size() == 1);
  CHECK(recs[0].kind == Kind::Blob);
  CHECK(recs[0].body == std::string(4096, '\xff'));
  Blob big{"snapshot", 1795903799500, "image/jpeg", std::string(4097, 'x')};
  rig.pipeline->blob(big, [&](const SinkResult& r) { p2.set_value(r); });
  const auto refused = p2.get_future().get();
  CHECK(refused.status == SinkStatus::Invalid);
  CHECK_THAT(refused.error, Catch::Contains("larger than [uplink] blob_max_bytes"));
}

TEST_CASE("readings pushed under a device's name are stored under the source's own, each naming its device",
          "[pipeline][push_as]") {
  Rig rig({500, 1 << 20});
  std::promise<SinkResult> p1, p2, p3;
  rig.pipeline->push_as("phong-hop", Kind::Data, readings(2), [&](const SinkResult& r) { p1.set_value(r); });
  REQUIRE(p1.get_future().get().status == SinkStatus::Stored);
  rig.pipeline->push_as("kho", Kind::Data, readings(1), [&](const SinkResult& r) { p2.set_value(r); });
  REQUIRE(p2.get_future().get().status == SinkStatus::Stored);
  const auto recs = rig.stored();
  REQUIRE(recs.size() == 2);
  for (const auto& rec : recs) CHECK(rec.source == "dong-ho");  // one topic, so one message for both
  CHECK(recs[0].body.find("\"source\":\"phong-hop\"") != std::string::npos);
  CHECK(recs[1].body.find("\"source\":\"kho\"") != std::string::npos);
  CHECK(recs[1].body.find("dong-ho") == std::string::npos);
  rig.pipeline->push_as("bad name", Kind::Data, readings(1), [&](const SinkResult& r) { p3.set_value(r); });
  const auto refused = p3.get_future().get();
  CHECK(refused.status == SinkStatus::Invalid);
  CHECK_THAT(refused.error, Catch::Contains("source name \"bad name\""));
}

TEST_CASE("an invalid reading refuses its batch with the reason; nothing of it is stored", "[pipeline]") {
  Rig rig({500, 1 << 20});
  auto batch = readings(3);
  batch[1].unit = "\xC3\x28";  // invalid UTF-8
  const auto res = rig.push(std::move(batch));
  CHECK(res.status == SinkStatus::Invalid);
  CHECK_THAT(res.error, Catch::Contains("unit of point \"pppppppp1\" is not valid UTF-8"));
  rig.outbox->flush();
  CHECK(rig.outbox->stats().pending == 0);
  CHECK(rig.counters.errors == 1);
  CHECK_THAT(rig.counters.last_error().first, Catch::Contains("rejected a batch of 3 readings"));
}

TEST_CASE("a value that is not a finite number is stored as a bad reading", "[pipeline]") {
  Rig rig({500, 1 << 20});
  auto batch = readings(1);
  batch[0].value = std::nan("");
  REQUIRE(rig.push(std::move(batch)).status == SinkStatus::Stored);
  const auto j = nlohmann::json::parse(rig.stored().at(0).body);
  CHECK(j["quality"] == "bad");
  CHECK(j["value"].is_null());
  CHECK(j["error"] == "not a finite number");
}

TEST_CASE("readings stored while the clock is not synchronized say so", "[pipeline][clock]") {
  Rig rig({500, 1 << 20});
  rig.clock.synced_ = false;
  REQUIRE(rig.push(readings(2)).status == SinkStatus::Stored);
  rig.clock.synced_ = true;
  REQUIRE(rig.push(readings(1)).status == SinkStatus::Stored);
  const auto recs = rig.stored();
  REQUIRE(recs.size() == 2);
  const auto nl = recs[0].body.find('\n');
  CHECK(nlohmann::json::parse(recs[0].body.substr(0, nl))["clock"] == "unsynchronized");
  CHECK(nlohmann::json::parse(recs[0].body.substr(nl + 1))["clock"] == "unsynchronized");
  CHECK_FALSE(nlohmann::json::parse(recs[1].body).contains("clock"));
}

TEST_CASE("a batch of several groups and marks is one transaction; an invalid reading anywhere refuses all of it",
          "[pipeline][batch]") {
  Rig rig({});
  auto push_batch = [&](Batch b) {
    std::promise<SinkResult> p;
    auto f = p.get_future();
    rig.pipeline->push_batch(std::move(b), [&](const SinkResult& r) { p.set_value(r); });
    return f.get();
  };
  Batch b;
  b.groups.push_back({"", Kind::Data, readings(2)});
  b.groups.push_back({"mot-cua-hoso", Kind::Data, readings(3)});
  b.marks.push_back({"idem/k1", "first answer", 0});
  auto r = push_batch(b);
  REQUIRE(r.status == SinkStatus::Stored);
  CHECK(r.first_seq == 1);
  CHECK(r.last_seq == 5);
  const auto recs = rig.stored();
  std::vector<std::string> sources;
  for (const auto& rec : recs) {
    CHECK(rec.source == "dong-ho");  // all under the source's own topic
    std::size_t i = 0;
    for (std::size_t pos = 0; pos <= rec.body.size(); ++i) {
      const auto end = std::min(rec.body.find('\n', pos), rec.body.size());
      sources.push_back(nlohmann::json::parse(rec.body.substr(pos, end - pos))["source"]);
      pos = end + 1;
    }
  }
  CHECK(sources == std::vector<std::string>{"dong-ho", "dong-ho", "mot-cua-hoso", "mot-cua-hoso", "mot-cua-hoso"});
  // The source sees its mark under its own key; the outbox keeps it under the source's prefix.
  auto marks = rig.pipeline->marks("idem/").value();
  REQUIRE(marks.size() == 1);
  CHECK(marks[0].key == "idem/k1");
  CHECK(marks[0].value == "first answer");
  CHECK(marks[0].first_seq == 1);  // the seqs of the batch it came with
  CHECK(marks[0].last_seq == 5);
  CHECK(rig.outbox->marks("dong-ho/idem/").size() == 1);

  Batch bad;
  bad.groups.push_back({"", Kind::Data, readings(2)});
  auto broken = readings(1);
  broken[0].point.clear();
  bad.groups.push_back({"ok-name", Kind::Data, broken});
  bad.marks.push_back({"idem/k2", "x", 0});
  r = push_batch(bad);
  CHECK(r.status == SinkStatus::Invalid);
  CHECK_THAT(r.error, Catch::Contains("empty point name"));
  Batch bad_name;
  bad_name.groups.push_back({"not valid!", Kind::Data, readings(1)});
  CHECK(push_batch(bad_name).status == SinkStatus::Invalid);
  rig.outbox->flush();
  CHECK(rig.outbox->stats().pending == 5);       // nothing of the refused batches
  CHECK(rig.pipeline->marks("idem/k2").value().empty());
  CHECK(rig.counters.stored == 5);
}

TEST_CASE("stored data readings are counted good or bad, and the good ones' times kept as runs", "[pipeline][stale]") {
  Rig rig(PipelineLimits{});
  auto batch = readings(6);
  // Measured at 0, 0.5, 1.2 s (one run: less than 1.5 s apart), then 5 s and 5.1 s; one bad.
  const std::int64_t t0 = 1795903799500;
  const std::int64_t ts[] = {t0, t0 + 500, t0 + 1200, t0 + 5000, t0 + 5100, t0 + 9000};
  for (std::size_t i = 0; i < batch.size(); ++i) batch[i].ts_ms = ts[i];
  batch[5].quality = Quality::Bad;
  batch[5].value = std::monostate{};
  batch[5].error = "timeout";
  REQUIRE(rig.push(std::move(batch)).status == SinkStatus::Stored);
  CHECK(rig.counters.good == 5);
  CHECK(rig.counters.bad == 1);
  CHECK(rig.counters.last_good_ms > 0);
  const auto runs = rig.counters.good_times.take();
  REQUIRE(runs.size() == 2);
  CHECK(runs[0].first_ms == t0);
  CHECK(runs[0].last_ms == t0 + 1200);
  CHECK(runs[1].first_ms == t0 + 5000);
  CHECK(runs[1].last_ms == t0 + 5100);
  CHECK(rig.counters.good_times.take().empty());
  // Only bad readings: no run, no last_good_ms change.
  const auto before = rig.counters.last_good_ms.load();
  auto bad = readings(2);
  for (auto& r : bad) {
    r.quality = Quality::Bad;
    r.value = std::monostate{};
    r.error = "exception 2";
  }
  REQUIRE(rig.push(std::move(bad)).status == SinkStatus::Stored);
  CHECK(rig.counters.bad == 3);
  CHECK(rig.counters.last_good_ms == before);
  CHECK(rig.counters.good_times.take().empty());
}

TEST_CASE("good times kept between takes are bounded: past the limit the last run widens", "[pipeline][stale]") {
  GoodTimes g;
  for (std::int64_t i = 0; i < static_cast<std::int64_t>(GoodTimes::kMaxRuns) + 10; ++i)
    g.add({{i * 10'000, i * 10'000}});
  const auto runs = g.take();
  REQUIRE(runs.size() == GoodTimes::kMaxRuns);
  CHECK(runs.back().first_ms == static_cast<std::int64_t>(GoodTimes::kMaxRuns - 1) * 10'000);
  CHECK(runs.back().last_ms == static_cast<std::int64_t>(GoodTimes::kMaxRuns + 9) * 10'000);
}
