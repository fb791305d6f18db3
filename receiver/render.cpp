// The renderers of receiver/findings.h: `ioc-receiver coverage`, `late` and `report` in text (a
// terminal), CSV (a spreadsheet), JSON (a program) and HTML (the page attached to the quarterly
// report). Pure functions of the structs: no database, no clock, no locale.
//
// What the text looks like (the figures of tests/unit/receiver_render_test.cpp):
//
// `ioc-receiver coverage`:
//
//   Seq coverage: 2 offices, 3 stores
//
//   bk-cho-don
//     store 6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d
//       complete          99.80 %  998 of 1,000 seqs received, the last at 2025-11-30 08:59:58Z
//       declared dropped  1 seq: 731
//       holes             1 seq: 900
//       pending           none
//     store 0d5e8f4c-...
//   bk-na-ri
//     store 9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d
//       complete          83.33 %  100 of 120 seqs received, the last at 2025-11-30 08:59:50Z
//       ...
//       pending           20 seqs: 101-120
//
//   complete: seqs received of those the office numbered (1 to the highest seen).
//   (three more lines of legend)
//
// A long range list stops after 20 ranges: "1-10, 101-110, ..., … and 5 more ranges (50 seqs)".
//
// `ioc-receiver late`:
//
//   Late offices and sources at 2025-11-30 09:00:00Z
//   An office is late after 10 min without a heartbeat, or when it went offline;
//   a source after 3 × its cadence without a good reading.
//   2 late offices, 2 late sources
//
//   bk-cho-don  UBND xã Chợ Đồn, bac-kan
//     office      silent 20 min              last heartbeat 2025-11-30 08:40:00Z
//     tram-bom-1  silent 1 h 5 min           last good 2025-11-30 07:55:00Z, every 5 min (configured)
//
//   bk-ba-be
//     office      OFFLINE, silent 3 h 5 min  last heartbeat 2025-11-30 05:55:00Z
//
//   bk-na-ri
//     muc-nuoc    silent 45 min              no good reading yet, every 10 min (learned)
//
// `ioc-receiver report` (text):
//
//   Data-continuity report
//   Period      2025-07-01 00:00:00Z to 2025-10-01 00:00:00Z (92 d)
//   Generated   2025-10-01 02:00:00Z
//   Offices     2
//   Late        an office is late after 10 min without a heartbeat, or while its last will says offline
//
//   bk-cho-don  UBND xã Chợ Đồn
//     province bac-kan, unit code H04.05, agency code 000.05.15.H04
//     completeness     99.80 %  998 of 1,000 seqs received, 1 declared dropped, 1 hole
//     availability     99.95 %  late 3 periods, 1 h 12 min
//                               2025-07-03 01:00:00Z to 2025-07-03 01:30:00Z  30 min
//                               (one line per late period, at most 20)
//       source      readings    good  bad  dropped  refused  stale              last good
//       tram-bom-1   100,000  99,990   10        1        0  2 periods, 35 min  2025-09-30 23:59:00Z
//       muc-nuoc       5,000   5,000    0        0        2  never              2025-09-30 23:55:00Z
//
//   bk-na-ri  UBND xã Kim Lư
//     province bac-kan
//     completeness    100.00 %  no readings in this period
//     availability    100.00 %  never late
//     no source stored readings in this period
//
//   completeness: seqs received of those the office's stores numbered for readings in the period;
//   (three more lines of legend)
//
// Empty lists say so: "no office has reported yet", "no late offices or sources", "no office has
// reported in this period".
//
// Choices every format shares:
// - Percentages have 2 decimals, rounded to nearest, except that a figure below 100 never shows as
//   100.00 and one above 0 never as 0.00: "100.00 %" means nothing is missing. JSON and CSV carry
//   the same 2-decimal figure as the text, so the formats agree; the counts are there to recompute.
//   A percentage outside [0, 100] shows clamped; an unknown one (NaN) as "n/a", null, or empty.
// - CSV: RFC 4180: a header row, rows ending in CRLF, fields quoted when they hold a comma, quote,
//   CR or LF; '.' decimal point, no thousands separators, no byte-order mark. Each function's
//   layout is described where it is written.
// - Text and HTML show times as "2026-11-30 09:00:00Z" (people read seconds); CSV and JSON as
//   format_time(). Durations for people: "45 s", "12 min 5 s", "1 h 12 min", "3 d 4 h".
// - Strings from offices (site, names, sources) can hold anything: text escapes control
//   characters (a name cannot move the cursor or fake a line), HTML escapes & < > " ', CSV quotes
//   per RFC 4180 and defuses spreadsheet formulas, JSON replaces invalid UTF-8 rather than throw.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <initializer_list>
#include <limits>
#include <string>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include "receiver/findings.h"

namespace ioc_receiver {

namespace {

using json = nlohmann::ordered_json;

constexpr std::size_t kRangesListed = 20;   // text and HTML; CSV and JSON list them all
constexpr std::size_t kPeriodsListed = 20;  // late periods per office in text; the others list all

// ---- numbers ----

std::uint64_t magnitude(std::int64_t n) {
  return n < 0 ? 0 - static_cast<std::uint64_t>(n) : static_cast<std::uint64_t>(n);
}

// "1,234,567": counts for people.
std::string thousands(std::int64_t n) {
  const std::string digits = std::to_string(magnitude(n));
  std::string out = n < 0 ? "-" : "";
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// "1 seq", "998 seqs".
std::string count_of(std::int64_t n, std::string_view one, std::string_view many) {
  return thousands(n) + " " + std::string(n == 1 ? one : many);
}

// The figure shown for a percentage (see the top of this file); NaN stays NaN.
double shown_pct(double p) {
  if (std::isnan(p)) return p;
  p = std::clamp(p, 0.0, 100.0);
  double r = std::round(p * 100.0) / 100.0;
  if (p < 100.0 && r >= 100.0) r = 99.99;
  if (p > 0.0 && r <= 0.0) r = 0.01;
  return r;
}

// "99.80" (CSV), "" when unknown.
std::string pct_number(double p) {
  p = shown_pct(p);
  if (std::isnan(p)) return "";
  char buf[32];
  const auto res = std::to_chars(buf, buf + sizeof buf, p, std::chars_format::fixed, 2);
  return std::string(buf, res.ptr);
}

// "99.80 %" (text, HTML).
std::string pct_text(double p) {
  const auto n = pct_number(p);
  return n.empty() ? "n/a" : n + " %";
}

json pct_json(double p) {
  p = shown_pct(p);
  return std::isnan(p) ? json(nullptr) : json(p);
}

// Seconds for CSV: to the millisecond, no exponent, no thousands separator; "" when not finite.
std::string seconds_number(double s) {
  if (!std::isfinite(s)) return "";
  if (std::fabs(s) < 1e15) s = std::round(s * 1000.0) / 1000.0;
  if (s == 0) s = 0;  // no "-0"
  char buf[400];      // the longest fixed double is 309 digits and a sign
  const auto res = std::to_chars(buf, buf + sizeof buf, s, std::chars_format::fixed);
  return res.ec == std::errc() ? std::string(buf, res.ptr) : std::string();
}

std::int64_t whole_seconds(double s) {
  if (!(s > 0)) return 0;  // also NaN
  if (s >= 9.2e18) return std::numeric_limits<std::int64_t>::max();
  return std::llround(s);
}

// "45 s", "12 min 5 s", "1 h 12 min", "3 d 4 h": the two largest units, for people.
std::string duration_text(double seconds) {
  const std::int64_t t = whole_seconds(seconds);
  const std::int64_t d = t / 86400, h = t % 86400 / 3600, m = t % 3600 / 60, s = t % 60;
  const auto two = [](std::string big, std::int64_t small, const char* unit) {
    return small ? big + " " + std::to_string(small) + " " + unit : big;
  };
  if (d > 0) return two(thousands(d) + " d", h, "h");
  if (h > 0) return two(std::to_string(h) + " h", m, "min");
  if (m > 0) return two(std::to_string(m) + " min", s, "s");
  return std::to_string(s) + " s";
}

// The length of a period without overflowing a time_point difference.
double period_seconds(const Period& p) {
  using Seconds = std::chrono::duration<double>;
  const double s = Seconds(p.to.time_since_epoch()).count() - Seconds(p.from.time_since_epoch()).count();
  return s > 0 ? s : 0;
}

double total_seconds(const std::vector<Period>& periods) {
  double sum = 0;
  for (const auto& p : periods) sum += period_seconds(p);
  return sum;
}

// "3 periods, 1 h 12 min", "never".
std::string periods_text(const std::vector<Period>& periods) {
  if (periods.empty()) return "never";
  return count_of(static_cast<std::int64_t>(periods.size()), "period", "periods") + ", " +
         duration_text(total_seconds(periods));
}

// ---- times ----

// "2026-11-30 09:00:00Z".
std::string time_text(TimePoint t) {
  const std::string s = format_time(t);
  const auto t_at = s.find('T');
  if (t_at == std::string::npos || s.size() < t_at + 9) return s;
  return s.substr(0, t_at) + " " + s.substr(t_at + 1, 8) + "Z";
}

std::string time_text(const std::optional<TimePoint>& t, const char* none = "never") {
  return t ? time_text(*t) : std::string(none);
}

json time_json(const std::optional<TimePoint>& t) { return t ? json(format_time(*t)) : json(nullptr); }

// ---- seq ranges ----

// Seqs in a range, saturating (an empty or reversed range has none).
std::uint64_t seqs_in(const SeqRange& r) {
  if (r.last < r.first) return 0;
  const std::uint64_t diff = static_cast<std::uint64_t>(r.last) - static_cast<std::uint64_t>(r.first);
  return diff == std::numeric_limits<std::uint64_t>::max() ? diff : diff + 1;
}

std::string range_text(const SeqRange& r) {
  return r.first == r.last ? std::to_string(r.first) : std::to_string(r.first) + "-" + std::to_string(r.last);
}

// "1-500, 731, 900-1000"; after `cap` ranges ", … and 12 more ranges (4,000 seqs)"; "none" when empty.
std::string ranges_text(const std::vector<SeqRange>& ranges, std::size_t cap) {
  if (ranges.empty()) return "none";
  std::string out;
  for (std::size_t i = 0; i < ranges.size() && i < cap; ++i) {
    if (i > 0) out += ", ";
    out += range_text(ranges[i]);
  }
  if (ranges.size() > cap) {
    std::uint64_t rest = 0;
    for (std::size_t i = cap; i < ranges.size(); ++i) {
      const auto n = seqs_in(ranges[i]);
      rest = rest > std::numeric_limits<std::uint64_t>::max() - n ? std::numeric_limits<std::uint64_t>::max() : rest + n;
    }
    const auto more = ranges.size() - cap;
    const auto rest_text = rest > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())
                               ? std::to_string(rest)
                               : thousands(static_cast<std::int64_t>(rest));
    out += ", … and " + thousands(static_cast<std::int64_t>(more)) + (more == 1 ? " more range (" : " more ranges (") +
           rest_text + (rest == 1 ? " seq)" : " seqs)");
  }
  return out;
}

// "1 seq: 731", "none".
std::string ranges_with_count(std::int64_t count, const std::vector<SeqRange>& ranges, std::size_t cap) {
  if (ranges.empty()) return count == 0 ? "none" : count_of(count, "seq", "seqs");
  return count_of(count, "seq", "seqs") + ": " + ranges_text(ranges, cap);
}

json ranges_json(const std::vector<SeqRange>& ranges) {
  json out = json::array();
  for (const auto& r : ranges) out.push_back(json::array({r.first, r.last}));
  return out;
}

// "1-500, 731, 900-1000", every range (CSV).
std::string ranges_all(const std::vector<SeqRange>& ranges) {
  return ranges.empty() ? std::string() : ranges_text(ranges, ranges.size());
}

// ---- text ----

// External text for a terminal: control characters (C0, DEL, C1), line and paragraph separators
// and bidirectional overrides become visible escapes, so a name cannot move the cursor, colour
// the terminal, fake a line or reorder what follows it. Everything else, UTF-8 included, stays.
std::string shown(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  char buf[16];
  for (std::size_t i = 0; i < v.size(); ++i) {
    const auto c = static_cast<unsigned char>(v[i]);
    if (c < 0x20 || c == 0x7f) {
      switch (c) {
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
          std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(c));
          out += buf;
      }
      continue;
    }
    const auto next = i + 1 < v.size() ? static_cast<unsigned char>(v[i + 1]) : 0u;
    if (c == 0xc2 && next >= 0x80 && next <= 0x9f) {  // U+0080..U+009F
      std::snprintf(buf, sizeof buf, "\\u%04x", next);
      out += buf;
      i += 1;
      continue;
    }
    const auto third = i + 2 < v.size() ? static_cast<unsigned char>(v[i + 2]) : 0u;
    // U+2028..U+202E (separators, embeddings, overrides), U+2066..U+2069 (isolates)
    if (c == 0xe2 &&
        ((next == 0x80 && third >= 0xa8 && third <= 0xae) || (next == 0x81 && third >= 0xa6 && third <= 0xa9))) {
      std::snprintf(buf, sizeof buf, "\\u%04x", 0x2000u + (next - 0x80u) * 64u + (third - 0x80u));
      out += buf;
      i += 2;
      continue;
    }
    out += static_cast<char>(c);
  }
  return out;
}

// Columns on a terminal: one per code point, none for combining diacritics (U+0300..U+036F, as in
// Vietnamese written decomposed). Wide East Asian characters are not expected in these names.
std::size_t columns(std::string_view s) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if ((c & 0xc0) == 0x80) continue;  // continuation byte
    const auto next = i + 1 < s.size() ? static_cast<unsigned char>(s[i + 1]) : 0u;
    if (c == 0xcc || (c == 0xcd && next <= 0xaf)) continue;
    ++n;
  }
  return n;
}

std::string pad(std::string s, std::size_t width) {
  const auto w = columns(s);
  if (w < width) s.append(width - w, ' ');
  return s;
}

std::string pad_left(const std::string& s, std::size_t width) {
  const auto w = columns(s);
  return w < width ? std::string(width - w, ' ') + s : s;
}

// Trailing spaces left by padding the last column.
std::string trim_right(std::string s) {
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

// "UBND xã Chợ Đồn, thai-nguyen" from the parts that are not empty.
std::string joined(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (const auto& p : parts) {
    if (p.empty()) continue;
    if (!out.empty()) out += sep;
    out += p;
  }
  return out;
}

// The order offices appear in: first appearance, so the query's order is kept.
template <class Item>
void add_sites(std::vector<std::string>& sites, const std::vector<Item>& items) {
  for (const auto& it : items)
    if (std::find(sites.begin(), sites.end(), it.site) == sites.end()) sites.push_back(it.site);
}

// ---- CSV (RFC 4180) ----

constexpr std::string_view kCrlf = "\r\n";

std::string csv_quoted(std::string_view s) {
  if (s.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(s);
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

// A text field from an office: quoted as needed, and a leading = + - @ tab or CR gets a "'" so
// that a spreadsheet shows the text instead of evaluating it as a formula (CSV injection).
std::string csv_text(std::string_view s) {
  if (!s.empty() && std::string_view("=+-@\t\r").find(s.front()) != std::string_view::npos)
    return csv_quoted("'" + std::string(s));
  return csv_quoted(s);
}

std::string csv_time(const std::optional<TimePoint>& t) { return t ? format_time(*t) : std::string(); }

// ---- HTML ----

std::string esc(std::string_view v) {
  std::string out;
  out.reserve(v.size() + v.size() / 8);
  for (char c : v) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

constexpr std::string_view kStyle = R"css(
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",Arial,sans-serif;color:#1a1a1a;margin:1.5em}
h1{font-size:1.4em;margin:0 0 .4em}h2{font-size:1.15em;margin:1.6em 0 .4em}h3{font-size:1em;margin:1em 0 .3em}
table{border-collapse:collapse;margin:.3em 0 .8em}
th,td{padding:.25em .6em;border-bottom:1px solid #ccc;text-align:left;vertical-align:top}
th{background:#f0f2f5;font-weight:600}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.t{white-space:nowrap}
table.meta th{background:none;border:none;padding-left:0}table.meta td{border:none}
.bad{color:#b00020;font-weight:700}.muted{color:#555}
section{margin-top:1.2em;border-top:2px solid #888}
@page{size:A4 landscape;margin:12mm}
@media print{body{margin:0;font-size:10pt}th{background:none;border-bottom:1.5px solid #000}tr{break-inside:avoid}
thead{display:table-header-group}h2,h3{break-after:avoid}.bad{color:#000}}
)css";

std::string html_page(const std::string& title, const std::string& body) {
  std::string out = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>";
  out += esc(title);
  out += "</title>\n<style>";
  out += kStyle;
  out += "</style>\n</head>\n<body>\n";
  out += body;
  out += "</body>\n</html>\n";
  return out;
}

// <td>, escaped; numeric cells right-aligned.
std::string td(std::string_view text, const char* cls = nullptr) {
  std::string out = cls ? std::string("<td class=\"") + cls + "\">" : std::string("<td>");
  return out + esc(text) + "</td>";
}
std::string td_n(std::string_view text, bool bad = false) { return td(text, bad ? "n bad" : "n"); }

std::string thead(std::initializer_list<std::pair<const char*, bool>> cols) {
  std::string out = "<thead><tr>";
  for (const auto& [name, numeric] : cols) out += std::string(numeric ? "<th class=\"n\">" : "<th>") + name + "</th>";
  return out + "</tr></thead>\n";
}

std::string dump(const json& j) { return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n"; }

// ---- the figures behind more than one format ----

std::string cadence_text(const LateSource& s) {
  return "every " + duration_text(s.cadence_s) + (s.cadence_configured ? " (configured)" : " (learned)");
}

std::string late_rule_text(double office_after_s, double source_factor) {
  char factor[32];
  const auto res = std::to_chars(factor, factor + sizeof factor, std::isfinite(source_factor) ? source_factor : 0.0);
  return "An office is late after " + duration_text(office_after_s) +
         " without a heartbeat, or when it went offline;\na source after " + std::string(factor, res.ptr) +
         " × its cadence without a good reading.";
}

std::string office_state_text(const LateOffice& o) {
  return std::string(o.offline ? "OFFLINE, " : "") + "silent " + duration_text(o.silent_s);
}

std::string office_seen_text(const LateOffice& o) {
  return o.last_heartbeat ? "last heartbeat " + time_text(*o.last_heartbeat) : std::string("no heartbeat yet");
}

std::string source_seen_text(const LateSource& s) {
  return (s.last_good ? "last good " + time_text(*s.last_good) : std::string("no good reading yet")) + ", " +
         cadence_text(s);
}

double stale_seconds(const ReportSource& s) { return total_seconds(s.stale); }

// "998 of 1,000 seqs received, 1 declared dropped, 1 hole".
std::string seqs_summary(const ReportOffice& of) {
  if (of.seqs_expected == 0 && of.seqs_received == 0 && of.declared_dropped == 0 && of.holes == 0)
    return "no readings in this period";
  return thousands(of.seqs_received) + " of " + count_of(of.seqs_expected, "seq", "seqs") + " received, " +
         thousands(of.declared_dropped) + " declared dropped, " + count_of(of.holes, "hole", "holes");
}

// "late 3 periods, 1 h 12 min", "never late".
std::string late_summary(const std::vector<Period>& late) {
  return late.empty() ? "never late" : "late " + periods_text(late);
}

}  // namespace

// ---- findings.h ----

std::string format_time(TimePoint t) {
  using namespace std::chrono;
  const auto ms = floor<milliseconds>(t);
  const auto day = floor<days>(ms);
  const year_month_day ymd{day};
  const std::int64_t in_day = (ms - day).count();  // [0, 86'400'000)
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(in_day / 3'600'000), static_cast<int>(in_day / 60'000 % 60),
                static_cast<int>(in_day / 1000 % 60), static_cast<int>(in_day % 1000));
  return buf;
}

namespace {
// part / whole in percent, 100 when nothing is expected, in [0, 100]; a part short of the whole
// stays below 100 even when the quotient rounds to 1 (counts near 2^63).
double share_pct(std::int64_t part, std::int64_t whole) {
  if (whole <= 0) return 100.0;
  if (part <= 0) return 0.0;
  if (part >= whole) return 100.0;
  const double p = 100.0 * (static_cast<double>(part) / static_cast<double>(whole));
  return std::min(p, std::nextafter(100.0, 0.0));
}
}  // namespace

double StoreCoverage::completeness_pct() const { return share_pct(received, max_seq); }
double ReportOffice::completeness_pct() const { return share_pct(seqs_received, seqs_expected); }

// ---- coverage ----

std::string render_coverage(const std::vector<StoreCoverage>& stores, Format format) {
  switch (format) {
    case Format::Text: {
      std::vector<std::string> sites;
      add_sites(sites, stores);
      std::string o = "Seq coverage: " + count_of(static_cast<std::int64_t>(sites.size()), "office", "offices") + ", " +
                      count_of(static_cast<std::int64_t>(stores.size()), "store", "stores") + "\n";
      if (stores.empty()) return o + "\nno office has reported yet\n";
      constexpr std::size_t kLabel = 18;
      for (const auto& site : sites) {
        o += "\n" + shown(site) + "\n";
        for (const auto& s : stores) {
          if (s.site != site) continue;
          o += "  store " + shown(s.store) + "\n";
          o += "    " + pad("complete", kLabel) + pct_text(s.completeness_pct()) + "  " + thousands(s.received) +
               " of " + count_of(s.max_seq, "seq", "seqs") + " received" +
               (s.last_received_at ? ", the last at " + time_text(*s.last_received_at) : std::string()) + "\n";
          o += "    " + pad("declared dropped", kLabel) +
               ranges_with_count(s.declared_count, s.declared, kRangesListed) + "\n";
          o += "    " + pad("holes", kLabel) + ranges_with_count(s.hole_count, s.holes, kRangesListed) + "\n";
          o += "    " + pad("pending", kLabel) + ranges_with_count(s.pending_count, s.pending, kRangesListed) + "\n";
        }
      }
      o += "\ncomplete: seqs received of those the office numbered (1 to the highest seen).\n"
           "declared dropped: seqs the office said it had to drop (its buffer was full or they were too old);\n"
           "holes: seqs that never came and were not declared, older than the grace period;\n"
           "pending: not here yet, but still young or the office reports a backlog.\n";
      return o;
    }
    case Format::Csv: {
      // One row per store; the range lists in full, as in the text ("1-500, 731, 900-1000").
      std::string o = "site,store,max_seq,received,completeness_pct,declared_count,hole_count,pending_count,"
                      "last_received_at,declared,holes,pending";
      o += kCrlf;
      for (const auto& s : stores) {
        o += csv_text(s.site) + "," + csv_text(s.store) + "," + std::to_string(s.max_seq) + "," +
             std::to_string(s.received) + "," + pct_number(s.completeness_pct()) + "," +
             std::to_string(s.declared_count) + "," + std::to_string(s.hole_count) + "," +
             std::to_string(s.pending_count) + "," + csv_time(s.last_received_at) + "," +
             csv_quoted(ranges_all(s.declared)) + "," + csv_quoted(ranges_all(s.holes)) + "," +
             csv_quoted(ranges_all(s.pending));
        o += kCrlf;
      }
      return o;
    }
    case Format::Json: {
      // {"stores": [{"site", "store", "max_seq", "received", "completeness_pct" (2 decimals),
      //   "declared": [[first, last], ...], "declared_count", "holes": [...], "hole_count",
      //   "pending": [...], "pending_count", "last_received_at" (format_time or null)}, ...]}
      json list = json::array();
      for (const auto& s : stores)
        list.push_back({{"site", s.site},
                        {"store", s.store},
                        {"max_seq", s.max_seq},
                        {"received", s.received},
                        {"completeness_pct", pct_json(s.completeness_pct())},
                        {"declared", ranges_json(s.declared)},
                        {"declared_count", s.declared_count},
                        {"holes", ranges_json(s.holes)},
                        {"hole_count", s.hole_count},
                        {"pending", ranges_json(s.pending)},
                        {"pending_count", s.pending_count},
                        {"last_received_at", time_json(s.last_received_at)}});
      return dump(json{{"stores", list}});
    }
    case Format::Html: {
      std::string b = "<h1>Seq coverage</h1>\n";
      if (stores.empty()) return html_page("Seq coverage", b + "<p>No office has reported yet.</p>\n");
      b += "<table>\n" +
           thead({{"Office", false}, {"Store", false}, {"Complete", true}, {"Received", true}, {"Highest seq", true},
                  {"Declared dropped", false}, {"Holes", false}, {"Pending", false}, {"Last received", false}}) +
           "<tbody>\n";
      const auto cell = [](std::int64_t count, const std::vector<SeqRange>& r, bool bad) {
        return td(ranges_with_count(count, r, kRangesListed), bad && (count > 0 || !r.empty()) ? "bad" : nullptr);
      };
      for (const auto& s : stores)
        b += "<tr>" + td(s.site) + td(s.store) + td_n(pct_text(s.completeness_pct())) + td_n(thousands(s.received)) +
             td_n(thousands(s.max_seq)) + cell(s.declared_count, s.declared, false) + cell(s.hole_count, s.holes, true) +
             cell(s.pending_count, s.pending, false) + td(time_text(s.last_received_at), "t") + "</tr>\n";
      b += "</tbody>\n</table>\n<p class=\"muted\">Complete: seqs received of those the office numbered (1 to the "
           "highest seen). Declared dropped: seqs the office said it had to drop. Holes: seqs that never came and "
           "were not declared, older than the grace period. Pending: not here yet, but still young or the office "
           "reports a backlog.</p>\n";
      return html_page("Seq coverage", b);
    }
  }
  return {};
}

// ---- late ----

std::string render_late(const LateList& late, Format format) {
  switch (format) {
    case Format::Text: {
      std::string o = "Late offices and sources at " + time_text(late.at) + "\n" +
                      late_rule_text(late.office_after_s, late.source_factor) + "\n";
      if (late.offices.empty() && late.sources.empty()) return o + "\nno late offices or sources\n";
      o += count_of(static_cast<std::int64_t>(late.offices.size()), "late office", "late offices") + ", " +
           count_of(static_cast<std::int64_t>(late.sources.size()), "late source", "late sources") + "\n";
      std::vector<std::string> sites;
      add_sites(sites, late.offices);
      add_sites(sites, late.sources);
      std::size_t name_w = columns("office"), state_w = 0;
      for (const auto& s : late.sources) {
        name_w = std::max(name_w, columns(shown(s.source)));
        state_w = std::max(state_w, columns("silent " + duration_text(s.silent_s)));
      }
      for (const auto& of : late.offices) state_w = std::max(state_w, columns(office_state_text(of)));
      for (const auto& site : sites) {
        const auto office = std::find_if(late.offices.begin(), late.offices.end(),
                                         [&](const LateOffice& x) { return x.site == site; });
        o += "\n" + shown(site);
        if (office != late.offices.end()) {
          const auto who = joined({shown(office->name), shown(office->province)}, ", ");
          if (!who.empty()) o += "  " + who;
        }
        o += "\n";
        for (const auto& of : late.offices)
          if (of.site == site)
            o += "  " + pad("office", name_w + 2) + pad(office_state_text(of), state_w + 2) + office_seen_text(of) + "\n";
        for (const auto& s : late.sources)
          if (s.site == site)
            o += "  " + pad(shown(s.source), name_w + 2) + pad("silent " + duration_text(s.silent_s), state_w + 2) +
                 source_seen_text(s) + "\n";
      }
      return o;
    }
    case Format::Csv: {
      // One row per late office (kind "office", source empty) and per late source (kind "source");
      // the columns that do not apply to a kind are empty.
      std::string o = "kind,site,province,name,source,offline,last_heartbeat,last_good,cadence_s,cadence_configured,"
                      "silent_s";
      o += kCrlf;
      for (const auto& of : late.offices) {
        o += "office," + csv_text(of.site) + "," + csv_text(of.province) + "," + csv_text(of.name) + ",," +
             (of.offline ? "true" : "false") + "," + csv_time(of.last_heartbeat) + ",,,," + seconds_number(of.silent_s);
        o += kCrlf;
      }
      for (const auto& s : late.sources) {
        o += "source," + csv_text(s.site) + ",,," + csv_text(s.source) + ",,," + csv_time(s.last_good) + "," +
             seconds_number(s.cadence_s) + "," + (s.cadence_configured ? "true" : "false") + "," +
             seconds_number(s.silent_s);
        o += kCrlf;
      }
      return o;
    }
    case Format::Json: {
      // {"at": time, "office_after_s", "source_factor",
      //  "offices": [{"site", "province", "name", "last_heartbeat" (time or null), "offline", "silent_s"}],
      //  "sources": [{"site", "source", "last_good" (time or null), "cadence_s", "cadence_configured",
      //               "silent_s"}]}
      // Times are format_time() strings; seconds are numbers (null if not finite).
      json offices = json::array(), sources = json::array();
      for (const auto& of : late.offices)
        offices.push_back({{"site", of.site},
                           {"province", of.province},
                           {"name", of.name},
                           {"last_heartbeat", time_json(of.last_heartbeat)},
                           {"offline", of.offline},
                           {"silent_s", of.silent_s}});
      for (const auto& s : late.sources)
        sources.push_back({{"site", s.site},
                           {"source", s.source},
                           {"last_good", time_json(s.last_good)},
                           {"cadence_s", s.cadence_s},
                           {"cadence_configured", s.cadence_configured},
                           {"silent_s", s.silent_s}});
      return dump(json{{"at", format_time(late.at)},
                       {"office_after_s", late.office_after_s},
                       {"source_factor", late.source_factor},
                       {"offices", offices},
                       {"sources", sources}});
    }
    case Format::Html: {
      std::string b = "<h1>Late offices and sources</h1>\n<p>At " + esc(time_text(late.at)) + ". " +
                      esc(late_rule_text(late.office_after_s, late.source_factor)) + "</p>\n";
      if (late.offices.empty() && late.sources.empty())
        return html_page("Late offices and sources", b + "<p>No late offices or sources.</p>\n");
      b += "<h2>Offices (" + std::to_string(late.offices.size()) + ")</h2>\n";
      if (late.offices.empty()) {
        b += "<p>No late offices.</p>\n";
      } else {
        b += "<table>\n" +
             thead({{"Office", false}, {"Name", false}, {"Province", false}, {"State", false}, {"Silent", true},
                    {"Last heartbeat", false}}) +
             "<tbody>\n";
        for (const auto& of : late.offices)
          b += "<tr>" + td(of.site) + td(of.name) + td(of.province) +
               td(of.offline ? "offline" : "late", of.offline ? "bad" : nullptr) +
               td_n(duration_text(of.silent_s)) + td(time_text(of.last_heartbeat), "t") + "</tr>\n";
        b += "</tbody>\n</table>\n";
      }
      b += "<h2>Sources (" + std::to_string(late.sources.size()) + ")</h2>\n";
      if (late.sources.empty()) {
        b += "<p>No late sources.</p>\n";
      } else {
        b += "<table>\n" +
             thead({{"Office", false}, {"Source", false}, {"Silent", true}, {"Last good reading", false},
                    {"Cadence", false}}) +
             "<tbody>\n";
        for (const auto& s : late.sources)
          b += "<tr>" + td(s.site) + td(s.source) + td_n(duration_text(s.silent_s)) +
               td(time_text(s.last_good), "t") + td(cadence_text(s)) + "</tr>\n";
        b += "</tbody>\n</table>\n";
      }
      return html_page("Late offices and sources", b);
    }
  }
  return {};
}

// ---- report ----

std::string render_report(const Report& r, Format format) {
  const auto period = time_text(r.from) + " to " + time_text(r.to);
  const double period_s = period_seconds({r.from, r.to});
  const auto late_rule = "an office is late after " + duration_text(r.office_after_s) +
                         " without a heartbeat, or while its last will says offline";
  switch (format) {
    case Format::Text: {
      std::string o = "Data-continuity report\n";
      o += "Period      " + period + " (" + duration_text(period_s) + ")\n";
      o += "Generated   " + time_text(r.generated_at) + "\n";
      o += "Offices     " + thousands(static_cast<std::int64_t>(r.offices.size())) + "\n";
      o += "Late        " + late_rule + "\n";
      if (r.offices.empty()) return o + "\nno office has reported in this period\n";
      constexpr std::size_t kLabel = 16;
      for (const auto& of : r.offices) {
        o += "\n" + shown(of.site) + (of.name.empty() ? "" : "  " + shown(of.name)) + "\n";
        const auto ids = joined({of.province.empty() ? "" : "province " + shown(of.province),
                                 of.unit_code.empty() ? "" : "unit code " + shown(of.unit_code),
                                 of.agency_code.empty() ? "" : "agency code " + shown(of.agency_code)},
                                ", ");
        if (!ids.empty()) o += "  " + ids + "\n";
        o += "  " + pad("completeness", kLabel) + pad_left(pct_text(of.completeness_pct()), 8) + "  " +
             seqs_summary(of) + "\n";
        o += "  " + pad("availability", kLabel) + pad_left(pct_text(of.availability_pct), 8) + "  " +
             late_summary(of.late) + "\n";
        for (std::size_t i = 0; i < of.late.size() && i < kPeriodsListed; ++i)
          o += "  " + std::string(kLabel + 10, ' ') + time_text(of.late[i].from) + " to " + time_text(of.late[i].to) +
               "  " + duration_text(period_seconds(of.late[i])) + "\n";
        if (of.late.size() > kPeriodsListed)
          o += "  " + std::string(kLabel + 10, ' ') + "… and " +
               count_of(static_cast<std::int64_t>(of.late.size() - kPeriodsListed), "more period", "more periods") +
               " (--format html or json lists them all)\n";
        if (of.sources.empty()) {
          o += "  no source stored readings in this period\n";
          continue;
        }
        // The sources' table: a header, then one row each; columns as wide as their widest cell.
        const std::vector<std::string> head = {"source",  "readings", "good",  "bad",
                                               "dropped", "refused",  "stale", "last good"};
        std::vector<std::vector<std::string>> rows;
        for (const auto& s : of.sources)
          rows.push_back({shown(s.source), thousands(s.readings), thousands(s.good), thousands(s.bad),
                          thousands(s.declared_dropped), thousands(s.refused), periods_text(s.stale),
                          time_text(s.last_good)});
        std::vector<std::size_t> w(head.size());
        for (std::size_t c = 0; c < head.size(); ++c) {
          w[c] = columns(head[c]);
          for (const auto& row : rows) w[c] = std::max(w[c], columns(row[c]));
        }
        const auto line = [&](const std::vector<std::string>& cells) {
          std::string l = "    ";
          for (std::size_t c = 0; c < cells.size(); ++c) {
            const bool numeric = c >= 1 && c <= 5;
            l += numeric ? pad_left(cells[c], w[c]) : pad(cells[c], w[c]);
            l += "  ";
          }
          return trim_right(l) + "\n";
        };
        o += line(head);
        for (const auto& row : rows) o += line(row);
      }
      o += "\ncompleteness: seqs received of those the office's stores numbered for readings in the period;\n"
           "declared dropped: seqs the office said it had to drop; holes: seqs lost without a word.\n"
           "availability: the share of the period the office was not late. Per source: readings stored (good\n"
           "includes uncertain), dropped as declared, refused at the office, stale periods, the last good reading.\n";
      return o;
    }
    case Format::Csv: {
      // Per office one row with `source` empty (the office's figures: seqs, completeness, holes,
      // late periods, availability), then one row per source with `source` set (its figures:
      // readings, good, bad, last good, stale periods, refused). Every row repeats the period and
      // the office's identity, so reports of several periods or offices can be concatenated and
      // filtered. declared_dropped is the office's total on its row, the source's share on a source
      // row. Columns that do not apply to a row are empty.
      std::string o = "period_from,period_to,site,province,name,unit_code,agency_code,source,seqs_expected,"
                      "seqs_received,completeness_pct,declared_dropped,holes,late_periods,late_s,availability_pct,"
                      "readings,good,bad,refused,stale_periods,stale_s,last_good";
      o += kCrlf;
      const auto from = format_time(r.from), to = format_time(r.to);
      for (const auto& of : r.offices) {
        const auto who = from + "," + to + "," + csv_text(of.site) + "," + csv_text(of.province) + "," +
                         csv_text(of.name) + "," + csv_text(of.unit_code) + "," + csv_text(of.agency_code) + ",";
        o += who + "," + std::to_string(of.seqs_expected) + "," + std::to_string(of.seqs_received) + "," +
             pct_number(of.completeness_pct()) + "," + std::to_string(of.declared_dropped) + "," +
             std::to_string(of.holes) + "," + std::to_string(of.late.size()) + "," +
             seconds_number(total_seconds(of.late)) + "," + pct_number(of.availability_pct) + ",,,,,,,";
        o += kCrlf;
        for (const auto& s : of.sources) {
          o += who + csv_text(s.source) + ",,,," + std::to_string(s.declared_dropped) + ",,,,," +
               std::to_string(s.readings) + "," + std::to_string(s.good) + "," + std::to_string(s.bad) + "," +
               std::to_string(s.refused) + "," + std::to_string(s.stale.size()) + "," +
               seconds_number(stale_seconds(s)) + "," + csv_time(s.last_good);
          o += kCrlf;
        }
      }
      return o;
    }
    case Format::Json: {
      // {"report": "ioc-receiver/report/1", "from", "to", "generated_at" (times), "period_s",
      //  "office_after_s",
      //  "offices": [{"site", "province", "name", "unit_code", "agency_code",
      //    "seqs_expected", "seqs_received", "completeness_pct" (2 decimals), "declared_dropped", "holes",
      //    "late": [{"from", "to", "seconds"}], "late_s", "availability_pct" (2 decimals),
      //    "sources": [{"source", "readings", "good", "bad", "last_good" (time or null),
      //      "stale": [{"from", "to", "seconds"}], "stale_s", "declared_dropped", "refused"}]}]}
      const auto periods = [](const std::vector<Period>& ps) {
        json out = json::array();
        for (const auto& p : ps)
          out.push_back({{"from", format_time(p.from)}, {"to", format_time(p.to)}, {"seconds", period_seconds(p)}});
        return out;
      };
      json offices = json::array();
      for (const auto& of : r.offices) {
        json sources = json::array();
        for (const auto& s : of.sources)
          sources.push_back({{"source", s.source},
                             {"readings", s.readings},
                             {"good", s.good},
                             {"bad", s.bad},
                             {"last_good", time_json(s.last_good)},
                             {"stale", periods(s.stale)},
                             {"stale_s", stale_seconds(s)},
                             {"declared_dropped", s.declared_dropped},
                             {"refused", s.refused}});
        offices.push_back({{"site", of.site},
                           {"province", of.province},
                           {"name", of.name},
                           {"unit_code", of.unit_code},
                           {"agency_code", of.agency_code},
                           {"seqs_expected", of.seqs_expected},
                           {"seqs_received", of.seqs_received},
                           {"completeness_pct", pct_json(of.completeness_pct())},
                           {"declared_dropped", of.declared_dropped},
                           {"holes", of.holes},
                           {"late", periods(of.late)},
                           {"late_s", total_seconds(of.late)},
                           {"availability_pct", pct_json(of.availability_pct)},
                           {"sources", sources}});
      }
      return dump(json{{"report", "ioc-receiver/report/1"},
                       {"from", format_time(r.from)},
                       {"to", format_time(r.to)},
                       {"generated_at", format_time(r.generated_at)},
                       {"period_s", period_s},
                       {"office_after_s", r.office_after_s},
                       {"offices", offices}});
    }
    case Format::Html: {
      const auto title = "Data-continuity report " + time_text(r.from) + " to " + time_text(r.to);
      std::string b = "<h1>Data-continuity report</h1>\n<table class=\"meta\">\n";
      b += "<tr><th>Period</th><td>" + esc(period) + " (" + esc(duration_text(period_s)) + ")</td></tr>\n";
      b += "<tr><th>Generated</th><td>" + esc(time_text(r.generated_at)) + "</td></tr>\n";
      b += "<tr><th>Offices</th><td>" + esc(thousands(static_cast<std::int64_t>(r.offices.size()))) + "</td></tr>\n";
      b += "<tr><th>Late</th><td>" + esc(late_rule) + "</td></tr>\n</table>\n";
      if (r.offices.empty()) return html_page(title, b + "<p>No office has reported in this period.</p>\n");

      b += "<h2>Summary</h2>\n<table>\n" +
           thead({{"Office", false}, {"Name", false}, {"Province", false}, {"Completeness", true},
                  {"Seqs received", true}, {"Seqs expected", true}, {"Declared dropped", true}, {"Holes", true},
                  {"Late", false}, {"Availability", true}}) +
           "<tbody>\n";
      for (const auto& of : r.offices)
        b += "<tr>" + td(of.site) + td(of.name) + td(of.province) + td_n(pct_text(of.completeness_pct())) +
             td_n(thousands(of.seqs_received)) + td_n(thousands(of.seqs_expected)) +
             td_n(thousands(of.declared_dropped)) + td_n(thousands(of.holes), of.holes > 0) + td(periods_text(of.late)) +
             td_n(pct_text(of.availability_pct)) + "</tr>\n";
      b += "</tbody>\n</table>\n";

      for (const auto& of : r.offices) {
        b += "<section>\n<h2>" + esc(of.site) + (of.name.empty() ? "" : ": " + esc(of.name)) + "</h2>\n";
        const auto ids = joined({of.province.empty() ? "" : "Province " + of.province,
                                 of.unit_code.empty() ? "" : "unit code " + of.unit_code,
                                 of.agency_code.empty() ? "" : "agency code " + of.agency_code},
                                ", ");
        if (!ids.empty()) b += "<p class=\"muted\">" + esc(ids) + "</p>\n";
        b += "<p>Completeness " + esc(pct_text(of.completeness_pct())) + ": " + esc(seqs_summary(of)) +
             ". Availability " + esc(pct_text(of.availability_pct)) + ": " + esc(late_summary(of.late)) + ".</p>\n";
        b += "<h3>Sources</h3>\n";
        if (of.sources.empty()) {
          b += "<p>No source stored readings in this period.</p>\n";
        } else {
          b += "<table>\n" +
               thead({{"Source", false}, {"Readings", true}, {"Good", true}, {"Bad", true},
                      {"Declared dropped", true}, {"Refused", true}, {"Stale", false}, {"Last good reading", false}}) +
               "<tbody>\n";
          for (const auto& s : of.sources)
            b += "<tr>" + td(s.source) + td_n(thousands(s.readings)) + td_n(thousands(s.good)) +
                 td_n(thousands(s.bad)) + td_n(thousands(s.declared_dropped)) + td_n(thousands(s.refused)) +
                 td(periods_text(s.stale)) + td(time_text(s.last_good), "t") + "</tr>\n";
          b += "</tbody>\n</table>\n";
        }
        if (!of.late.empty()) {
          b += "<h3>Late periods</h3>\n<table>\n" + thead({{"From", false}, {"To", false}, {"Length", true}}) +
               "<tbody>\n";
          for (const auto& p : of.late)
            b += "<tr>" + td(time_text(p.from), "t") + td(time_text(p.to), "t") + td_n(duration_text(period_seconds(p))) +
                 "</tr>\n";
          b += "</tbody>\n</table>\n";
        }
        bool any_stale = false;
        for (const auto& s : of.sources) any_stale = any_stale || !s.stale.empty();
        if (any_stale) {
          b += "<h3>Stale periods</h3>\n<table>\n" +
               thead({{"Source", false}, {"From", false}, {"To", false}, {"Length", true}}) + "<tbody>\n";
          for (const auto& s : of.sources)
            for (const auto& p : s.stale)
              b += "<tr>" + td(s.source) + td(time_text(p.from), "t") + td(time_text(p.to), "t") +
                   td_n(duration_text(period_seconds(p))) + "</tr>\n";
          b += "</tbody>\n</table>\n";
        }
        b += "</section>\n";
      }
      b += "<h2>How to read it</h2>\n<p>Completeness: the seqs received of those the office&#39;s stores numbered "
           "for readings in the period. Declared dropped: seqs the office said it had to drop (its buffer was "
           "full or they were too old). Holes: seqs that never came and were not declared. Availability: the "
           "share of the period the office was not late. Per source: readings stored (good includes uncertain), "
           "readings the office declared dropped or refused, the periods without good readings (stale), the last "
           "good reading. Times are UTC.</p>\n";
      return html_page(title, b);
    }
  }
  return {};
}

}  // namespace ioc_receiver
