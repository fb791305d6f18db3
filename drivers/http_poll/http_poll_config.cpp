#include "drivers/http_poll/http_poll_config.h"

#include <set>

#include "settings/table_reader.h"

namespace ioc_edge::http_poll {

namespace {

constexpr std::uint64_t kMaxBodyLimit = 256ull << 20;
constexpr std::size_t kMaxPointName = 256;
constexpr std::size_t kMaxHeaderBytes = 4096;
constexpr auto kDefaultTimeout = std::chrono::seconds(10);
constexpr auto kMinPeriod = std::chrono::milliseconds(100);


std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& ch : out)
    if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
  return out;
}

bool host_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

bool v6_char(char c) {
  return (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f') || (c >= '0' && c <= '9') || c == ':' || c == '.';
}

// RFC 9110 token characters (header names).
bool token_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// "http[s]://HOST[:PORT][/PATH][?QUERY]", HOST a name, an IPv4 address or [IPv6].
void parse_url(TableReader& r, Config& c) {
  const auto url = r.string("url", true);
  if (!url) return;
  c.url = *url;
  const auto bad = [&](const std::string& why) {
    r.error_at_key("url", in_quotes(c.url) + " " + why);
    c.host.clear();
  };
  const std::string example = "is not an HTTP URL like \"http://192.168.1.20:8080/api/readings\" or "
                              "\"https://his.example.gov.vn/api/v1/summary\"";
  std::string_view rest = c.url;
  if (rest.rfind("https://", 0) == 0) {
    c.tls = true;
    rest.remove_prefix(8);
  } else if (rest.rfind("http://", 0) == 0) {
    rest.remove_prefix(7);
  } else {
    return bad(example + " (schemes: http, https)");
  }
  for (const char ch : rest)
    if (static_cast<unsigned char>(ch) <= ' ' || ch == 0x7F)
      return bad("contains a space or a control character (write spaces as %20)");
  const auto path_at = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, path_at);
  std::string_view target = path_at == std::string_view::npos ? std::string_view() : rest.substr(path_at);
  if (authority.find('@') != std::string_view::npos)
    return bad("holds a user name or password: give them in [source.auth] instead, with the password in a file");
  if (const auto hash = target.find('#'); hash != std::string_view::npos)
    return bad("has a fragment (#...), which is never sent to the server: remove it");
  std::string_view host;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return bad(example);
    host = authority.substr(1, close - 1);
    if (host.empty() || host.find(':') == std::string_view::npos) return bad(example);
    for (const char ch : host)
      if (!v6_char(ch)) return bad(example);
    authority.remove_prefix(close + 1);
    if (!authority.empty() && authority.front() != ':') return bad(example);
  } else {
    const auto colon = authority.find(':');
    host = authority.substr(0, colon);
    if (host.empty()) return bad(example);
    for (const char ch : host)
      if (!host_char(ch)) return bad(example);
    authority.remove_prefix(colon == std::string_view::npos ? authority.size() : colon);
  }
  c.host = std::string(host);
  c.port = c.tls ? 443 : 80;
  c.target = target.empty() ? std::string("/") : target.front() == '?' ? "/" + std::string(target) : std::string(target);
  if (authority.empty()) return;
  const auto port = authority.substr(1);  // after ':'
  if (port.empty() || port.size() > 5) return bad(example);
  int p = 0;
  for (const char ch : port) {
    if (ch < '0' || ch > '9') return bad(example);
    p = p * 10 + (ch - '0');
  }
  if (p < 1 || p > 65535) {
    r.error_at_key("url", "port must be 1..65535");
    c.host.clear();
    return;
  }
  c.port = p;
}

void parse_schedule(TableReader& r, Config& c) {
  c.every = r.duration_or("every", c.every, kMinPeriod);
  c.timeout = std::min<std::chrono::milliseconds>(kDefaultTimeout, c.every);
  if (r.raw().get("timeout")) {
    c.timeout = r.duration_or("timeout", c.timeout, kMinPeriod);
    if (c.timeout > c.every)
      r.error_at_key("timeout", "must not be longer than every (one request at a time: a slow answer would "
                                "make the next poll wait)");
  }
  c.retry_max = r.duration_or("retry_max", c.retry_max, kMinPeriod);
}

void parse_headers(TableReader& r, Config& c) {
  const auto* t = r.table("headers");
  if (!t) return;
  Diagnostics& diag = r.diagnostics();
  // Headers the source writes itself, or that would change how the answer is framed.
  static const std::set<std::string> kOwn = {"host", "content-length", "transfer-encoding", "connection", "te",
                                             "upgrade", "expect", "if-none-match", "if-modified-since",
                                             "accept-encoding", "keep-alive", "proxy-authorization"};
  std::set<std::string> seen;
  for (const auto& [k, node] : *t) {
    const std::string name(k.str());
    const std::string where = r.context() + "headers: " + in_quotes(name) + ": ";
    bool name_ok = !name.empty() && name.size() <= 256;
    for (const char ch : name) name_ok = name_ok && token_char(ch);
    if (!name_ok) {
      diag.error(node.source(), where + "not a header name (letters, digits and - only, e.g. \"X-Api-Version\")");
      continue;
    }
    const auto low = lower(name);
    if (low == "authorization") {
      diag.error(node.source(), where + "give credentials in [source.auth] (bearer token_file, or basic user and "
                                        "password_file), so that no secret is written in this file");
      continue;
    }
    if (kOwn.count(low)) {
      diag.error(node.source(), where + "is set by the source itself and cannot be configured");
      continue;
    }
    if (!seen.insert(low).second) {
      diag.error(node.source(), where + "is given twice (header names are not case-sensitive)");
      continue;
    }
    if (!node.is_string()) {
      diag.error(node.source(), where + "expected a string, got " + std::string(type_name(node.type())));
      continue;
    }
    const auto value = *node.value<std::string>();
    bool value_ok = value.size() <= kMaxHeaderBytes;
    for (const char ch : value) value_ok = value_ok && ((ch >= ' ' && ch < 0x7F) || ch == '\t');
    if (!value_ok) {
      diag.error(node.source(), where + "the value must be printable ASCII without line breaks, at most " +
                                    std::to_string(kMaxHeaderBytes) + " bytes");
      continue;
    }
    c.headers.emplace_back(name, value);
  }
}

void parse_auth(TableReader& section, Config& c) {
  const auto* t = section.table("auth");
  if (!t) return;
  TableReader r(*t, section.diagnostics(), section.context() + "auth: ");
  const auto type = r.string("type", true);
  if (type && *type == "bearer") {
    c.auth.kind = AuthKind::Bearer;
    c.auth.token_file = r.file_path("token_file", true).value_or("");
    for (const auto key : {"user", "password_file"})
      if (r.raw().get(key)) {
        r.known(key);
        r.error_at_key(key, "applies only to type = \"basic\"");
      }
  } else if (type && *type == "basic") {
    c.auth.kind = AuthKind::Basic;
    if (auto user = r.string("user", true)) {
      bool ok = !user->empty() && user->find(':') == std::string::npos && valid_utf8(*user);
      for (const char ch : *user) ok = ok && static_cast<unsigned char>(ch) >= ' ' && ch != 0x7F;
      if (!ok) r.error_at_key("user", in_quotes(*user) + " must be non-empty, without ':' or control characters");
      else c.auth.user = *user;
    }
    c.auth.password_file = r.file_path("password_file", true).value_or("");
    if (r.raw().get("token_file")) {
      r.known("token_file");
      r.error_at_key("token_file", "applies only to type = \"bearer\"");
    }
  } else if (type) {
    r.error_at_key("type", in_quotes(*type) + " is not \"bearer\" (a token sent as Authorization: Bearer) or \"basic\" "
                                          "(a user name and password)");
    for (const auto key : {"token_file", "user", "password_file"}) r.known(key);
  }
  r.finish();
}

void parse_tls(TableReader& r, Config& c) {
  if (!c.host.empty() && !c.tls) {
    for (const auto key : {"ca_file", "verify_hostname"})
      if (r.raw().get(key)) {
        r.known(key);
        r.error_at_key(key, "applies only to https:// URLs; this source's url is http://, which is not encrypted");
      }
    return;
  }
  c.ca_file = r.file_path("ca_file").value_or("");
  c.verify_hostname = r.boolean_or("verify_hostname", true);
}

// A pointer key: checked, stored in `out` when present.
bool pointer_key(TableReader& r, std::string_view key, std::string& out) {
  auto p = r.string(key);
  if (!p) return false;
  if (const auto problem = pointer_problem(*p); !problem.empty()) {
    r.error_at_key(key, in_quotes(*p) + ": " + problem);
    return false;
  }
  out = *p;
  return true;
}

void parse_mapping(TableReader& r, Config& c) {
  Mapping& m = c.mapping;
  std::string p;
  if (pointer_key(r, "records", p)) m.records = p;
  const bool has_point = r.raw().get("point") != nullptr;
  const bool has_point_pointer = r.raw().get("point_pointer") != nullptr;
  if (has_point && has_point_pointer) {
    r.known("point");
    r.known("point_pointer");
    r.error_at_key("point_pointer", "give either point (one name for every reading) or point_pointer (where each "
                                    "record names its point), not both");
  } else if (has_point) {
    if (auto name = r.string("point")) {
      if (name->empty() || name->size() > kMaxPointName || !valid_utf8(*name))
        r.error_at_key("point", "must be 1 to " + std::to_string(kMaxPointName) + " bytes of UTF-8");
      else if (name->front() == '/')
        r.error_at_key("point", in_quotes(*name) + " is a point name; for a JSON pointer to each record's name write "
                                               "point_pointer = " + in_quotes(*name));
      else
        m.point = *name;
    }
  } else if (has_point_pointer) {
    pointer_key(r, "point_pointer", m.point_pointer);
  } else {
    r.error_here("missing point or point_pointer: name the readings (point = \"so-ca-mac\") or say where each record "
                 "names its point (point_pointer = \"/ma_chi_tieu\")");
  }
  if (pointer_key(r, "value_pointer", p)) m.value_pointer = p;
  if (pointer_key(r, "ts_pointer", m.ts.pointer) && m.ts.pointer.empty())
    r.error_at_key("ts_pointer", "must point into the record (\"/ngay\"), not be the whole record");
  const bool with_ts = r.raw().get("ts_pointer") != nullptr;
  for (const auto key : {"ts_format", "timezone"})
    if (r.raw().get(key) && !with_ts) {
      r.known(key);
      r.error_at_key(key, "applies only with ts_pointer (where each record's time is)");
    }
  if (with_ts) read_ts_format(r, m.ts);
  if (r.raw().get("unit") && r.raw().get("unit_pointer")) {
    r.known("unit");
    r.known("unit_pointer");
    r.error_at_key("unit_pointer", "give either unit (one unit for every reading) or unit_pointer, not both");
  } else {
    m.unit = r.string_or("unit", "");
    pointer_key(r, "unit_pointer", m.unit_pointer);
  }
}

}  // namespace

std::unique_ptr<DriverConfig> parse_config(TableReader& r) {
  // name, type and priority are read by the settings loader, which also calls finish().
  auto c = std::make_unique<Config>();
  parse_url(r, *c);
  parse_schedule(r, *c);
  parse_headers(r, *c);
  parse_auth(r, *c);
  parse_tls(r, *c);
  c->max_body = r.size_or("max_body", c->max_body, 1);
  if (c->max_body > kMaxBodyLimit) r.error_at_key("max_body", "must be at most 256MiB");
  parse_mapping(r, *c);
  return c;
}

}  // namespace ioc_edge::http_poll
