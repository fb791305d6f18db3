// The `mqtt` source against real peers: a real Mosquitto as the office broker (plain MQTT on
// loopback), devices' payloads published with Paho, the real ioc-edge binary, and the IOC stand-in
// (a second Mosquitto with mutual TLS and its consumer).
#include <catch2/catch.hpp>

#include <deque>
#include <random>
#include <thread>

#include <mqtt/async_client.h>
#include <openssl/evp.h>

#include "integration/daemon_rig.h"

namespace ioc_edge::test {
namespace {

// The office's broker: a real Mosquitto with a plain listener on loopback (the devices' side).
struct OfficeBroker {
  explicit OfficeBroker(TempDir& tmp) : port(free_tcp_port()) {
    certs = make_certs(tmp.file("office-certs"));
    MosquittoOptions o;
    o.require_client_cert = false;
    o.extra_config = "listener " + std::to_string(port) + " 127.0.0.1\n";
    broker = std::make_unique<Mosquitto>(certs, tmp.file("office"), o);
  }
  std::string url() const { return "mqtt://127.0.0.1:" + std::to_string(port); }
  int port;
  Certs certs;
  std::unique_ptr<Mosquitto> broker;
};

// A device: Paho with QoS 1, no persistence, at most `window` publishes unacknowledged.
class Device {
 public:
  Device(int port, const std::string& id, int version = MQTTVERSION_3_1_1)
      : client_("tcp://127.0.0.1:" + std::to_string(port), id, mqtt::create_options(version), nullptr) {
    auto opts = mqtt::connect_options_builder().clean_session(true).mqtt_version(version).finalize();
    if (version == MQTTVERSION_5) opts = mqtt::connect_options_builder().clean_start(true).mqtt_version(version).finalize();
    client_.connect(opts)->wait_for(std::chrono::seconds(10));
    REQUIRE(client_.is_connected());
  }
  ~Device() {
    try {
      drain();
      client_.disconnect()->wait_for(std::chrono::seconds(5));
    } catch (...) {
    }
  }
  void publish(const std::string& topic, const std::string& payload, int qos = 1, bool retained = false) {
    while (inflight_.size() >= 50) {
      inflight_.front()->wait_for(std::chrono::seconds(10));
      inflight_.pop_front();
    }
    inflight_.push_back(client_.publish(topic, payload.data(), payload.size(), qos, retained));
  }
  void drain() {
    for (auto& t : inflight_) t->wait_for(std::chrono::seconds(10));
    inflight_.clear();
  }

 private:
  mqtt::async_client client_;
  std::deque<mqtt::delivery_token_ptr> inflight_;
};

std::string mqtt_source(const std::string& name, const std::string& url, const std::string& body) {
  return "[[source]]\nname = \"" + name + "\"\ntype = \"mqtt\"\nurl = \"" + url + "\"\nclient_id = \"edge-test\"\n" +
         "reconnect_min = \"50ms\"\nreconnect_max = \"500ms\"\n" + body + "\n";
}

// Readings of every data batch on `topic_part`, in arrival order; only those whose own source is
// `device` when given (a source with source_name sends many devices' readings on its own topic).
std::vector<nlohmann::json> readings_on(Collector& c, const std::string& topic_part, const std::string& device = "") {
  std::vector<nlohmann::json> out;
  for (const auto& batch : c.json_on(topic_part))
    for (const auto& r : batch["readings"])
      if (device.empty() || r["source"] == device) out.push_back(r);
  return out;
}

// Messages on topics containing `topic_part` (blobs are not JSON: json_on would refuse them).
std::size_t count_on(Collector& c, const std::string& topic_part) {
  std::size_t n = 0;
  for (const auto& m : c.messages())
    if (m.topic.find(topic_part) != std::string::npos) ++n;
  return n;
}

std::string sha256(const std::string& bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr);
  std::string hex;
  char b[3];
  for (unsigned i = 0; i < len; ++i) {
    std::snprintf(b, sizeof b, "%02x", md[i]);
    hex += b;
  }
  return hex;
}

std::string jpeg_like(std::size_t n) {
  std::string s = "\xff\xd8\xff\xe0";
  std::mt19937 rng(7);
  while (s.size() < n) s.push_back(static_cast<char>(rng()));
  return s;
}

const char* kZigbee = R"({"temperature":23.5,"humidity":61,"battery":100,"linkquality":120,"contact":true,"last_seen":"2026-11-30T10:00:00.000Z"})";
const char* kTasmota = R"({"Time":"2026-11-30T17:05:00","ENERGY":{"TotalStartTime":"2026-01-01T00:00:00","Total":12.5,"Power":230,"Voltage":229,"Current":1.02}})";
const char* kFrigate = R"({"type":"new","before":{"id":"1796029200.123-abc","camera":"cong-chinh","label":"person"},"after":{"id":"1796029200.123-abc","camera":"cong-chinh","label":"person","score":0.84,"start_time":1796029200.123,"end_time":null,"has_snapshot":true}})";

}  // namespace

TEST_CASE("Zigbee2MQTT, Tasmota and Frigate payloads reach the IOC as readings, events and blobs",
          "[integration][mqtt]") {
  TempDir tmp;
  OfficeBroker office(tmp);
  RigOptions o;
  o.sources = mqtt_source("zigbee", office.url(), "topics = [\"zigbee2mqtt/+\"]\nsource_name = \"{1}\"\nts_pointer = \"/last_seen\"") +
              mqtt_source("tasmota", office.url(),
                          "topics = [\"tele/+/SENSOR\"]\nsource_name = \"{1}\"\nts_pointer = \"/Time\"\ntimezone = \"+07:00\"") +
              mqtt_source("tasmota-power", office.url(), "topics = [\"stat/+/POWER\"]\nformat = \"value\"\nsource_name = \"{1}\"") +
              mqtt_source("frigate", office.url(), "topics = [\"frigate/events\"]\nkind = \"event\"\nts_pointer = \"/after/start_time\"") +
              mqtt_source("snapshots", office.url(),
                          "topics = [\"frigate/+/+/snapshot\"]\nformat = \"binary\"\ncontent_type = \"image/jpeg\"\nsource_name = \"{1}\"");
  DaemonRig rig(o);
  rig.start();
  REQUIRE(wait_until([&] { return rig.status()["sources"][0]["state"] == "up"; }, 10s));

  const auto snapshot = jpeg_like(200 * 1024);
  {
    Device dev(office.port, "devices");
    dev.publish("zigbee2mqtt/phong-hop", kZigbee);
    dev.publish("tele/tasmota_A1B2C3/SENSOR", kTasmota);
    dev.publish("stat/tasmota_A1B2C3/POWER", "ON");
    dev.publish("frigate/events", kFrigate);
    dev.publish("frigate/cong-chinh/person/snapshot", snapshot);
    dev.drain();
  }
  auto& c = rig.collector();
  // Each source's messages go on its own topic; each reading names its device.
  REQUIRE(wait_until([&] { return count_on(c, "/blob/snapshots") >= 1 && c.json_on("/event/frigate").size() >= 1 &&
                                  readings_on(c, "/data/tasmota", "tasmota_A1B2C3").size() >= 5 &&
                                  !readings_on(c, "/data/tasmota-power", "tasmota_A1B2C3").empty() &&
                                  !readings_on(c, "/data/zigbee", "phong-hop").empty(); },
                     20s));
  CHECK(count_on(c, "/data/phong-hop") == 0);

  // Zigbee2MQTT: every leaf a point, named by path; the device from topic level 1; ts from last_seen.
  std::map<std::string, nlohmann::json> z;
  for (const auto& r : readings_on(c, "/data/zigbee")) {
    CHECK(r["source"] == "phong-hop");
    CHECK(r["ts"] == "2026-11-30T10:00:00.000Z");
    z[r["point"].get<std::string>()] = r["value"];
  }
  CHECK(z["temperature"] == 23.5);
  CHECK(z["humidity"] == 61);
  CHECK(z["contact"] == true);
  CHECK(z.count("last_seen") == 0);  // the timestamp is not a point

  // Tasmota: local time without an offset, read at +07:00; nested ENERGY flattened; POWER as a boolean.
  std::map<std::string, nlohmann::json> t;
  for (const auto& r : readings_on(c, "/data/tasmota", "tasmota_A1B2C3")) {
    if (r["point"] != "POWER") CHECK(r["ts"] == "2026-11-30T10:05:00.000Z");
    t[r["point"].get<std::string>()] = r["value"];
  }
  CHECK(t["ENERGY.Power"] == 230);
  CHECK(t["ENERGY.Current"] == 1.02);
  CHECK(t["POWER"] == true);

  // Frigate event: the whole document as an event, ts from after.start_time.
  const auto ev = readings_on(c, "/event/frigate");
  REQUIRE(ev.size() == 1);
  CHECK(ev[0]["ts"] == "2026-11-30T09:00:00.123Z");
  CHECK(ev[0]["value"]["after"]["camera"] == "cong-chinh");

  // The snapshot: its bytes untouched on blob/, and its metadata event with the same seq and sha256.
  const auto msgs = c.messages();
  const Collector::Message* blob = nullptr;
  for (const auto& m : msgs)
    if (m.topic == "ioc/bac-kan/bk-cho-don/blob/snapshots") blob = &m;
  REQUIRE(blob);
  CHECK(blob->payload == snapshot);
  std::map<std::string, std::string> props(blob->user_properties.begin(), blob->user_properties.end());
  CHECK(props["content_type"] == "image/jpeg");
  CHECK(props["sha256"] == sha256(snapshot));
  CHECK(props["origin"] == "frigate/cong-chinh/person/snapshot");
  CHECK(props["source"] == "cong-chinh");  // the camera, from source_name
  const auto meta = readings_on(c, "/event/snapshots");
  REQUIRE(meta.size() == 1);
  CHECK(meta[0]["source"] == "cong-chinh");
  CHECK(meta[0]["point"] == "snapshot");
  CHECK(meta[0]["value"]["kind"] == "blob");
  CHECK(meta[0]["value"]["sha256"] == sha256(snapshot));
  CHECK(meta[0]["value"]["size"] == snapshot.size());
  CHECK(std::to_string(meta[0]["seq"].get<std::int64_t>()) == props["seq"]);

  CHECK(rig.validate_against_schema() == 0);
  CHECK(rig.stop() == 0);
}

TEST_CASE("under an MQTT 3.1.1 uplink a blob still goes up with its metadata event", "[integration][mqtt][blob]") {
  TempDir tmp;
  OfficeBroker office(tmp);
  RigOptions o;
  o.extra_uplink = "mqtt_version = \"3.1.1\"\n";
  o.sources = mqtt_source("cam", office.url(), "topics = [\"cam/+/snapshot\"]\nformat = \"binary\"\nsource_name = \"{1}\"");
  DaemonRig rig(o);
  rig.start();
  REQUIRE(wait_until([&] { return rig.status()["sources"][0]["state"] == "up"; }, 10s));
  const auto snapshot = jpeg_like(64 * 1024);
  {
    Device dev(office.port, "camera");
    dev.publish("cam/san-truoc/snapshot", snapshot);
  }
  auto& c = rig.collector();
  REQUIRE(wait_until([&] { return count_on(c, "/blob/cam") == 1 && c.json_on("/event/cam").size() == 1; }, 20s));
  std::string bytes;
  for (const auto& m : c.messages())
    if (m.topic.find("/blob/cam") != std::string::npos) {
      bytes = m.payload;
      CHECK(m.user_properties.empty());  // MQTT 3.1.1 carries none
    }
  CHECK(bytes == snapshot);
  const auto meta = readings_on(c, "/event/cam");
  REQUIRE(meta.size() == 1);
  CHECK(meta[0]["source"] == "san-truoc");
  CHECK(meta[0]["value"]["sha256"] == sha256(snapshot));
  CHECK(meta[0]["value"]["origin"] == "cam/san-truoc/snapshot");
  CHECK(meta[0]["value"]["content_type"] == "application/octet-stream");
  CHECK(rig.stop() == 0);
}

TEST_CASE("what devices publish while the daemon is stopped arrives after it starts", "[integration][mqtt]") {
  TempDir tmp;
  OfficeBroker office(tmp);
  RigOptions o;
  o.sources = mqtt_source("sensor", office.url(), "topics = [\"sensors/#\"]");
  DaemonRig rig(o);
  rig.start();  // the session is made
  std::set<std::int64_t> got;
  const auto collect = [&] {
    got.clear();
    for (const auto& r : readings_on(rig.collector(), "/data/sensor")) got.insert(r["value"].get<std::int64_t>());
  };
  // The subscription is in place once a message goes through ("up" alone may come before SUBACK,
  // and a session stopped before it would hold no subscription).
  {
    Device probe(office.port, "sensor-probe");
    REQUIRE(wait_until([&] {
      probe.publish("sensors/kho/probe", "{\"n\":-1}");
      probe.drain();
      collect();
      return got.count(-1) == 1;
    }, 20s, 500ms));
  }
  REQUIRE(rig.stop() == 0);
  {
    Device dev(office.port, "sensor-while-away");
    for (int i = 0; i < 200; ++i) dev.publish("sensors/kho/" + std::to_string(i % 4), "{\"n\":" + std::to_string(i) + "}");
  }
  rig.start();
  const bool all = wait_until([&] {
    collect();
    return got.size() == 201;
  }, 30s);
  INFO("got " << got.size() << " of the 200 values published while away, and the probe");
  REQUIRE(all);
  CHECK(*got.begin() == -1);
  CHECK(*got.rbegin() == 199);
  CHECK(rig.stop() == 0);
}

TEST_CASE("kill -9 five times while a device sends 10,000 QoS 1 messages: every one reaches the IOC",
          "[integration][mqtt][kill9]") {
  TempDir tmp;
  OfficeBroker office(tmp);
  RigOptions o;
  o.sources = mqtt_source("dong-ho", office.url(), "topics = [\"meters/#\"]");
  DaemonRig rig(o);
  rig.start();
  REQUIRE(wait_until([&] { return rig.status()["sources"][0]["state"] == "up"; }, 10s));

  constexpr int kMessages = 10000;
  std::atomic<bool> publishing{true};
  std::thread device([&] {
    Device dev(office.port, "meter-publisher");
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < kMessages; ++i) {
      dev.publish("meters/dien/" + std::to_string(i % 10), "{\"n\":" + std::to_string(i) + ",\"kwh\":" + std::to_string(i * 0.5) + "}");
      // Paced at about 2,000 messages/s so that the kills land while it sends.
      if (i % 100 == 99) std::this_thread::sleep_until(start + std::chrono::milliseconds(i / 2));
    }
    dev.drain();
    publishing = false;
  });
  std::mt19937 rng(std::random_device{}());
  int kills = 0;
  for (; kills < 5; ++kills) {
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(150, 700)(rng)));
    rig.kill9();
    rig.start();
  }
  device.join();
  auto count = [&] {
    std::set<std::int64_t> got;
    std::size_t total = 0;
    for (const auto& r : readings_on(rig.collector(), "/data/dong-ho"))
      if (r["point"] == "n") {
        got.insert(r["value"].get<std::int64_t>());
        ++total;
      }
    return std::make_pair(got, total);
  };
  std::set<std::int64_t> got;
  std::size_t total = 0;
  const bool all = wait_until([&] {
    std::tie(got, total) = count();
    return got.size() == kMessages;
  }, 60s);
  std::vector<int> missing;
  for (int i = 0; i < kMessages && missing.size() < 20; ++i)
    if (!got.count(i)) missing.push_back(i);
  INFO("kills: " << kills << ", distinct: " << got.size() << ", first missing: " << Catch::Detail::stringify(missing));
  CHECK(all);
  WARN("kill -9 x" << kills << ": " << got.size() << " of " << kMessages << " messages reached the IOC, "
                   << (total - got.size()) << " duplicates");
  CHECK(rig.stop() == 0);
}

TEST_CASE("bad input of every kind is counted and the good messages beside it arrive", "[integration][mqtt]") {
  TempDir tmp;
  OfficeBroker office(tmp);
  RigOptions o;
  o.sources = mqtt_source("zigbee", office.url(), "topics = [\"z/+\"]\nsource_name = \"{1}\"\nmax_payload = \"4KiB\"") +
              mqtt_source("mapped", office.url(),
                          "topics = [\"m/#\"]\n[[source.field]]\npoint = \"t\"\npointer = \"/temperature\"\nunit = \"Cel\"\n");
  DaemonRig rig(o);
  rig.start();
  REQUIRE(wait_until([&] { return rig.status()["sources"][1]["state"] == "up"; }, 10s));
  {
    Device dev(office.port, "mixed");
    int good = 0;
    auto ok = [&](const char* topic) { dev.publish(topic, "{\"temperature\":" + std::to_string(20 + good++) + "}"); };
    ok("z/kho");
    dev.publish("z/kho", "{\"temperature\":");               // malformed JSON
    ok("z/kho");
    dev.publish("z/kho", "{\"name\":\"\xC3\x28\"}");          // invalid UTF-8
    ok("z/kho");
    dev.publish("z/kho", std::string(8192, ' ') + "{}");     // over max_payload
    ok("z/kho");
    dev.publish("z/Phong hop", "{\"temperature\":1}");        // a level that is no source name
    ok("m/kho");
    dev.publish("m/kho", "{\"humidity\":1}");                 // the pointer matches nothing
    ok("m/kho");
  }
  auto& c = rig.collector();
  REQUIRE(wait_until([&] { return readings_on(c, "/data/zigbee", "kho").size() >= 4 && readings_on(c, "/data/mapped").size() >= 2; }, 20s));
  nlohmann::json bad_z, bad_m;
  const bool counted = wait_until([&] {
    auto s = rig.status();
    bad_z = s["sources"][0]["bad_input"];
    bad_m = s["sources"][1]["bad_input"];
    return bad_z.size() >= 4 && bad_m.size() >= 1;
  }, 10s);
  INFO(bad_z.dump() << " " << bad_m.dump());
  REQUIRE(counted);
  CHECK(bad_z["malformed_json"] == 1);
  CHECK(bad_z["invalid_utf8"] == 1);
  CHECK(bad_z["oversized"] == 1);
  CHECK(bad_z["bad_source_name"] == 1);
  CHECK(bad_m["no_match"] == 1);
  CHECK(readings_on(c, "/data/zigbee", "kho").size() == 4);
  const auto mapped = readings_on(c, "/data/mapped");
  REQUIRE(mapped.size() == 2);
  CHECK(mapped[0]["unit"] == "Cel");
  const auto s = rig.status();
  CHECK(s["sources"][0]["errors"] == 4);
  CHECK_THAT(s["sources"][0]["last_error"].get<std::string>(), Catch::Contains("z/Phong hop"));
  CHECK_THAT(rig.daemon_log(), Catch::Contains("message dropped (malformed_json)"));
  CHECK(rig.stop() == 0);
}

TEST_CASE("the office broker going away: source_down, then source_up and the subscriptions again", "[integration][mqtt]") {
  TempDir tmp;
  OfficeBroker office(tmp);
  RigOptions o;
  o.sources = mqtt_source("zigbee", office.url(), "topics = [\"zigbee2mqtt/+\"]\nsource_name = \"{1}\"");
  DaemonRig rig(o);
  rig.start();
  REQUIRE(wait_until([&] { return rig.status()["sources"][0]["state"] == "up"; }, 10s));
  office.broker->stop();  // no persistence: it forgets our session
  auto& c = rig.collector();
  REQUIRE(wait_until([&] { return !readings_on(c, "/event/zigbee").empty(); }, 10s));
  CHECK(readings_on(c, "/event/zigbee")[0]["point"] == "source_down");
  CHECK(rig.status()["sources"][0]["state"] == "down");
  office.broker->start();
  REQUIRE(wait_until([&] { return readings_on(c, "/event/zigbee").size() >= 2; }, 10s));
  CHECK(readings_on(c, "/event/zigbee")[1]["point"] == "source_up");
  {
    Device dev(office.port, "after-restart");
    dev.publish("zigbee2mqtt/cua-kho", kZigbee);
  }
  CHECK(wait_until([&] { return !readings_on(c, "/data/zigbee", "cua-kho").empty(); }, 10s));
  CHECK(rig.stop() == 0);
}

}  // namespace ioc_edge::test
