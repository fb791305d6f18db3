#include "settings/table_reader.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/reading.h"

namespace ioc_edge {

std::string in_quotes(std::string_view text) { return "\"" + std::string(text) + "\""; }

void Diagnostics::error(int line, int column, std::string message) {
  list_.push_back({std::max(line, 1), std::max(column, 1), std::move(message)});
}

void Diagnostics::error(const toml::source_region& where, std::string message) {
  error(static_cast<int>(where.begin.line), static_cast<int>(where.begin.column), std::move(message));
}

std::string Diagnostics::format() const {
  auto sorted = list_;
  std::stable_sort(sorted.begin(), sorted.end(), [](const Diagnostic& a, const Diagnostic& b) {
    return a.line != b.line ? a.line < b.line : a.column < b.column;
  });
  std::string out;
  for (const auto& d : sorted)
    out += file_ + ":" + std::to_string(d.line) + ":" + std::to_string(d.column) + ": " + d.message + "\n";
  return out;
}

std::string_view type_name(toml::node_type t) {
  switch (t) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a number";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    default: return "nothing";
  }
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  double total_ms = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t j = i;
    while (j < text.size() && (std::isdigit(static_cast<unsigned char>(text[j])) || text[j] == '.')) ++j;
    if (j == i) return std::nullopt;
    double number = 0;
    try {
      number = std::stod(std::string(text.substr(i, j - i)));
    } catch (...) {
      return std::nullopt;
    }
    std::size_t k = j;
    while (k < text.size() && std::isalpha(static_cast<unsigned char>(text[k]))) ++k;
    const auto unit = text.substr(j, k - j);
    double factor;
    if (unit == "ms") factor = 1;
    else if (unit == "s") factor = 1000;
    else if (unit == "m" || unit == "min") factor = 60e3;
    else if (unit == "h") factor = 3600e3;
    else if (unit == "d") factor = 86400e3;
    else if (unit == "w") factor = 7 * 86400e3;
    else return std::nullopt;
    total_ms += number * factor;
    i = k;
  }
  if (!std::isfinite(total_ms) || total_ms > 1e15) return std::nullopt;
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(total_ms)));
}

std::optional<int> parse_offset_minutes(std::string_view text) {
  if (text == "Z" || text == "UTC") return 0;
  if (text.size() < 3 || (text[0] != '+' && text[0] != '-')) return std::nullopt;
  const auto two = [&](std::size_t at, int& out) {
    if (at + 2 > text.size() || !std::isdigit(static_cast<unsigned char>(text[at])) ||
        !std::isdigit(static_cast<unsigned char>(text[at + 1])))
      return false;
    out = (text[at] - '0') * 10 + (text[at + 1] - '0');
    return true;
  };
  int h = 0, m = 0;
  if (!two(1, h)) return std::nullopt;
  std::size_t at = 3;
  if (at < text.size() && text[at] == ':') ++at;
  if (at < text.size() && (!two(at, m) || at + 2 != text.size())) return std::nullopt;
  if (at == text.size() && text.size() != 3) return std::nullopt;  // "+07:" has no minutes
  if (h > 14 || m > 59 || h * 60 + m > 14 * 60) return std::nullopt;
  return (text[0] == '-' ? -1 : 1) * (h * 60 + m);
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
  std::size_t j = 0;
  while (j < text.size() && (std::isdigit(static_cast<unsigned char>(text[j])) || text[j] == '.')) ++j;
  if (j == 0) return std::nullopt;
  double number = 0;
  try {
    number = std::stod(std::string(text.substr(0, j)));
  } catch (...) {
    return std::nullopt;
  }
  auto unit = text.substr(j);
  while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  double factor;
  if (unit.empty() || unit == "B") factor = 1;
  else if (unit == "KB" || unit == "kB") factor = 1e3;
  else if (unit == "MB") factor = 1e6;
  else if (unit == "GB") factor = 1e9;
  else if (unit == "TB") factor = 1e12;
  else if (unit == "KiB") factor = 1024.0;
  else if (unit == "MiB") factor = 1024.0 * 1024;
  else if (unit == "GiB") factor = 1024.0 * 1024 * 1024;
  else if (unit == "TiB") factor = 1024.0 * 1024 * 1024 * 1024;
  else return std::nullopt;
  const double v = number * factor;
  if (!std::isfinite(v) || v > 1e18) return std::nullopt;
  return static_cast<std::uint64_t>(std::llround(v));
}

namespace {
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t sub = prev[j - 1] + (std::tolower(a[i - 1]) == std::tolower(b[j - 1]) ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}
}  // namespace

std::optional<toml::table> read_toml_text(std::string_view text, const std::string& name, Diagnostics& diag) {
  try {
    return toml::parse(text, name);
  } catch (const toml::parse_error& e) {
    diag.error(e.source(), "syntax error: " + std::string(e.description()));
    return std::nullopt;
  }
}

std::optional<toml::table> read_toml_file(const std::string& path, Diagnostics& diag) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    diag.error(1, 1, std::string("cannot read the configuration file: ") + std::strerror(errno));
    return std::nullopt;
  }
  std::ostringstream ss;
  ss << f.rdbuf();
  const std::string text = ss.str();
  if (!valid_utf8(text)) {
    diag.error(1, 1, "the file is not valid UTF-8 (save it as UTF-8)");
    return std::nullopt;
  }
  return read_toml_text(text, path, diag);
}

std::optional<ListenAddress> parse_listen_address(std::string_view text, bool* port_out_of_range) {
  if (port_out_of_range) *port_out_of_range = false;
  std::string_view host, port;
  bool v6 = false;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find("]:");
    if (close == std::string_view::npos) return std::nullopt;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    v6 = true;
  } else {
    const auto colon = text.find(':');
    if (colon == std::string_view::npos || text.find(':', colon + 1) != std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (host.empty() || port.empty() || port.size() > 5) return std::nullopt;
  // A link-local IPv6 address names its interface: [fe80::1%eth0].
  std::string_view address = host, zone;
  if (v6 && host.find('%') != std::string_view::npos) {
    address = host.substr(0, host.find('%'));
    zone = host.substr(host.find('%') + 1);
    if (zone.empty()) return std::nullopt;
    for (const char c : zone)
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '.' ||
            c == '-'))
        return std::nullopt;
  }
  for (const char c : address) {
    const bool ok = v6 ? ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' || c == '.')
                       : ((c >= '0' && c <= '9') || c == '.');
    if (!ok && !(!v6 && host == "localhost")) return std::nullopt;
  }
  if (v6 && address.find(':') == std::string_view::npos) return std::nullopt;
  int p = 0;
  for (const char c : port) {
    if (c < '0' || c > '9') return std::nullopt;
    p = p * 10 + (c - '0');
  }
  if (p < 1 || p > 65535) {
    if (port_out_of_range) *port_out_of_range = true;
    return std::nullopt;
  }
  return ListenAddress{host == "localhost" ? "127.0.0.1" : std::string(host), p};
}

std::optional<std::string> did_you_mean(std::string_view word, const std::vector<std::string>& candidates) {
  std::optional<std::string> best;
  std::size_t best_d = std::max<std::size_t>(2, word.size() / 3) + 1;
  for (const auto& c : candidates) {
    const auto d = edit_distance(word, c);
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  return best;
}

TableReader::TableReader(const toml::table& table, Diagnostics& diag, std::string context)
    : table_(table), diag_(diag), context_(std::move(context)) {}

void TableReader::error_at_key(std::string_view key, const std::string& message) {
  const toml::node* n = table_.get(key);
  if (n)
    diag_.error(n->source(), context_ + std::string(key) + ": " + message);
  else
    error_here(std::string(key) + ": " + message);
}

std::pair<int, int> TableReader::position(std::string_view key) const {
  const toml::node* n = table_.get(key);
  if (!n) return {0, 0};
  return {static_cast<int>(n->source().begin.line), static_cast<int>(n->source().begin.column)};
}

void TableReader::error_here(const std::string& message) { diag_.error(table_.source(), context_ + message); }

const toml::node* TableReader::get(std::string_view key, bool required) {
  known_.insert(std::string(key));
  const toml::node* n = table_.get(key);
  if (!n && required) error_here("missing required key '" + std::string(key) + "'");
  return n;
}

void TableReader::wrong_type(std::string_view key, const toml::node& n, std::string_view expected) {
  diag_.error(n.source(), context_ + std::string(key) + ": expected " + std::string(expected) + ", got " +
                              std::string(type_name(n.type())));
}

std::optional<std::string> TableReader::string(std::string_view key, bool required) {
  const toml::node* n = get(key, required);
  if (!n) return std::nullopt;
  if (!n->is_string()) {
    wrong_type(key, *n, "a string");
    return std::nullopt;
  }
  auto v = *n->value<std::string>();
  if (!valid_utf8(v)) {
    diag_.error(n->source(), context_ + std::string(key) + ": not valid UTF-8");
    return std::nullopt;
  }
  return v;
}

std::string TableReader::string_or(std::string_view key, std::string fallback) {
  auto v = string(key);
  return v ? *v : std::move(fallback);
}

std::optional<std::int64_t> TableReader::integer(std::string_view key, std::int64_t min, std::int64_t max,
                                                 bool required) {
  const toml::node* n = get(key, required);
  if (!n) return std::nullopt;
  if (!n->is_integer()) {
    wrong_type(key, *n, "an integer");
    return std::nullopt;
  }
  const auto v = *n->value<std::int64_t>();
  if (v < min || v > max) {
    diag_.error(n->source(), context_ + std::string(key) + ": must be " + std::to_string(min) + ".." +
                                 std::to_string(max) + ", got " + std::to_string(v));
    return std::nullopt;
  }
  return v;
}

std::int64_t TableReader::integer_or(std::string_view key, std::int64_t fallback, std::int64_t min, std::int64_t max) {
  auto v = integer(key, min, max);
  return v ? *v : fallback;
}

double TableReader::number_or(std::string_view key, double fallback, double min, double max) {
  const toml::node* n = get(key, false);
  if (!n) return fallback;
  if (!n->is_number()) {
    wrong_type(key, *n, "a number");
    return fallback;
  }
  const double v = *n->value<double>();
  if (!(v >= min && v <= max)) {
    std::ostringstream msg;
    msg << context_ << key << ": must be between " << min << " and " << max << ", got " << v;
    diag_.error(n->source(), msg.str());
    return fallback;
  }
  return v;
}

bool TableReader::boolean_or(std::string_view key, bool fallback) {
  const toml::node* n = get(key, false);
  if (!n) return fallback;
  if (!n->is_boolean()) {
    wrong_type(key, *n, "true or false");
    return fallback;
  }
  return *n->value<bool>();
}

std::string TableReader::enum_or(std::string_view key, std::string fallback,
                                 std::initializer_list<std::string_view> allowed) {
  const toml::node* n = get(key, false);
  if (!n) return fallback;
  auto v = string(key);
  if (!v) return fallback;
  if (std::find(allowed.begin(), allowed.end(), *v) != allowed.end()) return *v;
  std::string list;
  std::vector<std::string> cands;
  for (auto a : allowed) {
    list += (list.empty() ? "\"" : ", \"") + std::string(a) + "\"";
    cands.emplace_back(a);
  }
  std::string msg = context_ + std::string(key) + ": \"" + *v + "\" is not one of " + list;
  if (auto s = did_you_mean(*v, cands)) msg += " (did you mean \"" + *s + "\"?)";
  diag_.error(n->source(), msg);
  return fallback;
}

std::chrono::milliseconds TableReader::duration_or(std::string_view key, std::chrono::milliseconds fallback,
                                                   std::chrono::milliseconds min) {
  const toml::node* n = get(key, false);
  if (!n) return fallback;
  if (!n->is_string()) {
    diag_.error(n->source(), context_ + std::string(key) + ": expected a duration string such as \"30s\", \"5m\" or \"7d\", got " +
                                 std::string(type_name(n->type())));
    return fallback;
  }
  const auto text = *n->value<std::string>();
  const auto d = parse_duration(text);
  if (!d) {
    diag_.error(n->source(), context_ + std::string(key) + ": cannot read \"" + text +
                                 "\" as a duration (use a number and a unit: ms, s, m, h, d, w; e.g. \"30s\", \"1h30m\")");
    return fallback;
  }
  if (*d < min) {
    diag_.error(n->source(), context_ + std::string(key) + ": must be at least " + std::to_string(min.count()) +
                                 " ms, got \"" + text + "\"");
    return fallback;
  }
  return *d;
}

std::uint64_t TableReader::size_or(std::string_view key, std::uint64_t fallback, std::uint64_t min) {
  const toml::node* n = get(key, false);
  if (!n) return fallback;
  std::optional<std::uint64_t> v;
  std::string shown;
  if (n->is_integer() && *n->value<std::int64_t>() >= 0) {
    v = static_cast<std::uint64_t>(*n->value<std::int64_t>());
    shown = std::to_string(*v);
  } else if (n->is_string()) {
    shown = *n->value<std::string>();
    v = parse_size(shown);
    if (!v) {
      diag_.error(n->source(), context_ + std::string(key) + ": cannot read \"" + shown +
                                   "\" as a size (use a number and a unit: B, KB, MB, GB, KiB, MiB, GiB; e.g. \"2GiB\")");
      return fallback;
    }
  } else {
    wrong_type(key, *n, "a size such as \"2GiB\"");
    return fallback;
  }
  if (*v < min) {
    diag_.error(n->source(), context_ + std::string(key) + ": must be at least " + std::to_string(min) + " bytes, got " + shown);
    return fallback;
  }
  return *v;
}

double TableReader::rate_or(std::string_view key, double fallback) {
  const toml::node* n = get(key, false);
  if (!n) return fallback;
  if (n->is_integer() && *n->value<std::int64_t>() == 0) return 0;
  if (!n->is_string()) {
    wrong_type(key, *n, "a rate such as \"2MiB/s\"");
    return fallback;
  }
  std::string text = *n->value<std::string>();
  if (text == "0" || text == "unlimited") return 0;
  std::optional<std::uint64_t> v;
  if (text.size() > 2 && text.compare(text.size() - 2, 2, "/s") == 0) v = parse_size(text.substr(0, text.size() - 2));
  if (!v) {
    diag_.error(n->source(), context_ + std::string(key) + ": cannot read \"" + text +
                                 "\" as a rate (use a size per second, e.g. \"2MiB/s\", or \"unlimited\")");
    return fallback;
  }
  return static_cast<double>(*v);
}

std::optional<std::string> TableReader::file_path(std::string_view key, bool required) {
  auto v = string(key, required);
  if (!v || !diag_.check_files) return v;
  std::ifstream f(*v);
  if (!f) {
    error_at_key(key, "cannot read file \"" + *v + "\": " + std::strerror(errno));
    return v;  // keep the value: the daemon may still be checked elsewhere, but the file is flagged
  }
  return v;
}

const toml::table* TableReader::table(std::string_view key) {
  const toml::node* n = get(key, false);
  if (!n) return nullptr;
  if (!n->is_table()) {
    wrong_type(key, *n, "a table");
    return nullptr;
  }
  return n->as_table();
}

const toml::table* TableReader::section(std::string_view key, bool required) {
  const auto* t = table(key);
  if (!t && required && !table_.get(key)) diag_.error(1, 1, "missing required section [" + std::string(key) + "]");
  return t;
}

const toml::array* TableReader::array(std::string_view key) {
  const toml::node* n = get(key, false);
  if (!n) return nullptr;
  if (!n->is_array()) {
    wrong_type(key, *n, "an array");
    return nullptr;
  }
  return n->as_array();
}

void TableReader::finish() {
  std::vector<std::string> cands(known_.begin(), known_.end());
  for (const auto& [k, node] : table_) {
    const std::string key(k.str());
    if (known_.count(key)) continue;
    std::string msg = context_ + "unknown key '" + key + "'";
    if (auto s = did_you_mean(key, cands)) msg += " (did you mean '" + *s + "'?)";
    diag_.error(k.source().begin.line ? k.source() : node.source(), msg);
  }
}

}  // namespace ioc_edge
