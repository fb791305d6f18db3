#pragma once
// The receiver's findings read from PostgreSQL: coverage, the late list, the report
// (receiver/findings.h holds the results; docs/ioc-database.md defines every figure).
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "receiver/findings.h"
#include "receiver/pg.h"
#include "receiver/settings.h"

namespace ioc_receiver {

// Per (site, store), optionally of one site. Missing seqs are holes once no seq above them was
// received within [coverage] hole_grace, and while the office's last status reports no backlog;
// before that they are pending.
std::vector<StoreCoverage> query_coverage(pg::Connection& db, const Settings& s, const std::optional<std::string>& site);

// Offices whose last heartbeat is older than [late] office_after (or that said offline); sources
// with no good reading for source_factor times their cadence.
LateList query_late(pg::Connection& db, const Settings& s);

// The report for [from, to).
Report query_report(pg::Connection& db, const Settings& s, TimePoint from, TimePoint to);

// Merges the seq_ranges rows of each store older than `older_than` into as few rows as possible
// (one per run of received seqs). Rows younger than that keep their own time: the hole grace is
// measured from them. Skips the work when another receiver is doing it.
void merge_seq_ranges(pg::Connection& db, std::chrono::milliseconds older_than);

}  // namespace ioc_receiver
