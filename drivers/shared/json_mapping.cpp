#include "drivers/shared/json_mapping.h"

#include <charconv>
#include <cmath>
#include <ctime>
#include <limits>

#include <nlohmann/json.hpp>

#include "settings/table_reader.h"

namespace ioc_edge {

using json = nlohmann::json;

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

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

ParsedNumber read_number(const json& v) {
  ParsedNumber n;
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

// seconds or ms by `factor` (1000: seconds, 1: ms, 0: auto: below 1e11 seconds, else ms).
std::optional<std::int64_t> number_to_ms(const ParsedNumber& n, int factor) {
  if (factor == 0) {
    const double magnitude = n.integral ? std::fabs(static_cast<double>(n.i)) : std::fabs(n.d);
    factor = magnitude < 1e11 ? 1000 : 1;
  }
  if (n.integral) return scaled_ms_int(n.i, factor);
  return scaled_ms_float(n.d, static_cast<double>(factor));
}

// "UTC", "local" or "+07:00" / "-03:30" / "+0700" / "+07".
bool parse_zone(std::string_view z, TimeSpec& ts) {
  if (z == "UTC") {
    ts.offset_minutes = 0;
    return true;
  }
  if (z == "local") {
    ts.local_zone = true;
    return true;
  }
  const auto offset = parse_utc_offset(z);
  if (offset) ts.offset_minutes = *offset;
  return offset.has_value();
}

// A strptime pattern: every '%' starts a conversion strptime knows.
std::string pattern_problem(std::string_view p) {
  constexpr std::string_view kConversions = "aAbBcCdDeFgGhHIjmMnprRStTuUVwWxXyYzZ%";
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (p[i] != '%') continue;
    std::size_t k = i + 1;
    if (k < p.size() && (p[k] == 'E' || p[k] == 'O')) ++k;
    if (k >= p.size()) return "ends with a lone '%'";
    if (kConversions.find(p[k]) == std::string_view::npos)
      return "%" + std::string(1, p[k]) + " is not a strptime conversion (%Y %m %d %H %M %S %z ...)";
    i = k;
  }
  return {};
}


}  // namespace

std::optional<std::int64_t> parse_time_pattern(const std::string& text, const TimeSpec& spec, std::string& error) {
  std::tm tm{};
  tm.tm_mday = 1;
  const char* end = ::strptime(text.c_str(), spec.pattern.c_str(), &tm);
  if (!end) {
    error = quote_text(text) + " does not match ts_format " + quote_text(spec.pattern);
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
    error = quote_text(text) + " has text after ts_format " + quote_text(spec.pattern) + ": " + quote_text(end);
    return std::nullopt;
  }
  // %z fills tm_gmtoff and then wins over `timezone`.
  const bool has_zone = spec.pattern.find("%z") != std::string::npos;
  const int offset = has_zone ? static_cast<int>(tm.tm_gmtoff / 60) : spec.offset_minutes;
  auto ms = wall_time_ms(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis, offset,
                       spec.local_zone && !has_zone);
  if (!ms) error = quote_text(text) + " is not a time that exists (read with ts_format " + quote_text(spec.pattern) + ")";
  return ms;
}

std::optional<int> parse_utc_offset(std::string_view z) {
  if (z.size() < 3 || (z[0] != '+' && z[0] != '-')) return std::nullopt;
  const auto two = [&](std::size_t at, int& out) {
    if (at + 2 > z.size() || z[at] < '0' || z[at] > '9' || z[at + 1] < '0' || z[at + 1] > '9') return false;
    out = (z[at] - '0') * 10 + (z[at + 1] - '0');
    return true;
  };
  int h = 0, m = 0;
  if (!two(1, h)) return std::nullopt;
  if (z.size() == 6 && z[3] == ':') {
    if (!two(4, m)) return std::nullopt;
  } else if (z.size() == 5) {
    if (!two(3, m)) return std::nullopt;
  } else if (z.size() != 3) {
    return std::nullopt;
  }
  if (h > 14 || m > 59 || (h == 14 && m > 0)) return std::nullopt;
  return (z[0] == '-' ? -1 : 1) * (h * 60 + m);
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

// External text in a message: quoted, cut at 64 bytes (on a character boundary).
std::string quote_text(std::string_view s) {
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

std::string_view trim_space(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

void read_ts_format(TableReader& r, TimeSpec& ts) {
  if (auto f = r.string("ts_format")) {
    if (*f == "auto") ts.format = TsFormat::Auto;
    else if (*f == "rfc3339") ts.format = TsFormat::Rfc3339;
    else if (*f == "unix") ts.format = TsFormat::Unix;
    else if (*f == "unix_ms") ts.format = TsFormat::UnixMs;
    else if (f->find('%') != std::string::npos) {
      if (const auto problem = pattern_problem(*f); !problem.empty()) {
        r.error_at_key("ts_format", in_quotes(*f) + ": " + problem);
      } else {
        ts.format = TsFormat::Pattern;
        ts.pattern = *f;
      }
    } else {
      r.error_at_key("ts_format", in_quotes(*f) + " is not one of \"auto\", \"rfc3339\", \"unix\", \"unix_ms\" or a "
                                               "strptime pattern such as \"%Y-%m-%d %H:%M:%S\"");
    }
  }
  if (auto z = r.string("timezone"); z && !parse_zone(*z, ts))
    r.error_at_key("timezone", in_quotes(*z) + " is not \"UTC\", \"local\" (this machine's zone) or an offset such as "
                                            "\"+07:00\" (named zones are not supported)");
}

nlohmann::json parse_json(std::string_view payload, int max_depth, std::string& kind, std::string& error) {
  if (trim_space(payload).empty()) {
    kind = "empty_payload";
    error = "empty payload";
    return json(json::value_t::discarded);
  }
  if (nested_deeper_than(payload, max_depth)) {
    kind = "malformed_json";
    error = "JSON nested deeper than " + std::to_string(max_depth) + " levels";
    return json(json::value_t::discarded);
  }
  const char* first = payload.data();
  const char* last = payload.data() + payload.size();
  json doc = json::parse(first, last, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_discarded()) return doc;
  if (const auto bad = utf8_error_at(payload); bad != std::string_view::npos) {
    kind = "invalid_utf8";
    error = "invalid UTF-8 at byte " + std::to_string(bad);
    return doc;
  }
  ErrorSax sax;
  json::sax_parse(first, last, &sax);
  std::string why = sax.message.empty() ? std::string("not a JSON document") : sax.message;
  // The tail of the message quotes the payload; keep it valid UTF-8 after the cut above.
  while (!why.empty() && !valid_utf8(why)) why.pop_back();
  kind = "malformed_json";
  error = "invalid JSON: " + why;
  return doc;
}

std::string pointer_problem(std::string_view pointer) {
  std::vector<std::string> tokens;
  std::string error;
  split_json_pointer(pointer, tokens, error);
  return error;
}

// RFC 6901: "" is the whole document; otherwise "/" then tokens, "~1" for '/' and "~0" for '~'.
bool split_json_pointer(std::string_view p, std::vector<std::string>& tokens, std::string& error) {
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
const json* resolve_json_pointer(const json& doc, const std::vector<std::string>& tokens) {
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

ParsedNumber read_number_text(std::string_view s) {
  ParsedNumber n;
  s = trim_space(s);
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

// --- Timestamps ---------------------------------------------------------------------------------

std::optional<std::int64_t> parse_timestamp(const json& value, const TimeSpec& spec, std::string& error) {
  const auto not_a_number = [&] {
    error = "expected a number of " + std::string(spec.format == TsFormat::UnixMs ? "milliseconds" : "seconds") +
            " since 1970, got " + (value.is_string() ? quote_text(value.get_ref<const std::string&>())
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
        error = quote_text(s) + " is not an RFC 3339 time such as \"2026-11-30T10:00:00Z\"";
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
        error = "expected a string in ts_format " + quote_text(spec.pattern) + ", got " + std::string(json_type_name(value));
        return std::nullopt;
      }
      return parse_time_pattern(value.get_ref<const std::string&>(), spec, error);
    }
  }
  error = "unknown ts_format";
  return std::nullopt;
}

}  // namespace ioc_edge
