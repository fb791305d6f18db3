#include "drivers/mqtt/mqtt_mapping.h"

#include <algorithm>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstring>
#include <ctime>
#include <limits>

#include <nlohmann/json.hpp>

#include "core/json_value.h"

namespace ioc_edge::mqtt {

using json = nlohmann::json;

namespace {

constexpr std::size_t kMaxPoints = 1000;          // per message (Mapper::map_json)
constexpr std::size_t kMaxPointName = 256;        // bytes, as a modbus point name
constexpr std::size_t kMaxValueString = 256 * 1024;
// Sensor payloads nest a few levels; the limit keeps flattening and serializing (both recursive)
// off the end of the stack whatever a 64 MiB payload holds.
constexpr int kMaxDepth = 64;
constexpr int kMaxLevelNumber = 32767;            // a 65535-byte topic has at most 32768 levels

// External text in a message: quoted, cut at 64 bytes (on a character boundary).
std::string quote(std::string_view s) {
  constexpr std::size_t kMax = 64;
  std::string out = "\"";
  if (s.size() <= kMax) {
    out += s;
  } else {
    std::size_t cut = kMax;
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
    out += s.substr(0, cut);
    out += "...";
  }
  out += '"';
  return out;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

// Whether brackets in a JSON text nest deeper than `limit` (strings skipped). Cheap, and it runs
// before the parser so that nothing recursive ever sees a pathological document.
bool nested_deeper_than(std::string_view s, int limit) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (const char c : s) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '[' || c == '{') {
      if (++depth > limit) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

// Collects the first parse error of a document the DOM parser refused, for the message. Used
// only on that failure path: the SAX interface reports the position without throwing.
struct ErrorSax {
  std::string message;
  bool null() { return true; }
  bool boolean(bool) { return true; }
  bool number_integer(json::number_integer_t) { return true; }
  bool number_unsigned(json::number_unsigned_t) { return true; }
  bool number_float(json::number_float_t, const json::string_t&) { return true; }
  bool string(json::string_t&) { return true; }
  bool binary(json::binary_t&) { return true; }
  bool start_object(std::size_t) { return true; }
  bool key(json::string_t&) { return true; }
  bool end_object() { return true; }
  bool start_array(std::size_t) { return true; }
  bool end_array() { return true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& ex) {
    std::string_view what = ex.what();
    // "[json.exception.parse_error.101] parse error at line 1, column 6: ..." -> from "parse error".
    if (const auto at = what.find("] "); at != std::string_view::npos) what.remove_prefix(at + 2);
    message = std::string(what.substr(0, 200));
    return false;
  }
};

// Records a problem of a message with its kind (Mapped::kind), unless an earlier one is there.
void fail(Mapped& m, std::string_view kind, std::string error) {
  if (!m.error.empty()) return;
  m.error = std::move(error);
  m.kind = std::string(kind);
}

// Parses a JSON payload; on failure `m` says why and the result is discarded.
json parse_document(std::string_view payload, Mapped& m) {
  if (trim(payload).empty()) {
    fail(m, "empty_payload", "empty payload");
    return json(json::value_t::discarded);
  }
  if (nested_deeper_than(payload, kMaxDepth)) {
    fail(m, "malformed_json", "JSON nested deeper than " + std::to_string(kMaxDepth) + " levels");
    return json(json::value_t::discarded);
  }
  const char* first = payload.data();
  const char* last = payload.data() + payload.size();
  json doc = json::parse(first, last, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_discarded()) return doc;
  if (const auto bad = utf8_error_at(payload); bad != std::string_view::npos) {
    fail(m, "invalid_utf8", "invalid UTF-8 at byte " + std::to_string(bad));
    return doc;
  }
  ErrorSax sax;
  json::sax_parse(first, last, &sax);
  std::string why = sax.message.empty() ? std::string("not a JSON document") : sax.message;
  // The tail of the message quotes the payload; keep it valid UTF-8 after the cut above.
  while (!why.empty() && !valid_utf8(why)) why.pop_back();
  fail(m, "malformed_json", "invalid JSON: " + why);
  return doc;
}

// RFC 6901: "" is the whole document; otherwise "/" then tokens, "~1" for '/' and "~0" for '~'.
bool split_pointer(std::string_view p, std::vector<std::string>& tokens, std::string& error) {
  tokens.clear();
  if (p.empty()) return true;
  if (p.front() != '/') {
    error = "a JSON pointer is empty or starts with '/' (\"/ENERGY/Power\")";
    return false;
  }
  if (!valid_utf8(p)) {
    error = "not valid UTF-8";
    return false;
  }
  std::string token;
  for (std::size_t i = 1; i <= p.size(); ++i) {
    if (i == p.size() || p[i] == '/') {
      tokens.push_back(std::move(token));
      token.clear();
      continue;
    }
    if (p[i] == '~') {
      if (i + 1 < p.size() && (p[i + 1] == '0' || p[i + 1] == '1')) {
        token += p[i + 1] == '0' ? '~' : '/';
        ++i;
        continue;
      }
      error = "'~' must be followed by 0 or 1 (\"~0\" is '~', \"~1\" is '/')";
      return false;
    }
    token += p[i];
  }
  return true;
}

// The value a pointer names, or nullptr. Array indexes are decimal without leading zeros.
const json* resolve(const json& doc, const std::vector<std::string>& tokens) {
  const json* cur = &doc;
  for (const auto& tok : tokens) {
    if (cur->is_object()) {
      const auto& obj = cur->get_ref<const json::object_t&>();
      const auto it = obj.find(tok);
      if (it == obj.end()) return nullptr;
      cur = &it->second;
    } else if (cur->is_array()) {
      if (tok.empty() || (tok.size() > 1 && tok.front() == '0')) return nullptr;
      std::size_t index = 0;
      const auto [ptr, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), index);
      if (ec != std::errc() || ptr != tok.data() + tok.size()) return nullptr;
      const auto& arr = cur->get_ref<const json::array_t&>();
      if (index >= arr.size()) return nullptr;
      cur = &arr[index];
    } else {
      return nullptr;
    }
  }
  return cur;
}

// Reads exactly `n` digits at `pos`.
bool digits(std::string_view s, std::size_t pos, std::size_t n, int& out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  out = v;
  return true;
}

// A number of seconds or milliseconds -> ms, within range.
std::optional<std::int64_t> scaled_ms_float(double v, double factor) {
  const double ms = v * factor;
  if (!std::isfinite(ms) || ms < static_cast<double>(kMinTsMs) || ms > static_cast<double>(kMaxTsMs))
    return std::nullopt;
  return static_cast<std::int64_t>(std::llround(ms));
}

std::optional<std::int64_t> scaled_ms_int(std::int64_t v, std::int64_t factor) {
  if (v < kMinTsMs / factor || v > kMaxTsMs / factor) return std::nullopt;
  return v * factor;
}

// A JSON number, or a string holding one, as an int64 when it is integral, else a double.
struct Number {
  bool ok = false;
  bool integral = false;
  std::int64_t i = 0;
  double d = 0;
};

Number read_number_text(std::string_view s) {
  Number n;
  s = trim(s);
  if (s.empty()) return n;
  const char* b = s.data();
  const char* e = s.data() + s.size();
  // from_chars also reads "inf" and "nan": a number starts with a digit, '-' or '.'.
  const char c0 = s[0] == '-' && s.size() > 1 ? s[1] : s[0];
  if (!((c0 >= '0' && c0 <= '9') || c0 == '.')) return n;
  {
    const auto [p, ec] = std::from_chars(b, e, n.i);
    if (ec == std::errc() && p == e) {
      n.ok = n.integral = true;
      return n;
    }
  }
  const auto [p, ec] = std::from_chars(b, e, n.d);
  if (ec == std::errc() && p == e && std::isfinite(n.d)) n.ok = true;
  return n;
}

Number read_number(const json& v) {
  Number n;
  switch (v.type()) {
    case json::value_t::number_integer:
      n.ok = n.integral = true;
      n.i = v.get<std::int64_t>();
      break;
    case json::value_t::number_unsigned: {
      const auto u = v.get<std::uint64_t>();
      n.ok = true;
      if (u <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        n.integral = true;
        n.i = static_cast<std::int64_t>(u);
      } else {
        n.d = static_cast<double>(u);
      }
      break;
    }
    case json::value_t::number_float:
      n.d = v.get<double>();
      n.ok = std::isfinite(n.d);
      break;
    case json::value_t::string: return read_number_text(v.get_ref<const std::string&>());
    default: break;
  }
  return n;
}

std::string_view json_type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::object: return "an object";
    case json::value_t::array: return "an array";
    case json::value_t::string: return "a string";
    case json::value_t::boolean: return "a boolean";
    default: return "a number";
  }
}

// seconds or ms by `factor` (1000: seconds, 1: ms, 0: auto: below 1e11 seconds, else ms).
std::optional<std::int64_t> number_to_ms(const Number& n, int factor) {
  if (factor == 0) {
    const double magnitude = n.integral ? std::fabs(static_cast<double>(n.i)) : std::fabs(n.d);
    factor = magnitude < 1e11 ? 1000 : 1;
  }
  if (n.integral) return scaled_ms_int(n.i, factor);
  return scaled_ms_float(n.d, static_cast<double>(factor));
}

std::optional<std::int64_t> parse_pattern(const std::string& text, const TimeSpec& spec, std::string& error) {
  std::tm tm{};
  tm.tm_mday = 1;
  const char* end = ::strptime(text.c_str(), spec.pattern.c_str(), &tm);
  if (!end) {
    error = quote(text) + " does not match ts_format " + quote(spec.pattern);
    return std::nullopt;
  }
  // strptime has no conversion for fractions of a second: ".123" after the pattern is read here.
  int millis = 0;
  if (*end == '.' || *end == ',') {
    const char* p = end + 1;
    int scale = 100;
    if (*p < '0' || *p > '9') p = end;  // not a fraction: reported as trailing text below
    while (*p >= '0' && *p <= '9') {
      millis += (*p - '0') * scale;
      scale /= 10;
      ++p;
    }
    end = p;
  }
  while (is_space(*end)) ++end;
  if (*end != '\0') {
    error = quote(text) + " has text after ts_format " + quote(spec.pattern) + ": " + quote(end);
    return std::nullopt;
  }
  // %z fills tm_gmtoff and then wins over `timezone`.
  const bool has_zone = spec.pattern.find("%z") != std::string::npos;
  const int offset = has_zone ? static_cast<int>(tm.tm_gmtoff / 60) : spec.offset_minutes;
  auto ms = wall_time_ms(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis, offset,
                       spec.local_zone && !has_zone);
  if (!ms) error = quote(text) + " is not a time that exists (read with ts_format " + quote(spec.pattern) + ")";
  return ms;
}

}  // namespace

// --- Topics -------------------------------------------------------------------------------------

bool topic_matches(std::string_view filter, std::string_view topic) {
  // MQTT 3.1.1 section 4.7.2: "$SYS/..." is not matched by "#" or "+/...".
  if (!topic.empty() && topic.front() == '$' && !filter.empty() && (filter.front() == '#' || filter.front() == '+'))
    return false;
  std::size_t fi = 0, ti = 0;
  for (;;) {
    std::size_t fe = filter.find('/', fi);
    if (fe == std::string_view::npos) fe = filter.size();
    const auto level = filter.substr(fi, fe - fi);
    if (level == "#") return true;
    std::size_t te = topic.find('/', ti);
    if (te == std::string_view::npos) te = topic.size();
    if (level != "+" && level != topic.substr(ti, te - ti)) return false;
    const bool filter_done = fe == filter.size(), topic_done = te == topic.size();
    if (filter_done || topic_done) {
      if (filter_done && topic_done) return true;
      // "sport/#" matches "sport" too: '#' includes the parent level.
      return topic_done && filter.substr(fe) == "/#";
    }
    fi = fe + 1;
    ti = te + 1;
  }
}

std::string filter_problem(std::string_view filter) {
  if (filter.empty()) return "a topic filter must not be empty";
  if (filter.size() > 65535) return "longer than 65535 bytes";
  if (!valid_utf8(filter)) return "not valid UTF-8";
  if (filter.find('\0') != std::string_view::npos) return "contains a NUL character";
  std::size_t start = 0;
  for (;;) {
    std::size_t end = filter.find('/', start);
    const bool last = end == std::string_view::npos;
    if (last) end = filter.size();
    const auto level = filter.substr(start, end - start);
    if (level.find('#') != std::string_view::npos) {
      if (level != "#") return "'#' must be a whole level (\"a/#\", not \"a#\")";
      if (!last) return "'#' must be the last level";
    }
    if (level.find('+') != std::string_view::npos && level != "+")
      return "'+' must be a whole level (\"a/+/b\", not \"a+/b\")";
    if (last) return {};
    start = end + 1;
  }
}

std::vector<std::string_view> topic_levels(std::string_view topic) {
  std::vector<std::string_view> levels;
  levels.reserve(8);
  std::size_t start = 0;
  for (;;) {
    const std::size_t end = topic.find('/', start);
    if (end == std::string_view::npos) {
      levels.push_back(topic.substr(start));
      return levels;
    }
    levels.push_back(topic.substr(start, end - start));
    start = end + 1;
  }
}

std::string pointer_problem(std::string_view pointer) {
  std::vector<std::string> tokens;
  std::string error;
  split_pointer(pointer, tokens, error);
  return error;
}

// --- Name templates -----------------------------------------------------------------------------

NameTemplate NameTemplate::parse(std::string_view text, std::string& error) {
  error.clear();
  NameTemplate t;
  std::string literal;
  const auto flush = [&] {
    if (literal.empty()) return;
    t.parts_.push_back({std::move(literal), 0, false});
    literal.clear();
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '{') {
      if (i + 1 < text.size() && text[i + 1] == '{') {
        literal += '{';
        ++i;
        continue;
      }
      const auto close = text.find('}', i + 1);
      if (close == std::string_view::npos) {
        error = "'{' without '}' (write \"{{\" for a brace)";
        return {};
      }
      const auto inner = text.substr(i + 1, close - i - 1);
      const std::string shown = "{" + std::string(inner) + "}";
      const bool negative = !inner.empty() && inner.front() == '-';
      const auto number = negative ? inner.substr(1) : inner;
      int value = 0;
      const auto [p, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
      if (number.empty() || number.front() == '+' || ec != std::errc() || p != number.data() + number.size()) {
        error = shown + ": not a level number ({0} is the first level, {-1} the last)";
        return {};
      }
      if (value > kMaxLevelNumber) {
        error = shown + ": a topic has at most " + std::to_string(kMaxLevelNumber + 1) + " levels";
        return {};
      }
      if (negative && value == 0) {
        error = shown + ": counting from the end starts at {-1} (the last level)";
        return {};
      }
      flush();
      t.parts_.push_back({std::string(), negative ? -value : value, true});
      i = close;
    } else if (c == '}') {
      if (i + 1 < text.size() && text[i + 1] == '}') {
        literal += '}';
        ++i;
        continue;
      }
      error = "'}' without '{' (write \"}}\" for a brace)";
      return {};
    } else {
      literal += c;
    }
  }
  flush();
  return t;
}

std::size_t NameTemplate::min_levels() const {
  std::size_t n = 0;
  for (const auto& p : parts_)
    if (p.is_level) n = std::max(n, static_cast<std::size_t>(p.level >= 0 ? p.level + 1 : -p.level));
  return n;
}

std::optional<std::string> NameTemplate::expand(const std::vector<std::string_view>& levels, std::string& error) const {
  const std::size_t n = levels.size();
  std::string out;
  std::size_t size = 0;
  for (const auto& p : parts_) {
    if (!p.is_level) {
      size += p.text.size();
      continue;
    }
    const std::size_t needed = static_cast<std::size_t>(p.level >= 0 ? p.level + 1 : -p.level);
    if (needed > n) {
      error = "topic has " + std::to_string(n) + (n == 1 ? " level, {" : " levels, {") + std::to_string(p.level) +
              "} needs " + std::to_string(needed);
      return std::nullopt;
    }
    size += levels[p.level >= 0 ? static_cast<std::size_t>(p.level) : n - needed].size();
  }
  out.reserve(size);
  for (const auto& p : parts_) {
    if (!p.is_level)
      out += p.text;
    else
      out += levels[p.level >= 0 ? static_cast<std::size_t>(p.level) : n - static_cast<std::size_t>(-p.level)];
  }
  return out;
}

// --- Timestamps ---------------------------------------------------------------------------------

std::optional<std::int64_t> parse_timestamp(const json& value, const TimeSpec& spec, std::string& error) {
  const auto not_a_number = [&] {
    error = "expected a number of " + std::string(spec.format == TsFormat::UnixMs ? "milliseconds" : "seconds") +
            " since 1970, got " + (value.is_string() ? quote(value.get_ref<const std::string&>())
                                                     : std::string(json_type_name(value)));
  };
  const auto out_of_range = [&] {
    error = compact_json(value).substr(0, 64) + " is out of range for a time (years 1 to 9999)";
  };
  switch (spec.format) {
    case TsFormat::Auto:
    case TsFormat::Rfc3339: {
      if (value.is_string()) {
        const auto& s = value.get_ref<const std::string&>();
        if (spec.format == TsFormat::Auto) {
          if (const auto n = read_number_text(s); n.ok) {
            if (auto ms = number_to_ms(n, 0)) return ms;
            out_of_range();
            return std::nullopt;
          }
        }
        if (auto ms = parse_rfc3339_ms(s, spec.offset_minutes, spec.local_zone)) return ms;
        error = quote(s) + " is not an RFC 3339 time such as \"2026-11-30T10:00:00Z\"";
        return std::nullopt;
      }
      if (spec.format == TsFormat::Auto && value.is_number()) {
        const auto n = read_number(value);
        if (n.ok)
          if (auto ms = number_to_ms(n, 0)) return ms;
        out_of_range();
        return std::nullopt;
      }
      error = std::string(spec.format == TsFormat::Auto ? "expected an RFC 3339 string or a Unix time, got "
                                                        : "expected an RFC 3339 string, got ") +
              std::string(json_type_name(value));
      return std::nullopt;
    }
    case TsFormat::Unix:
    case TsFormat::UnixMs: {
      if (!value.is_number() && !value.is_string()) {
        not_a_number();
        return std::nullopt;
      }
      const auto n = read_number(value);
      if (!n.ok) {
        if (value.is_number()) out_of_range();
        else not_a_number();
        return std::nullopt;
      }
      if (auto ms = number_to_ms(n, spec.format == TsFormat::Unix ? 1000 : 1)) return ms;
      out_of_range();
      return std::nullopt;
    }
    case TsFormat::Pattern: {
      if (!value.is_string()) {
        error = "expected a string in ts_format " + quote(spec.pattern) + ", got " + std::string(json_type_name(value));
        return std::nullopt;
      }
      return parse_pattern(value.get_ref<const std::string&>(), spec, error);
    }
  }
  error = "unknown ts_format";
  return std::nullopt;
}

// --- The mapper ---------------------------------------------------------------------------------

namespace {

// Flattens a JSON document into one reading per leaf, named by its path.
class Flattener {
 public:
  Flattener(const json* ts_leaf, std::int64_t ts_ms, Mapped& m) : ts_leaf_(ts_leaf), ts_ms_(ts_ms), m_(m), out_(m.readings) {
    path_.reserve(64);
  }

  // False when the message has more than kMaxPoints points.
  bool walk(const json& v) {
    switch (v.type()) {
      case json::value_t::object:
        for (const auto& [key, child] : v.get_ref<const json::object_t&>())
          if (!child_(key, child)) return false;
        return true;
      case json::value_t::array: {
        const auto& arr = v.get_ref<const json::array_t&>();
        char buf[24];
        for (std::size_t i = 0; i < arr.size(); ++i) {
          const auto [p, ec] = std::to_chars(buf, buf + sizeof buf, i);
          if (!child_(std::string_view(buf, static_cast<std::size_t>(p - buf)), arr[i])) return false;
        }
        return true;
      }
      case json::value_t::null:
      case json::value_t::discarded: return true;
      default: return leaf_(v);
    }
  }

 private:
  bool child_(std::string_view key, const json& child) {
    const std::size_t at = path_.size();
    const std::size_t grown = at + (at == 0 ? 0 : 1) + key.size();
    if (grown > kMaxPointName) {
      fail(m_, "bad_point_name", pointer_(key) + ": the point name would be over " + std::to_string(kMaxPointName) + " bytes");
      return true;
    }
    if (at != 0) path_ += '.';
    starts_.push_back(at == 0 ? 0 : at + 1);
    path_ += key;
    const bool ok = walk(child);
    path_.resize(at);
    starts_.pop_back();
    return ok;
  }

  bool leaf_(const json& v) {
    if (&v == ts_leaf_) return true;
    if (path_.empty()) {
      fail(m_, "bad_point_name", pointer_({}) + ": an empty key does not name a point");
      return true;
    }
    if (out_.size() == kMaxPoints) return false;
    Reading r;
    std::string why;
    if (!json_to_value(v, r.value, why)) {
      fail(m_, "bad_value", pointer_({}) + ": " + why);
      return true;
    }
    r.point = path_;
    r.ts_ms = ts_ms_;
    out_.push_back(std::move(r));
    return true;
  }

  // The JSON pointer of where the walk is (plus `key`), for messages: the path's segments were
  // recorded as offsets because a key may itself contain '.'.
  std::string pointer_(std::string_view key) const {
    std::string p;
    const auto add = [&p](std::string_view seg) {
      p += '/';
      for (const char c : seg) {
        if (c == '~') p += "~0";
        else if (c == '/') p += "~1";
        else p += c;
      }
    };
    for (std::size_t k = 0; k < starts_.size(); ++k) {
      const std::size_t end = k + 1 < starts_.size() ? starts_[k + 1] - 1 : path_.size();
      add(std::string_view(path_).substr(starts_[k], end - starts_[k]));
    }
    if (!key.empty()) add(key);
    return p.empty() ? std::string("/") : p;
  }

  const json* ts_leaf_;
  std::int64_t ts_ms_;
  Mapped& m_;
  std::vector<Reading>& out_;
  std::string path_;
  std::vector<std::size_t> starts_;  // where each segment of path_ begins
};

bool over_max(std::string_view payload, std::uint64_t max, Mapped& m) {
  if (max == 0 || payload.size() <= max) return false;
  fail(m, "oversized", "payload of " + std::to_string(payload.size()) + " bytes is over max_payload (" +
                          std::to_string(max) + " bytes)");
  return true;
}

}  // namespace

std::optional<Mapper> Mapper::build(const Config& cfg, std::string& error) {
  error.clear();
  Mapper m;
  std::string why;
  if (!cfg.source_name.empty()) {
    m.source_ = NameTemplate::parse(cfg.source_name, why);
    if (!why.empty()) {
      error = "source_name: " + why;
      return std::nullopt;
    }
  }
  m.point_ = NameTemplate::parse(cfg.point.empty() ? std::string_view("{-1}") : std::string_view(cfg.point), why);
  if (!why.empty()) {
    error = "point: " + why;
    return std::nullopt;
  }
  m.fields_ = cfg.fields;
  m.field_tokens_.resize(cfg.fields.size());
  for (std::size_t i = 0; i < cfg.fields.size(); ++i) {
    if (!split_pointer(cfg.fields[i].pointer, m.field_tokens_[i], why)) {
      error = "field \"" + cfg.fields[i].point + "\": pointer: " + why;
      return std::nullopt;
    }
  }
  m.ts_ = cfg.ts;
  if (!split_pointer(cfg.ts.pointer, m.ts_tokens_, why)) {
    error = "ts_pointer: " + why;
    return std::nullopt;
  }
  m.unit_ = cfg.unit;
  m.max_payload_ = cfg.max_payload;
  return m;
}

std::optional<std::string> Mapper::source_for(const std::vector<std::string_view>& levels, std::string_view own_name,
                                              std::string& error) const {
  if (source_.empty()) return std::string(own_name);
  auto name = source_.expand(levels, error);
  if (!name) return std::nullopt;
  if (!valid_id(*name)) {
    error = "source name " + quote(*name) + " (from the topic) " + std::string(id_rule());
    return std::nullopt;
  }
  return name;
}

std::optional<std::string> Mapper::point_for(const std::vector<std::string_view>& levels, std::string& error) const {
  auto point = point_.expand(levels, error);
  if (!point) return std::nullopt;
  if (point->empty() || point->size() > kMaxPointName) {
    error = "point name " + quote(*point) + " (from the topic) must be 1 to " + std::to_string(kMaxPointName) + " bytes";
    return std::nullopt;
  }
  return point;
}

Mapped Mapper::map_json(std::string_view payload, const std::vector<std::string_view>& levels,
                        std::int64_t now_ms) const {
  Mapped m;
  if (over_max(payload, max_payload_, m)) return m;
  try {
    const json doc = parse_document(payload, m);
    if (doc.is_discarded()) return m;

    // The timestamp first: every reading of the message carries it, and its problem is the one
    // reported (the readings say it too).
    std::string ts_error;
    std::int64_t ts = now_ms;
    const json* ts_leaf = nullptr;
    if (!ts_tokens_.empty()) {
      ts_leaf = resolve(doc, ts_tokens_);
      std::string why;
      if (!ts_leaf) {
        ts_error = "ts: " + ts_.pointer + ": not found";
      } else if (auto t = parse_timestamp(*ts_leaf, ts_, why)) {
        ts = *t;
      } else {
        ts_error = "ts: " + ts_.pointer + ": " + why;
      }
      if (!ts_error.empty()) fail(m, "bad_timestamp", ts_error);
    }
    if (!fields_.empty()) {
      m.readings.reserve(fields_.size());
      for (std::size_t i = 0; i < fields_.size(); ++i) {
        const json* v = resolve(doc, field_tokens_[i]);
        if (!v) {
          fail(m, "no_match", fields_[i].pointer + ": not found (field \"" + fields_[i].point + "\")");
          continue;
        }
        if (v->is_null()) continue;  // a device that has no value yet says so with null
        Reading r;
        std::string why;
        if (!json_to_value(*v, r.value, why)) {
          fail(m, "bad_value", fields_[i].pointer + ": " + why);
          continue;
        }
        r.point = fields_[i].point;
        r.unit = fields_[i].unit;
        r.ts_ms = ts;
        m.readings.push_back(std::move(r));
      }
    } else if (doc.is_object() || doc.is_array()) {
      Flattener flat(ts_leaf, ts, m);
      if (!flat.walk(doc)) {
        m.readings.clear();
        m.error = "more than " + std::to_string(kMaxPoints) +
                  " points in one message (none stored); map the ones needed with [[source.field]]";
        m.kind = "too_many_points";
        return m;
      }
    } else if (!doc.is_null() && &doc != ts_leaf) {
      // A bare value ("23.5" on zigbee2mqtt/sensor/temperature): the topic names its point.
      std::string why;
      auto point = point_for(levels, why);
      Reading r;
      if (!point) {
        fail(m, "bad_point_name", why);
      } else if (!json_to_value(doc, r.value, why)) {
        fail(m, "bad_value", "/: " + why);
      } else {
        r.point = std::move(*point);
        r.ts_ms = ts;
        m.readings.push_back(std::move(r));
      }
    }
    if (!ts_error.empty()) {
      for (auto& r : m.readings) {
        r.quality = Quality::Uncertain;
        r.error = ts_error;
      }
    }
  } catch (const json::exception& e) {  // not expected: every access above checks the type first
    m.readings.clear();
    m.error = std::string("internal error mapping JSON: ") + e.what();
    m.kind = "bad_value";
  }
  return m;
}

Mapped Mapper::map_event(std::string_view payload, const std::vector<std::string_view>& levels,
                         std::int64_t now_ms) const {
  Mapped m;
  if (over_max(payload, max_payload_, m)) return m;
  try {
    const json doc = parse_document(payload, m);
    if (doc.is_discarded()) return m;
    std::string why;
    auto point = point_for(levels, why);
    if (!point) {
      fail(m, "bad_point_name", why);
      return m;
    }
    Reading r;
    r.point = std::move(*point);
    r.ts_ms = now_ms;
    if (doc.is_object() || doc.is_array() || doc.is_null()) {
      r.value = JsonText{compact_json(doc)};
    } else if (!json_to_value(doc, r.value, why)) {
      fail(m, "bad_value", "/: " + why);
      return m;
    }
    if (!ts_tokens_.empty()) {
      std::string ts_error;
      if (const json* leaf = resolve(doc, ts_tokens_); !leaf) {
        ts_error = "ts: " + ts_.pointer + ": not found";
      } else if (auto t = parse_timestamp(*leaf, ts_, why)) {
        r.ts_ms = *t;
      } else {
        ts_error = "ts: " + ts_.pointer + ": " + why;
      }
      if (!ts_error.empty()) {
        r.quality = Quality::Uncertain;
        r.error = ts_error;
        fail(m, "bad_timestamp", std::move(ts_error));
      }
    }
    m.readings.push_back(std::move(r));
  } catch (const json::exception& e) {  // not expected, as in map_json
    m.readings.clear();
    m.error = std::string("internal error mapping JSON: ") + e.what();
    m.kind = "bad_value";
  }
  return m;
}

Mapped Mapper::map_value(std::string_view payload, const std::vector<std::string_view>& levels,
                         std::int64_t now_ms) const {
  Mapped m;
  if (over_max(payload, max_payload_, m)) return m;
  const auto text = trim(payload);
  if (text.empty()) {
    fail(m, "empty_payload", "empty payload");
    return m;
  }
  Reading r;
  if (const auto n = read_number_text(text); n.ok) {
    if (n.integral) r.value = n.i;
    else r.value = n.d;
  } else if (iequals(text, "true") || iequals(text, "on")) {
    r.value = true;
  } else if (iequals(text, "false") || iequals(text, "off")) {
    r.value = false;
  } else {
    if (const auto bad = utf8_error_at(text); bad != std::string_view::npos) {
      fail(m, "invalid_utf8",
           "invalid UTF-8 at byte " + std::to_string(static_cast<std::size_t>(text.data() - payload.data()) + bad));
      return m;
    }
    if (text.size() > kMaxValueString) {
      fail(m, "bad_value", "a text value of " + std::to_string(text.size()) + " bytes is over the limit of " +
                               std::to_string(kMaxValueString) + " bytes");
      return m;
    }
    // A number too large for a double ("1e999") is text that looks like a number: say so.
    if (const char c0 = text[0] == '-' && text.size() > 1 ? text[1] : text[0]; c0 >= '0' && c0 <= '9') {
      double d;
      const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), d);
      if (ec == std::errc::result_out_of_range && p == text.data() + text.size()) {
        fail(m, "bad_value", quote(text) + ": number out of range");
        return m;
      }
    }
    r.value = std::string(text);
  }
  std::string why;
  auto point = point_for(levels, why);
  if (!point) {
    fail(m, "bad_point_name", why);
    return m;
  }
  r.point = std::move(*point);
  r.unit = unit_;
  r.ts_ms = now_ms;
  m.readings.push_back(std::move(r));
  return m;
}

}  // namespace ioc_edge::mqtt
