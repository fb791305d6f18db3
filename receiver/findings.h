#pragma once
// What ioc-receiver finds in its database, as plain data: the seq coverage of every office's store,
// the late offices and sources, the periodic report. receiver/queries.cpp fills these from
// PostgreSQL (docs/ioc-database.md says how each figure is defined); receiver/render.cpp prints
// them for `ioc-receiver coverage`, `late` and `report` and for /metrics. Nothing here touches the
// database, so the renderers are unit-tested on data built by hand.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ioc_receiver {

using TimePoint = std::chrono::system_clock::time_point;

struct SeqRange {
  std::int64_t first = 0, last = 0;  // inclusive
  std::int64_t size() const { return last - first + 1; }
  bool operator==(const SeqRange&) const = default;
};

// One office's store (its outbox, named by a UUID): seqs 1..max_seq.
struct StoreCoverage {
  std::string site, store;
  std::int64_t max_seq = 0;        // the highest seq received or declared dropped
  std::int64_t received = 0;       // seqs received (readings, events, blobs)
  std::vector<SeqRange> declared;  // declared dropped by the office (gap events)
  std::vector<SeqRange> holes;     // neither, older than the grace period: loss nobody declared
  std::vector<SeqRange> pending;   // neither, but still young, or the office reports a backlog
  std::int64_t declared_count = 0, hole_count = 0, pending_count = 0;  // seqs in each list
  std::optional<TimePoint> last_received_at;
  // received / max_seq, in percent (100 when max_seq is 0).
  double completeness_pct() const;
};

struct LateOffice {
  std::string site, province, name;
  std::optional<TimePoint> last_heartbeat;  // none ever received
  bool offline = false;                     // its last will said offline
  double silent_s = 0;                      // since the last heartbeat (or since first seen)
};

struct LateSource {
  std::string site, source;
  std::optional<TimePoint> last_good;  // none ever received
  double cadence_s = 0;                // the configured one, else the learned one
  bool cadence_configured = false;
  double silent_s = 0;                 // since the last good reading (or since first seen)
};

struct LateList {
  TimePoint at;
  double office_after_s = 0, source_factor = 0;
  std::vector<LateOffice> offices;
  std::vector<LateSource> sources;
};

// A period of an office's or a source's silence: [from, to).
struct Period {
  TimePoint from, to;
  double seconds() const { return std::chrono::duration<double>(to - from).count(); }
};

struct ReportSource {
  std::string source;
  std::int64_t readings = 0, good = 0, bad = 0;  // stored, ts in the period (good includes uncertain)
  std::optional<TimePoint> last_good;            // in the period
  std::vector<Period> stale;                     // source_stale .. source_recovered events
  std::int64_t declared_dropped = 0;             // from gap events naming this source
  std::int64_t refused = 0;                      // `refused` events: never got a seq at the office
};

struct ReportOffice {
  std::string site, province, name, unit_code, agency_code;
  // Seqs of the office's stores whose readings fall in the period (docs/ioc-database.md):
  std::int64_t seqs_expected = 0, seqs_received = 0, declared_dropped = 0, holes = 0;
  std::vector<Period> late;     // heartbeat silences longer than [late] office_after, and offline spells
  double availability_pct = 0;  // share of the period not in `late`
  std::vector<ReportSource> sources;
  double completeness_pct() const;  // seqs_received / seqs_expected (100 when none expected)
};

struct Report {
  TimePoint from, to, generated_at;
  double office_after_s = 0;
  std::vector<ReportOffice> offices;
};

enum class Format { Text, Csv, Json, Html };

// UTC, milliseconds: "2026-11-30T09:00:00.000Z".
std::string format_time(TimePoint t);

std::string render_coverage(const std::vector<StoreCoverage>& stores, Format format);
std::string render_late(const LateList& late, Format format);
std::string render_report(const Report& report, Format format);

}  // namespace ioc_receiver
