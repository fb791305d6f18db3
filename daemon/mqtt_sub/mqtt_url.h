#pragma once
// MQTT broker URLs: "mqtt://HOST[:PORT]" and "mqtts://HOST[:PORT]", HOST a name, an IPv4 address
// or a bracketed IPv6 address ("mqtts://[::1]:8883"); the port defaults to 1883, or 8883 for
// mqtts. One parser for everything that names a broker (the gateway's uplink, the mqtt source,
// ioc-receiver), so all of them accept and refuse the same URLs with the same words.
#include <optional>
#include <string>
#include <string_view>

namespace ioc_edge {

struct MqttUrl {
  bool tls = false;  // mqtts://
  std::string host;  // without brackets
  int port = 1883;
  // "scheme://host:port", the host in lower case (names and IPv6 hex digits are case-insensitive):
  // two spellings of one broker compare equal.
  std::string normalised() const;
};

enum class MqttUrlError {
  syntax,  // not scheme://host[:port]
  port,    // a port outside 1..65535
};

// The URL, or nullopt with the reason in `error` (when given).
std::optional<MqttUrl> parse_mqtt_url(std::string_view text, MqttUrlError* error = nullptr);

// The message for a refused URL, after "url: ": names the URL and shows a good one.
std::string mqtt_url_error_text(std::string_view text, MqttUrlError error, std::string_view example);

}  // namespace ioc_edge
