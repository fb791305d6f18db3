// The pipeline between a source and the outbox (daemon/core/pipeline.h), with a real outbox.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <future>

#include <nlohmann/json.hpp>

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
    pipeline = std::make_unique<SourcePipeline>(*outbox, "dong-ho", Priority::Normal, counters, limits);
  }
  SinkResult push(std::vector<Reading> readings) {
    std::promise<SinkResult> p;
    auto f = p.get_future();
    pipeline->push(std::move(readings), [&](const SinkResult& r) { p.set_value(r); });
    return f.get();
  }
  std::vector<Record> stored() {
    return outbox->read(Priority::Normal, 0, std::numeric_limits<std::int64_t>::max(), 1'000'000, 1ull << 40);
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

TEST_CASE("a record stays within batch_max_bytes unless one reading alone is larger", "[pipeline]") {
  Rig rig({500, 1000});
  auto batch = readings(40);                    // ~100 bytes each
  batch[17].value = std::string(1500, 'x');     // a reading larger than the limit on its own
  const auto res = rig.push(std::move(batch));
  REQUIRE(res.status == SinkStatus::Stored);
  CHECK(res.last_seq - res.first_seq + 1 == 40);
  std::size_t total = 0;
  bool big_alone = false;
  for (const auto& r : rig.stored()) {
    CHECK(lines(r.body) == r.count());
    total += r.count();
    if (r.body.find(std::string(1500, 'x')) != std::string::npos) {
      big_alone = r.count() == 1;
    } else {
      CHECK(r.body.size() <= 1000);
    }
  }
  CHECK(total == 40);
  CHECK(big_alone);
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
