#include "ops/report.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <ostream>
#include <regex>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/reading.h"
#include "ops/render.h"
#include "settings/settings.h"

namespace ioc_edge {

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
constexpr std::int64_t kDayMs = 86'400'000;
constexpr std::size_t kStaleListedInText = 20;  // per source; json and html list them all

double round2(double x) { return std::round(x * 100.0) / 100.0; }
std::int64_t to_s(std::int64_t ms) { return static_cast<std::int64_t>(std::llround(static_cast<double>(ms) / 1000.0)); }

// "2026-07-01" at `offset` minutes east of UTC -> the ms of its midnight.
std::optional<std::int64_t> day_start_ms(const std::string& text, int offset) {
  static const std::regex re(R"(^([0-9]{4})-([0-9]{2})-([0-9]{2})$)");
  std::smatch m;
  if (!std::regex_match(text, m, re)) return std::nullopt;
  return wall_time_ms(std::stoi(m[1]), std::stoi(m[2]), std::stoi(m[3]), 0, 0, 0, 0, offset, false);
}

std::string offset_text(int minutes) {
  char buf[16];
  const int a = std::abs(minutes);
  std::snprintf(buf, sizeof buf, "%c%02d:%02d", minutes < 0 ? '-' : '+', a / 60, a % 60);
  return buf;
}

// "2026-08-03 21:00:05" at the report's offset.
std::string local_time(std::int64_t ms, int offset) {
  const auto t = static_cast<std::time_t>((ms + offset * 60'000ll) / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string thousands(std::int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

// "42 s", "5 min 3 s", "2,190 h 12 min".
std::string duration_text(std::int64_t s) {
  if (s < 60) return std::to_string(s) + " s";
  if (s < 3600) return std::to_string(s / 60) + " min " + std::to_string(s % 60) + " s";
  return thousands(s / 3600) + " h " + std::to_string(s % 3600 / 60) + " min";
}

std::string pct_text(double p) {
  std::ostringstream o;
  o.setf(std::ios::fixed);
  o.precision(2);
  o << p << "%";
  return o.str();
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

Report compute(const ReportOptions& o, std::int64_t start, std::int64_t end, const RollupTotals& t) {
  Report r;
  r.site = o.site;
  r.from = o.from;
  r.to = o.to;
  r.utc_offset_minutes = o.utc_offset_minutes;
  r.start_ms = start;
  r.end_ms = end;
  r.first_hour = t.first_hour;
  r.last_hour = t.last_hour;
  r.hours = t.gateway_hours;
  const auto period_ms = end - start;
  r.period_s = to_s(period_ms);
  r.running_s = to_s(t.gateway.run_ms);
  r.not_running_s = std::max<std::int64_t>(0, r.period_s - r.running_s);
  r.connected_s = to_s(t.gateway.up_ms);
  const auto share = [](std::int64_t part, std::int64_t whole) {
    return whole > 0 ? round2(std::min(100.0, 100.0 * static_cast<double>(part) / static_cast<double>(whole))) : 0.0;
  };
  r.running_pct = share(t.gateway.run_ms, period_ms);
  r.availability_pct = share(t.gateway.up_ms, t.gateway.run_ms);
  r.availability_of_period_pct = share(t.gateway.up_ms, period_ms);
  r.outages = t.gateway.outages;
  r.longest_outage_s = to_s(t.gateway.longest_outage_ms);

  for (const auto& s : t.sources) {
    if (s.name.empty() || s.name.front() == '_') continue;  // the gateway's own events ("_gateway")
    ReportSource rs;
    rs.name = s.name;
    const auto& h = s.sum;
    rs.watched = h.expected_milli > 0;
    if (rs.watched) {
      const double expected = static_cast<double>(h.expected_milli) / 1000.0;
      const double missed = std::clamp(static_cast<double>(h.missed), 0.0, expected);
      rs.expected = std::llround(expected);
      rs.received = std::llround(expected - missed);
      rs.completeness_pct = round2(100.0 * (expected - missed) / expected);
    }
    rs.stale_s = to_s(h.stale_ms);
    rs.good = h.good;
    rs.bad = h.bad;
    rs.dropped = h.dropped;
    for (const auto& p : t.stale)
      if (p.source == s.name) rs.stale.push_back({p.source, std::max(p.since_ms, start), std::min(p.until_ms, end)});
    rs.stale_periods = static_cast<std::int64_t>(rs.stale.size());
    r.sources.push_back(std::move(rs));
  }
  return r;
}

}  // namespace

int run_report(const ReportOptions& o, std::ostream& out, std::ostream& err) {
  const auto fail = [&](int code, const std::string& why) {
    err << "ioc-edge report: " << why << "\n";
    return code;
  };
  if (o.format != "text" && o.format != "csv" && o.format != "json" && o.format != "html")
    return fail(kExitUsage, "--format must be text, csv, json or html, not \"" + o.format + "\"");
  const auto from = day_start_ms(o.from, o.utc_offset_minutes);
  if (!from) return fail(kExitUsage, "--from \"" + o.from + "\" is not a date like 2026-07-01");
  const auto to = day_start_ms(o.to, o.utc_offset_minutes);
  if (!to) return fail(kExitUsage, "--to \"" + o.to + "\" is not a date like 2026-09-30");
  if (*from > *to) return fail(kExitUsage, "--from " + o.from + " is after --to " + o.to);

  const auto now = o.now_ms ? o.now_ms
                            : std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count();
  const auto start = *from;
  const auto end = std::min(*to + kDayMs, now);
  std::string error;
  auto reader = RollupReader::open(o.db_path, error);
  if (!reader) return fail(kExitFailure, error);
  const auto zone = " (UTC" + offset_text(o.utc_offset_minutes) + ")";
  const auto no_data = [&](const std::string& why) {
    const auto [first, last] = reader->coverage();
    std::string msg = "no data from " + o.from + " to " + o.to + zone + ": " + why;
    if (first != 0 || last != 0)
      msg += "; the roll-ups cover " + local_time(first * 1000, o.utc_offset_minutes) + " to " +
             local_time(last * 1000 + kHourMs, o.utc_offset_minutes) + zone;
    else
      msg += "; the roll-up file holds no hours yet";
    return fail(kExitFailure, msg);
  };
  if (end <= start) return no_data("the period has not begun yet");
  RollupTotals totals;
  if (!reader->read(start, end, totals, error)) return fail(kExitFailure, error);
  if (totals.gateway_hours == 0) return no_data("the gateway did not run in that period");

  auto report = compute(o, start, end, totals);
  report.generated_ms = now;
  if (o.format == "csv")
    out << format_csv(report);
  else if (o.format == "json")
    out << format_json(report);
  else if (o.format == "html")
    out << format_html(report);
  else
    out << format_text(report);
  return out ? kExitOk : kExitFailure;
}

int run_report(const Settings& s, const ReportArgs& a, std::ostream& out, std::ostream& err) {
  ReportOptions o;
  o.db_path = s.gateway.data_dir + "/rollups.db";
  o.from = a.from;
  o.to = a.to;
  o.format = a.format;
  o.site = s.gateway.site;
  o.utc_offset_minutes = s.report.utc_offset_minutes;
  if (!a.utc_offset.empty()) {
    const auto m = parse_offset_minutes(a.utc_offset);
    if (!m) {
      err << "ioc-edge report: --utc-offset \"" << a.utc_offset << "\" is not an offset like +07:00 or Z\n";
      return kExitUsage;
    }
    o.utc_offset_minutes = *m;
  }
  return run_report(o, out, err);
}

// ---- formats ----

std::string format_text(const Report& r) {
  const int off = r.utc_offset_minutes;
  const auto zone = "UTC" + offset_text(off);
  std::ostringstream o;
  o << "Data-update report, site " << r.site << "\n";
  o << "Period:   " << r.from << " to " << r.to << " (" << zone << "), " << local_time(r.start_ms, off) << " to "
    << local_time(r.end_ms, off) << ", " << duration_text(r.period_s) << "\n";
  o << "Data:     " << thousands(r.hours) << " hours in which the gateway ran, the first starting "
    << local_time(r.first_hour * 1000, off) << ", the last " << local_time(r.last_hour * 1000, off) << "\n\n";

  o << "Gateway\n";
  o << "  running            " << duration_text(r.running_s) << " (" << pct_text(r.running_pct) << " of the period)\n";
  o << "  not running        " << duration_text(r.not_running_s) << "\n";
  o << "  uplink connected   " << duration_text(r.connected_s) << ": availability " << pct_text(r.availability_pct)
    << " of the time the gateway ran, " << pct_text(r.availability_of_period_pct) << " of the period\n";
  o << "  uplink outages     " << r.outages << " (of 10 s or more)";
  if (r.outages > 0) o << ", the longest " << duration_text(r.longest_outage_s);
  o << "\n\n";

  std::size_t width = 6;
  for (const auto& s : r.sources) width = std::max(width, s.name.size());
  const auto pad = [](std::string s, std::size_t w, bool right) {
    if (s.size() >= w) return s;
    return right ? std::string(w - s.size(), ' ') + s : s + std::string(w - s.size(), ' ');
  };
  o << "Sources\n";
  o << "  " << pad("source", width, false) << pad("expected", 13, true) << pad("received", 13, true)
    << pad("complete", 10, true) << pad("stale", 7, true) << pad("stale time", 16, true) << pad("good", 14, true)
    << pad("bad", 11, true) << pad("dropped", 11, true) << "\n";
  for (const auto& s : r.sources) {
    o << "  " << pad(s.name, width, false);
    if (s.watched)
      o << pad(thousands(s.expected), 13, true) << pad(thousands(s.received), 13, true)
        << pad(pct_text(s.completeness_pct), 10, true);
    else
      o << pad("not watched", 36, true);
    o << pad(std::to_string(s.stale_periods), 7, true) << pad(duration_text(s.stale_s), 16, true)
      << pad(thousands(s.good), 14, true) << pad(thousands(s.bad), 11, true) << pad(thousands(s.dropped), 11, true)
      << "\n";
  }
  if (r.sources.empty()) o << "  (no source stored data in this period)\n";

  bool any_stale = false;
  for (const auto& s : r.sources) any_stale = any_stale || !s.stale.empty();
  if (any_stale) {
    o << "\nStale periods (" << zone << ")\n";
    for (const auto& s : r.sources) {
      for (std::size_t i = 0; i < s.stale.size() && i < kStaleListedInText; ++i) {
        const auto& p = s.stale[i];
        o << "  " << pad(s.name, width, false) << "  " << local_time(p.since_ms, off) << " to "
          << local_time(p.until_ms, off) << "  " << duration_text(to_s(p.until_ms - p.since_ms)) << "\n";
      }
      if (s.stale.size() > kStaleListedInText)
        o << "  " << pad(s.name, width, false) << "  ... and " << s.stale.size() - kStaleListedInText
          << " more (--format json lists them all)\n";
    }
  }
  o << "\nexpected: updates due while the gateway ran, one per expected_every; received: those that came;\n"
       "complete = received / expected. good and bad: readings stored; dropped: readings the buffer had to\n"
       "drop (gap events). Details: README.md, \"The data-update report\".\n";
  return o.str();
}

std::string format_csv(const Report& r) {
  std::ostringstream o;
  o << "row,name,expected,received,completeness_pct,stale_periods,stale_s,good,bad,dropped,running_s,"
       "not_running_s,uplink_connected_s,uplink_availability_pct,uplink_availability_of_period_pct,outages,"
       "longest_outage_s\n";
  const auto num = [](double x) {
    std::ostringstream s;
    s << x;
    return s.str();
  };
  for (const auto& s : r.sources) {
    o << "source," << csv_field(s.name) << ",";
    if (s.watched)
      o << s.expected << "," << s.received << "," << num(s.completeness_pct);
    else
      o << ",,";
    o << "," << s.stale_periods << "," << s.stale_s << "," << s.good << "," << s.bad << "," << s.dropped
      << ",,,,,,,\n";
  }
  o << "gateway," << csv_field(r.site) << ",,,,,,,,," << r.running_s << "," << r.not_running_s << ","
    << r.connected_s << "," << num(r.availability_pct) << "," << num(r.availability_of_period_pct) << ","
    << r.outages << "," << r.longest_outage_s << "\n";
  return o.str();
}

std::string format_json(const Report& r) {
  using json = nlohmann::ordered_json;
  const int off = r.utc_offset_minutes;
  json sources = json::array();
  for (const auto& s : r.sources) {
    json stale = json::array();
    for (const auto& p : s.stale)
      stale.push_back({{"since", format_rfc3339_ms(p.since_ms)},
                       {"until", format_rfc3339_ms(p.until_ms)},
                       {"seconds", to_s(p.until_ms - p.since_ms)}});
    sources.push_back({{"name", s.name},
                       {"watched", s.watched},
                       {"expected", s.watched ? json(s.expected) : json(nullptr)},
                       {"received", s.watched ? json(s.received) : json(nullptr)},
                       {"completeness_pct", s.watched ? json(s.completeness_pct) : json(nullptr)},
                       {"stale_periods", s.stale_periods},
                       {"stale_s", s.stale_s},
                       {"stale", stale},
                       {"good", s.good},
                       {"bad", s.bad},
                       {"dropped", s.dropped}});
  }
  const json j = {
      {"report", "ioc-edge/report/1"},
      {"site", r.site},
      {"generated_at", format_rfc3339_ms(r.generated_ms)},
      {"period",
       {{"from", r.from},
        {"to", r.to},
        {"utc_offset", offset_text(off)},
        {"start", format_rfc3339_ms(r.start_ms)},
        {"end", format_rfc3339_ms(r.end_ms)},
        {"seconds", r.period_s}}},
      {"data",
       {{"hours", r.hours},
        {"first_hour", format_rfc3339_ms(r.first_hour * 1000)},
        {"last_hour", format_rfc3339_ms(r.last_hour * 1000)}}},
      {"gateway",
       {{"running_s", r.running_s},
        {"running_pct", r.running_pct},
        {"not_running_s", r.not_running_s},
        {"uplink_connected_s", r.connected_s},
        {"uplink_availability_pct", r.availability_pct},
        {"uplink_availability_of_period_pct", r.availability_of_period_pct},
        {"outages", r.outages},
        {"longest_outage_s", r.longest_outage_s}}},
      {"sources", sources},
  };
  return j.dump(2) + "\n";
}

std::string format_html(const Report& r) {
  const int off = r.utc_offset_minutes;
  const auto zone = "UTC" + offset_text(off);
  std::ostringstream o;
  o << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
       "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    << "<title>Data-update report " << html_escape(r.site) << " " << html_escape(r.from) << " to "
    << html_escape(r.to) << "</title>\n"
    << "<style>\n"
       "body{font-family:system-ui,-apple-system,\"Segoe UI\",Roboto,\"Noto Sans\",Arial,sans-serif;margin:1.5em;"
       "color:#1a1a1a;line-height:1.4}\n"
       "h1{font-size:1.4em;margin:0 0 .3em}h2{font-size:1.15em;margin:1.5em 0 .5em}\n"
       "table{border-collapse:collapse;margin:.3em 0}th,td{padding:.3em .7em;border-bottom:1px solid #ddd;"
       "text-align:right;white-space:nowrap}\n"
       "th{background:#f2f4f7;font-weight:600}td.name,th.name{text-align:left}\n"
       ".low{color:#b00020;font-weight:600}.meta{color:#555}.scroll{overflow-x:auto}\n"
       "@media print{body{margin:0}}\n"
       "</style>\n</head>\n<body>\n";
  o << "<h1>Data-update report: " << html_escape(r.site) << "</h1>\n";
  o << "<p class=\"meta\">" << html_escape(r.from) << " to " << html_escape(r.to) << " (" << zone << "): "
    << local_time(r.start_ms, off) << " to " << local_time(r.end_ms, off) << ", " << duration_text(r.period_s)
    << ". " << thousands(r.hours) << " hours with the gateway running. Made " << local_time(r.generated_ms, off)
    << ".</p>\n";

  o << "<h2>Gateway</h2>\n<table>\n";
  const auto row = [&](const std::string& k, const std::string& v) {
    o << "<tr><td class=\"name\">" << k << "</td><td>" << v << "</td></tr>\n";
  };
  row("Running", duration_text(r.running_s) + " (" + pct_text(r.running_pct) + " of the period)");
  row("Not running", duration_text(r.not_running_s));
  row("Uplink connected", duration_text(r.connected_s));
  row("Uplink availability", pct_text(r.availability_pct) + " of the time the gateway ran; " +
                                 pct_text(r.availability_of_period_pct) + " of the period");
  row("Uplink outages (10 s or more)", std::to_string(r.outages));
  row("Longest outage", r.outages > 0 ? duration_text(r.longest_outage_s) : std::string("none"));
  o << "</table>\n";

  o << "<h2>Sources</h2>\n<div class=\"scroll\"><table>\n<tr><th class=\"name\">Source</th><th>Expected</th>"
       "<th>Received</th><th>Complete</th><th>Stale periods</th><th>Stale time</th><th>Good readings</th>"
       "<th>Bad readings</th><th>Dropped by the buffer</th></tr>\n";
  for (const auto& s : r.sources) {
    o << "<tr><td class=\"name\">" << html_escape(s.name) << "</td>";
    if (s.watched)
      o << "<td>" << thousands(s.expected) << "</td><td>" << thousands(s.received) << "</td><td"
        << (s.completeness_pct < 99.0 ? " class=\"low\"" : "") << ">" << pct_text(s.completeness_pct) << "</td>";
    else
      o << "<td colspan=\"3\">not watched</td>";
    o << "<td>" << s.stale_periods << "</td><td>" << duration_text(s.stale_s) << "</td><td>" << thousands(s.good)
      << "</td><td>" << thousands(s.bad) << "</td><td" << (s.dropped > 0 ? " class=\"low\"" : "") << ">"
      << thousands(s.dropped) << "</td></tr>\n";
  }
  o << "</table></div>\n";

  bool any_stale = false;
  for (const auto& s : r.sources) any_stale = any_stale || !s.stale.empty();
  if (any_stale) {
    o << "<h2>Stale periods (" << zone << ")</h2>\n<table>\n<tr><th class=\"name\">Source</th><th>From</th>"
         "<th>To</th><th>Length</th></tr>\n";
    for (const auto& s : r.sources)
      for (const auto& p : s.stale)
        o << "<tr><td class=\"name\">" << html_escape(s.name) << "</td><td>" << local_time(p.since_ms, off)
          << "</td><td>" << local_time(p.until_ms, off) << "</td><td>" << duration_text(to_s(p.until_ms - p.since_ms))
          << "</td></tr>\n";
    o << "</table>\n";
  }
  o << "<h2>How to read it</h2>\n<p>Expected: the updates due while the gateway ran, one per the source's "
       "<code>expected_every</code>; received: those that came (a missed update is a gap of about two "
       "<code>expected_every</code> between good readings); complete = received / expected. A source is stale "
       "when no good reading came for three times its <code>expected_every</code>. Good and bad: readings "
       "stored (bad: the device reported an error). Dropped: readings the buffer had to drop when it was full "
       "or they were too old (the IOC got a gap event for each). Uplink availability: the time the link to the "
       "IOC was connected.</p>\n</body>\n</html>\n";
  return o.str();
}

}  // namespace ioc_edge
