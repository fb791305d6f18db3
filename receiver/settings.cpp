#include "receiver/settings.h"

#include <unistd.h>

#include "mqtt_sub/mqtt_url.h"
#include "receiver/pg.h"

namespace ioc_receiver {

using ioc_edge::Diagnostics;
using ioc_edge::TableReader;

namespace {

bool group_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

bool topic_level_ok(const std::string& s) {
  return !s.empty() && s.find_first_of("+#/") == std::string::npos;
}

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0 || !buf[0]) return "unknown";
  return buf;
}

void read_broker(TableReader& r, BrokerSettings& b) {
  if (const auto url = r.string("url", true)) {
    b.url = *url;
    b.tls = b.url.rfind("mqtts://", 0) == 0;
    ioc_edge::MqttUrlError error{};
    if (const auto u = ioc_edge::parse_mqtt_url(b.url, &error)) {
      b.host = u->host;
      b.port = u->port;
    } else {
      r.error_at_key("url", ioc_edge::mqtt_url_error_text(b.url, error, "\"mqtts://ioc-broker.example.gov.vn:8883\""));
    }
  }
  b.ca_file = r.file_path("ca_file", b.tls).value_or("");
  b.cert_file = r.file_path("cert_file").value_or("");
  b.key_file = r.file_path("key_file").value_or("");
  if (b.cert_file.empty() != b.key_file.empty())
    r.error_here("cert_file and key_file go together (the receiver's client certificate and its key for mutual TLS)");
  if (!b.tls && (!b.ca_file.empty() || !b.cert_file.empty()))
    r.error_at_key("url", "TLS files are set but the URL is not mqtts://; use mqtts:// to encrypt the link");
  b.verify_hostname = r.boolean_or("verify_hostname", true);
  b.client_id = r.string_or("client_id", "ioc-receiver-" + host_name());
  if (b.client_id.empty() || b.client_id.size() > 128)
    r.error_at_key("client_id", "must be 1-128 characters (each receiver needs its own, for its MQTT session)");
  b.share_group = r.string_or("share_group", b.share_group);
  for (const char c : b.share_group)
    if (!group_char(c)) {
      r.error_at_key("share_group", "\"" + b.share_group + "\" may hold only A-Z a-z 0-9 _ - (\"\" for no shared subscription)");
      break;
    }
  b.receive_maximum = static_cast<int>(r.integer_or("receive_maximum", b.receive_maximum, 1, 65535));
  b.topic_root = r.string_or("topic_root", b.topic_root);
  if (!topic_level_ok(b.topic_root))
    r.error_at_key("topic_root", "must be one topic level without / + # (the offices' topic_prefix starts with it)");
  r.finish();
}

void read_database(TableReader& r, DatabaseSettings& d) {
  if (const auto url = r.string("url", true)) {
    d.url = *url;
    if (const auto problem = pg::conninfo_problem(d.url))
      r.error_at_key("url", "not a PostgreSQL connection string (" + *problem +
                                "); e.g. \"postgresql://ioc@/ioc?host=/run/postgresql\"");
  }
  d.batch_max_rows = static_cast<std::size_t>(r.integer_or("batch_max_rows", 5000, 1, 1000000));
  d.batch_wait = r.duration_or("batch_wait", d.batch_wait);
  if (d.batch_wait > std::chrono::seconds(5))
    r.error_at_key("batch_wait", "must be at most 5s: offices' messages wait this long for their commit");
  d.partitions_ahead = static_cast<int>(r.integer_or("partitions_ahead", 3, 1, 24));
  r.finish();
}

void read_status(TableReader& r, StatusSettings& s) {
  s.listen = r.string_or("listen", s.listen);
  if (!s.listen.empty()) {
    if (const auto a = ioc_edge::parse_listen_address(s.listen)) {
      s.host = a->host;
      s.port = a->port;
    } else {
      r.error_at_key("listen", "\"" + s.listen +
                                   "\" is not ADDRESS:PORT like \"127.0.0.1:8788\" or \"[::1]:8788\" (\"\" turns the "
                                   "status server off)");
    }
  }
  r.finish();
}

LoadResult parse(const toml::table& root, const std::string& name, bool check_files) {
  LoadResult res{std::nullopt, Diagnostics(name)};
  Diagnostics& diag = res.diagnostics;
  diag.check_files = check_files;
  Settings s;
  s.file = name;
  TableReader top(root, diag, "");
  const auto section = [&](const char* key, bool required) { return top.section(key, required); };
  if (const auto* t = section("receiver", false)) {
    TableReader r(*t, diag, "[receiver] ");
    s.log_level = r.enum_or("log_level", s.log_level, {"trace", "debug", "info", "warn", "error"});
    r.finish();
  }
  if (const auto* t = section("broker", true)) {
    TableReader r(*t, diag, "[broker] ");
    read_broker(r, s.broker);
  }
  if (const auto* t = section("database", true)) {
    TableReader r(*t, diag, "[database] ");
    read_database(r, s.database);
  }
  if (const auto* t = section("status", false)) {
    TableReader r(*t, diag, "[status] ");
    read_status(r, s.status);
  }
  if (const auto* t = section("late", false)) {
    TableReader r(*t, diag, "[late] ");
    s.late.office_after = r.duration_or("office_after", s.late.office_after, std::chrono::seconds(1));
    s.late.source_factor = r.number_or("source_factor", s.late.source_factor, 1.0, 100.0);
    s.late.source_min_silence =
        r.duration_or("source_min_silence", s.late.source_min_silence, std::chrono::seconds(1));
    r.finish();
  }
  if (const auto* t = section("coverage", false)) {
    TableReader r(*t, diag, "[coverage] ");
    s.coverage.hole_grace = r.duration_or("hole_grace", s.coverage.hole_grace, std::chrono::seconds(1));
    r.finish();
  }
  top.finish();
  if (diag.ok()) res.settings = std::move(s);
  return res;
}

}  // namespace

LoadResult load_settings_text(std::string_view text, const std::string& name, bool check_files) {
  LoadResult res{std::nullopt, Diagnostics(name)};
  const auto root = ioc_edge::read_toml_text(text, name, res.diagnostics);
  return root ? parse(*root, name, check_files) : res;
}

LoadResult load_settings(const std::string& path) {
  LoadResult res{std::nullopt, Diagnostics(path)};
  const auto root = ioc_edge::read_toml_file(path, res.diagnostics);
  return root ? parse(*root, path, true) : res;
}

}  // namespace ioc_receiver
