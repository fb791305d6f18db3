#pragma once
// `ioc-edge report --from DATE --to DATE [--format text|csv|json|html]`: the data-update report
// for the IOC's operations team (issue 11; README.md, "The data-update report"), made from the
// hourly roll-ups (ops/rollup_store.h), which it opens read-only: it may run while the daemon runs.
//
// The period: the days from `from` to `to`, both included, at a fixed UTC offset (`--utc-offset`,
// else `[report] utc_offset`, else +07:00, Vietnam; no summer time), that is the UTC hours
// starting in [from 00:00, to+1 00:00) at that offset (with an offset that is not whole hours,
// the hours starting in that range). A period reaching past now ends now ("counted until").
//
// Figures (what each means: README.md):
//   per source   expected and received updates, completeness %, stale periods (count, total
//                time, list), good and bad readings, readings dropped by the buffer
//   gateway      time the daemon ran and did not run, uplink connected time as % of the time the
//                daemon ran and of the period, outages and the longest
// Called from main.cpp; pure apart from reading the file and writing to the streams.
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "ops/rollup_store.h"

namespace ioc_edge {

struct Settings;

struct ReportOptions {
  std::string db_path;          // <data_dir>/rollups.db
  std::string from, to;         // YYYY-MM-DD, inclusive
  std::string format = "text";  // text, csv, json, html
  int utc_offset_minutes = 7 * 60;
  std::string site;             // for the heading
  std::int64_t now_ms = 0;      // the report's "now" (0: the wall clock)
};

// The command line's view: `utc_offset` as given ("" : the file's [report] utc_offset).
struct ReportArgs {
  std::string from, to, format = "text", utc_offset;
};

// Exit codes (docs/design.md section 6): 0 printed; 1 no roll-up file, or no data in the period;
// 2 bad dates, --from after --to, a bad offset or format.
int run_report(const ReportOptions& opts, std::ostream& out, std::ostream& err);
int run_report(const Settings& settings, const ReportArgs& args, std::ostream& out, std::ostream& err);

// The report as figures, before formatting.
struct ReportSource {
  std::string name;
  bool watched = false;             // an expected_every was in force in some hour of the period
  std::int64_t expected = 0;        // updates expected (rounded)
  std::int64_t received = 0;        // of them, received
  double completeness_pct = 0;      // received / expected, 2 decimals (computed before rounding)
  std::int64_t stale_periods = 0;   // periods overlapping the report's period
  std::int64_t stale_s = 0;         // time stale within the period
  std::vector<StalePeriod> stale;   // the periods, cut to the report's period
  std::int64_t good = 0, bad = 0, dropped = 0;
};

struct Report {
  std::string site, from, to;
  int utc_offset_minutes = 0;
  std::int64_t start_ms = 0, end_ms = 0;  // [start, end): end is to+1 00:00, or now when earlier
  std::int64_t generated_ms = 0;
  std::int64_t first_hour = 0, last_hour = 0, hours = 0;  // hours with the gateway running
  std::int64_t period_s = 0, running_s = 0, not_running_s = 0, connected_s = 0;
  double running_pct = 0, availability_pct = 0, availability_of_period_pct = 0;
  std::int64_t outages = 0, longest_outage_s = 0;
  std::vector<ReportSource> sources;
};

std::string format_text(const Report& r);
std::string format_csv(const Report& r);
std::string format_json(const Report& r);
std::string format_html(const Report& r);

}  // namespace ioc_edge
