// ioc-receiver ingest: how fast the offices' batches go from the broker into PostgreSQL, every
// reading deduplicated (INSERT ... ON CONFLICT DO NOTHING) and every message acknowledged only
// after its commit, next to PostgreSQL's own COPY into the same indexed table in the same run.
//
// Everything shares this machine's cores: a real Mosquitto with mutual TLS, a real PostgreSQL 15
// with fsync and synchronous commits on (as in production), the receiver, and this program.
//
//  1. The ceiling: COPY of N readings straight into `readings` (partitioned, unique key and the
//     source index), in transactions of 5,000 rows, from this process.
//  2. The receiver: N readings in batches of READINGS_PER_MESSAGE (an office's batch, as
//     ioc-edge publishes them: docs/schema/README.md) from OFFICES offices, queued at the broker
//     while the receiver is away (its persistent session holds them), in rounds of ROUND
//     messages (Mosquitto holds a round in memory). The clock runs from the receiver's first
//     stored reading to its last; its CPU (utime + stime) and peak resident memory over the run.
//  3. The same messages once more: every reading a duplicate (a gateway resending after a lost
//     acknowledgement); nothing new may be stored.
//  4. Bytes per stored reading: the size of readings' partitions with their indexes over rows.
//
//   build/bench/receiver_bench [READINGS] [READINGS_PER_MESSAGE]      default 1000000 500
#include <csignal>
#include <cstdio>
#include <deque>
#include <sstream>

#include <mqtt/async_client.h>

#include "receiver/pg.h"
#include "support/postgres.h"
#include "support/support.h"

using namespace ioc_edge::test;
using namespace std::chrono;

namespace {

constexpr int kOffices = 20;
constexpr int kRoundMessages = 500;

std::string store_of(int office) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "6f1c2a3e-6a8e-4f7e-9a65-%012d", office);
  return buf;
}

std::string site_of(int office) { return "office-" + std::to_string(office); }

// A batch of `n` readings of `office` from seq `first`, as a gateway sends it.
std::string batch(int office, std::int64_t first, int n) {
  std::string b = "{\"schema\":\"ioc-edge/batch/1\",\"site\":\"" + site_of(office) + "\",\"store\":\"" + store_of(office) +
                  "\",\"sent_at\":\"2026-12-01T09:00:01.000Z\",\"org\":{\"unit_code\":\"01843\"},\"readings\":[";
  char r[256];
  for (int i = 0; i < n; ++i) {
    const long long seq = first + i;
    std::snprintf(r, sizeof r,
                  "%s{\"seq\":%lld,\"ts\":\"2026-12-01T%02lld:%02lld:%02lld.%03lldZ\",\"source\":\"tram-bom-%lld\","
                  "\"point\":\"flow_rate\",\"value\":%lld.5,\"unit\":\"m3/h\",\"quality\":\"good\"}",
                  i ? "," : "", static_cast<long long>(seq), (seq / 3600000) % 24, (seq / 60000) % 60, (seq / 1000) % 60,
                  seq % 1000, static_cast<long long>(seq % 8), static_cast<long long>(seq % 1000));
    b += r;
  }
  return b + "]}";
}

struct Load {
  std::vector<std::pair<std::string, std::string>> messages;  // topic, payload
  std::int64_t readings = 0;
  std::size_t bytes = 0;
};

Load make_load(std::int64_t readings, int per_message) {
  Load l;
  std::vector<std::int64_t> next(kOffices, 1);
  for (std::int64_t done = 0, i = 0; done < readings; ++i) {
    const int office = static_cast<int>(i % kOffices);
    const int n = static_cast<int>(std::min<std::int64_t>(per_message, readings - done));
    l.messages.emplace_back("ioc/bac-kan/" + site_of(office) + "/data/tram-bom", batch(office, next[office], n));
    l.bytes += l.messages.back().second.size();
    next[office] += n;
    done += n;
  }
  l.readings = readings;
  return l;
}

void publish(int port, const Certs& certs, const Load& load, std::size_t from, std::size_t to) {
  auto ssl = mqtt::ssl_options_builder().trust_store(certs.ca).key_store(certs.client_cert).private_key(certs.client_key).finalize();
  mqtt::async_client c("ssl://127.0.0.1:" + std::to_string(port), "bench-offices", mqtt::create_options(MQTTVERSION_5, 1000),
                       nullptr);
  c.connect(mqtt::connect_options_builder().mqtt_version(MQTTVERSION_5).clean_start(true).ssl(ssl).finalize())->wait();
  std::deque<mqtt::delivery_token_ptr> window;
  for (std::size_t i = from; i < to; ++i) {
    while (window.size() >= 100) {
      window.front()->wait();
      window.pop_front();
    }
    const auto& [topic, payload] = load.messages[i];
    window.push_back(c.publish(topic, payload.data(), payload.size(), 1, false));
  }
  for (auto& t : window) t->wait();
  c.disconnect()->wait();
}

std::int64_t stored(int status_port) {
  const auto r = http_get(status_port, "/status", milliseconds(2000));
  if (r.status != 200) return -1;
  const auto j = nlohmann::json::parse(r.body);
  return j["stored"]["readings"].get<std::int64_t>() + j["stored"]["duplicate_readings"].get<std::int64_t>();
}

}  // namespace

int main(int argc, char** argv) {
  const std::int64_t n = argc > 1 ? std::atoll(argv[1]) : 1000000;
  const int per_message = argc > 2 ? std::atoi(argv[2]) : 500;
  TempDir tmp;
  const auto certs = make_certs(tmp.file("certs"));
  MosquittoOptions mo;
  mo.extra_config = "max_queued_messages 0\nmax_queued_bytes 0\nmax_inflight_messages 1000\nmessage_size_limit 0\n";
  Mosquitto broker(certs, tmp.path(), mo);
  Postgres pg(/*durable=*/true);

  const auto status_port = free_tcp_port();
  const auto config = tmp.file("ioc-receiver.toml");
  write_file(config, "[broker]\nurl = \"mqtts://127.0.0.1:" + std::to_string(broker.port()) + "\"\nca_file = \"" + certs.ca +
                         "\"\ncert_file = \"" + certs.client_cert + "\"\nkey_file = \"" + certs.client_key +
                         "\"\nclient_id = \"bench-receiver\"\n\n[database]\nurl = \"" + pg.conninfo() +
                         "\"\n\n[status]\nlisten = \"127.0.0.1:" + std::to_string(status_port) + "\"\n");
  if (run_to_exit({ioc_receiver_binary(), "migrate", "-c", config}, tmp.file("migrate.log")) != 0) {
    std::fprintf(stderr, "migrate failed:\n%s", read_file(tmp.file("migrate.log")).c_str());
    return 1;
  }

  std::printf("load: %lld readings in batches of %d from %d offices\n", static_cast<long long>(n), per_message, kOffices);
  const auto load = make_load(n, per_message);
  std::printf("      %zu messages, %.1f MB of JSON (%.0f B per reading)\n", load.messages.size(), load.bytes / 1e6,
              static_cast<double>(load.bytes) / static_cast<double>(n));

  // 1. COPY straight into readings (other sites: no key in common with the receiver's).
  double copy_rate = 0;
  {
    ioc_receiver::pg::Connection db(pg.conninfo());
    std::string rows;
    const auto t0 = steady_clock::now();
    for (std::int64_t done = 0; done < n;) {
      rows.clear();
      const std::int64_t k = std::min<std::int64_t>(5000, n - done);
      char r[256];
      for (std::int64_t i = 0; i < k; ++i) {
        const long long seq = done + i + 1;
        std::snprintf(r, sizeof r,
                      "copy-%lld\t%s\t%lld\t2026-12-01T%02lld:%02lld:%02lld.%03lldZ\ttram-bom-%lld\tflow_rate\t%lld.5\t\\N\tm3/h\tgood\t\\N\n",
                      static_cast<long long>(seq % kOffices), store_of(static_cast<int>(seq % kOffices)).c_str(),
                      static_cast<long long>(seq), (seq / 3600000) % 24, (seq / 60000) % 60, (seq / 1000) % 60, seq % 1000,
                      static_cast<long long>(seq % 8), static_cast<long long>(seq % 1000));
        rows += r;
      }
      db.exec("BEGIN");
      db.copy_in("COPY readings (site, store, seq, ts, source, point, value_num, value_json, unit, quality, error) FROM STDIN", rows);
      db.exec("COMMIT");
      done += k;
    }
    const double s = duration<double>(steady_clock::now() - t0).count();
    copy_rate = static_cast<double>(n) / s;
    std::printf("PostgreSQL COPY into readings (5,000-row transactions): %.0f rows/s (%.2f s)\n", copy_rate, s);
    db.exec("TRUNCATE readings");  // gives the space back: the receiver's rows are measured alone
  }

  // 2. The receiver, round by round: queue while it is away, then time its drain.
  auto start_receiver = [&] {
    auto p = std::make_unique<Process>(std::vector<std::string>{ioc_receiver_binary(), "run", "-c", config}, tmp.file("receiver.log"));
    if (!wait_until([&] { return http_get(status_port, "/healthz", milliseconds(500)).status == 200; }, seconds(20))) {
      std::fprintf(stderr, "the receiver did not come up:\n%s", p->log().c_str());
      std::exit(1);
    }
    return p;
  };
  auto receiver = start_receiver();  // makes its persistent session (the shared subscription)
  receiver->stop();
  double busy_s = 0, cpu_s = 0;
  long peak_kib = 0;
  std::int64_t expected = 0;
  for (std::size_t from = 0; from < load.messages.size(); from += kRoundMessages) {
    const auto to = std::min(load.messages.size(), from + kRoundMessages);
    publish(broker.port(), certs, load, from, to);
    std::int64_t round_readings = 0;
    for (auto i = from; i < to; ++i) round_readings += std::min<std::int64_t>(per_message, n - static_cast<std::int64_t>(i) * per_message);
    receiver = start_receiver();
    const auto cpu0 = process_usage(receiver->pid()).cpu_s;
    if (!wait_until([&] { return stored(status_port) > 0; }, seconds(60))) return 1;
    const auto t0 = steady_clock::now();
    bool done = wait_until(
        [&] {
          peak_kib = std::max(peak_kib, process_usage(receiver->pid()).rss_kib);
          return stored(status_port) >= round_readings;
        },
        seconds(600), milliseconds(20));
    busy_s += duration<double>(steady_clock::now() - t0).count();
    cpu_s += process_usage(receiver->pid()).cpu_s - cpu0;
    if (!done) {
      std::fprintf(stderr, "round did not finish: %lld of %lld\n%s", static_cast<long long>(stored(status_port)),
                   static_cast<long long>(round_readings), receiver->log().c_str());
      return 1;
    }
    receiver->stop();
    expected += round_readings;
  }
  const auto in_db = std::stoll(pg.psql("SELECT count(*) FROM readings"));
  std::printf("receiver: %.0f readings/s (%lld stored in %.2f s of draining), %.0f%% of one core, peak %.1f MiB; "
              "%.2f x COPY\n",
              static_cast<double>(expected) / busy_s, static_cast<long long>(in_db), busy_s, 100.0 * cpu_s / busy_s,
              static_cast<double>(peak_kib) / 1024.0, (static_cast<double>(expected) / busy_s) / copy_rate);
  if (in_db != n) {
    std::fprintf(stderr, "stored %lld of %lld readings\n", static_cast<long long>(in_db), static_cast<long long>(n));
    return 1;
  }

  // 3. Everything again: all duplicates.
  {
    const std::size_t to = std::min<std::size_t>(load.messages.size(), kRoundMessages);
    std::int64_t again = 0;
    for (std::size_t i = 0; i < to; ++i) again += std::min<std::int64_t>(per_message, n - static_cast<std::int64_t>(i) * per_message);
    publish(broker.port(), certs, load, 0, to);
    receiver = start_receiver();
    const auto t0 = steady_clock::now();
    if (!wait_until([&] { return stored(status_port) >= again; }, seconds(600), milliseconds(20))) return 1;
    const double s = duration<double>(steady_clock::now() - t0).count();
    receiver->stop();
    const auto after = std::stoll(pg.psql("SELECT count(*) FROM readings"));
    std::printf("duplicates: %lld readings sent again at %.0f readings/s; rows after: %lld (was %lld)\n",
                static_cast<long long>(again), static_cast<double>(again) / s, static_cast<long long>(after),
                static_cast<long long>(in_db));
    if (after != in_db) return 1;
  }

  // 4. Bytes per stored reading.
  pg.psql("VACUUM ANALYZE readings");
  const auto bytes = std::stoll(pg.psql(
      "SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits WHERE inhparent = 'readings'::regclass"));
  const auto heap = std::stoll(pg.psql(
      "SELECT sum(pg_table_size(inhrelid)) FROM pg_inherits WHERE inhparent = 'readings'::regclass"));
  const auto unique_index = std::stoll(pg.psql(
      "SELECT sum(pg_relation_size(i.indexrelid)) FROM pg_inherits h JOIN pg_index i ON i.indrelid = h.inhrelid "
      "WHERE h.inhparent = 'readings'::regclass AND i.indisunique"));
  const auto per = [&](long long b) { return static_cast<double>(b) / static_cast<double>(in_db); };
  std::printf("storage: %.0f bytes per reading (readings' partitions with their indexes, %lld rows): rows %.0f, "
              "unique key %.0f, (site, source, point, ts) index %.0f\n",
              per(bytes), static_cast<long long>(in_db), per(heap), per(unique_index), per(bytes - heap - unique_index));
  return 0;
}
