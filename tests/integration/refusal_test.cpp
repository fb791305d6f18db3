// What the IOC broker refuses stays at the office (issue: refused is not delivered). Against a real
// Mosquitto with an ACL and a message size limit, MQTT 5 and, for the documented limit, MQTT 3.1.1.
#include "integration/daemon_rig.h"

using namespace ioc_edge::test;

namespace {

// The ACL of the post-2025 IOC: this office's certificate (CN ioc-edge-client, its user name) may
// read everything (the collector shares it) and write only what `write` lists.
std::string acl(const std::vector<std::string>& write) {
  std::string a = "user ioc-edge-client\ntopic read ioc/#\n";
  for (const auto& w : write) a += "topic write " + w + "\n";
  return a;
}

RigOptions acl_rig(const std::string& acl_path, const std::string& extra_uplink = "") {
  RigOptions o;
  o.proxy = false;
  o.broker.extra_config = "acl_file " + acl_path + "\n";
  o.extra_uplink = extra_uplink;
  o.sources = "[[source]]\nname = \"tram-bom-1\"\ntype = \"generator\"\nrate = 200\npoints = 4\ntick = \"100ms\"\n";
  return o;
}

// Every seq named by the rejected events the IOC received, with how often each was named.
std::map<std::int64_t, int> rejected_seqs(DaemonRig& rig, std::string* topic = nullptr, int* code = nullptr) {
  std::map<std::int64_t, int> out;
  for (const auto& batch : rig.collector().json_on("/event/_gateway"))
    for (const auto& r : batch["readings"])
      if (r["point"] == "rejected") {
        if (topic) *topic = r["value"]["topic"].get<std::string>();
        if (code) *code = r["value"]["reason_code"].get<int>();
        for (const auto& range : r["value"]["ranges"])
          for (auto s = range[0].get<std::int64_t>(); s <= range[1].get<std::int64_t>(); ++s) ++out[s];
      }
  return out;
}

int requeue(DaemonRig& rig, std::string* out = nullptr) {
  const auto log = rig.tmp().file("requeue.log");
  const int rc = run_to_exit({ioc_edge_binary(), "outbox", "requeue", "-a", "127.0.0.1:" + std::to_string(rig.status_port())},
                             log, 30s);
  if (out) *out = DaemonRig::read_log(log);
  return rc;
}

}  // namespace

TEST_CASE("a publish the broker's ACL refuses under MQTT 5 is kept, reported, and delivered after the fix and requeue",
          "[integration][refusal]") {
  TempDir acl_dir;
  const auto acl_path = acl_dir.file("acl");
  // The IOC allows this office's status and events, but its data only under the new province.
  write_file(acl_path, acl({"ioc/thai-nguyen/#", "ioc/bac-kan/bk-cho-don/status", "ioc/bac-kan/bk-cho-don/event/#"}));
  DaemonRig rig(acl_rig(acl_path));
  rig.start();

  // Refused data is set aside, not deleted, and everyone hears of it.
  REQUIRE(wait_until([&] { return rig.stat("backlog", "last_seq") > 600 && !rejected_seqs(rig).empty(); }, 30s));
  const auto st = rig.status();
  const auto held = st["backlog"]["held"]["readings"].get<std::int64_t>();
  CHECK(held > 0);
  CHECK(st["backlog"]["held"]["messages"][0]["reason"] == "not authorized");
  CHECK(st["backlog"]["held"]["messages"][0]["topic"] == "ioc/bac-kan/bk-cho-don/data/tram-bom-1");
  CHECK(st["uplink"]["state"] == "up");
  CHECK(st["uplink"]["mqtt_version"] == "5");
  CHECK(st["uplink"]["rejected_readings"].get<std::int64_t>() > 0);
  const auto health = http_get(rig.status_port(), "/healthz");
  CHECK(health.status == 503);
  CHECK_THAT(health.body, Catch::Contains("refused") && Catch::Contains("ioc-edge outbox requeue"));
  CHECK_THAT(rig.daemon_log(), Catch::Contains("the IOC broker refused") && Catch::Contains("not authorized"));
  std::string topic;
  int code = 0;
  rejected_seqs(rig, &topic, &code);
  CHECK(topic == "ioc/bac-kan/bk-cho-don/data/tram-bom-1");
  CHECK(code == 0x87);
  CHECK(rig.collector().data_seqs().empty());  // nothing got through
  CHECK(rig.validate_against_schema() == 0);     // the rejected events are in the documented shape

  // No resend storm, no reconnect loop: for two more seconds no seq is refused twice and the
  // daemon keeps its one connection.
  const auto storm = [&] {
    for (const auto& [seq, times] : rejected_seqs(rig))
      if (times > 1) return true;
    return rig.stat("uplink", "connects") != 1;
  };
  CHECK_FALSE(wait_until(storm, 2s, 200ms));

  // The IOC fixes its ACL; district IT requeues through the running daemon.
  write_file(acl_path, acl({"ioc/#"}));
  rig.broker().reload();
  std::string out;
  CHECK(requeue(rig, &out) == 0);
  CHECK_THAT(out, Catch::Contains("readings the IOC broker had refused are pending again"));
  REQUIRE(wait_until([&] { return rig.status()["backlog"]["held"]["readings"] == 0; }, 10s));
  CHECK(wait_until([&] { return http_get(rig.status_port(), "/healthz").status == 200; }, 10s));
  REQUIRE(rig.stop() == 0);
  rig.drain_without_sources(60s);
  const auto last = rig.last_seq_on_disk();
  // Every seq reached the IOC, the ones that were refused included; none was lost to the refusal.
  const auto got = rig.received_seqs();
  std::vector<std::int64_t> missing;
  for (std::int64_t s = 1; s <= last; ++s)
    if (!got.count(s)) missing.push_back(s);
  INFO("first missing seq: " << (missing.empty() ? 0 : missing.front()) << " of " << last);
  CHECK(missing.empty());
  CHECK(rig.gap_seqs().empty());
}

TEST_CASE("a message over the broker's size limit is kept and reported as too large", "[integration][refusal]") {
  TempDir acl_dir;
  RigOptions o;
  o.proxy = false;
  o.broker.extra_config = "message_size_limit 4000\n";
  // Data messages of 100 readings (~10 KB) are too large; the gateway's events (< 1 KB) fit.
  o.extra_uplink = "batch_max_readings = 100\n";
  o.sources = "[[source]]\nname = \"tram-bom-1\"\ntype = \"generator\"\nrate = 2000\npoints = 4\ntick = \"100ms\"\n";
  DaemonRig rig(o);
  rig.start();
  REQUIRE(wait_until([&] { return !rejected_seqs(rig).empty(); }, 30s));
  int code = 0;
  rejected_seqs(rig, nullptr, &code);
  CHECK(code == 0x95);
  const auto st = rig.status();
  CHECK(st["backlog"]["held"]["readings"].get<std::int64_t>() > 0);
  CHECK(st["backlog"]["held"]["messages"][0]["reason"] == "packet too large");
  CHECK(st["uplink"]["connects"] == 1);
  REQUIRE(rig.stop() == 0);

  // Without the limit, a restart makes them pending again and they arrive.
  rig.broker().stop();
  rig.broker().set_extra_config("");
  rig.broker().start();
  REQUIRE(wait_until([&] { return rig.collector().connected(); }, 15s));
  rig.drain_without_sources(60s);
  const auto last = rig.last_seq_on_disk();
  const auto got = rig.received_seqs();
  std::size_t missing = 0;
  for (std::int64_t s = 1; s <= last; ++s) missing += got.count(s) ? 0 : 1;
  CHECK(missing == 0);
  CHECK_THAT(rig.daemon_log(), Catch::Contains("refused before the restart are pending again"));
}

TEST_CASE("under MQTT 3.1.1 a refused publish looks delivered: the documented limit, warned at start",
          "[integration][refusal]") {
  TempDir acl_dir;
  const auto acl_path = acl_dir.file("acl");
  write_file(acl_path, acl({"ioc/thai-nguyen/#", "ioc/bac-kan/bk-cho-don/status"}));
  auto o = acl_rig(acl_path, "mqtt_version = \"3.1.1\"\n");
  o.proxy = true;  // to cut the link: a lost link must not read as a refusal either
  DaemonRig rig(o);
  rig.start();
  CHECK_THAT(rig.daemon_log(), Catch::Contains("speaks MQTT 3.1.1") && Catch::Contains("refused data would be deleted"));
  // The broker drops every data message and answers it like a stored one: the gateway cannot tell.
  REQUIRE(wait_until([&] { return rig.stat("uplink", "readings_sent") > 200; }, 30s));
  const auto st = rig.status();
  CHECK(st["uplink"]["mqtt_version"] == "3.1.1");
  CHECK(st["uplink"]["rejected_readings"] == 0);
  CHECK(st["backlog"]["held"]["readings"] == 0);
  CHECK(rig.collector().data_seqs().empty());  // and yet nothing arrived: why MQTT 5 is the default
  rig.proxy().cut();
  REQUIRE(wait_until([&] { return rig.uplink_state() != "up"; }, 15s));
  rig.proxy().restore();
  REQUIRE(wait_until([&] { return rig.uplink_state() == "up"; }, 15s));
  CHECK(rig.status()["backlog"]["held"]["readings"] == 0);
  CHECK(rig.status()["uplink"]["rejected_readings"] == 0);
  REQUIRE(rig.stop() == 0);
}

TEST_CASE("a 1 MiB binary blob reaches the IOC byte for byte, its metadata in user properties",
          "[integration][blob]") {
  RigOptions o;
  o.sources = "[[source]]\nname = \"cam-1\"\ntype = \"generator\"\nrate = 10\nblob_size = \"1MiB\"\n"
              "blob_every = \"500ms\"\n";
  DaemonRig rig(o);
  rig.start();
  REQUIRE(wait_until([&] {
    for (const auto& m : rig.collector().messages())
      if (m.topic == "ioc/bac-kan/bk-cho-don/blob/cam-1") return true;
    return false;
  }, 30s));
  REQUIRE(rig.stop() == 0);
  std::string expected(1 << 20, '\0');
  for (std::size_t i = 0; i < expected.size(); ++i) expected[i] = static_cast<char>((i * 131 + 7) & 0xFF);
  int blobs = 0;
  for (const auto& m : rig.collector().messages()) {
    if (m.topic != "ioc/bac-kan/bk-cho-don/blob/cam-1") continue;
    ++blobs;
    CHECK(m.payload.size() == expected.size());
    CHECK(m.payload == expected);
    std::map<std::string, std::string> p(m.user_properties.begin(), m.user_properties.end());
    CHECK(p["schema"] == "ioc-edge/blob/1");
    CHECK(p["site"] == "bk-cho-don");
    CHECK(p["source"] == "cam-1");
    CHECK(p["point"] == "snapshot");
    CHECK(p["content_type"] == "application/octet-stream");
    CHECK(std::stoll(p["seq"]) >= 1);
    CHECK(p["store"].size() == 36);
  }
  CHECK(blobs >= 1);
}
