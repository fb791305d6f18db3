#include "mqtt_sub/mqtt_url.h"

namespace ioc_edge {

namespace {

bool host_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

bool v6_char(char c) {
  return (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f') || (c >= '0' && c <= '9') || c == ':' || c == '.';
}

}  // namespace

std::string MqttUrl::normalised() const {
  std::string h = host;
  for (auto& ch : h)
    if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
  const bool v6 = h.find(':') != std::string::npos;
  return std::string(tls ? "mqtts://" : "mqtt://") + (v6 ? "[" : "") + h + (v6 ? "]" : "") + ":" + std::to_string(port);
}

std::optional<MqttUrl> parse_mqtt_url(std::string_view text, MqttUrlError* error) {
  const auto fail = [&](MqttUrlError e) -> std::optional<MqttUrl> {
    if (error) *error = e;
    return std::nullopt;
  };
  MqttUrl u;
  std::string_view rest = text;
  if (rest.rfind("mqtts://", 0) == 0) {
    u.tls = true;
    rest.remove_prefix(8);
  } else if (rest.rfind("mqtt://", 0) == 0) {
    rest.remove_prefix(7);
  } else {
    return fail(MqttUrlError::syntax);
  }
  std::string_view host;
  if (!rest.empty() && rest.front() == '[') {
    const auto close = rest.find(']');
    if (close == std::string_view::npos) return fail(MqttUrlError::syntax);
    host = rest.substr(1, close - 1);
    if (host.empty() || host.find(':') == std::string_view::npos) return fail(MqttUrlError::syntax);
    for (const char ch : host)
      if (!v6_char(ch)) return fail(MqttUrlError::syntax);
    rest.remove_prefix(close + 1);
    if (!rest.empty() && rest.front() != ':') return fail(MqttUrlError::syntax);
  } else {
    const auto colon = rest.find(':');
    host = rest.substr(0, colon);
    if (host.empty()) return fail(MqttUrlError::syntax);
    for (const char ch : host)
      if (!host_char(ch)) return fail(MqttUrlError::syntax);
    rest.remove_prefix(colon == std::string_view::npos ? rest.size() : colon);
  }
  u.host = std::string(host);
  u.port = u.tls ? 8883 : 1883;
  if (rest.empty()) return u;
  const auto port = rest.substr(1);  // after ':'
  if (port.empty() || port.size() > 5) return fail(MqttUrlError::syntax);
  int p = 0;
  for (const char ch : port) {
    if (ch < '0' || ch > '9') return fail(MqttUrlError::syntax);
    p = p * 10 + (ch - '0');
  }
  if (p < 1 || p > 65535) return fail(MqttUrlError::port);
  u.port = p;
  return u;
}

std::string mqtt_url_error_text(std::string_view text, MqttUrlError error, std::string_view example) {
  if (error == MqttUrlError::port) return "port must be 1..65535";
  return "\"" + std::string(text) + "\" is not an MQTT URL like " + std::string(example) + " (schemes: mqtt, mqtts)";
}

}  // namespace ioc_edge
