#include <catch2/catch.hpp>

#include <boost/asio/io_context.hpp>

#include "core/log.h"
#include "drivers/builtin.h"
#include "drivers/generator/generator_source.h"
#include "settings/settings.h"
#include "support/fakes.h"
#include "support/support.h"

using namespace ioc_edge;
using namespace std::chrono_literals;

namespace {
LoadResult load_source(const std::string& keys) {
  return load_settings_text("[gateway]\nsite = \"s\"\nprovince = \"p\"\n[uplink]\nurl = \"mqtt://127.0.0.1:1\"\n"
                            "[[source]]\nname = \"g\"\ntype = \"generator\"\n" + keys,
                            "g.toml", builtin_drivers());
}
}  // namespace

TEST_CASE("generator: config keys, defaults and errors", "[generator]") {
  auto ok = load_source("rate = 200\npoints = 4\nunit = \"kW\"\n");
  REQUIRE(ok.settings);
  const auto& c = static_cast<const generator::Config&>(*ok.settings->sources[0].config);
  CHECK(c.rate == 200);
  CHECK(c.points == 4);
  CHECK(c.unit == "kW");
  CHECK(c.point_prefix == "p");

  CHECK_THAT(load_source("rate = 0\n").diagnostics.format(), Catch::Contains("g.toml:9:8: source \"g\": rate: must be between"));
  CHECK_THAT(load_source("points = 2.5\n").diagnostics.format(), Catch::Contains("points: expected an integer, got a number"));
  CHECK_THAT(load_source("tick = 10\n").diagnostics.format(), Catch::Contains("tick: expected a duration string"));
  CHECK_THAT(load_source("ratee = 1\n").diagnostics.format(), Catch::Contains("unknown key 'ratee' (did you mean 'rate'?)"));
}

TEST_CASE("generator: values are deterministic and bounded", "[generator]") {
  for (int i = 0; i < 4; ++i) {
    const double v = generator::value_at(i, 1795903799500);
    CHECK(v >= 10.0 * (i + 1) - 2.5);
    CHECK(v <= 10.0 * (i + 1) + 2.5);
    CHECK(v == generator::value_at(i, 1795903799500));
  }
}

TEST_CASE("generator: produces readings round-robin over its points", "[generator]") {
  boost::asio::io_context io;
  SystemClock clock;
  test::CapturingSink sink;
  SourceCounters counters;
  auto cfg = std::make_shared<generator::Config>();
  cfg->rate = 1000;
  cfg->points = 3;
  cfg->unit = "V";
  auto src = generator::create({"g", "s", logger("generator/g"), clock, sink, io, counters}, cfg);
  src->start();
  for (int i = 0; i < 500 && sink.count() < 30; ++i) io.run_for(10ms);
  src->stop();
  io.run_for(20ms);
  REQUIRE(sink.count() >= 30);
  std::lock_guard lk(sink.mu);
  CHECK(sink.readings[0].point == "p0");
  CHECK(sink.readings[1].point == "p1");
  CHECK(sink.readings[2].point == "p2");
  CHECK(sink.readings[3].point == "p0");
  CHECK(sink.readings[0].unit == "V");
  CHECK(sink.readings[0].quality == Quality::Good);
  // After stop() the sink is never called again.
  const auto n = sink.readings.size();
  io.restart();
  io.run_for(50ms);
  CHECK(sink.readings.size() == n);
}
