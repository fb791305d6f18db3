#include "settings/settings.h"

#include "core/envelope.h"
#include "mqtt_sub/mqtt_url.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

namespace ioc_edge {

namespace {

constexpr std::size_t kMaxTitleBytes = 200;

void read_gateway(TableReader& r, GatewaySettings& g) {
  if (auto v = r.string("site", true)) {
    if (!valid_id(*v)) r.error_at_key("site", "\"" + *v + "\" " + std::string(id_rule()));
    g.site = *v;
  }
  if (auto v = r.string("province", true)) {
    if (!valid_id(*v)) r.error_at_key("province", "\"" + *v + "\" " + std::string(id_rule()));
    g.province = *v;
  }
  g.data_dir = r.string_or("data_dir", g.data_dir);
  if (g.data_dir.empty()) r.error_at_key("data_dir", "must not be empty");
  g.unit_code = r.string_or("unit_code", "");
  g.agency_code = r.string_or("agency_code", "");
  g.name = r.string_or("name", "");
  g.topic_prefix = r.string_or("topic_prefix", "ioc/{province}/{site}");
  if (g.topic_prefix.empty() || g.topic_prefix.find_first_of("+#") != std::string::npos ||
      g.topic_prefix.front() == '/' || g.topic_prefix.back() == '/')
    r.error_at_key("topic_prefix", "must be a topic without wildcards (+ #) or leading/trailing '/'");
  for (auto [ph, val] : {std::pair{std::string("{province}"), g.province}, std::pair{std::string("{site}"), g.site}})
    for (auto pos = g.topic_prefix.find(ph); pos != std::string::npos; pos = g.topic_prefix.find(ph))
      g.topic_prefix.replace(pos, ph.size(), val);
  g.log_level = r.enum_or("log_level", g.log_level, {"trace", "debug", "info", "warn", "error"});
  r.finish();
}

void read_buffer(TableReader& r, BufferSettings& b) {
  b.max_size = r.size_or("max_size", b.max_size, 1 << 20);
  b.max_age = r.duration_or("max_age", b.max_age);
  b.sync_full = r.enum_or("sync", "full", {"full", "normal"}) == "full";
  b.commit_interval = r.duration_or("commit_interval", b.commit_interval);
  if (b.commit_interval > std::chrono::seconds(10))
    r.error_at_key("commit_interval", "must be at most 10s: producers wait this long for their data to be stored");
  r.finish();
}

void read_uplink(TableReader& r, UplinkSettings& u, const GatewaySettings& g) {
  if (auto v = r.string("url", true)) {
    u.url = *v;
    MqttUrlError error{};
    if (!parse_mqtt_url(u.url, &error))
      r.error_at_key("url", mqtt_url_error_text(u.url, error, "\"mqtts://ioc.example.gov.vn:8883\""));
  }
  u.client_id = r.string_or("client_id", "ioc-edge-" + g.site);
  const bool tls = u.url.rfind("mqtts://", 0) == 0;
  u.ca_file = r.file_path("ca_file", tls).value_or("");
  u.cert_file = r.file_path("cert_file").value_or("");
  u.key_file = r.file_path("key_file").value_or("");
  if (u.cert_file.empty() != u.key_file.empty())
    r.error_here("cert_file and key_file go together (the client certificate and its key for mutual TLS)");
  if (!tls && (!u.ca_file.empty() || !u.cert_file.empty()))
    r.error_at_key("url", "TLS files are set but the URL is not mqtts://; use mqtts:// to encrypt the link");
  u.username = r.string_or("username", "");
  u.password_file = r.file_path("password_file").value_or("");
  u.verify_hostname = r.boolean_or("verify_hostname", true);
  u.batch_max_readings = static_cast<std::size_t>(r.integer_or("batch_max_readings", 500, 1, 100000));
  u.mqtt_version = r.enum_or("mqtt_version", "5", {"5", "3.1.1"}) == "5" ? 5 : 4;
  u.batch_max_bytes = r.size_or("batch_max_bytes", u.batch_max_bytes, 4096);
  if (u.batch_max_bytes > kMaxBatchBytes)
    r.error_at_key("batch_max_bytes", "must be at most 16MiB (a message holds the link while it travels, and brokers "
                                      "cap message sizes)");
  u.blob_max_bytes = r.size_or("blob_max_bytes", u.blob_max_bytes, 1024);
  if (u.blob_max_bytes > kMaxBlobBytes) r.error_at_key("blob_max_bytes", "must be at most 64MiB");
  u.max_inflight = static_cast<std::size_t>(r.integer_or("max_inflight", 100, 1, 65535));
  u.batch_wait = r.duration_or("batch_wait", u.batch_wait);
  if (u.batch_wait > std::chrono::seconds(10))
    r.error_at_key("batch_wait", "must be at most 10s: new readings wait this long before they are sent");
  u.backlog_rate = r.rate_or("backlog_rate", u.backlog_rate);
  u.keepalive = r.duration_or("keepalive", u.keepalive, std::chrono::seconds(1));
  u.connect_timeout = r.duration_or("connect_timeout", u.connect_timeout, std::chrono::seconds(1));
  u.reconnect_min = r.duration_or("reconnect_min", u.reconnect_min, std::chrono::milliseconds(10));
  u.reconnect_max = r.duration_or("reconnect_max", u.reconnect_max, std::chrono::milliseconds(10));
  if (u.reconnect_max < u.reconnect_min) r.error_at_key("reconnect_max", "must not be less than reconnect_min");
  u.heartbeat = r.duration_or("heartbeat", u.heartbeat, std::chrono::seconds(1));
  r.finish();
}

void read_status(TableReader& r, StatusSettings& s) {
  s.listen = r.string_or("listen", s.listen);
  if (!s.listen.empty()) {
    if (const auto a = parse_listen_address(s.listen)) {
      s.host = a->host;
      s.port = a->port;
    } else {
      r.error_at_key("listen", "\"" + s.listen + "\" is not ADDRESS:PORT like \"127.0.0.1:8787\" or \"[::1]:8787\" (\"\" turns the status server off)");
    }
  }
  s.link_down_after = r.duration_or("link_down_after", s.link_down_after, std::chrono::seconds(1));
  r.finish();
}

void read_report(TableReader& r, ReportSettings& rep) {
  rep.retention = r.duration_or("retention", rep.retention, std::chrono::hours(24));
  rep.write_every = r.duration_or("write_every", rep.write_every, std::chrono::seconds(1));
  if (rep.write_every > std::chrono::hours(1))
    r.error_at_key("write_every", "must be at most 1h: a crash loses the counts not yet written");
  if (auto v = r.string("utc_offset")) {
    if (const auto m = parse_offset_minutes(*v))
      rep.utc_offset_minutes = *m;
    else
      r.error_at_key("utc_offset", "\"" + *v + "\" is not a UTC offset like \"+07:00\", \"-03:30\" or \"Z\"");
  }
  r.finish();
}

// The smallest expected_every: the watch looks once a second.
constexpr std::chrono::milliseconds kMinExpectedEvery{1000};

void read_sources(const toml::array& arr, Diagnostics& diag, const std::vector<Driver>& drivers,
                  std::vector<SourceSettings>& out) {
  std::set<std::string> names;
  int index = 0;
  for (const auto& node : arr) {
    ++index;
    const auto* tbl = node.as_table();
    if (!tbl) {
      diag.error(node.source(), "source #" + std::to_string(index) + ": expected a table ([[source]])");
      continue;
    }
    std::string context = "source #" + std::to_string(index) + ": ";
    if (const auto* n = tbl->get("name"); n && n->is_string())
      context = "source \"" + *n->value<std::string>() + "\": ";
    TableReader r(*tbl, diag, context);
    SourceSettings s;
    if (auto v = r.string("name", true)) {
      s.name = *v;
      if (!valid_id(s.name))
        r.error_at_key("name", "\"" + s.name + "\" " + std::string(id_rule()));
      else if (!names.insert(s.name).second)
        r.error_at_key("name", "\"" + s.name + "\" is used by another source; names must be unique");
    }
    const auto type = r.string("type", true);
    const auto p = r.enum_or("priority", "normal", {"low", "normal", "high"});
    s.priority = p == "low" ? Priority::Low : p == "high" ? Priority::High : Priority::Normal;
    s.title = r.string_or("title", "");
    if (s.title.size() > kMaxTitleBytes)
      r.error_at_key("title", "must be at most " + std::to_string(kMaxTitleBytes) + " bytes (a name for the status page)");
    // Read here, with the keys every source has, so that no driver sees it as unknown.
    const bool every_given = tbl->get("expected_every") != nullptr;
    s.expected_every = r.duration_or("expected_every", std::chrono::milliseconds(0), kMinExpectedEvery);
    if (type) {
      s.type = *type;
      auto it = std::find_if(drivers.begin(), drivers.end(), [&](const Driver& d) { return d.type == *type; });
      if (it == drivers.end()) {
        std::vector<std::string> known;
        std::string list;
        for (const auto& d : drivers) {
          known.emplace_back(d.type);
          list += (list.empty() ? "" : ", ") + std::string(d.type);
        }
        std::string msg = "unknown source type \"" + *type + "\"";
        if (auto m = did_you_mean(*type, known)) msg += " (did you mean \"" + *m + "\"?)";
        r.error_at_key("type", msg + "; known types: " + list);
        // Without a driver its keys cannot be checked; do not report them as unknown.
        for (const auto& [k, v] : *tbl) r.known(k.str());
      } else {
        s.driver = &*it;
        s.config = it->parse(r);
        // Polled sources are watched at their schedule; sources that are sent data only when asked.
        if (!every_given && s.config && s.config->poll_interval().count() > 0)
          s.expected_every = std::max(s.config->poll_interval(), kMinExpectedEvery);
      }
    }
    r.finish();
    std::ostringstream text;
    text << toml::toml_formatter{*tbl};
    s.section_text = text.str();
    out.push_back(std::move(s));
  }
}

LoadResult parse(const toml::table& root, const std::string& name, const std::vector<Driver>& drivers,
                 bool check_files) {
  LoadResult res{std::nullopt, Diagnostics(name)};
  Diagnostics& diag = res.diagnostics;
  diag.check_files = check_files;
  Settings s;
  s.file = name;
  TableReader top(root, diag, "");
  const toml::table empty;
  const auto section = [&](const char* key, bool required) { return top.section(key, required); };
  if (const auto* t = section("gateway", true)) {
    TableReader r(*t, diag, "[gateway] ");
    read_gateway(r, s.gateway);
  }
  if (const auto* t = section("buffer", false)) {
    TableReader r(*t, diag, "[buffer] ");
    read_buffer(r, s.buffer);
  }
  if (const auto* t = section("uplink", true)) {
    TableReader r(*t, diag, "[uplink] ");
    read_uplink(r, s.uplink, s.gateway);
  }
  {
    const auto* t = section("status", false);
    TableReader r(t ? *t : empty, diag, "[status] ");
    read_status(r, s.status);
  }
  if (const auto* t = section("report", false)) {
    TableReader r(*t, diag, "[report] ");
    read_report(r, s.report);
  }
  if (const auto* arr = top.array("source")) read_sources(*arr, diag, drivers, s.sources);
  for (const auto& d : drivers) {
    if (!d.check_together) continue;
    std::vector<ParsedSource> mine;
    for (const auto& src : s.sources)
      if (src.driver == &d && src.config) mine.push_back({src.name, src.config.get()});
    if (!mine.empty()) d.check_together(mine, diag);
  }
  top.finish();
  if (diag.ok()) res.settings = std::move(s);
  return res;
}

}  // namespace

LoadResult load_settings_text(std::string_view text, const std::string& name, const std::vector<Driver>& drivers,
                              bool check_files) {
  LoadResult res{std::nullopt, Diagnostics(name)};
  const auto root = read_toml_text(text, name, res.diagnostics);
  return root ? parse(*root, name, drivers, check_files) : res;
}

LoadResult load_settings(const std::string& path, const std::vector<Driver>& drivers) {
  LoadResult res{std::nullopt, Diagnostics(path)};
  const auto root = read_toml_file(path, res.diagnostics);
  return root ? parse(*root, path, drivers, true) : res;
}

}  // namespace ioc_edge
