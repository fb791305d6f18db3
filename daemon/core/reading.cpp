#include "core/reading.h"

#include <algorithm>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstring>
#include <ctime>

namespace ioc_edge {


std::string_view to_string(Quality q) {
  switch (q) {
    case Quality::Good: return "good";
    case Quality::Uncertain: return "uncertain";
    case Quality::Bad: return "bad";
  }
  return "bad";
}

std::string_view to_string(Priority p) {
  switch (p) {
    case Priority::Low: return "low";
    case Priority::Normal: return "normal";
    case Priority::High: return "high";
    case Priority::System: return "system";
  }
  return "normal";
}

std::string format_rfc3339_ms(std::int64_t ms) {
  std::int64_t secs = ms / 1000;
  int millis = static_cast<int>(ms % 1000);
  if (millis < 0) {
    millis += 1000;
    secs -= 1;
  }
  // Readings come in bursts of the same second: format the date and time once per second and
  // thread (gmtime_r + snprintf cost more than the rest of a reading's serialization).
  thread_local std::int64_t cached_secs = INT64_MIN;
  thread_local char cached[24];
  if (secs != cached_secs) {
    const std::time_t t = static_cast<std::time_t>(secs);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[80];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                  tm.tm_hour, tm.tm_min, tm.tm_sec);
    std::memcpy(cached, buf, 20);
    cached_secs = secs;
  }
  std::string out(cached, 19);
  out += '.';
  out += static_cast<char>('0' + millis / 100);
  out += static_cast<char>('0' + millis / 10 % 10);
  out += static_cast<char>('0' + millis % 10);
  out += 'Z';
  return out;
}

bool valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    const unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    int n;
    std::uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (end - p <= n) return false;
    for (int i = 1; i <= n; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    static constexpr std::uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    p += n + 1;
  }
  return true;
}

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 0xF]);
        } else {
          out.push_back(ch);
        }
    }
  }
  out.push_back('"');
}

namespace {

void append_number(std::string& out, double v) {
  if (!std::isfinite(v)) {  // JSON has no NaN/Inf; the pipeline marks such readings bad before here
    out += "null";
    return;
  }
  char buf[32];
  auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, ptr);
}

struct ValueWriter {
  std::string& out;
  void operator()(std::monostate) const { out += "null"; }
  void operator()(double v) const { append_number(out, v); }
  void operator()(std::int64_t v) const { out += std::to_string(v); }
  void operator()(bool v) const { out += v ? "true" : "false"; }
  void operator()(const std::string& v) const { append_json_string(out, v); }
  // A raw newline can only be whitespace between tokens in valid JSON (strings escape it); a space
  // means the same and keeps the body one line.
  void operator()(const JsonText& v) const {
    const auto at = out.size();
    out += v.text;
    std::replace(out.begin() + static_cast<std::ptrdiff_t>(at), out.end(), '\n', ' ');
  }
};

}  // namespace

std::string reading_body_json(std::string_view source, const Reading& r) {
  std::string out;
  out.reserve(96 + r.point.size() + source.size());
  append_reading_json(out, source, r);
  return out;
}

void append_reading_json(std::string& out, std::string_view source, const Reading& r) {
  out += "{\"ts\":\"";
  out += format_rfc3339_ms(r.ts_ms);
  out += "\",\"source\":";
  append_json_string(out, source);
  out += ",\"point\":";
  append_json_string(out, r.point);
  out += ",\"value\":";
  std::visit(ValueWriter{out}, r.value);
  if (!r.unit.empty()) {
    out += ",\"unit\":";
    append_json_string(out, r.unit);
  }
  out += ",\"quality\":\"";
  out += to_string(r.quality);
  out += '"';
  if (!r.error.empty()) {
    out += ",\"error\":";
    append_json_string(out, r.error);
  }
  if (r.clock_unsynchronized) out += ",\"clock\":\"unsynchronized\"";
  out += '}';
}

bool valid_id(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  auto alnum = [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(s.front())) return false;
  for (char c : s)
    if (!alnum(c) && c != '_' && c != '.' && c != '-') return false;
  return true;
}

std::string_view id_rule() { return "must be 1-64 characters of A-Z a-z 0-9 _ . - starting with a letter or digit"; }

std::optional<std::int64_t> parse_rfc3339_ms(std::string_view t, int default_offset_minutes, bool local_zone) {
  std::size_t i = 0;
  auto digits = [&](int n, int& out) {
    if (i + n > t.size()) return false;
    out = 0;
    for (int k = 0; k < n; ++k) {
      const char c = t[i + k];
      if (c < '0' || c > '9') return false;
      out = out * 10 + (c - '0');
    }
    i += n;
    return true;
  };
  auto expect = [&](char a, char b = 0) {
    if (i < t.size() && (t[i] == a || (b && t[i] == b))) {
      ++i;
      return true;
    }
    return false;
  };
  int y, mo, d, h, mi, sec;
  if (!digits(4, y) || !expect('-') || !digits(2, mo) || !expect('-') || !digits(2, d) || !expect('T', 't'))
    if (!(i == 10 && expect(' '))) return std::nullopt;
  if (!digits(2, h) || !expect(':') || !digits(2, mi) || !expect(':') || !digits(2, sec)) return std::nullopt;
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (mo < 1 || mo > 12 || d < 1 || d > kDays[mo - 1] + (mo == 2 && leap) || h > 23 || mi > 59 || sec > 60)
    return std::nullopt;
  int ms = 0;
  if (expect('.', ',')) {
    int n = 0;
    while (i < t.size() && t[i] >= '0' && t[i] <= '9') {
      if (n < 3) ms = ms * 10 + (t[i] - '0');
      ++n;
      ++i;
    }
    if (n == 0) return std::nullopt;
    for (; n < 3; ++n) ms *= 10;
  }
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = std::min(sec, 59);  // a leap second reads as :59
  std::int64_t secs;
  if (i == t.size()) {
    if (local_zone) {
      tm.tm_isdst = -1;
      const auto v = std::mktime(&tm);
      if (v == static_cast<std::time_t>(-1)) return std::nullopt;
      secs = v;
    } else {
      secs = static_cast<std::int64_t>(timegm(&tm)) - default_offset_minutes * 60;
    }
  } else if (expect('Z', 'z')) {
    secs = timegm(&tm);
  } else {
    const bool minus = i < t.size() && t[i] == '-';
    if (!expect('+', '-')) return std::nullopt;
    int oh, om = 0;
    if (!digits(2, oh)) return std::nullopt;
    if (expect(':')) {  // +HH:MM, or +HHMM as ISO 8601 writes it
      if (!digits(2, om)) return std::nullopt;
    } else if (!digits(2, om)) {
      return std::nullopt;
    }
    if (oh > 23 || om > 59) return std::nullopt;
    const int off = (oh * 60 + om) * (minus ? -1 : 1);
    secs = static_cast<std::int64_t>(timegm(&tm)) - off * 60;
  }
  if (i != t.size()) return std::nullopt;
  return secs * 1000 + ms;
}

}  // namespace ioc_edge
