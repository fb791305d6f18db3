// Outbox append throughput with sync = full, against its ceiling: raw SQLite inserts of the same
// rows into the same schema in 1,000-row transactions, in the same run.
//   build/bench/outbox_bench --benchmark_min_time=2
#include <benchmark/benchmark.h>
#include <sqlite3.h>

#include <filesystem>
#include <future>
#include <random>

#include "core/outbox.h"

using namespace ioc_edge;

namespace {

std::string temp_db() {
  static int n = 0;
  auto dir = std::filesystem::temp_directory_path() / ("ioc-edge-bench-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto p = dir / ("o" + std::to_string(n++) + ".db");
  std::filesystem::remove(p);
  std::filesystem::remove(p.string() + "-wal");
  return p.string();
}

// A realistic stored body: what the generator and a Modbus meter produce (~120 bytes).
std::string body(std::int64_t i) {
  Reading r;
  r.point = "p" + std::to_string(i % 8);
  r.ts_ms = 1795903799500 + i;
  r.value = 12.5 + static_cast<double>(i % 100) / 10.0;
  r.unit = "m3/h";
  return reading_body_json("tram-bom-1", r);
}

// A raw connection on a new file with the outbox's table (and its index when `index`).
sqlite3* open_raw(bool index) {
  sqlite3* db = nullptr;
  sqlite3_open(temp_db().c_str(), &db);
  sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                   "CREATE TABLE records(seq INTEGER PRIMARY KEY AUTOINCREMENT, prio INTEGER NOT NULL, kind INTEGER NOT NULL,"
                   " at INTEGER NOT NULL, source TEXT NOT NULL, body TEXT NOT NULL);",
               nullptr, nullptr, nullptr);
  if (index) sqlite3_exec(db, "CREATE INDEX records_prio_seq ON records(prio, seq);", nullptr, nullptr, nullptr);
  return db;
}

// range(0) = 1: the outbox's schema (with its (prio, seq) index); 0: the table alone.
void BM_RawSqlite1000RowTxn(benchmark::State& state) {
  sqlite3* db = open_raw(state.range(0) == 1);
  sqlite3_stmt* ins = nullptr;
  sqlite3_prepare_v2(db, "INSERT INTO records(prio, kind, at, source, body) VALUES(1,0,?,?,?)", -1, &ins, nullptr);
  std::vector<std::string> bodies;
  for (int i = 0; i < 1000; ++i) bodies.push_back(body(i));
  const std::string source = "tram-bom-1";
  std::int64_t rows = 0;
  for (auto _ : state) {
    sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
    for (const auto& b : bodies) {
      sqlite3_bind_int64(ins, 1, rows);
      sqlite3_bind_text(ins, 2, source.data(), static_cast<int>(source.size()), SQLITE_STATIC);
      sqlite3_bind_text(ins, 3, b.data(), static_cast<int>(b.size()), SQLITE_STATIC);
      sqlite3_step(ins);
      sqlite3_reset(ins);
      ++rows;
    }
    sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  }
  sqlite3_finalize(ins);
  sqlite3_close(db);
  state.counters["rows_per_s"] = benchmark::Counter(static_cast<double>(rows), benchmark::Counter::kIsRate);
}

// The ceiling of draining: raw SQLite reading the 500 oldest rows and deleting them, one
// transaction per batch (sync = FULL), on a table pre-filled with 1,000,000 rows.
void BM_RawSqliteReadDelete500(benchmark::State& state) {
  sqlite3* db = open_raw(true);
  sqlite3_stmt* ins = nullptr;
  sqlite3_prepare_v2(db, "INSERT INTO records(prio, kind, at, source, body) VALUES(1,0,0,'tram-bom-1',?)", -1, &ins, nullptr);
  sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
  for (int i = 0; i < 1000000; ++i) {
    const auto b = body(i);
    sqlite3_bind_text(ins, 1, b.data(), static_cast<int>(b.size()), SQLITE_TRANSIENT);
    sqlite3_step(ins);
    sqlite3_reset(ins);
  }
  sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  sqlite3_finalize(ins);
  sqlite3_stmt* sel = nullptr;
  sqlite3_prepare_v2(db, "SELECT seq, kind, source, body FROM records WHERE prio=1 AND seq>? ORDER BY seq LIMIT 500", -1, &sel,
                     nullptr);
  sqlite3_stmt* del = nullptr;
  sqlite3_prepare_v2(db, "DELETE FROM records WHERE seq BETWEEN ? AND ? AND prio=1", -1, &del, nullptr);
  std::int64_t after = 0, rows = 0;
  std::size_t bytes = 0;
  for (auto _ : state) {
    sqlite3_bind_int64(sel, 1, after);
    std::int64_t first = 0, last = 0;
    while (sqlite3_step(sel) == SQLITE_ROW) {
      last = sqlite3_column_int64(sel, 0);
      if (!first) first = last;
      bytes += static_cast<std::size_t>(sqlite3_column_bytes(sel, 3));
      ++rows;
    }
    sqlite3_reset(sel);
    if (!last) break;  // drained
    sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
    sqlite3_bind_int64(del, 1, first);
    sqlite3_bind_int64(del, 2, last);
    sqlite3_step(del);
    sqlite3_reset(del);
    sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
    after = last;
  }
  benchmark::DoNotOptimize(bytes);
  sqlite3_finalize(sel);
  sqlite3_finalize(del);
  sqlite3_close(db);
  state.counters["rows_per_s"] = benchmark::Counter(static_cast<double>(rows), benchmark::Counter::kIsRate);
}

// Producers hand over batches of `range(0)` readings and wait for nothing; the writer thread
// commits whatever is queued in one transaction (group commit). Measured until every append of the
// iteration is committed. range(1): readings per outbox record — 1 is one row per reading (schema
// 1), `range(0)` is what the pipeline does now (one record per batch, up to batch_max_readings).
// range(2): the page size of the new store (1024, the default since 0.4.0, or 4096 as before).
void BM_OutboxAppend(benchmark::State& state) {
  const auto batch = static_cast<std::size_t>(state.range(0));
  const auto per_record = static_cast<std::size_t>(state.range(1));
  SystemClock clock;
  OutboxOptions o{temp_db()};
  o.page_size = static_cast<std::uint32_t>(state.range(2));
  o.sync_full = true;
  o.max_size = 8ull << 30;
  std::string err;
  auto ob = Outbox::open(o, clock, err);
  std::vector<NewRecord> recs;
  for (std::size_t i = 0; i < batch; ++i) {
    if (i % per_record == 0)
      recs.push_back({Priority::Normal, Kind::Data, "tram-bom-1", {}, 0});
    else
      recs.back().body += '\n';
    recs.back().body += body(static_cast<std::int64_t>(i));
    ++recs.back().count;
  }
  constexpr int kBatchesPerIteration = 50;
  std::int64_t rows = 0;
  for (auto _ : state) {
    std::atomic<int> done{0};
    std::promise<void> all;
    for (int b = 0; b < kBatchesPerIteration; ++b) {
      for (;;) {  // on Overloaded (answered at once), let the writer catch up: a source slows down
        auto overloaded = std::make_shared<std::atomic<bool>>(false);
        ob->append(std::vector<NewRecord>(recs), [&done, &all, overloaded](const AppendResult& r) {
          if (r.status != AppendStatus::Committed) {
            *overloaded = true;
            return;
          }
          if (++done == kBatchesPerIteration) all.set_value();
        });
        if (!*overloaded) break;
        ob->flush();
      }
    }
    all.get_future().wait();
    rows += static_cast<std::int64_t>(batch) * kBatchesPerIteration;
  }
  state.counters["readings_per_s"] = benchmark::Counter(static_cast<double>(rows), benchmark::Counter::kIsRate);
  state.counters["commits"] = static_cast<double>(ob->stats().commits);
  ob->stop();
}

}  // namespace

BENCHMARK(BM_RawSqlite1000RowTxn)->Arg(0)->Arg(1)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_RawSqliteReadDelete500)->Iterations(1500)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_OutboxAppend)
    ->Args({100, 1, 1024})
    ->Args({1000, 1, 1024})
    ->Args({100, 100, 1024})
    ->Args({100, 100, 4096})
    ->Args({1000, 500, 1024})
    ->Args({1000, 500, 4096})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
