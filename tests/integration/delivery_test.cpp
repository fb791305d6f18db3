// End to end against a real Mosquitto with mutual TLS: delivery, outages, eviction, the schema.
#include "integration/daemon_rig.h"

using namespace ioc_edge::test;


TEST_CASE("readings reach the IOC over mutual TLS in the documented structure", "[integration][delivery]") {
  DaemonRig rig;
  rig.start();
  REQUIRE(wait_until([&] { return rig.collector().distinct_data_seqs() >= 1000; }, 30s));
  CHECK(rig.uplink_state() == "up");
  REQUIRE(rig.stop() == 0);

  const auto last = rig.last_seq_on_disk();
  REQUIRE(last >= 1000);
  // Stopping lets in-flight batches finish; what was not acknowledged stays in the outbox.
  const auto left = DaemonRig::query_int(rig.tmp().file("data/outbox.db"), "SELECT coalesce(sum(n), 0) FROM records");
  const auto got = rig.collector().data_seqs();
  std::int64_t missing = 0;
  for (std::int64_t s = 1; s <= last; ++s) missing += got.count(s) ? 0 : 1;
  CHECK(missing <= left);
  CHECK(rig.integrity_check() == "ok");

  // The batch carries the office's identity.
  const auto batches = rig.collector().json_on("/data/tram-bom-1");
  REQUIRE_FALSE(batches.empty());
  const auto& b = batches.front();
  CHECK(b["schema"] == "ioc-edge/batch/1");
  CHECK(b["site"] == "bk-cho-don");
  CHECK(b["org"]["unit_code"] == "01843");
  CHECK(b["org"]["name"] == "UBND xã Chợ Đồn");
  CHECK(b["readings"][0]["source"] == "tram-bom-1");
  // The topic layout of docs/design.md section 4.
  for (const auto& m : rig.collector().messages())
    CHECK_THAT(m.topic, Catch::StartsWith("ioc/bac-kan/bk-cho-don/"));

  // Heartbeat online while running, then offline on a clean stop (the will's text).
  const auto status = rig.collector().json_on("/status");
  REQUIRE(status.size() >= 2);
  CHECK(status.front()["state"] == "online");
  CHECK(status.front()["store"] == b["store"]);
  CHECK(status.back()["state"] == "offline");

  CHECK(rig.validate_against_schema() == 0);
}

TEST_CASE("a link outage while generating loses nothing", "[integration][outage]") {
  DaemonRig rig;
  rig.start();
  REQUIRE(wait_until([&] { return rig.collector().distinct_data_seqs() >= 500; }, 30s));

  rig.proxy().cut();
  REQUIRE(wait_until([&] { return rig.uplink_state() != "up"; }, 15s));
  const auto sent_before = rig.stat("uplink", "readings_sent");
  // The backlog grows while the link is down and the IOC receives nothing.
  REQUIRE(wait_until([&] { return rig.backlog() >= 2000; }, 20s));
  CHECK(rig.stat("uplink", "readings_sent") == sent_before);

  rig.proxy().restore();
  REQUIRE(wait_until([&] { return rig.uplink_state() == "up"; }, 15s));
  // The backlog drains to (nearly) zero while generation continues.
  REQUIRE(wait_until([&] { return rig.backlog() < 500; }, 30s));
  CHECK_THAT(rig.daemon_log(), Catch::Contains("restored after"));
  REQUIRE(rig.stop() == 0);

  // Stop the producer, then let a second run drain what was left, and count.
  rig.drain_without_sources(30s);
  const auto last = rig.last_seq_on_disk();
  REQUIRE(last > 2500);
  const auto missing = rig.missing(last);
  INFO("first missing seq: " << (missing.empty() ? 0 : missing.front()));
  CHECK(missing.empty());
  CHECK(rig.gap_seqs().empty());
}

TEST_CASE("eviction during a long outage tells the IOC exactly what was dropped", "[integration][eviction]") {
  RigOptions o;
  o.extra_buffer = "max_size = \"1MiB\"\n";
  o.sources = "[[source]]\nname = \"tram-bom-1\"\ntype = \"generator\"\nrate = 20000\npoints = 8\n";
  DaemonRig rig(o);
  rig.proxy().cut();
  rig.start();
  REQUIRE(wait_until([&] { return rig.stat("backlog", "evicted") > 5000; }, 30s));
  // A gap is never silent: stop producing, restore the link, drain everything, then count.
  REQUIRE(rig.stop() == 0);
  rig.drain_without_sources(60s);

  const auto last = rig.last_seq_on_disk();
  const auto gaps = rig.gap_seqs();
  const auto got = rig.received_seqs();
  REQUIRE_FALSE(gaps.empty());
  // Every seq is accounted for: received, or named in a gap; none is both.
  CHECK(rig.missing(last).empty());
  std::size_t both = 0;
  for (auto s : gaps) both += got.count(s);
  CHECK(both == 0);
  // The oldest went first: the first gap starts at seq 1.
  CHECK(*gaps.begin() == 1);
  const auto events = rig.collector().json_on("/event/_gateway");
  REQUIRE_FALSE(events.empty());
  const auto& ev = events.front()["readings"][0]["value"];
  CHECK(ev["event"] == "gap");
  CHECK(ev["reason"] == "max_size");
  CHECK(ev["sources"]["tram-bom-1"].get<std::int64_t>() > 0);
  CHECK(rig.validate_against_schema() == 0);
}

TEST_CASE("after an outage new readings arrive before the backlog has drained", "[integration][outage]") {
  RigOptions o;
  o.extra_uplink = "backlog_rate = \"20KiB/s\"\n";  // slow drain, so the ordering is visible
  o.sources = "[[source]]\nname = \"tram-bom-1\"\ntype = \"generator\"\nrate = 1000\npoints = 4\n";
  DaemonRig rig(o);
  rig.proxy().cut();
  rig.start();
  REQUIRE(wait_until([&] { return rig.backlog() >= 5000; }, 30s));
  const auto last_before = rig.stat("backlog", "last_seq");
  rig.proxy().restore();
  // Readings newer than the outage arrive while much of the backlog is still queued.
  REQUIRE(wait_until([&] {
    const auto seqs = rig.collector().data_seqs();
    return !seqs.empty() && *seqs.rbegin() > last_before + 500;
  }, 30s));
  CHECK(rig.backlog() > 2000);
  REQUIRE(rig.stop() == 0);
}
