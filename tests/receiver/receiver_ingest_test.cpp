// ioc-receiver end to end: real gateways, a real broker, a real PostgreSQL.
#include <csignal>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <zstd.h>

#include "receiver_rig.h"

using namespace ioc_edge::test;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

// Every seq of `site`'s stores (readings and events; a blob shares its seq with its metadata
// event): how many rows, how many distinct seqs, the lowest and the highest.
struct SeqCounts {
  std::int64_t rows = 0, distinct = 0, lowest = 0, highest = 0, stores = 0;
};

SeqCounts seq_counts(ReceiverRig& rig, const std::string& site) {
  const auto out = rig.pg().psql(
      "SELECT count(*), count(DISTINCT (store, seq)), coalesce(min(seq), 0), coalesce(max(seq), 0), "
      "count(DISTINCT store) FROM (SELECT store, seq FROM readings WHERE site = '" + site +
      "' UNION ALL SELECT store, seq FROM events WHERE site = '" + site + "') x");
  SeqCounts c;
  std::sscanf(out.c_str(), "%ld|%ld|%ld|%ld|%ld", &c.rows, &c.distinct, &c.lowest, &c.highest, &c.stores);
  return c;
}

const std::string kGenerator =
    "[[source]]\nname = \"tram-bom-1\"\ntype = \"generator\"\nrate = 400\npoints = 4\ntick = \"100ms\"\n";
const std::string kCamera =
    "[[source]]\nname = \"cam-1\"\ntype = \"generator\"\nrate = 1\npoints = 1\nblob_size = 3000\nblob_every = \"300ms\"\n";

}  // namespace

TEST_CASE("every committed seq of every gateway is stored exactly once across an outage and a receiver restart",
          "[receiver][e2e]") {
  ReceiverRig rig;
  auto& receiver = rig.start_receiver("ioc-receiver-1");
  rig.start_gateway("bk-cho-don", kGenerator);
  auto& b = rig.start_gateway("bk-na-ri", kGenerator + kCamera);
  REQUIRE(wait_until([&] { return seq_counts(rig, "bk-cho-don").distinct > 500 && seq_counts(rig, "bk-na-ri").distinct > 500; }, 30s));

  // An outage of one office's link: its gateway buffers, then replays.
  b.proxy->cut();
  const auto before = seq_counts(rig, "bk-na-ri").distinct;
  REQUIRE(wait_until([&] { return b.backlog() > 800; }, 20s));
  // The receiver dies meanwhile (kill -9) and comes back: what it had not acknowledged comes again.
  receiver.process->signal(SIGKILL);
  REQUIRE(receiver.process->wait_exit(10s));
  rig.start_receiver("ioc-receiver-1");
  b.proxy->restore();
  REQUIRE(wait_until([&] { return seq_counts(rig, "bk-na-ri").distinct > before + 800; }, 30s));

  const auto last_a = rig.drain_gateway("bk-cho-don");
  const auto last_b = rig.drain_gateway("bk-na-ri");
  for (const auto& [site, last] : {std::pair{std::string("bk-cho-don"), last_a}, std::pair{std::string("bk-na-ri"), last_b}}) {
    const bool all = wait_until([&] { return seq_counts(rig, site).distinct == last; }, 30s);
    const auto c = seq_counts(rig, site);
    INFO(site << ": " << c.rows << " rows, " << c.distinct << " distinct seqs of " << last << "\n"
              << rig.receiver("ioc-receiver-1").process->log());
    REQUIRE(all);
    CHECK(c.rows == last);  // exactly once: no seq stored twice
    CHECK(c.lowest == 1);
    CHECK(c.highest == last);
    CHECK(c.stores == 1);
  }
  // Blobs arrived whole, matched to their metadata events.
  const auto blobs = rig.sql_int("SELECT count(*) FROM blobs WHERE site = 'bk-na-ri'");
  CHECK(blobs > 3);
  CHECK(rig.sql_int("SELECT count(*) FROM blobs WHERE size <> 3000 OR sha256 <> sha256(content)") == 0);
  CHECK(rig.sql_int("SELECT count(*) FROM blobs b JOIN events e USING (site, store, seq) WHERE e.event = 'blob' "
                    "AND e.body->>'sha256' = encode(b.sha256, 'hex')") == blobs);
  CHECK(rig.sql_int("SELECT count(*) FROM quarantine") == 0);
  // Coverage: everything received, no holes, nothing pending.
  const auto cov = json::parse(rig.command({"coverage", "--format", "json"}, receiver.config));
  INFO(cov.dump(2));
  REQUIRE(cov["stores"].size() == 2);
  for (const auto& s : cov["stores"]) {
    CHECK(s["hole_count"] == 0);
    CHECK(s["pending_count"] == 0);
    CHECK(s["received"] == s["max_seq"]);
  }
  // The offices and their sources are known, with the codes from the batches.
  CHECK(rig.pg().psql("SELECT unit_code || '|' || province FROM offices WHERE site = 'bk-cho-don'") == "01843|bac-kan");
  CHECK(rig.sql_int("SELECT count(*) FROM sources WHERE site = 'bk-na-ri' AND last_good_at IS NOT NULL") >= 1);
  CHECK(rig.sql_int("SELECT count(*) FROM heartbeats WHERE site = 'bk-cho-don' AND state = 'online'") >= 2);
}

TEST_CASE("two receivers share the load and one killed with kill -9 mid-stream loses nothing", "[receiver][e2e]") {
  ReceiverRig rig;
  auto& r1 = rig.start_receiver("ioc-receiver-1");
  auto& r2 = rig.start_receiver("ioc-receiver-2");
  rig.start_gateway("bk-cho-don", kGenerator);
  // Both take a share.
  const auto stored = [](ReceiverProcess& r) {
    const auto s = r.status();
    return s.is_null() ? std::int64_t{0} : s["stored"]["readings"].get<std::int64_t>();
  };
  REQUIRE(wait_until([&] { return stored(r1) > 200 && stored(r2) > 200; }, 30s));
  r1.process->signal(SIGKILL);
  REQUIRE(r1.process->wait_exit(10s));
  const auto at_kill = seq_counts(rig, "bk-cho-don").distinct;
  // The other keeps storing meanwhile.
  REQUIRE(wait_until([&] { return seq_counts(rig, "bk-cho-don").distinct > at_kill + 400; }, 30s));
  // The killed one comes back (as systemd restarts it) and takes what it was given but never
  // acknowledged.
  rig.start_receiver("ioc-receiver-1");
  const auto last = rig.drain_gateway("bk-cho-don");
  const bool all = wait_until([&] { return seq_counts(rig, "bk-cho-don").distinct == last; }, 30s);
  const auto c = seq_counts(rig, "bk-cho-don");
  INFO(c.distinct << " of " << last << " seqs stored");
  REQUIRE(all);
  CHECK(c.rows == last);
  CHECK(c.lowest == 1);
}

TEST_CASE("a hole is reported and a declared gap is not", "[receiver][coverage]") {
  ReceiverRig rig;
  auto& r = rig.start_receiver("ioc-receiver-1", "", "[coverage]\nhole_grace = \"1s\"\n");
  auto pub = rig.publisher();
  const std::string store = "6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d";
  const std::string site = "bk-test";
  // Seqs 1..10 and 16..20 arrive; 11..15 never do (a hole); 21..25 are declared dropped by the
  // gap event (seq 26); 27..30 arrive.
  REQUIRE(pub.publish("ioc/bac-kan/" + site + "/data/tram-bom-1", make_batch(site, store, 1, 10).dump()) < 0x80);
  REQUIRE(pub.publish("ioc/bac-kan/" + site + "/data/tram-bom-1", make_batch(site, store, 16, 5).dump()) < 0x80);
  json gap = make_batch(site, store, 26, 1, "_gateway");
  gap["readings"][0]["point"] = "gap";
  gap["readings"][0].erase("unit");
  gap["readings"][0]["value"] = {{"event", "gap"}, {"reason", "max_size"}, {"ranges", {{21, 25}}}, {"count", 5},
                                 {"priority", "normal"}, {"sources", {{"tram-bom-1", 5}}}};
  REQUIRE(pub.publish("ioc/bac-kan/" + site + "/event/_gateway", gap.dump()) < 0x80);
  // The last batch compressed with zstd, as a gateway may send it.
  const auto plain = make_batch(site, store, 27, 4).dump();
  std::string packed(ZSTD_compressBound(plain.size()), '\0');
  packed.resize(ZSTD_compress(packed.data(), packed.size(), plain.data(), plain.size(), 3));
  REQUIRE(pub.publish("ioc/bac-kan/" + site + "/data/tram-bom-1", packed) < 0x80);
  REQUIRE(wait_until([&] { return rig.sql_int("SELECT count(*) FROM readings WHERE site = 'bk-test'") == 19; }, 15s));

  // Within the grace period the missing seqs are pending, not holes.
  auto cov = json::parse(rig.command({"coverage", "--site", site, "--format", "json"}, r.config));
  // After it, 11..15 is a hole; 21..25 is declared, never a hole.
  REQUIRE(wait_until(
      [&] {
        cov = json::parse(rig.command({"coverage", "--site", site, "--format", "json"}, r.config));
        return cov["stores"].size() == 1 && cov["stores"][0]["hole_count"] == 5;
      },
      15s));
  INFO(cov.dump(2));
  const auto& s = cov["stores"][0];
  CHECK(s["max_seq"] == 30);
  CHECK(s["received"] == 20);
  CHECK(s["holes"] == json::parse("[[11,15]]"));
  CHECK(s["declared"] == json::parse("[[21,25]]"));
  CHECK(s["pending_count"] == 0);
  CHECK(rig.sql_int("SELECT count(*) FROM gaps WHERE site = 'bk-test' AND first_seq = 21 AND last_seq = 25") == 1);
  // The SQL view says the same.
  CHECK(rig.pg().psql("SELECT missing::text FROM coverage WHERE site = 'bk-test'") == "{[11,16)}");
  // The text output names the hole for an operator, and /metrics counts it.
  CHECK_THAT(rig.command({"coverage", "--site", site}, r.config), Catch::Contains("11-15"));
  REQUIRE(wait_until([&] { return r.metrics().find("ioc_receiver_store_holes{site=\"bk-test\",store=\"" + store + "\"} 5") != std::string::npos; }, 15s));
}

TEST_CASE("a forged site and invalid messages are quarantined with their reasons and nothing else is lost",
          "[receiver][quarantine]") {
  ReceiverRig rig;
  rig.start_receiver("ioc-receiver-1");
  auto pub = rig.publisher();
  const std::string store = "6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d";
  // Office bk-na-ri's batch published under bk-cho-don's topic.
  REQUIRE(pub.publish("ioc/bac-kan/bk-cho-don/data/x", make_batch("bk-na-ri", store, 1, 3).dump()) < 0x80);
  // A batch with an unknown quality.
  auto bad = make_batch("bk-cho-don", store, 4, 3);
  bad["readings"][1]["quality"] = "fine";
  REQUIRE(pub.publish("ioc/bac-kan/bk-cho-don/data/x", bad.dump()) < 0x80);
  // Not JSON; invalid UTF-8; a topic that is no office's.
  REQUIRE(pub.publish("ioc/bac-kan/bk-cho-don/data/x", "{\"schema\": ") < 0x80);
  REQUIRE(pub.publish("ioc/bac-kan/bk-cho-don/data/x", std::string("{\"site\": \"\xC3\x28\"}")) < 0x80);
  REQUIRE(pub.publish("ioc/bac-kan/bk-cho-don/status", "{\"state\": \"online\"}") < 0x80);
  // Then a good one.
  REQUIRE(pub.publish("ioc/bac-kan/bk-cho-don/data/x", make_batch("bk-cho-don", store, 7, 2).dump()) < 0x80);
  REQUIRE(wait_until([&] { return rig.sql_int("SELECT count(*) FROM readings") == 2; }, 15s));
  REQUIRE(wait_until([&] { return rig.sql_int("SELECT count(*) FROM quarantine") == 5; }, 15s));
  const auto reasons = rig.pg().psql("SELECT string_agg(reason, E'\\n' ORDER BY id) FROM quarantine");
  INFO(reasons);
  CHECK_THAT(reasons, Catch::Contains("site \"bk-na-ri\" in the message but \"bk-cho-don\" in its topic"));
  CHECK_THAT(reasons, Catch::Contains("/readings/1/quality"));
  CHECK_THAT(reasons, Catch::Contains("not JSON"));
  CHECK_THAT(reasons, Catch::Contains("status.schema.json"));
  CHECK(rig.sql_int("SELECT count(*) FROM quarantine WHERE site_in_topic = 'bk-cho-don'") == 5);
  // The payload is kept byte for byte, for the IOC to look at.
  CHECK(rig.pg().psql("SELECT encode(payload, 'escape') FROM quarantine WHERE reason LIKE 'not JSON%' ORDER BY id LIMIT 1") ==
        "{\"schema\": ");
  CHECK(rig.pg().psql("SELECT encode(payload, 'hex') FROM quarantine WHERE reason LIKE 'not JSON%' ORDER BY id DESC LIMIT 1") ==
        "7b2273697465223a2022c328227d");
  CHECK(rig.sql_int("SELECT count(*) FROM readings WHERE seq < 7") == 0);
}

TEST_CASE("a late office and a late source are named by late and in /metrics", "[receiver][late]") {
  ReceiverRig rig;
  auto& r = rig.start_receiver("ioc-receiver-1", "",
                               "[late]\noffice_after = \"3s\"\nsource_min_silence = \"1s\"\n");
  auto pub = rig.publisher();
  const std::string store = "6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d";
  const auto heartbeat = [&](const std::string& site) {
    return json{{"state", "online"}, {"site", site}, {"store", store}, {"ts", "2026-11-30T09:00:00.000Z"},
                {"version", "0.8.0"}, {"uptime_s", 5}, {"backlog", 0}, {"oldest_age_s", 0.0}, {"held", 0},
                {"fault", nullptr}}
        .dump();
  };
  // Office "quiet" sends one heartbeat and falls silent; office "busy" keeps sending. Source
  // "tram-bom-2" of busy stops after a few readings 200 ms apart; "tram-bom-1" goes on.
  REQUIRE(pub.publish("ioc/bac-kan/quiet/status", heartbeat("quiet"), true) < 0x80);
  std::int64_t seq = 1;
  const auto t0 = std::chrono::system_clock::now();
  const auto stamp = [&] {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    const std::time_t secs = ms / 1000;
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                  tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
    return std::string(buf);
  };
  bool named = false;
  std::string late_json;
  for (int i = 0; i < 60 && !named; ++i) {  // 60 x 200 ms at most
    REQUIRE(pub.publish("ioc/bac-kan/busy/status", heartbeat("busy")) < 0x80);
    REQUIRE(pub.publish("ioc/bac-kan/busy/data/tram-bom-1", make_batch("busy", store, seq++, 1, "tram-bom-1", stamp()).dump()) < 0x80);
    if (i < 6)
      REQUIRE(pub.publish("ioc/bac-kan/busy/data/tram-bom-2", make_batch("busy", store, seq++, 1, "tram-bom-2", stamp()).dump()) < 0x80);
    std::this_thread::sleep_for(200ms);  // the office's own cadence, not a synchronisation
    if (std::chrono::system_clock::now() - t0 > 4s) {
      late_json = rig.command({"late", "--format", "json"}, r.config);
      const auto late = json::parse(late_json);
      named = late["offices"].size() == 1 && late["sources"].size() == 1;
    }
  }
  INFO(late_json);
  REQUIRE(named);
  const auto late = json::parse(late_json);
  CHECK(late["offices"][0]["site"] == "quiet");
  CHECK(late["sources"][0]["site"] == "busy");
  CHECK(late["sources"][0]["source"] == "tram-bom-2");
  CHECK(late["sources"][0]["cadence_configured"] == false);
  CHECK(late["sources"][0]["cadence_s"].get<double>() < 1.0);  // learned: about 0.4 s
  const bool in_metrics = wait_until(
      [&] {
        const auto m = r.metrics();
        return m.find("ioc_receiver_office_late{site=\"quiet\"} 1") != std::string::npos &&
               m.find("ioc_receiver_source_late{site=\"busy\",source=\"tram-bom-2\"} 1") != std::string::npos &&
               m.find("ioc_receiver_office_late{site=\"busy\"}") == std::string::npos;
      },
      10s);
  INFO(r.metrics());
  CHECK(in_metrics);
  // A cadence the IOC configures wins over the learned one.
  rig.pg().psql("UPDATE sources SET expected_every = '1 hour' WHERE source = 'tram-bom-2'");
  CHECK(json::parse(rig.command({"late", "--format", "json"}, r.config))["sources"].empty());
}
