// ioc-receiver's renderers (receiver/render.cpp) on findings built by hand: `coverage`, `late` and
// `report` in text, CSV, JSON and HTML, with known figures, hostile names and empty lists.
#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "receiver/findings.h"

using namespace ioc_receiver;
using nlohmann::json;

namespace {

TimePoint at_s(std::int64_t s) { return TimePoint(std::chrono::seconds(s)); }
TimePoint at_ms(std::int64_t ms) { return TimePoint(std::chrono::milliseconds(ms)); }

constexpr std::int64_t kFrom = 1'751'328'000;  // 2025-07-01 00:00:00Z
constexpr std::int64_t kTo = 1'759'276'800;    // 2025-10-01 00:00:00Z
constexpr std::int64_t kLate = 1'751'504'400;  // 2025-07-03 01:00:00Z
constexpr std::int64_t kNow = 1'764'493'200;   // 2025-11-30 09:00:00Z (date -u -d @1764493200)
const std::string kChoDon = "UBND xã Chợ Đồn";

// Two offices: one with readings, late three times, two sources; one with nothing in the period.
Report sample_report() {
  Report r;
  r.from = at_s(kFrom);
  r.to = at_s(kTo);
  r.generated_at = at_s(kTo + 7200);
  r.office_after_s = 600;
  ReportOffice a;
  a.site = "bk-cho-don";
  a.province = "bac-kan";
  a.name = kChoDon;
  a.unit_code = "H04.05";
  a.agency_code = "000.05.15.H04";
  a.seqs_expected = 1000;
  a.seqs_received = 998;
  a.declared_dropped = 1;
  a.holes = 1;
  a.late = {{at_s(kLate), at_s(kLate + 1800)},
            {at_s(kLate + 86400), at_s(kLate + 86400 + 1800)},
            {at_s(kLate + 2 * 86400), at_s(kLate + 2 * 86400 + 720)}};  // 3 periods, 72 min
  a.availability_pct = 99.95;
  ReportSource s1;
  s1.source = "tram-bom-1";
  s1.readings = 100000;
  s1.good = 99990;
  s1.bad = 10;
  s1.last_good = at_s(kTo - 60);
  s1.stale = {{at_s(kLate + 3600), at_s(kLate + 3600 + 1200)}, {at_s(kLate + 7200), at_s(kLate + 7200 + 900)}};
  s1.declared_dropped = 1;
  ReportSource s2;
  s2.source = "muc-nuoc";
  s2.readings = 5000;
  s2.good = 5000;
  s2.last_good = at_s(kTo - 300);
  s2.refused = 2;
  a.sources = {s1, s2};
  ReportOffice b;
  b.site = "bk-na-ri";
  b.province = "bac-kan";
  b.name = "UBND xã Kim Lư";
  b.availability_pct = 100;
  r.offices = {a, b};
  return r;
}

LateList sample_late() {
  LateList l;
  l.at = at_ms(kNow * 1000 + 123);
  l.office_after_s = 600;
  l.source_factor = 3;
  LateOffice o;
  o.site = "bk-cho-don";
  o.province = "bac-kan";
  o.name = kChoDon;
  o.last_heartbeat = at_s(kNow - 1200);
  o.silent_s = 1200;
  LateOffice o2;
  o2.site = "bk-ba-be";
  o2.offline = true;
  o2.silent_s = 3 * 3600 + 300;
  o2.last_heartbeat = at_s(kNow - (3 * 3600 + 300));
  LateSource s;
  s.site = "bk-cho-don";
  s.source = "tram-bom-1";
  s.last_good = at_s(kNow - 3900);
  s.cadence_s = 300;
  s.cadence_configured = true;
  s.silent_s = 3900;
  LateSource s2;
  s2.site = "bk-na-ri";
  s2.source = "muc-nuoc";
  s2.cadence_s = 600;
  s2.silent_s = 2700;
  l.offices = {o, o2};
  l.sources = {s, s2};
  return l;
}

StoreCoverage sample_store() {
  StoreCoverage c;
  c.site = "bk-cho-don";
  c.store = "6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d";
  c.max_seq = 1000;
  c.received = 998;
  c.declared = {{731, 731}};
  c.declared_count = 1;
  c.holes = {{900, 900}};
  c.hole_count = 1;
  c.last_received_at = at_s(kNow - 2);
  return c;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

bool has_line(const std::string& text, const std::string& line) {
  for (const auto& l : lines_of(text))
    if (l == line) return true;
  return false;
}

// RFC 4180, strictly: rows end in CRLF, a quoted field doubles its quotes. Fails the test on
// anything else (a bare quote in an unquoted field, an unterminated quote, a bare LF).
std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  std::size_t i = 0;
  while (i < text.size()) {
    if (text[i] == '"') {
      ++i;
      for (;;) {
        if (i >= text.size()) FAIL("unterminated quote");
        if (text[i] == '"') {
          if (i + 1 < text.size() && text[i + 1] == '"') {
            field += '"';
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        field += text[i++];
      }
    } else {
      while (i < text.size() && text[i] != ',' && text[i] != '\r') {
        if (text[i] == '"' || text[i] == '\n') FAIL("a quote or LF in an unquoted field at " << i);
        field += text[i++];
      }
    }
    if (i >= text.size()) FAIL("the last row does not end in CRLF");
    if (text[i] == ',') {
      row.push_back(std::move(field));
      field.clear();
      ++i;
      continue;
    }
    if (text.compare(i, 2, "\r\n") != 0) FAIL("a bare CR at " << i);
    row.push_back(std::move(field));
    field.clear();
    rows.push_back(std::move(row));
    row.clear();
    i += 2;
  }
  return rows;
}

// CSV rows as maps from the header's names; every row has the header's width.
std::vector<std::map<std::string, std::string>> csv_records(const std::string& text) {
  const auto rows = parse_csv(text);
  REQUIRE(!rows.empty());
  std::vector<std::map<std::string, std::string>> out;
  for (std::size_t r = 1; r < rows.size(); ++r) {
    if (rows[r].size() != rows[0].size()) FAIL("row " << r << " has " << rows[r].size() << " fields");
    std::map<std::string, std::string> rec;
    for (std::size_t c = 0; c < rows[0].size(); ++c) rec[rows[0][c]] = rows[r][c];
    out.push_back(std::move(rec));
  }
  return out;
}

// What a page must be to be attached to a report: one document, no script, nothing fetched.
void check_self_contained(const std::string& html) {
  CHECK(html.rfind("<!DOCTYPE html>\n", 0) == 0);
  CHECK(html.find("<meta charset=\"utf-8\">") != std::string::npos);
  CHECK(html.find("<style>") != std::string::npos);
  CHECK(html.find("<script") == std::string::npos);
  CHECK(html.find("<link") == std::string::npos);
  CHECK(html.find("src=") == std::string::npos);
  CHECK(html.find("url(") == std::string::npos);
  CHECK(html.find("http://") == std::string::npos);
  CHECK(html.find("https://") == std::string::npos);
  CHECK(html.find("@import") == std::string::npos);
  CHECK(html.size() >= 16);
  CHECK(html.substr(html.size() - 8) == "</html>\n");
}

const std::string kHostile = "x\",<script>alert('1')</script>\r\n& \x1b[31mred";

}  // namespace

TEST_CASE("format_time prints UTC with milliseconds", "[unit][receiver]") {
  // date -u -d @1764493200 -> 2025-11-30 09:00:00
  CHECK(format_time(at_ms(1'764'493'200'123)) == "2025-11-30T09:00:00.123Z");
  CHECK(format_time(at_ms(0)) == "1970-01-01T00:00:00.000Z");
  CHECK(format_time(at_s(kFrom)) == "2025-07-01T00:00:00.000Z");
  // Nanoseconds are cut, not rounded: the time is not in the future of the reading.
  CHECK(format_time(TimePoint(std::chrono::nanoseconds(1'764'493'200'123'999'999))) == "2025-11-30T09:00:00.123Z");
  // Before 1970: right, though nobody needs it.
  CHECK(format_time(at_ms(-1)) == "1969-12-31T23:59:59.999Z");
  CHECK(format_time(at_s(-86400)) == "1969-12-31T00:00:00.000Z");
  // The extremes do not crash.
  CHECK(format_time(TimePoint::min()).back() == 'Z');
  CHECK(format_time(TimePoint::max()).back() == 'Z');
}

TEST_CASE("completeness_pct is received over expected and 100 when nothing is expected", "[unit][receiver]") {
  StoreCoverage s;
  CHECK(s.completeness_pct() == 100.0);
  s.max_seq = 1000;
  s.received = 998;
  CHECK(s.completeness_pct() == Approx(99.8));
  s.received = 0;
  CHECK(s.completeness_pct() == 0.0);
  s.received = 1200;  // more than numbered: a query's fault, not more than complete
  CHECK(s.completeness_pct() == 100.0);
  s.max_seq = -5;
  CHECK(s.completeness_pct() == 100.0);
  // Near 2^63 the quotient rounds to 1, yet one missing seq keeps it below 100.
  s.max_seq = std::numeric_limits<std::int64_t>::max();
  s.received = s.max_seq - 1;
  CHECK(s.completeness_pct() < 100.0);
  CHECK(!std::isnan(s.completeness_pct()));

  ReportOffice o;
  CHECK(o.completeness_pct() == 100.0);
  o.seqs_expected = 3;
  o.seqs_received = 1;
  CHECK(o.completeness_pct() == Approx(100.0 / 3));
  o.seqs_expected = 0;
  o.seqs_received = 7;
  CHECK(o.completeness_pct() == 100.0);
}

TEST_CASE("report as text: heading and one block per office with its sources", "[unit][receiver]") {
  const auto t = render_report(sample_report(), Format::Text);
  INFO(t);
  const auto l = lines_of(t);
  REQUIRE(l.size() > 20);
  CHECK(l[0] == "Data-continuity report");
  CHECK(l[1] == "Period      2025-07-01 00:00:00Z to 2025-10-01 00:00:00Z (92 d)");
  CHECK(l[2] == "Generated   2025-10-01 02:00:00Z");
  CHECK(l[3] == "Offices     2");
  CHECK(l[4] == "Late        an office is late after 10 min without a heartbeat, or while its last will says offline");
  CHECK(l[5].empty());
  CHECK(l[6] == "bk-cho-don  " + kChoDon);
  CHECK(l[7] == "  province bac-kan, unit code H04.05, agency code 000.05.15.H04");
  CHECK(l[8] == "  completeness     99.80 %  998 of 1,000 seqs received, 1 declared dropped, 1 hole");
  CHECK(l[9] == "  availability     99.95 %  late 3 periods, 1 h 12 min");
  CHECK(l[10] == "                            2025-07-03 01:00:00Z to 2025-07-03 01:30:00Z  30 min");
  CHECK(l[11] == "                            2025-07-04 01:00:00Z to 2025-07-04 01:30:00Z  30 min");
  CHECK(l[12] == "                            2025-07-05 01:00:00Z to 2025-07-05 01:12:00Z  12 min");
  CHECK(l[13] == "    source      readings    good  bad  dropped  refused  stale              last good");
  CHECK(l[14] == "    tram-bom-1   100,000  99,990   10        1        0  2 periods, 35 min  2025-09-30 23:59:00Z");
  CHECK(l[15] == "    muc-nuoc       5,000   5,000    0        0        2  never              2025-09-30 23:55:00Z");
  CHECK(l[16].empty());
  CHECK(l[17] == "bk-na-ri  UBND xã Kim Lư");
  CHECK(l[18] == "  province bac-kan");
  CHECK(l[19] == "  completeness    100.00 %  no readings in this period");
  CHECK(l[20] == "  availability    100.00 %  never late");
  CHECK(l[21] == "  no source stored readings in this period");
}

TEST_CASE("percentages: two decimals and 100.00 only when nothing is missing", "[unit][receiver]") {
  const auto completeness_line = [](std::int64_t received, std::int64_t expected) {
    Report r;
    ReportOffice o;
    o.site = "s";
    o.seqs_expected = expected;
    o.seqs_received = received;
    r.offices = {o};
    for (const auto& l : lines_of(render_report(r, Format::Text)))
      if (l.rfind("  completeness", 0) == 0) return l;
    return std::string();
  };
  CHECK(completeness_line(998, 1000).find(" 99.80 %  998 of 1,000 seqs") != std::string::npos);
  CHECK(completeness_line(1, 3).find(" 33.33 %") != std::string::npos);
  CHECK(completeness_line(2, 3).find(" 66.67 %") != std::string::npos);
  CHECK(completeness_line(99'999, 100'000).find(" 99.99 %") != std::string::npos);  // not 100.00
  CHECK(completeness_line(1, 1'000'000).find(" 0.01 %") != std::string::npos);      // not 0.00
  CHECK(completeness_line(1000, 1000).find("100.00 %") != std::string::npos);
  CHECK(completeness_line(0, 1000).find("  0.00 %") != std::string::npos);
  const auto big = std::numeric_limits<std::int64_t>::max();
  CHECK(completeness_line(big - 1, big).find(" 99.99 %  9,223,372,036,854,775,806 of 9,223,372,036,854,775,807 seqs") !=
        std::string::npos);

  // The same figure in CSV and JSON.
  Report r;
  ReportOffice o;
  o.site = "s";
  o.seqs_expected = 100'000;
  o.seqs_received = 99'999;
  o.availability_pct = std::nan("");
  r.offices = {o};
  CHECK(csv_records(render_report(r, Format::Csv)).at(0).at("completeness_pct") == "99.99");
  CHECK(csv_records(render_report(r, Format::Csv)).at(0).at("availability_pct") == "");
  const auto j = json::parse(render_report(r, Format::Json));
  CHECK(j["offices"][0]["completeness_pct"].get<double>() == 99.99);
  CHECK(j["offices"][0]["availability_pct"].is_null());
  CHECK(render_report(r, Format::Text).find("  availability         n/a  never late\n") != std::string::npos);
}

TEST_CASE("report as CSV: a row per office then per source, RFC 4180", "[unit][receiver]") {
  auto r = sample_report();
  r.offices[1].site = "bk-\"na\",ri";
  r.offices[1].name = "line one\nline two";
  r.offices[1].province = "=HYPERLINK(\"http://x\")";
  const auto csv = render_report(r, Format::Csv);
  INFO(csv);
  const auto rows = parse_csv(csv);
  REQUIRE(rows.size() == 5);  // header, office a, its 2 sources, office b
  CHECK(lines_of(csv)[0] ==
        "period_from,period_to,site,province,name,unit_code,agency_code,source,seqs_expected,seqs_received,"
        "completeness_pct,declared_dropped,holes,late_periods,late_s,availability_pct,readings,good,bad,refused,"
        "stale_periods,stale_s,last_good\r");
  const auto rec = csv_records(csv);
  const auto& a = rec.at(0);
  CHECK(a.at("period_from") == "2025-07-01T00:00:00.000Z");
  CHECK(a.at("period_to") == "2025-10-01T00:00:00.000Z");
  CHECK(a.at("site") == "bk-cho-don");
  CHECK(a.at("name") == kChoDon);  // UTF-8 as is
  CHECK(a.at("source").empty());
  CHECK(a.at("seqs_expected") == "1000");  // no thousands separator
  CHECK(a.at("seqs_received") == "998");
  CHECK(a.at("completeness_pct") == "99.80");
  CHECK(a.at("declared_dropped") == "1");
  CHECK(a.at("holes") == "1");
  CHECK(a.at("late_periods") == "3");
  CHECK(a.at("late_s") == "4320");
  CHECK(a.at("availability_pct") == "99.95");
  CHECK(a.at("readings").empty());
  const auto& s1 = rec.at(1);
  CHECK(s1.at("site") == "bk-cho-don");
  CHECK(s1.at("name") == kChoDon);
  CHECK(s1.at("source") == "tram-bom-1");
  CHECK(s1.at("seqs_expected").empty());
  CHECK(s1.at("declared_dropped") == "1");
  CHECK(s1.at("readings") == "100000");
  CHECK(s1.at("good") == "99990");
  CHECK(s1.at("bad") == "10");
  CHECK(s1.at("refused") == "0");
  CHECK(s1.at("stale_periods") == "2");
  CHECK(s1.at("stale_s") == "2100");
  CHECK(s1.at("last_good") == "2025-09-30T23:59:00.000Z");
  CHECK(rec.at(2).at("source") == "muc-nuoc");
  CHECK(rec.at(2).at("refused") == "2");
  const auto& b = rec.at(3);
  CHECK(b.at("site") == "bk-\"na\",ri");
  CHECK(b.at("name") == "line one\nline two");
  CHECK(b.at("province") == "'=HYPERLINK(\"http://x\")");  // shown as text, not run as a formula
  CHECK(b.at("completeness_pct") == "100.00");
  // Quoted as RFC 4180 says: the field in quotes, its quotes doubled.
  CHECK(csv.find(",\"bk-\"\"na\"\",ri\",") != std::string::npos);
  CHECK(csv.find(",\"line one\nline two\",") != std::string::npos);
}

TEST_CASE("report as JSON: parsed back member by member", "[unit][receiver]") {
  const auto j = json::parse(render_report(sample_report(), Format::Json));
  CHECK(j["report"] == "ioc-receiver/report/1");
  CHECK(j["from"] == "2025-07-01T00:00:00.000Z");
  CHECK(j["to"] == "2025-10-01T00:00:00.000Z");
  CHECK(j["generated_at"] == "2025-10-01T02:00:00.000Z");
  CHECK(j["period_s"].get<double>() == 7'948'800.0);
  CHECK(j["office_after_s"].get<double>() == 600.0);
  REQUIRE(j["offices"].size() == 2);
  const auto& a = j["offices"][0];
  CHECK(a["site"] == "bk-cho-don");
  CHECK(a["province"] == "bac-kan");
  CHECK(a["name"] == kChoDon);
  CHECK(a["unit_code"] == "H04.05");
  CHECK(a["agency_code"] == "000.05.15.H04");
  CHECK(a["seqs_expected"] == 1000);
  CHECK(a["seqs_received"] == 998);
  CHECK(a["completeness_pct"].get<double>() == 99.8);
  CHECK(a["declared_dropped"] == 1);
  CHECK(a["holes"] == 1);
  REQUIRE(a["late"].size() == 3);
  CHECK(a["late"][0]["from"] == "2025-07-03T01:00:00.000Z");
  CHECK(a["late"][0]["to"] == "2025-07-03T01:30:00.000Z");
  CHECK(a["late"][0]["seconds"].get<double>() == 1800.0);
  CHECK(a["late"][2]["seconds"].get<double>() == 720.0);
  CHECK(a["late_s"].get<double>() == 4320.0);
  CHECK(a["availability_pct"].get<double>() == 99.95);
  REQUIRE(a["sources"].size() == 2);
  const auto& s = a["sources"][0];
  CHECK(s["source"] == "tram-bom-1");
  CHECK(s["readings"] == 100000);
  CHECK(s["good"] == 99990);
  CHECK(s["bad"] == 10);
  CHECK(s["last_good"] == "2025-09-30T23:59:00.000Z");
  REQUIRE(s["stale"].size() == 2);
  CHECK(s["stale"][1]["from"] == "2025-07-03T03:00:00.000Z");
  CHECK(s["stale"][1]["seconds"].get<double>() == 900.0);
  CHECK(s["stale_s"].get<double>() == 2100.0);
  CHECK(s["declared_dropped"] == 1);
  CHECK(s["refused"] == 0);
  CHECK(a["sources"][1]["refused"] == 2);
  CHECK(a["sources"][1]["stale"].empty());
  const auto& b = j["offices"][1];
  CHECK(b["completeness_pct"].get<double>() == 100.0);
  CHECK(b["late"].empty());
  CHECK(b["sources"].empty());
  CHECK(b["unit_code"] == "");
}

TEST_CASE("report as HTML: one printable page with every string escaped", "[unit][receiver]") {
  auto r = sample_report();
  r.offices[1].site = "<script>alert('x')</script>";
  r.offices[1].name = "Tom & \"Jerry\"";
  r.offices[0].sources[0].source = "<b>src</b>";
  const auto html = render_report(r, Format::Html);
  INFO(html);
  check_self_contained(html);
  CHECK(html.find("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;") != std::string::npos);
  CHECK(html.find("Tom &amp; &quot;Jerry&quot;") != std::string::npos);
  CHECK(html.find("&lt;b&gt;src&lt;/b&gt;") != std::string::npos);
  CHECK(html.find("<b>") == std::string::npos);
  CHECK(html.find(kChoDon) != std::string::npos);
  CHECK(html.find("@media print") != std::string::npos);
  CHECK(html.find("<td class=\"n\">99.80 %</td>") != std::string::npos);
  CHECK(html.find("<td>2025-07-03 01:00:00Z</td>") == std::string::npos);  // times do not wrap:
  CHECK(html.find("<td class=\"t\">2025-07-03 01:00:00Z</td>") != std::string::npos);
  CHECK(html.find("<td class=\"t\">2025-07-03 03:15:00Z</td>") != std::string::npos);  // stale periods listed
  CHECK(html.find("<td class=\"n bad\">1</td>") != std::string::npos);  // holes stand out
}

TEST_CASE("late as text: what ioc-receiver late prints", "[unit][receiver]") {
  const auto t = render_late(sample_late(), Format::Text);
  INFO(t);
  const auto l = lines_of(t);
  REQUIRE(l.size() == 14);
  CHECK(l[0] == "Late offices and sources at 2025-11-30 09:00:00Z");
  CHECK(l[1] == "An office is late after 10 min without a heartbeat, or when it went offline;");
  CHECK(l[2] == "a source after 3 × its cadence without a good reading.");
  CHECK(l[3] == "2 late offices, 2 late sources");
  CHECK(l[4].empty());
  CHECK(l[5] == "bk-cho-don  " + kChoDon + ", bac-kan");
  CHECK(l[6] == "  office      silent 20 min              last heartbeat 2025-11-30 08:40:00Z");
  CHECK(l[7] == "  tram-bom-1  silent 1 h 5 min           last good 2025-11-30 07:55:00Z, every 5 min (configured)");
  CHECK(l[8].empty());
  CHECK(l[9] == "bk-ba-be");
  CHECK(l[10] == "  office      OFFLINE, silent 3 h 5 min  last heartbeat 2025-11-30 05:55:00Z");
  CHECK(l[11].empty());
  CHECK(l[12] == "bk-na-ri");
  CHECK(l[13] == "  muc-nuoc    silent 45 min              no good reading yet, every 10 min (learned)");
}

TEST_CASE("late as text: durations for people", "[unit][receiver]") {
  const auto silent = [](double s) {
    LateList l;
    LateSource src;
    src.site = "s";
    src.source = "x";
    src.silent_s = s;
    l.sources = {src};
    const auto lines = lines_of(render_late(l, Format::Text));
    return lines.back();
  };
  CHECK(silent(45).find("silent 45 s ") != std::string::npos);
  CHECK(silent(725).find("silent 12 min 5 s ") != std::string::npos);
  CHECK(silent(720).find("silent 12 min ") != std::string::npos);
  CHECK(silent(4332).find("silent 1 h 12 min ") != std::string::npos);
  CHECK(silent(3 * 86400 + 4 * 3600 + 59).find("silent 3 d 4 h ") != std::string::npos);
  CHECK(silent(400 * 86400).find("silent 400 d ") != std::string::npos);
  CHECK(silent(-5).find("silent 0 s ") != std::string::npos);
  CHECK(silent(std::nan("")).find("silent 0 s ") != std::string::npos);
  CHECK(silent(1e300).find("silent 106,751,991,167,300 d") != std::string::npos);
}

TEST_CASE("late as JSON: the documented members", "[unit][receiver]") {
  const auto j = json::parse(render_late(sample_late(), Format::Json));
  CHECK(j["at"] == "2025-11-30T09:00:00.123Z");
  CHECK(j["office_after_s"].get<double>() == 600.0);
  CHECK(j["source_factor"].get<double>() == 3.0);
  REQUIRE(j["offices"].size() == 2);
  const auto& o = j["offices"][0];
  CHECK(o.size() == 6);
  CHECK(o["site"] == "bk-cho-don");
  CHECK(o["province"] == "bac-kan");
  CHECK(o["name"] == kChoDon);
  CHECK(o["last_heartbeat"] == "2025-11-30T08:40:00.000Z");
  CHECK(o["offline"] == false);
  CHECK(o["silent_s"].get<double>() == 1200.0);
  CHECK(j["offices"][1]["offline"] == true);
  REQUIRE(j["sources"].size() == 2);
  const auto& s = j["sources"][0];
  CHECK(s.size() == 6);
  CHECK(s["site"] == "bk-cho-don");
  CHECK(s["source"] == "tram-bom-1");
  CHECK(s["last_good"] == "2025-11-30T07:55:00.000Z");
  CHECK(s["cadence_s"].get<double>() == 300.0);
  CHECK(s["cadence_configured"] == true);
  CHECK(s["silent_s"].get<double>() == 3900.0);
  CHECK(j["sources"][1]["last_good"].is_null());
  CHECK(j["sources"][1]["cadence_configured"] == false);

  auto none = sample_late();
  none.offices[0].last_heartbeat.reset();
  CHECK(json::parse(render_late(none, Format::Json))["offices"][0]["last_heartbeat"].is_null());
}

TEST_CASE("late as CSV and HTML", "[unit][receiver]") {
  auto l = sample_late();
  l.sources[0].source = kHostile;
  const auto rec = csv_records(render_late(l, Format::Csv));
  REQUIRE(rec.size() == 4);
  CHECK(rec[0].at("kind") == "office");
  CHECK(rec[0].at("name") == kChoDon);
  CHECK(rec[0].at("offline") == "false");
  CHECK(rec[0].at("last_heartbeat") == "2025-11-30T08:40:00.000Z");
  CHECK(rec[0].at("silent_s") == "1200");
  CHECK(rec[1].at("offline") == "true");
  CHECK(rec[2].at("kind") == "source");
  CHECK(rec[2].at("source") == kHostile);
  CHECK(rec[2].at("cadence_s") == "300");
  CHECK(rec[2].at("cadence_configured") == "true");
  CHECK(rec[3].at("last_good").empty());

  const auto html = render_late(l, Format::Html);
  check_self_contained(html);
  CHECK(html.find("&lt;script&gt;alert(&#39;1&#39;)&lt;/script&gt;") != std::string::npos);
  CHECK(html.find("x&quot;,") != std::string::npos);
  CHECK(html.find(kChoDon) != std::string::npos);
  CHECK(html.find("<td class=\"bad\">offline</td>") != std::string::npos);
}

TEST_CASE("coverage: seq ranges compact and capped", "[unit][receiver]") {
  auto c = sample_store();
  c.max_seq = 1000;
  c.received = 500 + 1 + 101;
  c.holes = {{1, 500}, {731, 731}, {900, 1000}};
  c.hole_count = 500 + 1 + 101;
  const auto t = render_coverage({c}, Format::Text);
  INFO(t);
  CHECK(has_line(t, "    holes             602 seqs: 1-500, 731, 900-1000"));

  // 25 ranges of 10 seqs: 20 shown, then the rest counted.
  const auto ranges_of_ten = [](std::int64_t n) {
    std::vector<SeqRange> out;
    for (std::int64_t i = 0; i < n; ++i) out.push_back({i * 100 + 1, i * 100 + 10});
    return out;
  };
  c.declared = ranges_of_ten(25);
  c.declared_count = 250;
  const auto capped = render_coverage({c}, Format::Text);
  INFO(capped);
  CHECK(has_line(capped,
                 "    declared dropped  250 seqs: 1-10, 101-110, 201-210, 301-310, 401-410, 501-510, 601-610, 701-710, "
                 "801-810, 901-910, 1001-1010, 1101-1110, 1201-1210, 1301-1310, 1401-1410, 1501-1510, 1601-1610, "
                 "1701-1710, 1801-1810, 1901-1910, … and 5 more ranges (50 seqs)"));
  // 21 ranges: one more, singular.
  c.declared = ranges_of_ten(21);
  CHECK(render_coverage({c}, Format::Text).find(", … and 1 more range (10 seqs)\n") != std::string::npos);
  // The HTML caps the same way; CSV and JSON list them all.
  c.declared = ranges_of_ten(25);
  CHECK(render_coverage({c}, Format::Html).find("… and 5 more ranges (50 seqs)") != std::string::npos);
  const auto rec = csv_records(render_coverage({c}, Format::Csv));
  REQUIRE(rec.size() == 1);
  CHECK(rec[0].at("declared").size() > 200);
  CHECK(rec[0].at("declared").substr(rec[0].at("declared").size() - 11) == ", 2401-2410");
  CHECK(rec[0].at("holes") == "1-500, 731, 900-1000");
  const auto j = json::parse(render_coverage({c}, Format::Json));
  REQUIRE(j["stores"][0]["declared"].size() == 25);
  CHECK(j["stores"][0]["declared"][24] == json::array({2401, 2410}));
  CHECK(j["stores"][0]["holes"] == json::parse("[[1,500],[731,731],[900,1000]]"));
}

TEST_CASE("coverage: every format", "[unit][receiver]") {
  auto a = sample_store();
  auto b = sample_store();
  b.store = "0d5e8f4c-1b2a-4c3d-8e9f-a0b1c2d3e4f5";
  b.declared.clear();
  b.holes.clear();
  b.declared_count = b.hole_count = 0;
  b.pending = {{999, 1000}};
  b.pending_count = 2;
  b.received = 998;
  b.last_received_at.reset();
  auto c = sample_store();
  c.site = "bk-na-ri";
  c.store = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";
  const std::vector<StoreCoverage> stores = {a, b, c};

  const auto t = render_coverage(stores, Format::Text);
  INFO(t);
  const auto l = lines_of(t);
  REQUIRE(l.size() > 16);
  CHECK(l[0] == "Seq coverage: 2 offices, 3 stores");
  CHECK(l[2] == "bk-cho-don");
  CHECK(l[3] == "  store 6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d");
  CHECK(l[4] == "    complete          99.80 %  998 of 1,000 seqs received, the last at 2025-11-30 08:59:58Z");
  CHECK(l[5] == "    declared dropped  1 seq: 731");
  CHECK(l[6] == "    holes             1 seq: 900");
  CHECK(l[7] == "    pending           none");
  CHECK(l[8] == "  store 0d5e8f4c-1b2a-4c3d-8e9f-a0b1c2d3e4f5");
  CHECK(l[9] == "    complete          99.80 %  998 of 1,000 seqs received");
  CHECK(l[12] == "    pending           2 seqs: 999-1000");
  CHECK(l[13].empty());
  CHECK(l[14] == "bk-na-ri");

  const auto rec = csv_records(render_coverage(stores, Format::Csv));
  REQUIRE(rec.size() == 3);
  CHECK(rec[0].at("site") == "bk-cho-don");
  CHECK(rec[0].at("store") == "6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d");
  CHECK(rec[0].at("max_seq") == "1000");
  CHECK(rec[0].at("received") == "998");
  CHECK(rec[0].at("completeness_pct") == "99.80");
  CHECK(rec[0].at("declared_count") == "1");
  CHECK(rec[0].at("hole_count") == "1");
  CHECK(rec[0].at("pending_count") == "0");
  CHECK(rec[0].at("last_received_at") == "2025-11-30T08:59:58.000Z");
  CHECK(rec[0].at("declared") == "731");
  CHECK(rec[1].at("pending") == "999-1000");
  CHECK(rec[1].at("last_received_at").empty());

  const auto j = json::parse(render_coverage(stores, Format::Json));
  REQUIRE(j["stores"].size() == 3);
  const auto& s = j["stores"][0];
  CHECK(s["site"] == "bk-cho-don");
  CHECK(s["store"] == "6f1c2a3e-6a8e-4f7e-9a65-3f8d2f0f4b1d");
  CHECK(s["max_seq"] == 1000);
  CHECK(s["received"] == 998);
  CHECK(s["completeness_pct"].get<double>() == 99.8);
  CHECK(s["declared"] == json::parse("[[731,731]]"));
  CHECK(s["declared_count"] == 1);
  CHECK(s["holes"] == json::parse("[[900,900]]"));
  CHECK(s["hole_count"] == 1);
  CHECK(s["pending"] == json::array());
  CHECK(s["pending_count"] == 0);
  CHECK(s["last_received_at"] == "2025-11-30T08:59:58.000Z");
  CHECK(j["stores"][1]["last_received_at"].is_null());

  const auto html = render_coverage(stores, Format::Html);
  check_self_contained(html);
  CHECK(html.find("<td class=\"bad\">1 seq: 900</td>") != std::string::npos);
}

TEST_CASE("empty lists say so in every format", "[unit][receiver]") {
  CHECK(has_line(render_coverage({}, Format::Text), "no office has reported yet"));
  CHECK(lines_of(render_coverage({}, Format::Text))[0] == "Seq coverage: 0 offices, 0 stores");
  CHECK(parse_csv(render_coverage({}, Format::Csv)).size() == 1);
  CHECK(json::parse(render_coverage({}, Format::Json)) == json::parse(R"({"stores":[]})"));
  const auto cov_html = render_coverage({}, Format::Html);
  check_self_contained(cov_html);
  CHECK(cov_html.find("No office has reported yet.") != std::string::npos);

  LateList late;
  late.at = at_s(kNow);
  late.office_after_s = 600;
  late.source_factor = 3;
  const auto lt = render_late(late, Format::Text);
  CHECK(lines_of(lt)[0] == "Late offices and sources at 2025-11-30 09:00:00Z");
  CHECK(has_line(lt, "no late offices or sources"));
  CHECK(parse_csv(render_late(late, Format::Csv)).size() == 1);
  const auto lj = json::parse(render_late(late, Format::Json));
  CHECK(lj["offices"] == json::array());
  CHECK(lj["sources"] == json::array());
  const auto late_html = render_late(late, Format::Html);
  check_self_contained(late_html);
  CHECK(late_html.find("No late offices or sources.") != std::string::npos);

  Report r;
  r.from = at_s(kFrom);
  r.to = at_s(kTo);
  r.generated_at = at_s(kTo);
  const auto rt = render_report(r, Format::Text);
  CHECK(has_line(rt, "Offices     0"));
  CHECK(has_line(rt, "no office has reported in this period"));
  CHECK(parse_csv(render_report(r, Format::Csv)).size() == 1);
  CHECK(json::parse(render_report(r, Format::Json))["offices"] == json::array());
  const auto rh = render_report(r, Format::Html);
  check_self_contained(rh);
  CHECK(rh.find("No office has reported in this period.") != std::string::npos);

  // A report whose office has no sources and no late periods, and a default-built one.
  Report one;
  one.offices.resize(1);
  CHECK(render_report(one, Format::Text).find("  no source stored readings in this period\n") != std::string::npos);
  check_self_contained(render_report(one, Format::Html));
  CHECK(json::parse(render_report(one, Format::Json))["offices"][0]["sources"] == json::array());
}

TEST_CASE("hostile names cannot break the text the CSV the JSON or the page", "[unit][receiver]") {
  StoreCoverage c = sample_store();
  c.site = kHostile;
  c.store = std::string("bad\xff\xfeutf8") + "\xc2\x9b" + "2J" + "\xe2\x80\xae" + "evil";

  const auto t = render_coverage({c}, Format::Text);
  INFO(t);
  CHECK(t.find('\x1b') == std::string::npos);
  CHECK(t.find('\r') == std::string::npos);
  CHECK(t.find("\xc2\x9b") == std::string::npos);  // C1 CSI
  CHECK(t.find("\xe2\x80\xae") == std::string::npos);  // right-to-left override
  CHECK(has_line(t, "x\",<script>alert('1')</script>\\r\\n& \\x1b[31mred"));
  CHECK(t.find("  store bad\xff\xfeutf8\\u009b2J\\u202eevil\n") != std::string::npos);

  const auto rec = csv_records(render_coverage({c}, Format::Csv));
  REQUIRE(rec.size() == 1);
  CHECK(rec[0].at("site") == kHostile);

  std::string js;
  REQUIRE_NOTHROW(js = render_coverage({c}, Format::Json));  // invalid UTF-8 is replaced
  const auto j = json::parse(js);
  CHECK(j["stores"][0]["site"] == kHostile);
  CHECK(j["stores"][0]["store"].get<std::string>().find("\xef\xbf\xbd") != std::string::npos);  // U+FFFD

  const auto html = render_coverage({c}, Format::Html);
  check_self_contained(html);
  CHECK(html.find("x&quot;,&lt;script&gt;alert(&#39;1&#39;)&lt;/script&gt;\r\n&amp; ") != std::string::npos);

  // The same in the report and the late list, as office, name and source.
  auto r = sample_report();
  r.offices[0].site = r.offices[0].name = r.offices[0].sources[0].source = kHostile;
  const auto rt = render_report(r, Format::Text);
  CHECK(rt.find('\x1b') == std::string::npos);
  CHECK(rt.find('\r') == std::string::npos);
  check_self_contained(render_report(r, Format::Html));
  CHECK(json::parse(render_report(r, Format::Json))["offices"][0]["name"] == kHostile);
  CHECK(csv_records(render_report(r, Format::Csv)).at(1).at("source") == kHostile);
  auto l = sample_late();
  l.offices[0].name = l.sources[1].site = kHostile;
  const auto lt = render_late(l, Format::Text);
  CHECK(lt.find('\x1b') == std::string::npos);
  CHECK(lt.find('\r') == std::string::npos);
  check_self_contained(render_late(l, Format::Html));
}

TEST_CASE("huge counts and odd ranges print whole", "[unit][receiver]") {
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
  constexpr auto kMin = std::numeric_limits<std::int64_t>::min();
  StoreCoverage c;
  c.site = "s";
  c.store = "t";
  c.max_seq = kMax;
  c.received = kMax;
  c.hole_count = kMin;
  for (int i = 0; i < 21; ++i) c.holes.push_back({kMin, kMax});  // seqs beyond any count
  c.holes.push_back({10, 5});                                      // reversed: no seqs
  const auto t = render_coverage({c}, Format::Text);
  INFO(t);
  CHECK(t.find("100.00 %  9,223,372,036,854,775,807 of 9,223,372,036,854,775,807 seqs received") != std::string::npos);
  CHECK(t.find("-9,223,372,036,854,775,808 seqs: -9223372036854775808-9223372036854775807") != std::string::npos);
  CHECK(t.find("… and 2 more ranges (18446744073709551615 seqs)") != std::string::npos);
  CHECK(csv_records(render_coverage({c}, Format::Csv)).at(0).at("max_seq") == "9223372036854775807");
  const auto j = json::parse(render_coverage({c}, Format::Json));
  CHECK(j["stores"][0]["max_seq"].get<std::int64_t>() == kMax);
  CHECK(j["stores"][0]["holes"][0][0].get<std::int64_t>() == kMin);

  auto r = sample_report();
  r.offices[0].sources[0].readings = kMax;
  r.offices[0].late = {{TimePoint::min(), TimePoint::max()}};
  r.offices[0].availability_pct = -3;  // out of range: shown clamped
  const auto rt = render_report(r, Format::Text);
  INFO(rt);
  CHECK(rt.find("9,223,372,036,854,775,807") != std::string::npos);
  CHECK(rt.find("  availability      0.00 %  late 1 period, 213,503 d 23 h") != std::string::npos);
  CHECK(csv_records(render_report(r, Format::Csv)).at(1).at("readings") == "9223372036854775807");
  CHECK(json::parse(render_report(r, Format::Json))["offices"][0]["sources"][0]["readings"].get<std::int64_t>() == kMax);
}
