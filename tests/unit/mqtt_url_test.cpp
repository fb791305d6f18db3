// The shared broker URL parser (daemon/mqtt_sub/mqtt_url.h).
#include <catch2/catch.hpp>

#include "mqtt_sub/mqtt_url.h"

using ioc_edge::MqttUrlError;
using ioc_edge::parse_mqtt_url;

TEST_CASE("broker URLs: scheme, host, default and explicit ports, IPv6", "[unit][mqtt-url]") {
  auto u = parse_mqtt_url("mqtts://ioc.example.gov.vn");
  REQUIRE(u);
  CHECK(u->tls);
  CHECK(u->host == "ioc.example.gov.vn");
  CHECK(u->port == 8883);
  u = parse_mqtt_url("mqtt://127.0.0.1");
  REQUIRE(u);
  CHECK_FALSE(u->tls);
  CHECK(u->port == 1883);
  u = parse_mqtt_url("mqtts://[::1]:18883");
  REQUIRE(u);
  CHECK(u->host == "::1");
  CHECK(u->port == 18883);
  CHECK(parse_mqtt_url("mqtt://Broker.LAN:1883")->normalised() == parse_mqtt_url("mqtt://broker.lan")->normalised());
  CHECK(parse_mqtt_url("mqtts://[FE80::1]")->normalised() == "mqtts://[fe80::1]:8883");
}

TEST_CASE("broker URLs: every malformed one is refused with its reason", "[unit][mqtt-url]") {
  for (const char* bad : {"http://ioc", "mqtt://", "mqtt://:1883", "mqtt://host:", "mqtt://host:12x", "mqtt://ho st",
                          "mqtts://[::1", "mqtts://[abc]", "mqtts://[::1]x", "mqtt://host:123456", "ioc.example:8883",
                          "mqtt://host/path"}) {
    INFO(bad);
    MqttUrlError e{};
    CHECK_FALSE(parse_mqtt_url(bad, &e));
    CHECK(e == MqttUrlError::syntax);
  }
  for (const char* bad : {"mqtt://host:0", "mqtt://host:65536", "mqtts://[::1]:99999"}) {
    INFO(bad);
    MqttUrlError e{};
    CHECK_FALSE(parse_mqtt_url(bad, &e));
    CHECK(e == MqttUrlError::port);
  }
  CHECK(ioc_edge::mqtt_url_error_text("http://ioc", MqttUrlError::syntax, "\"mqtts://a:8883\"") ==
        "\"http://ioc\" is not an MQTT URL like \"mqtts://a:8883\" (schemes: mqtt, mqtts)");
  CHECK(ioc_edge::mqtt_url_error_text("mqtt://h:0", MqttUrlError::port, "x") == "port must be 1..65535");
}
