#include "drivers/mqtt/mqtt_config.h"

#include <map>
#include <set>
#include <tuple>

#include "drivers/mqtt/mqtt_mapping.h"
#include "drivers/shared/json_mapping.h"
#include "mqtt_sub/mqtt_url.h"
#include "settings/table_reader.h"

namespace ioc_edge::mqtt {

std::string_view to_string(Format f) {
  switch (f) {
    case Format::Json: return "json";
    case Format::Value: return "value";
    case Format::Binary: return "binary";
  }
  return "json";
}

namespace {

constexpr std::uint64_t kMaxPayloadLimit = 64ull << 20;
constexpr std::size_t kMaxPointName = 256;
constexpr std::size_t kMaxClientId = 128;
// Keys that mean something only on a TLS connection.
constexpr std::string_view kTlsKeys[] = {"ca_file", "cert_file", "key_file", "verify_hostname"};


// "mqtt://HOST[:PORT]" or "mqtts://HOST[:PORT]" (mqtt_sub/mqtt_url.h, shared with the uplink and
// ioc-receiver).
void parse_url(TableReader& r, Config& c) {
  const auto url = r.string("url", true);
  if (!url) return;
  c.url = *url;
  std::tie(c.url_line, c.url_column) = r.position("url");
  // The scheme alone decides which TLS keys are allowed, also when the rest is wrong: one
  // problem, one message.
  c.tls = c.url.rfind("mqtts://", 0) == 0;
  MqttUrlError error{};
  const auto u = parse_mqtt_url(c.url, &error);
  if (!u) {
    r.error_at_key("url", mqtt_url_error_text(c.url, error, "\"mqtt://127.0.0.1:1883\" or \"mqtts://broker.lan:8883\""));
    c.host.clear();
    return;
  }
  c.host = u->host;
  c.port = u->port;
}

// A duration key holding whole seconds within [min, max].
std::chrono::seconds seconds_key(TableReader& r, std::string_view key, std::chrono::seconds fallback,
                                 std::chrono::seconds min, std::chrono::seconds max, const std::string& max_text) {
  const auto d = r.duration_or(key, fallback, min);
  if (d > max) {
    r.error_at_key(key, "must be at most " + max_text);
    return fallback;
  }
  if (d.count() % 1000 != 0) {
    r.error_at_key(key, "must be whole seconds (MQTT counts it in seconds)");
    return fallback;
  }
  return std::chrono::duration_cast<std::chrono::seconds>(d);
}

void parse_connection(TableReader& r, Config& c) {
  c.ca_file = r.file_path("ca_file").value_or("");
  c.cert_file = r.file_path("cert_file").value_or("");
  c.key_file = r.file_path("key_file").value_or("");
  c.verify_hostname = r.boolean_or("verify_hostname", true);
  if (!c.url.empty() && !c.host.empty() && !c.tls) {
    for (const auto key : kTlsKeys)
      if (r.raw().get(key))
        r.error_at_key(key, "applies only to mqtts:// URLs (TLS); this source's url is mqtt://, which is not encrypted");
  } else if (c.cert_file.empty() != c.key_file.empty()) {
    r.error_here("cert_file and key_file go together (the client certificate and its key, for brokers that "
                 "authenticate clients by certificate)");
  }

  c.username = r.string_or("username", "");
  c.password_file = r.file_path("password_file").value_or("");
  if (auto id = r.string("client_id")) {
    bool ok = !id->empty() && id->size() <= kMaxClientId;
    for (const char ch : *id) ok = ok && ch > ' ' && ch < 0x7F;
    if (!ok)
      r.error_at_key("client_id", in_quotes(*id) + " must be 1-" + std::to_string(kMaxClientId) +
                                      " printable ASCII characters without spaces");
    else
      c.client_id = *id;
  }
  if (const auto* n = r.raw().get("mqtt_version"); n && !n->is_string()) {
    r.known("mqtt_version");
    r.error_at_key("mqtt_version", "write \"5\" or \"3.1.1\", as a string");
  } else {
    c.mqtt_version = r.enum_or("mqtt_version", "5", {"5", "3.1.1"}) == "5" ? 5 : 4;
  }
  if (c.mqtt_version == 4 && !c.password_file.empty() && c.username.empty())
    r.error_at_key("password_file", "MQTT 3.1.1 sends a password only with a username: set username too (or "
                                    "mqtt_version = \"5\")");

  c.keepalive = seconds_key(r, "keepalive", c.keepalive, std::chrono::seconds(5), std::chrono::hours(1), "1h");
  c.session_expiry = seconds_key(r, "session_expiry", c.session_expiry, std::chrono::seconds(0),
                                 std::chrono::seconds(4294967295LL), "4294967295s (about 136 years)");
  c.receive_maximum = static_cast<int>(r.integer_or("receive_maximum", c.receive_maximum, 1, 65535));
  c.connect_timeout = r.duration_or("connect_timeout", c.connect_timeout, std::chrono::seconds(1));
  c.reconnect_min = r.duration_or("reconnect_min", c.reconnect_min, std::chrono::milliseconds(10));
  c.reconnect_max = r.duration_or("reconnect_max", c.reconnect_max, std::chrono::milliseconds(10));
  if (c.reconnect_max < c.reconnect_min) r.error_at_key("reconnect_max", "must not be less than reconnect_min");
}

void parse_topics(TableReader& r, Config& c) {
  if (!r.raw().get("topics")) {
    r.known("topics");
    r.error_here("missing required key 'topics' (the topic filters to take, e.g. [\"zigbee2mqtt/+\"])");
    return;
  }
  const auto* topics = r.array("topics");
  if (!topics) return;
  if (topics->empty()) {
    r.error_at_key("topics", "must list at least one topic filter, e.g. [\"zigbee2mqtt/+\"]");
    return;
  }
  Diagnostics& diag = r.diagnostics();
  std::set<std::string> seen;
  int index = 0;
  for (const auto& node : *topics) {
    ++index;
    if (!node.is_string()) {
      diag.error(node.source(), r.context() + "topics: item " + std::to_string(index) + ": expected a string, got " +
                                    std::string(type_name(node.type())));
      continue;
    }
    const auto filter = *node.value<std::string>();
    if (const auto problem = filter_problem(filter); !problem.empty()) {
      diag.error(node.source(), r.context() + "topics: " + in_quotes(valid_utf8(filter) ? filter : "?") + ": " + problem);
      continue;
    }
    if (!seen.insert(filter).second) {
      diag.error(node.source(), r.context() + "topics: " + in_quotes(filter) + " is listed twice");
      continue;
    }
    c.topics.push_back(filter);
    c.topic_positions.emplace_back(static_cast<int>(node.source().begin.line),
                                   static_cast<int>(node.source().begin.column));
  }
}

// A name template key: parsed, and (for source_name) able to give a valid source name.
void check_template(TableReader& r, std::string_view key, const std::string& text, bool source_name) {
  std::string error;
  const auto t = NameTemplate::parse(text, error);
  if (!error.empty()) {
    r.error_at_key(key, in_quotes(text) + ": " + error);
    return;
  }
  if (t.empty()) {
    r.error_at_key(key, "must not be empty");
    return;
  }
  // Expanded with one-letter levels, a template that can give a good name does: what is left to
  // go wrong is the topic's own levels, which only a message shows.
  const std::vector<std::string_view> levels(t.min_levels(), "a");
  const auto sample = t.expand(levels, error).value_or("");
  if (source_name && !valid_id(sample)) {
    if (t.min_levels() == 0)
      r.error_at_key(key, in_quotes(sample) + " " + std::string(id_rule()));
    else
      r.error_at_key(key, in_quotes(text) + " cannot give a valid source name: a source name " + std::string(id_rule()));
  } else if (!source_name && sample.size() > kMaxPointName) {
    r.error_at_key(key, "gives point names over " + std::to_string(kMaxPointName) + " bytes");
  }
}

void parse_field(const toml::table& t, TableReader& section, Config& c, std::set<std::string>& points) {
  std::string ctx = section.context() + "field: ";
  if (const auto* n = t.get("point"); n && n->is_string()) ctx = section.context() + "field \"" + *n->value<std::string>() + "\": ";
  TableReader r(t, section.diagnostics(), ctx);
  Field f;
  f.line = static_cast<int>(t.source().begin.line);
  f.column = static_cast<int>(t.source().begin.column);
  if (auto point = r.string("point", true)) {
    f.point = *point;
    if (f.point.empty() || f.point.size() > kMaxPointName)
      r.error_at_key("point", "must be 1 to " + std::to_string(kMaxPointName) + " bytes");
    else if (!points.insert(f.point).second)
      r.error_at_key("point", in_quotes(f.point) + " is used by another field of this source");
  }
  if (auto pointer = r.string("pointer", true)) {
    f.pointer = *pointer;
    if (const auto problem = pointer_problem(f.pointer); !problem.empty())
      r.error_at_key("pointer", in_quotes(f.pointer) + ": " + problem);
  }
  f.unit = r.string_or("unit", "");
  r.finish();
  c.fields.push_back(std::move(f));
}

void parse_time(TableReader& r, Config& c) {
  const bool json = c.format == Format::Json;
  if (auto p = r.string("ts_pointer")) {
    if (!json) r.error_at_key("ts_pointer", "applies only to format = \"json\"");
    else if (const auto problem = pointer_problem(*p); !problem.empty())
      r.error_at_key("ts_pointer", in_quotes(*p) + ": " + problem);
    else
      c.ts.pointer = *p;
  }
  // Without a pointer the time is the time of receipt: a format or zone for it is a mistake.
  const bool with_pointer = r.raw().get("ts_pointer") != nullptr;
  for (const auto key : {"ts_format", "timezone"}) {
    if (r.raw().get(key) && !with_pointer) {
      r.error_at_key(key, "applies only with ts_pointer (where the time is in a JSON payload)");
      r.known(key);
    }
  }
  if (!with_pointer) return;
  read_ts_format(r, c.ts);
}

void parse_mapping(TableReader& r, Config& c) {
  const auto format = r.enum_or("format", "json", {"json", "value", "binary"});
  c.format = format == "value" ? Format::Value : format == "binary" ? Format::Binary : Format::Json;
  const bool json = c.format == Format::Json;
  c.event = r.enum_or("kind", "data", {"data", "event"}) == "event";
  if (c.event && !json) r.error_at_key("kind", "\"event\" needs format = \"json\" (an event is one JSON document)");
  c.qos = static_cast<int>(r.integer_or("qos", c.qos, 0, 2));

  if (auto name = r.string("source_name")) {
    c.source_name = *name;
    check_template(r, "source_name", c.source_name, true);
  }
  if (auto point = r.string("point")) {
    if (json && !c.event)
      r.error_at_key("point", "does not apply to JSON data, whose points are named by their paths in the document "
                              "(\"ENERGY.Power\") or by [[source.field]]; point names the reading of a value, binary or "
                              "event message");
    else
      check_template(r, "point", *point, false);
    c.point = *point;
  }
  if (c.point.empty()) c.point = "{-1}";

  c.max_payload = r.size_or("max_payload", c.max_payload, 1);
  if (c.max_payload > kMaxPayloadLimit) r.error_at_key("max_payload", "must be at most 64MiB");

  std::set<std::string> points;
  if (const auto* fields = r.array("field")) {
    if (!json || c.event)
      r.error_at_key("field", "[[source.field]] applies only to format = \"json\" with kind = \"data\"");
    int i = 0;
    for (const auto& node : *fields) {
      ++i;
      if (const auto* t = node.as_table())
        parse_field(*t, r, c, points);
      else
        r.diagnostics().error(node.source(), r.context() + "field #" + std::to_string(i) +
                                                 ": expected a table ([[source.field]])");
    }
  }
  parse_time(r, c);

  if (r.raw().get("unit") && c.format != Format::Value)
    r.error_at_key("unit", "applies only to format = \"value\" (with JSON, each [[source.field]] has its own unit)");
  c.unit = r.string_or("unit", "");
  if (r.raw().get("content_type") && c.format != Format::Binary)
    r.error_at_key("content_type", "applies only to format = \"binary\"");
  if (auto ct = r.string("content_type")) {
    bool ok = ct->find('/') != std::string::npos && ct->front() != '/' && ct->back() != '/' && ct->size() <= 255;
    for (const char ch : *ct) ok = ok && ch >= ' ' && ch < 0x7F;
    if (!ok) r.error_at_key("content_type", in_quotes(*ct) + " is not a media type such as \"image/jpeg\"");
    else c.content_type = *ct;
  }
  if (r.raw().get("blob_priority") && c.format != Format::Binary)
    r.error_at_key("blob_priority", "applies only to format = \"binary\"");
  const auto prio = r.enum_or("blob_priority", "low", {"low", "normal", "high"});
  c.blob_priority = prio == "high" ? Priority::High : prio == "normal" ? Priority::Normal : Priority::Low;
}

// scheme://host:port, host in lower case (names and IPv6 hex digits are case-insensitive).
std::string normalised_url(const Config& c) { return MqttUrl{c.tls, c.host, c.port}.normalised(); }

std::string show_duration(std::chrono::milliseconds d) {
  const auto ms = d.count();
  struct Unit {
    std::int64_t ms;
    const char* suffix;
  };
  for (const Unit u : {Unit{86400000, "d"}, Unit{3600000, "h"}, Unit{60000, "m"}, Unit{1000, "s"}})
    if (ms != 0 && ms % u.ms == 0) return in_quotes(std::to_string(ms / u.ms) + u.suffix);
  return in_quotes(std::to_string(ms) + "ms");
}

std::string show_text(const std::string& s) { return s.empty() ? std::string("none") : in_quotes(s); }

// Every connection-level key as text, in file order, to compare two sources on one connection.
std::vector<std::pair<std::string_view, std::string>> connection_settings(const Config& c) {
  return {
      {"ca_file", show_text(c.ca_file)},
      {"cert_file", show_text(c.cert_file)},
      {"key_file", show_text(c.key_file)},
      {"verify_hostname", c.verify_hostname ? "true" : "false"},
      {"username", show_text(c.username)},
      {"password_file", show_text(c.password_file)},
      {"mqtt_version", c.mqtt_version == 5 ? "\"5\"" : "\"3.1.1\""},
      {"keepalive", show_duration(c.keepalive)},
      {"session_expiry", c.session_expiry.count() == 0 ? "\"0s\"" : show_duration(c.session_expiry)},
      {"receive_maximum", std::to_string(c.receive_maximum)},
      {"connect_timeout", show_duration(c.connect_timeout)},
      {"reconnect_min", show_duration(c.reconnect_min)},
      {"reconnect_max", show_duration(c.reconnect_max)},
  };
}

}  // namespace

std::unique_ptr<DriverConfig> parse_config(TableReader& r) {
  // name, type and priority are read by the settings loader, which also calls finish().
  auto c = std::make_unique<Config>();
  parse_url(r, *c);
  parse_connection(r, *c);
  parse_topics(r, *c);
  parse_mapping(r, *c);
  return c;
}

std::string connection_key(const Config& cfg) {
  return normalised_url(cfg) + "|" + cfg.client_id + "|" + cfg.username;
}

void check_together(const std::vector<ParsedSource>& sources, Diagnostics& diag) {
  struct Connection {
    const ParsedSource* first = nullptr;
    std::map<std::string, std::string_view> topics;  // filter -> the source that takes it
  };
  // One broker session per url and client id: two sessions with one client id would throw each
  // other off the broker, so sources that share both share the session and must agree on it.
  std::map<std::string, Connection> connections;
  for (const auto& src : sources) {
    const auto& c = static_cast<const Config&>(*src.config);
    if (c.host.empty()) continue;  // a bad url, already reported
    const std::string url = normalised_url(c);
    auto& conn = connections[url + "|" + c.client_id];
    const std::string id = c.client_id.empty() ? std::string("the default client_id") : "client_id " + in_quotes(c.client_id);
    if (!conn.first) {
      conn.first = &src;
    } else {
      const auto& f = static_cast<const Config&>(*conn.first->config);
      const auto mine = connection_settings(c);
      const auto theirs = connection_settings(f);
      for (std::size_t i = 0; i < mine.size(); ++i) {
        if (mine[i].second == theirs[i].second) continue;
        const std::string key(mine[i].first);
        diag.error(c.url_line, c.url_column,
                   "source \"" + std::string(src.name) + "\": shares the connection to " + url + " (" + id +
                       ") with source \"" + std::string(conn.first->name) + "\", which sets " + key + " = " +
                       theirs[i].second + "; this one sets " + key + " = " + mine[i].second +
                       "; sources on one connection must agree (or give this one its own client_id)");
      }
    }
    for (std::size_t i = 0; i < c.topics.size(); ++i) {
      const auto [it, inserted] = conn.topics.emplace(c.topics[i], src.name);
      if (inserted) continue;
      const auto [line, column] = i < c.topic_positions.size() ? c.topic_positions[i] : std::pair{c.url_line, c.url_column};
      diag.error(line, column,
                 "source \"" + std::string(src.name) + "\": topics: " + in_quotes(c.topics[i]) + " is a topic of source \"" +
                     std::string(it->second) + "\" on the same connection (" + url + ", " + id +
                     ") too; one subscription cannot feed two sources: give the filter to one of them");
    }
  }
}

}  // namespace ioc_edge::mqtt
