// `ioc-edge report` over a year of hourly roll-ups for 100 sources (876,000 source-hours, 8,760
// gateway hours, a stale period a day per source), written once through the RollupStore; then the
// time of the whole report (read, sum, format) and of the read alone. Also what one minute's write
// of the daemon (the current hour of 100 sources) costs: bytes handed to the kernel per commit.
//   build/bench/report_bench --benchmark_min_time=2
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "ops/report.h"
#include "ops/rollup_store.h"

using namespace ioc_edge;

namespace {

constexpr int kSources = 100;
constexpr int kHours = 365 * 24;
constexpr std::int64_t kYearStart = 1'767'200'400;   // 2026-01-01 00:00 +07:00, in s
constexpr std::int64_t kNow = 1'798'761'600'000;     // 2027-01-01T00:00Z

class FixedClock final : public Clock {
 public:
  std::int64_t now_ms() const override { return kNow; }
  std::chrono::steady_clock::time_point steady() const override { return std::chrono::steady_clock::now(); }
};

std::string source_name(int i) { return "nguon-" + std::to_string(i); }

// A directory of this run's files, removed at exit.
std::string bench_dir() {
  struct Dir {
    std::filesystem::path path =
        std::filesystem::temp_directory_path() / ("ioc-edge-report-bench-" + std::to_string(::getpid()));
    Dir() { std::filesystem::create_directories(path); }
    ~Dir() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  };
  static const Dir dir;
  return dir.path.string();
}

// The year, written once per process (a month per transaction, as a daemon's store would merge
// them after an outage of its disk).
const std::string& year_db() {
  static const std::string path = [] {
    const auto p = bench_dir() + "/rollups.db";
    FixedClock clock;
    std::string error;
    auto store = RollupStore::open({p}, clock, error);
    if (!store) throw std::runtime_error(error);
    RollupDelta d;
    for (int h = 0; h < kHours; ++h) {
      const auto hour = kYearStart + h * 3600ll;
      d.gateway[hour] = {3'600'000, h % 97 == 0 ? 1'800'000 : 3'600'000, h % 97 == 0 ? 1 : 0,
                         h % 97 == 0 ? 1'800'000 : 0};
      for (int s = 0; s < kSources; ++s) {
        const bool stale = h % 24 == s % 24;
        d.sources[{hour, source_name(s)}] = {720, s % 7 == 0 ? 3 : 0, 0, stale ? 600'000 : 0, 360'000, stale ? 60 : 0};
        if (stale) d.stale[{source_name(s), hour * 1000}] = hour * 1000 + 600'000;
      }
      if (h % (24 * 30) == 24 * 30 - 1 || h == kHours - 1) {
        store->submit(std::move(d));
        d = {};
        store->flush();
      }
    }
    store->stop();
    return p;
  }();
  return path;
}

void BM_ReportYear100Sources(benchmark::State& state) {
  const auto& db = year_db();
  const char* formats[] = {"text", "csv", "json", "html"};
  ReportOptions o;
  o.db_path = db;
  o.from = "2026-01-01";
  o.to = "2026-12-31";
  o.format = formats[state.range(0)];
  o.site = "bk-cho-don";
  o.now_ms = kNow;
  std::size_t bytes = 0;
  for (auto _ : state) {
    std::ostringstream out, err;
    if (run_report(o, out, err) != 0) state.SkipWithError(err.str().c_str());
    bytes = out.str().size();
  }
  state.counters["output_bytes"] = static_cast<double>(bytes);
  state.counters["db_MiB"] = static_cast<double>(std::filesystem::file_size(db)) / (1 << 20);
  state.SetLabel(o.format);
}
BENCHMARK(BM_ReportYear100Sources)->DenseRange(0, 3)->Unit(benchmark::kMillisecond);

void BM_ReadYear100Sources(benchmark::State& state) {
  const auto& db = year_db();
  std::string error;
  auto reader = RollupReader::open(db, error);
  if (!reader) {
    state.SkipWithError(error.c_str());
    return;
  }
  for (auto _ : state) {
    RollupTotals t;
    if (!reader->read(kYearStart * 1000, kYearStart * 1000 + kHours * 3'600'000ll, t, error))
      state.SkipWithError(error.c_str());
    benchmark::DoNotOptimize(t);
    if (t.sources.size() != kSources) state.SkipWithError("wrong number of sources");
  }
}
BENCHMARK(BM_ReadYear100Sources)->Unit(benchmark::kMillisecond);

// /proc/self/io wchar: bytes this process handed to write(2) so far.
std::int64_t written_bytes() {
  std::ifstream f("/proc/self/io");
  std::string key;
  std::int64_t value = 0;
  while (f >> key >> value)
    if (key == "wchar:") return value;
  return 0;
}

// The daemon's minute: the current hour's rows of 100 sources and the gateway's, added to, with
// sync = full (one fsync each).
void BM_MinuteWrite100Sources(benchmark::State& state) {
  const auto p = bench_dir() + "/minute.db";
  FixedClock clock;
  std::string error;
  auto store = RollupStore::open({p}, clock, error);
  if (!store) {
    state.SkipWithError(error.c_str());
    return;
  }
  const auto hour = kNow / 1000 / 3600 * 3600;
  const auto delta = [&] {
    RollupDelta d;
    d.gateway[hour] = {60'000, 60'000, 0, 0};
    for (int s = 0; s < kSources; ++s) d.sources[{hour, source_name(s)}] = {12, 0, 0, 0, 6000, 0};
    return d;
  };
  store->submit(delta());  // the rows exist: what follows are the updates of every other minute
  store->flush();
  const auto before = written_bytes();
  std::int64_t writes = 0;
  for (auto _ : state) {
    store->submit(delta());
    store->flush();
    ++writes;
  }
  state.counters["bytes_per_write"] = static_cast<double>(written_bytes() - before) / static_cast<double>(writes);
  store->stop();
}
BENCHMARK(BM_MinuteWrite100Sources)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
