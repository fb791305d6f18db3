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

namespace {

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

int days_in_month(int y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[m - 1];
}

}  // namespace

std::optional<std::int64_t> wall_time_ms(int year, int month, int day, int hour, int minute, int second, int millis,
                                         int offset_minutes, bool local_zone) {
  if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) || hour < 0 || hour > 23 ||
      minute < 0 || minute > 59 || second < 0 || second > 60 || millis < 0 || millis > 999)
    return std::nullopt;
  second = std::min(second, 59);  // a leap second reads as :59
  std::int64_t secs;
  if (local_zone) {
    std::tm tm{};
    tm.tm_year = year - 1900;
    tm.tm_mon = month - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = minute;
    tm.tm_sec = second;
    tm.tm_isdst = -1;  // the zone's rules decide summer time
    const std::time_t t = std::mktime(&tm);
    if (t == static_cast<std::time_t>(-1) && !(tm.tm_year == 69 && tm.tm_mon == 11 && tm.tm_mday == 31))
      return std::nullopt;
    secs = static_cast<std::int64_t>(t);
  } else {
    secs = days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) * 86400 + hour * 3600 +
           minute * 60 + second - static_cast<std::int64_t>(offset_minutes) * 60;
  }
  const std::int64_t ms = secs * 1000 + millis;
  if (ms < kMinTsMs || ms > kMaxTsMs) return std::nullopt;
  return ms;
}

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
  int ms = 0;
  if (expect('.', ',')) {
    int n = 0;
    while (i < t.size() && t[i] >= '0' && t[i] <= '9') {
      if (n < 3) ms = ms * 10 + (t[i] - '0');  // digits beyond the millisecond are read and dropped
      ++n;
      ++i;
    }
    if (n == 0) return std::nullopt;
    for (; n < 3; ++n) ms *= 10;
  }
  if (i == t.size()) return wall_time_ms(y, mo, d, h, mi, sec, ms, default_offset_minutes, local_zone);
  int offset = 0;
  if (!expect('Z', 'z')) {
    const bool minus = i < t.size() && t[i] == '-';
    if (!expect('+', '-')) return std::nullopt;
    int oh, om;
    if (!digits(2, oh)) return std::nullopt;
    expect(':');  // +HH:MM, or +HHMM as ISO 8601 writes it
    if (!digits(2, om) || oh > 23 || om > 59) return std::nullopt;
    offset = (oh * 60 + om) * (minus ? -1 : 1);
  }
  if (i != t.size()) return std::nullopt;
  return wall_time_ms(y, mo, d, h, mi, sec, ms, offset, false);
}

}  // namespace ioc_edge
