// ioc-receiver's settings and database schema against a real PostgreSQL 15 (tests/support/
// postgres.h): check-config's problems as FILE:LINE:COL, migrate from empty and again, two
// migrations at once, a database newer than the program, monthly partitions, exactly-once rows.
#include <chrono>
#include <string>

#include "integration/daemon_rig.h"
#include "receiver/pg.h"
#include "receiver/schema.h"
#include "receiver/settings.h"
#include "support/postgres.h"

using namespace ioc_edge::test;
using namespace std::chrono_literals;
namespace pg = ioc_receiver::pg;

namespace {

CliRun run_receiver(std::vector<std::string> args, const TempDir& dir) {
  static int n = 0;
  args.insert(args.begin(), ioc_receiver_binary());
  const auto log = dir.file("receiver-" + std::to_string(++n) + ".log");
  const int code = run_to_exit(args, log, 90s);
  return {code, read_file(log)};
}

// A configuration for `db` with TLS files that exist (their contents do not matter here).
std::string config_text(const TempDir& dir, const std::string& db) {
  for (const char* f : {"ca.pem", "receiver.pem", "receiver.key"}) write_file(dir.file(f), "x\n");
  return "[broker]\nurl = \"mqtts://127.0.0.1:8883\"\nca_file = \"" + dir.file("ca.pem") + "\"\ncert_file = \"" +
         dir.file("receiver.pem") + "\"\nkey_file = \"" + dir.file("receiver.key") +
         "\"\nshare_group = \"ioc-receivers\"\n[database]\nurl = \"" + db + "\"\n[status]\nlisten = \"127.0.0.1:8788\"\n";
}

}  // namespace

TEST_CASE("ioc-receiver check-config: a valid file, and every problem as FILE:LINE:COL with exit 78",
          "[integration][receiver]") {
  TempDir dir;
  const auto good = dir.file("good.toml");
  write_file(good, config_text(dir, "postgresql://ioc@/ioc?host=/run/postgresql"));
  auto ok = run_receiver({"check-config", good}, dir);
  INFO(ok.output);
  CHECK(ok.code == 0);
  CHECK_THAT(ok.output, Catch::Contains("ok (broker mqtts://127.0.0.1:8883, share group ioc-receivers)"));

  const auto bad = dir.file("bad.toml");
  write_file(bad,
             "[broker]\n"
             "url = \"https://ioc\"\n"
             "share_group = \"a/b\"\n"
             "ca_file = \"/nonexistent/ca.pem\"\n"
             "[database]\n"
             "url = \"host=/run/postgresql dbname\"\n"
             "bacth_max_rows = 10\n"
             "[status]\n"
             "listen = \"8788\"\n");
  auto no = run_receiver({"check-config", bad}, dir);
  INFO(no.output);
  CHECK(no.code == 78);
  CHECK_THAT(no.output, Catch::Contains(bad + ":2:7: [broker] url: \"https://ioc\" is not an MQTT URL"));
  CHECK_THAT(no.output, Catch::Contains(bad + ":3:15: [broker] share_group:"));
  CHECK_THAT(no.output, Catch::Contains(bad + ":4:11: [broker] ca_file:"));
  CHECK_THAT(no.output, Catch::Contains(bad + ":6:7: [database] url: not a PostgreSQL connection string"));
  CHECK_THAT(no.output, Catch::Contains("bacth_max_rows") && Catch::Contains("batch_max_rows"));  // did you mean
  CHECK_THAT(no.output, Catch::Contains(bad + ":9:10: [status] listen: \"8788\" is not ADDRESS:PORT"));

  // Both required sections named when missing.
  const auto empty = dir.file("empty.toml");
  write_file(empty, "[receiver]\nlog_level = \"debug\"\n");
  auto missing = run_receiver({"check-config", empty}, dir);
  CHECK(missing.code == 78);
  CHECK_THAT(missing.output, Catch::Contains("missing required section [broker]") &&
                                 Catch::Contains("missing required section [database]"));
}

TEST_CASE("ioc-receiver migrate: an empty database gets the schema and partitions; again changes nothing",
          "[integration][receiver]") {
  Postgres server;
  TempDir dir;
  const auto config = dir.file("r.toml");
  write_file(config, config_text(dir, server.conninfo()));

  // A server that cannot be reached: exit 1 and libpq's reason, nothing half-made.
  const auto unreachable = dir.file("unreachable.toml");
  write_file(unreachable, config_text(dir, "host=" + dir.file("no-socket-here") + " port=1 dbname=ioc user=ioc"));
  auto down = run_receiver({"migrate", "-c", unreachable}, dir);
  CHECK(down.code == 1);
  CHECK_THAT(down.output, Catch::Contains("cannot connect to the database"));

  auto first = run_receiver({"migrate", "-c", config}, dir);
  INFO(first.output);
  REQUIRE(first.code == 0);
  CHECK_THAT(first.output, Catch::Contains("schema: version 0 -> 1"));
  CHECK_THAT(first.output, Catch::Contains("readings partitions: 4 created"));
  CHECK(server.psql("SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public' "
                    "AND tablename NOT LIKE 'readings_%'") ==
        "blobs,events,gaps,heartbeats,ioc_schema_migrations,offices,quarantine,readings,seq_ranges,sources");
  CHECK(server.psql("SELECT count(*) FROM pg_inherits WHERE inhparent = 'readings'::regclass") == "5");  // 4 + default
  CHECK(server.psql("SELECT version FROM ioc_schema_migrations") == "1");

  auto again = run_receiver({"migrate", "-c", config}, dir);
  INFO(again.output);
  CHECK(again.code == 0);
  CHECK_THAT(again.output, Catch::Contains("schema: already at version 1"));
  CHECK_THAT(again.output, Catch::Contains("readings partitions: 0 created"));

  // A database written by a newer ioc-receiver is refused, not touched.
  server.psql("INSERT INTO ioc_schema_migrations (version, description) VALUES (99, 'from the future')");
  const auto relations = server.psql("SELECT count(*) FROM pg_class");
  auto newer = run_receiver({"migrate", "-c", config}, dir);
  CHECK(newer.code == 1);
  CHECK_THAT(newer.output, Catch::Contains("schema version 99, newer than this ioc-receiver (1): upgrade ioc-receiver"));
  CHECK(server.psql("SELECT count(*) FROM ioc_schema_migrations") == "2");
  CHECK(server.psql("SELECT count(*) FROM pg_class") == relations);  // nothing made, nothing dropped
}

TEST_CASE("two receivers migrating one empty database at once: both succeed, the schema is made once",
          "[integration][receiver]") {
  Postgres server;
  TempDir dir;
  const auto config = dir.file("r.toml");
  write_file(config, config_text(dir, server.conninfo()));
  // Both are made to meet at the lock: a third session holds it until both wait for it.
  pg::Connection holder(server.conninfo());
  holder.exec("SELECT pg_advisory_lock(" + std::to_string(ioc_receiver::kSchemaLockKey) + ")");
  Process a({ioc_receiver_binary(), "migrate", "-c", config}, dir.file("a.log"));
  Process b({ioc_receiver_binary(), "migrate", "-c", config}, dir.file("b.log"));
  const bool both_wait = wait_until(
      [&] {
        return holder.exec("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted").integer(0, 0) == 2;
      },
      60s);
  holder.exec("SELECT pg_advisory_unlock(" + std::to_string(ioc_receiver::kSchemaLockKey) + ")");
  CHECK(both_wait);
  const auto ca = a.wait_exit(90s), cb = b.wait_exit(90s);
  INFO(a.log() << b.log());
  CHECK(ca == 0);
  CHECK(cb == 0);
  CHECK(server.psql("SELECT count(*) FROM ioc_schema_migrations") == "1");
  // One of them made the schema and the partitions, the other found them.
  CHECK_THAT(a.log() + b.log(), Catch::Contains("schema: version 0 -> 1") && Catch::Contains("already at version 1"));
  CHECK(server.psql("SELECT count(*) FROM pg_inherits WHERE inhparent = 'readings'::regclass") == "5");
}

TEST_CASE("readings: stored once however often they arrive; a month without a partition moves in when it gets one",
          "[integration][receiver]") {
  Postgres server;
  pg::Connection db(server.conninfo());
  ioc_receiver::migrate(db);
  using namespace std::chrono;
  const auto now = sys_days{year{2026} / December / 1};
  REQUIRE(ioc_receiver::ensure_partitions(db, now, 2).size() == 3);  // 2026-12, 2027-01, 2027-02

  const std::string insert =
      "INSERT INTO readings (site, store, seq, ts, source, point, value_num, quality) VALUES "
      "('bk-cho-don', '6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d', $1, $2, 'tram-bom-1', 'flow', 12.5, 'good') "
      "ON CONFLICT DO NOTHING";
  CHECK(db.exec(insert, {"1", "2026-12-05T10:00:00.000Z"}).affected() == 1);
  CHECK(db.exec(insert, {"1", "2026-12-05T10:00:00.000Z"}).affected() == 0);  // resent: nothing new
  CHECK(db.exec(insert, {"2", "2027-06-01T00:00:00.000Z"}).affected() == 1);  // no partition yet
  CHECK(server.psql("SELECT count(*) FROM readings") == "2");
  CHECK(server.psql("SELECT count(*) FROM readings_default") == "1");
  CHECK(server.psql("SELECT count(*) FROM readings_2026_12") == "1");

  // Time passes: June 2027's partition is made and takes its reading out of the default one.
  const auto made = ioc_receiver::ensure_partitions(db, sys_days{year{2027} / May / 20}, 1);
  CHECK(made == std::vector<std::string>{"readings_2027_05", "readings_2027_06"});
  CHECK(server.psql("SELECT count(*) FROM readings_default") == "0");
  CHECK(server.psql("SELECT seq FROM readings_2027_06") == "2");
  // The unique key still holds in the new partition.
  CHECK(db.exec(insert, {"2", "2027-06-01T00:00:00.000Z"}).affected() == 0);

  // A bad quality is refused by the table itself, with PostgreSQL's SQLSTATE.
  try {
    db.exec("INSERT INTO readings (site, store, seq, ts, source, point, quality) VALUES ('s', "
            "'6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d', 3, now(), 'x', 'p', 'excellent')");
    FAIL("the CHECK constraint did not refuse quality 'excellent'");
  } catch (const pg::Error& e) {
    CHECK(e.sqlstate() == "23514");  // check_violation
  }
}

TEST_CASE("COPY into a staging table, then INSERT ... ON CONFLICT DO NOTHING: duplicates across batches vanish",
          "[integration][receiver]") {
  Postgres server;
  pg::Connection db(server.conninfo());
  ioc_receiver::migrate(db);
  ioc_receiver::ensure_partitions(db, std::chrono::sys_days{std::chrono::year{2026} / std::chrono::December / 1}, 0);
  const auto batch = [&](int first, int last) {
    std::string rows;
    for (int seq = first; seq <= last; ++seq)
      rows += "bk-cho-don\t6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d\t" + std::to_string(seq) +
              "\t2026-12-05 10:00:00+00\ttram-bom-1\t" + pg::copy_escape("lưu lượng\t(m3/h)") + "\t" +
              std::to_string(seq) + ".5\tgood\n";
    db.exec("BEGIN");
    db.exec("CREATE TEMP TABLE staging (LIKE readings INCLUDING DEFAULTS) ON COMMIT DROP");
    db.copy_in("COPY staging (site, store, seq, ts, source, point, value_num, quality) FROM STDIN", rows);
    const auto n = db.exec("INSERT INTO readings SELECT * FROM staging ON CONFLICT DO NOTHING").affected();
    db.exec("COMMIT");
    return n;
  };
  CHECK(batch(1, 1000) == 1000);
  CHECK(batch(501, 1500) == 500);  // half of it arrived before
  CHECK(server.psql("SELECT count(*), min(seq), max(seq), count(DISTINCT seq) FROM readings") == "1500|1|1500|1500");
  CHECK(server.psql("SELECT point FROM readings WHERE seq = 7") == "lưu lượng\t(m3/h)");
}
