// The mqtt section's keys and every class of mistake, with line and column; sources that share a
// connection.
#include <catch2/catch.hpp>

#include "drivers/builtin.h"
#include "drivers/mqtt/mqtt_config.h"
#include "settings/settings.h"
#include "support/support.h"

using namespace ioc_edge;

namespace {
const std::string kHead = "[gateway]\nsite = \"s\"\nprovince = \"p\"\n[uplink]\nurl = \"mqtt://127.0.0.1:1\"\n";  // 5 lines

LoadResult load(const std::string& source) { return load_settings_text(kHead + source, "m.toml", builtin_drivers()); }

std::string report(const std::string& source) { return load(source).diagnostics.format(); }

const mqtt::Config& config(const LoadResult& res, std::size_t i = 0) {
  return static_cast<const mqtt::Config&>(*res.settings->sources.at(i).config);
}

// A minimal source: name, type, url on lines 6..9 (with kHead), then `more` from line 10.
std::string source(const std::string& name, const std::string& url, const std::string& more) {
  return "[[source]]\nname = \"" + name + "\"\ntype = \"mqtt\"\nurl = \"" + url + "\"\n" + more;
}

const char* kZigbee = R"([[source]]
name = "zigbee"
type = "mqtt"
url = "mqtt://127.0.0.1:1883"
topics = ["zigbee2mqtt/+"]
source_name = "{1}"
ts_pointer = "/last_seen"
)";

const char* kTasmota = R"([[source]]
name = "tasmota"
type = "mqtt"
url = "mqtt://127.0.0.1"
topics = ["tele/+/SENSOR"]
source_name = "{1}"
ts_pointer = "/Time"
timezone = "+07:00"
  [[source.field]]
  point = "power"
  pointer = "/ENERGY/Power"
  unit = "W"
  [[source.field]]
  point = "energy_total"
  pointer = "/ENERGY/Total"
  unit = "kWh"

[[source]]
name = "tasmota-power"
type = "mqtt"
url = "mqtt://127.0.0.1:1883"
topics = ["stat/+/POWER"]
format = "value"
source_name = "{1}"
point = "{-1}"
)";

const char* kFrigate = R"([[source]]
name = "frigate"
type = "mqtt"
url = "mqtt://127.0.0.1"
client_id = "ioc-edge-frigate"
topics = ["frigate/events"]
kind = "event"
ts_pointer = "/after/start_time"
ts_format = "unix"
priority = "high"

[[source]]
name = "frigate-snapshots"
type = "mqtt"
url = "mqtt://127.0.0.1"
client_id = "ioc-edge-frigate"
topics = ["frigate/+/+/snapshot"]
format = "binary"
source_name = "{1}"
point = "{2}"
content_type = "image/jpeg"
blob_priority = "normal"
max_payload = "8MiB"
)";
}  // namespace

TEST_CASE("mqtt config: a Zigbee2MQTT section loads with its defaults", "[mqtt][config]") {
  auto res = load(kZigbee);
  INFO(res.diagnostics.format());
  REQUIRE(res.settings);
  const auto& c = config(res);
  CHECK(c.url == "mqtt://127.0.0.1:1883");
  CHECK(c.url_line == 9);
  CHECK(c.url_column == 7);
  CHECK_FALSE(c.tls);
  CHECK(c.host == "127.0.0.1");
  CHECK(c.port == 1883);
  CHECK(c.topics == std::vector<std::string>{"zigbee2mqtt/+"});
  CHECK(c.topic_positions == std::vector<std::pair<int, int>>{{10, 11}});
  CHECK(c.source_name == "{1}");
  CHECK(c.point == "{-1}");
  CHECK(c.format == mqtt::Format::Json);
  CHECK_FALSE(c.event);
  CHECK(c.qos == 1);
  CHECK(c.ts.pointer == "/last_seen");
  CHECK(c.ts.format == mqtt::TsFormat::Auto);
  CHECK(c.ts.offset_minutes == 0);
  CHECK_FALSE(c.ts.local_zone);
  CHECK(c.client_id.empty());
  CHECK(c.mqtt_version == 5);
  CHECK(c.keepalive == std::chrono::seconds(30));
  CHECK(c.session_expiry == std::chrono::hours(24 * 7));
  CHECK(c.receive_maximum == 1000);
  CHECK(c.connect_timeout == std::chrono::seconds(10));
  CHECK(c.reconnect_min == std::chrono::milliseconds(500));
  CHECK(c.reconnect_max == std::chrono::seconds(30));
  CHECK(c.max_payload == (1u << 20));
  CHECK(c.fields.empty());
  CHECK(c.blob_priority == Priority::Low);
  CHECK(mqtt::connection_key(c) == "mqtt://127.0.0.1:1883||");
}

TEST_CASE("mqtt config: Tasmota, fields and a value source on one connection", "[mqtt][config]") {
  auto res = load(kTasmota);
  INFO(res.diagnostics.format());
  REQUIRE(res.settings);
  const auto& sensor = config(res, 0);
  CHECK(sensor.ts.pointer == "/Time");
  CHECK(sensor.ts.offset_minutes == 7 * 60);
  REQUIRE(sensor.fields.size() == 2);
  CHECK(sensor.fields[0].point == "power");
  CHECK(sensor.fields[0].pointer == "/ENERGY/Power");
  CHECK(sensor.fields[0].unit == "W");
  CHECK(sensor.fields[0].line == 14);
  CHECK(sensor.fields[1].point == "energy_total");
  const auto& power = config(res, 1);
  CHECK(power.format == mqtt::Format::Value);
  CHECK(power.point == "{-1}");
  // "mqtt://127.0.0.1" and "mqtt://127.0.0.1:1883" are one connection.
  CHECK(mqtt::connection_key(sensor) == mqtt::connection_key(power));
}

TEST_CASE("mqtt config: Frigate events and snapshots", "[mqtt][config]") {
  auto res = load(kFrigate);
  INFO(res.diagnostics.format());
  REQUIRE(res.settings);
  const auto& events = config(res, 0);
  CHECK(events.event);
  CHECK(events.ts.format == mqtt::TsFormat::Unix);
  CHECK(events.client_id == "ioc-edge-frigate");
  CHECK(res.settings->sources[0].priority == Priority::High);
  const auto& snapshots = config(res, 1);
  CHECK(snapshots.format == mqtt::Format::Binary);
  CHECK(snapshots.point == "{2}");
  CHECK(snapshots.content_type == "image/jpeg");
  CHECK(snapshots.blob_priority == Priority::Normal);
  CHECK(snapshots.max_payload == (8u << 20));
  CHECK(mqtt::connection_key(events) == "mqtt://127.0.0.1:1883|ioc-edge-frigate|");
}

TEST_CASE("mqtt config: every key written out", "[mqtt][config]") {
  test::TempDir dir;
  for (const char* f : {"ca.pem", "gw.crt", "gw.key", "pass"}) test::write_file(dir.file(f), "x\n");
  auto res = load(source("z", "mqtts://[FD00::10]", "topics = [\"a/#\", \"$SYS/broker/load\"]\n") +
                  "ca_file = \"" + dir.file("ca.pem") + "\"\ncert_file = \"" + dir.file("gw.crt") + "\"\nkey_file = \"" +
                  dir.file("gw.key") + "\"\nverify_hostname = false\nusername = \"gw\"\npassword_file = \"" +
                  dir.file("pass") + R"("
client_id = "ioc-edge-bk"
mqtt_version = "3.1.1"
keepalive = "1m"
session_expiry = "0s"
receive_maximum = 10
connect_timeout = "5s"
reconnect_min = "1s"
reconnect_max = "1m"
qos = 2
format = "json"
kind = "data"
source_name = "site-{0}"
max_payload = "64MiB"
ts_pointer = "/ts"
ts_format = "%d/%m/%Y %H:%M:%S"
timezone = "local"
)");
  INFO(res.diagnostics.format());
  REQUIRE(res.settings);
  const auto& c = config(res);
  CHECK(c.tls);
  CHECK(c.host == "FD00::10");
  CHECK(c.port == 8883);
  CHECK(c.ca_file == dir.file("ca.pem"));
  CHECK(c.key_file == dir.file("gw.key"));
  CHECK_FALSE(c.verify_hostname);
  CHECK(c.username == "gw");
  CHECK(c.password_file == dir.file("pass"));
  CHECK(c.mqtt_version == 4);
  CHECK(c.keepalive == std::chrono::minutes(1));
  CHECK(c.session_expiry == std::chrono::seconds(0));
  CHECK(c.receive_maximum == 10);
  CHECK(c.connect_timeout == std::chrono::seconds(5));
  CHECK(c.reconnect_max == std::chrono::minutes(1));
  CHECK(c.qos == 2);
  CHECK(c.max_payload == (64u << 20));
  CHECK(c.ts.format == mqtt::TsFormat::Pattern);
  CHECK(c.ts.pattern == "%d/%m/%Y %H:%M:%S");
  CHECK(c.ts.local_zone);
  CHECK(mqtt::connection_key(c) == "mqtts://[fd00::10]:8883|ioc-edge-bk|gw");

  // Offsets in the forms people write.
  for (const auto& [zone, minutes] : {std::pair{"+07:00", 420}, std::pair{"-03:30", -210}, std::pair{"+0700", 420},
                                      std::pair{"+07", 420}, std::pair{"UTC", 0}}) {
    auto z = load(source("z", "mqtt://h", std::string("topics = [\"t\"]\nts_pointer = \"/t\"\ntimezone = \"") + zone + "\"\n"));
    INFO(zone << ": " << z.diagnostics.format());
    REQUIRE(z.settings);
    CHECK(config(z).ts.offset_minutes == minutes);
  }
}

TEST_CASE("mqtt config: mistakes are named with their position", "[mqtt][config]") {
  // Topic filters: each one where it is written.
  auto topics = report(source("zigbee", "mqtt://127.0.0.1", "topics = [\"a/#/b\", \"a+\", \"\", 5, \"x/+\", \"x/+\"]\n"));
  CHECK_THAT(topics, Catch::Contains("m.toml:10:11: source \"zigbee\": topics: \"a/#/b\": '#' must be the last level\n"));
  CHECK_THAT(topics, Catch::Contains("m.toml:10:20: source \"zigbee\": topics: \"a+\": '+' must be a whole level"));
  CHECK_THAT(topics, Catch::Contains("m.toml:10:26: source \"zigbee\": topics: \"\": a topic filter must not be empty"));
  CHECK_THAT(topics, Catch::Contains("m.toml:10:30: source \"zigbee\": topics: item 4: expected a string, got an integer"));
  CHECK_THAT(topics, Catch::Contains("m.toml:10:40: source \"zigbee\": topics: \"x/+\" is listed twice"));
  CHECK_THAT(report(source("z", "mqtt://h", "")), Catch::Contains("m.toml:6:1: source \"z\": missing required key 'topics'"));
  CHECK_THAT(report(source("z", "mqtt://h", "topics = []\n")),
             Catch::Contains("m.toml:10:10: source \"z\": topics: must list at least one topic filter"));
  CHECK_THAT(report(source("z", "mqtt://h", "topics = \"t/#\"\n")),
             Catch::Contains("m.toml:10:10: source \"z\": topics: expected an array, got a string"));

  // URLs.
  for (const char* url : {"http://127.0.0.1", "mqtt://", "mqtt://a b", "mqtt://h/path", "mqtt://[::1", "mqtt://h:x",
                          "mqtt://user@h", "tcp://h:1883"}) {
    INFO(url);
    CHECK_THAT(report(source("z", url, "topics = [\"t\"]\n")),
               Catch::Contains(std::string("m.toml:9:7: source \"z\": url: \"") + url + "\" is not an MQTT URL like"));
  }
  CHECK_THAT(report(source("z", "mqtt://h:70000", "topics = [\"t\"]\n")),
             Catch::Contains("m.toml:9:7: source \"z\": url: port must be 1..65535"));
  CHECK_THAT(report(source("z", "mqtt://h:0", "topics = [\"t\"]\n")), Catch::Contains("port must be 1..65535"));
  CHECK(load(source("z", "mqtt://[::1]:1883", "topics = [\"t\"]\n")).settings);
  CHECK(load(source("z", "mqtts://broker.lan:8884", "topics = [\"t\"]\n")).settings);

  // Keys out of their range, type or place.
  auto keys = report(source("z", "mqtt://h", R"(topics = ["t/#"]
verify_hostname = false
mqtt_version = 5
keepalive = "2s"
session_expiry = "1500ms"
receive_maximum = 0
reconnect_min = "10s"
reconnect_max = "1s"
client_id = "has space"
qos = 3
format = "xml"
point = "{-1}"
unit = "V"
content_type = "image/jpeg"
blob_priority = "high"
max_payload = "65MiB"
ts_format = "unix"
colour = "red"
)"));
  CHECK_THAT(keys, Catch::Contains("m.toml:11:19: source \"z\": verify_hostname: applies only to mqtts:// URLs"));
  CHECK_THAT(keys, Catch::Contains("m.toml:12:16: source \"z\": mqtt_version: write \"5\" or \"3.1.1\", as a string"));
  CHECK_THAT(keys, Catch::Contains("m.toml:13:13: source \"z\": keepalive: must be at least 5000 ms, got \"2s\""));
  CHECK_THAT(keys, Catch::Contains("m.toml:14:18: source \"z\": session_expiry: must be whole seconds"));
  CHECK_THAT(keys, Catch::Contains("m.toml:15:19: source \"z\": receive_maximum: must be 1..65535, got 0"));
  CHECK_THAT(keys, Catch::Contains("m.toml:17:17: source \"z\": reconnect_max: must not be less than reconnect_min"));
  CHECK_THAT(keys, Catch::Contains("m.toml:18:13: source \"z\": client_id: \"has space\" must be 1-128 printable ASCII"));
  CHECK_THAT(keys, Catch::Contains("m.toml:19:7: source \"z\": qos: must be 0..2, got 3"));
  CHECK_THAT(keys, Catch::Contains("m.toml:20:10: source \"z\": format: \"xml\" is not one of \"json\", \"value\", \"binary\""));
  CHECK_THAT(keys, Catch::Contains("m.toml:21:9: source \"z\": point: does not apply to JSON data"));
  CHECK_THAT(keys, Catch::Contains("m.toml:22:8: source \"z\": unit: applies only to format = \"value\""));
  CHECK_THAT(keys, Catch::Contains("m.toml:23:16: source \"z\": content_type: applies only to format = \"binary\""));
  CHECK_THAT(keys, Catch::Contains("m.toml:24:17: source \"z\": blob_priority: applies only to format = \"binary\""));
  CHECK_THAT(keys, Catch::Contains("m.toml:25:15: source \"z\": max_payload: must be at most 64MiB"));
  CHECK_THAT(keys, Catch::Contains("m.toml:26:13: source \"z\": ts_format: applies only with ts_pointer"));
  CHECK_THAT(keys, Catch::Contains("m.toml:27:1: source \"z\": unknown key 'colour'"));
  CHECK_THAT(report(source("z", "mqtt://h", "topics = [\"t\"]\nkeepalive = \"2h\"\n")),
             Catch::Contains("m.toml:11:13: source \"z\": keepalive: must be at most 1h"));
  CHECK_THAT(report(source("z", "mqtt://h", "topics = [\"t\"]\nkeepalive = 30\n")),
             Catch::Contains("keepalive: expected a duration string such as \"30s\""));
  CHECK_THAT(report(source("z", "mqtt://h", "topics = [\"t\"]\nclient_id = \"\"\n")),
             Catch::Contains("client_id: \"\" must be 1-128"));
  CHECK_THAT(report(source("z", "mqtt://h", "topics = [\"t\"]\nmqtt_version = \"4\"\n")),
             Catch::Contains("mqtt_version: \"4\" is not one of \"5\", \"3.1.1\""));
  CHECK_THAT(report(source("z", "mqtt://h", "topics = [\"t\"]\nkind = \"event\"\nformat = \"value\"\n")),
             Catch::Contains("m.toml:11:8: source \"z\": kind: \"event\" needs format = \"json\""));
  CHECK_THAT(report(source("z", "mqtt://h", "topics = [\"t\"]\nformat = \"binary\"\ncontent_type = \"jpeg\"\n")),
             Catch::Contains("content_type: \"jpeg\" is not a media type such as \"image/jpeg\""));

  // Templates.
  CHECK_THAT(report(source("z", "mqtt://h", "topics = [\"t\"]\nsource_name = \"{x}\"\n")),
             Catch::Contains("m.toml:11:15: source \"z\": source_name: \"{x}\": {x}: not a level number"));
  CHECK_THAT(report(source("z", "mqtt://h", "topics = [\"t\"]\nsource_name = \"z2m {1}\"\n")),
             Catch::Contains("source_name: \"z2m {1}\" cannot give a valid source name"));
  CHECK_THAT(report(source("z", "mqtt://h", "topics = [\"t\"]\nsource_name = \"cổng\"\n")),
             Catch::Contains("source_name: \"cổng\" must be 1-64 characters"));
  CHECK(load(source("z", "mqtt://h", "topics = [\"t\"]\nsource_name = \"cong-chinh\"\n")).settings);
  CHECK_THAT(report(source("z", "mqtt://h", "topics = [\"t\"]\nformat = \"value\"\npoint = \"{-0}\"\n")),
             Catch::Contains("m.toml:12:9: source \"z\": point: \"{-0}\": {-0}: counting from the end starts at {-1}"));
  CHECK_THAT(report(source("z", "mqtt://h", "topics = [\"t\"]\nformat = \"value\"\npoint = \"\"\n")),
             Catch::Contains("point: must not be empty"));
  CHECK(load(source("z", "mqtt://h", "topics = [\"t\"]\nformat = \"value\"\npoint = \"{{{-1}}}\"\n")).settings);

  // Time.
  CHECK_THAT(report(source("z", "mqtt://h", "topics = [\"t\"]\nts_pointer = \"Time\"\n")),
             Catch::Contains("m.toml:11:14: source \"z\": ts_pointer: \"Time\": a JSON pointer is empty or starts with '/'"));
  CHECK_THAT(report(source("z", "mqtt://h", "topics = [\"t\"]\nformat = \"value\"\nts_pointer = \"/t\"\n")),
             Catch::Contains("ts_pointer: applies only to format = \"json\""));
  CHECK_THAT(report(source("z", "mqtt://h", "topics = [\"t\"]\nts_pointer = \"/t\"\nts_format = \"%Q\"\n")),
             Catch::Contains("m.toml:12:13: source \"z\": ts_format: \"%Q\": %Q is not a strptime conversion"));
  CHECK_THAT(report(source("z", "mqtt://h", "topics = [\"t\"]\nts_pointer = \"/t\"\nts_format = \"iso\"\n")),
             Catch::Contains("ts_format: \"iso\" is not one of \"auto\", \"rfc3339\", \"unix\", \"unix_ms\""));
  for (const char* zone : {"ICT", "Asia/Ho_Chi_Minh", "+15:00", "+07:60", "07:00", "+7"}) {
    INFO(zone);
    CHECK_THAT(report(source("z", "mqtt://h", std::string("topics = [\"t\"]\nts_pointer = \"/t\"\ntimezone = \"") + zone + "\"\n")),
               Catch::Contains(std::string("m.toml:12:12: source \"z\": timezone: \"") + zone + "\" is not \"UTC\", \"local\""));
  }

  // Fields.
  auto fields = report(source("z", "mqtt://h", R"(topics = ["t"]
[[source.field]]
point = "a"
pointer = "/a~2"
[[source.field]]
point = "a"
pointr = "/b"
[[source.field]]
pointer = "/c"
)"));
  CHECK_THAT(fields, Catch::Contains("m.toml:13:11: source \"z\": field \"a\": pointer: \"/a~2\": '~' must be followed by 0 or 1"));
  CHECK_THAT(fields, Catch::Contains("m.toml:14:1: source \"z\": field \"a\": missing required key 'pointer'"));
  CHECK_THAT(fields, Catch::Contains("m.toml:15:9: source \"z\": field \"a\": point: \"a\" is used by another field"));
  CHECK_THAT(fields, Catch::Contains("m.toml:16:1: source \"z\": field \"a\": unknown key 'pointr'"));
  CHECK_THAT(fields, Catch::Contains("m.toml:17:1: source \"z\": field: missing required key 'point'"));
  CHECK_THAT(report(source("z", "mqtt://h", "topics = [\"t\"]\nformat = \"value\"\n[[source.field]]\npoint = \"a\"\npointer = \"/a\"\n")),
             Catch::Contains("m.toml:12:1: source \"z\": field: [[source.field]] applies only to format = \"json\" with kind = \"data\""));
}

TEST_CASE("mqtt config: TLS files", "[mqtt][config]") {
  test::TempDir dir;
  test::write_file(dir.file("ca.pem"), "x\n");
  test::write_file(dir.file("gw.crt"), "x\n");
  const std::string ca = "ca_file = \"" + dir.file("ca.pem") + "\"\n";
  const std::string crt = "cert_file = \"" + dir.file("gw.crt") + "\"\n";
  CHECK(load(source("z", "mqtts://h", "topics = [\"t\"]\n" + ca)).settings);
  CHECK(load(source("z", "mqtts://h", "topics = [\"t\"]\n")).settings);  // the system's CAs
  // A TLS key on a plain connection: named at the key.
  CHECK_THAT(report(source("z", "mqtt://h", "topics = [\"t\"]\n" + ca)),
             Catch::Contains("m.toml:11:11: source \"z\": ca_file: applies only to mqtts:// URLs (TLS)"));
  // A certificate without its key.
  CHECK_THAT(report(source("z", "mqtts://h", "topics = [\"t\"]\n" + crt)),
             Catch::Contains("m.toml:6:1: source \"z\": cert_file and key_file go together"));
  // A file that is not there.
  CHECK_THAT(report(source("z", "mqtts://h", "topics = [\"t\"]\nca_file = \"" + dir.file("nope.pem") + "\"\n")),
             Catch::Contains("m.toml:11:11: source \"z\": ca_file: cannot read file"));
  // MQTT 3.1.1 has no password without a user name.
  test::write_file(dir.file("pass"), "secret\n");
  CHECK_THAT(report(source("z", "mqtt://h", "topics = [\"t\"]\nmqtt_version = \"3.1.1\"\npassword_file = \"" + dir.file("pass") + "\"\n")),
             Catch::Contains("password_file: MQTT 3.1.1 sends a password only with a username"));
  CHECK(load(source("z", "mqtt://h", "topics = [\"t\"]\npassword_file = \"" + dir.file("pass") + "\"\n")).settings);
}

TEST_CASE("mqtt config: sources on one connection must agree on it", "[mqtt][config]") {
  // Same broker, same (default) client id: one connection; the defaults written out or not.
  CHECK(load(source("a", "mqtt://127.0.0.1", "topics = [\"a/#\"]\nkeepalive = \"30s\"\n") +
             source("b", "mqtt://127.0.0.1:1883", "topics = [\"b/#\"]\n"))
            .settings);
  // A different client id is another connection, which may differ and take the same topics.
  CHECK(load(source("a", "mqtt://127.0.0.1", "topics = [\"a/#\"]\nkeepalive = \"30s\"\n") +
             source("b", "mqtt://127.0.0.1", "topics = [\"a/#\"]\nkeepalive = \"1m\"\nclient_id = \"other\"\n"))
            .settings);
  // Another port or scheme: another connection.
  CHECK(load(source("a", "mqtt://127.0.0.1", "topics = [\"a/#\"]\n") +
             source("b", "mqtt://127.0.0.1:1884", "topics = [\"a/#\"]\nkeepalive = \"1m\"\n"))
            .settings);

  // One connection, differences: each reported at the second source's url, naming both.
  auto clash = load(source("zigbee", "mqtt://Broker.lan", "topics = [\"zigbee2mqtt/+\"]\nkeepalive = \"60s\"\nusername = \"z\"\n") +
                    source("tasmota", "mqtt://broker.lan:1883",
                           "topics = [\"tele/+/SENSOR\"]\nmqtt_version = \"3.1.1\"\nreceive_maximum = 10\n"));
  CHECK_FALSE(clash.settings);
  const auto out = clash.diagnostics.format();
  CHECK_THAT(out, Catch::Contains("m.toml:16:7: source \"tasmota\": shares the connection to mqtt://broker.lan:1883 (the "
                                  "default client_id) with source \"zigbee\", which sets keepalive = \"1m\"; this one sets "
                                  "keepalive = \"30s\"; sources on one connection must agree (or give this one its own "
                                  "client_id)"));
  CHECK_THAT(out, Catch::Contains("which sets username = \"z\"; this one sets username = none"));
  CHECK_THAT(out, Catch::Contains("which sets mqtt_version = \"5\"; this one sets mqtt_version = \"3.1.1\""));
  CHECK_THAT(out, Catch::Contains("which sets receive_maximum = 1000; this one sets receive_maximum = 10"));
  CHECK(clash.diagnostics.list().size() == 4);

  // One connection, one filter in two sources: at the second one's filter.
  auto twice = load(source("a", "mqtt://127.0.0.1", "topics = [\"zigbee2mqtt/+\"]\n") +
                    source("b", "mqtt://127.0.0.1", "topics = [\"tele/#\", \"zigbee2mqtt/+\"]\n"));
  CHECK_FALSE(twice.settings);
  CHECK_THAT(twice.diagnostics.format(),
             Catch::Contains("m.toml:15:21: source \"b\": topics: \"zigbee2mqtt/+\" is a topic of source \"a\" on the same "
                             "connection (mqtt://127.0.0.1:1883, the default client_id) too"));
}
