// The cost of the status API's renderings (daemon/ops/render.h) at scale: GET /metrics with about
// 10,000 series (600 sources x 17 series, plus the gateway's), next to the JSON of GET /status and
// the HTML page of GET / for the same snapshot, and reading 600 sources' counters into a snapshot.
//   build/bench/metrics_bench --benchmark_min_time=2
// Counters: `series` (sample lines of the exposition), `bytes` (size of the rendering).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <memory>

#include "ops/health.h"
#include "ops/render.h"
#include "ops/snapshot.h"

using namespace ioc_edge;

namespace {

constexpr std::int64_t kNow = 1'764'367'800'000;

// Sources as a busy office has them: counts in the millions, an error and a kind of bad input each,
// every tenth down, every twentieth stale.
SourceSnapshot bench_source(int i) {
  SourceSnapshot s;
  s.name = "tram-bom-" + std::to_string(i);
  s.type = i % 3 == 0 ? "modbus" : i % 3 == 1 ? "mqtt" : "http-poll";
  s.title = "Trạm bơm số " + std::to_string(i);
  s.expected_every_ms = 60'000;
  s.down = i % 10 == 0;
  s.stale = i % 20 == 5;
  s.stale_since_ms = s.stale ? kNow - 600'000 : 0;
  s.last_error = "timeout after 1000 ms reading holding registers 0..63";
  s.last_error_ms = kNow - 12'345;
  s.produced = 4'000'000 + static_cast<std::uint64_t>(i) * 17;
  s.stored = s.produced - 3;
  s.good = s.stored - 1000;
  s.bad = 1000;
  s.refused = 3;
  s.errors = 1000 + static_cast<std::uint64_t>(i);
  s.overruns = 2;
  s.messages = 200'000;
  s.redelivered = 12;
  s.bad_input = {{"malformed_json", 7}};
  s.last_stored_ms = s.last_good_ms = kNow - 800;
  return s;
}

Snapshot bench_snapshot(int sources) {
  Snapshot s;
  s.version = "0.7.0";
  s.site = "bk-cho-don";
  s.province = "thai-nguyen";
  s.org_name = "UBND xã Chợ Đồn";
  s.store = "6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d";
  s.now_ms = kNow;
  s.uptime_s = 86400;
  s.uplink.url = "mqtts://ioc.example.gov.vn:8883";
  s.uplink.mqtt_version = "5";
  s.uplink.link.state = LinkState::Up;
  s.uplink.link.state_since_ms = kNow - 3'600'000;
  s.uplink.link.readings_sent = 987'654'321;
  s.backlog.max_bytes = 2ull << 30;
  for (int p = 0; p < kPriorityLevels; ++p) {
    s.backlog.outbox.pending_by_prio[p] = 1000 * (p + 1);
    s.backlog.outbox.bytes_by_prio[p] = 120'000 * (p + 1);
    s.backlog.outbox.oldest_age_ms_by_prio[p] = 4000;
  }
  s.backlog.outbox.acks = 1'000'000;
  s.backlog.outbox.ack_p50_ms = 1.2;
  s.backlog.outbox.ack_p99_ms = 2000;
  for (int i = 0; i < sources; ++i) s.sources.push_back(bench_source(i));
  s.problems = health_problems(s);
  return s;
}

std::int64_t sample_lines(const std::string& text) {
  std::int64_t n = 0;
  bool line_start = true;
  for (char c : text) {
    if (line_start && c != '#') ++n;
    line_start = c == '\n';
  }
  return n;
}

template <typename Render>
void run(benchmark::State& state, Render render, bool count_series) {
  const auto snap = bench_snapshot(static_cast<int>(state.range(0)));
  std::string out;
  for (auto _ : state) {
    out = render(snap);
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["bytes"] = static_cast<double>(out.size());
  if (count_series) state.counters["series"] = static_cast<double>(sample_lines(out));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(out.size()));
}

void BM_RenderPrometheus(benchmark::State& state) { run(state, [](const Snapshot& s) { return render_prometheus(s); }, true); }
void BM_RenderJson(benchmark::State& state) { run(state, [](const Snapshot& s) { return render_json(s); }, false); }
void BM_RenderHtml(benchmark::State& state) { run(state, [](const Snapshot& s) { return render_html(s); }, false); }

// Reading the live counters (atomics, one mutex each for the error and the bad-input map) into the
// snapshot, and judging its health: what each request pays before rendering.
void BM_SnapshotSources(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  std::vector<SourceSettings> settings(n);
  std::vector<std::unique_ptr<SourceCounters>> counters;
  for (std::size_t i = 0; i < n; ++i) {
    const auto src = bench_source(static_cast<int>(i));
    settings[i].name = src.name;
    settings[i].type = src.type;
    settings[i].title = src.title;
    counters.push_back(std::make_unique<SourceCounters>());
    counters.back()->produced = src.produced;
    counters.back()->down = src.down;
    counters.back()->set_error(src.last_error, src.last_error_ms);
    counters.back()->count_bad("malformed_json");
  }
  auto base = bench_snapshot(0);
  for (auto _ : state) {
    Snapshot s = base;
    s.sources.reserve(n);
    for (std::size_t i = 0; i < n; ++i) s.sources.push_back(snapshot_source(settings[i], *counters[i]));
    s.problems = health_problems(s);
    benchmark::DoNotOptimize(s.sources.data());
  }
}

}  // namespace

BENCHMARK(BM_RenderPrometheus)->Arg(10)->Arg(600)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_RenderJson)->Arg(10)->Arg(600)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_RenderHtml)->Arg(10)->Arg(600)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_SnapshotSources)->Arg(600)->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
