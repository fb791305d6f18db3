// ioc-receiver: the IOC-side program (docs/ioc-database.md). Exit codes as the gateway's: 0 ok,
// 1 runtime failure (e.g. the database cannot be reached), 2 bad usage, 78 invalid configuration.
//
// Commands: run (receive into the database), check-config, migrate, coverage, late, report,
// version. coverage, late and report only read the database.
#include <chrono>
#include <iostream>
#include <cstdio>

#include <CLI/CLI.hpp>

#include "core/log.h"
#include "receiver/findings.h"
#include "receiver/pg.h"
#include "receiver/queries.h"
#include "receiver/schema.h"
#include "receiver/service.h"
#include "receiver/settings.h"

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
constexpr int kExitConfig = 78;

std::optional<ioc_receiver::Settings> load(const std::string& file) {
  auto res = ioc_receiver::load_settings(file);
  if (!res.settings) {
    std::cerr << res.diagnostics.report();
  }
  return std::move(res.settings);
}

int cmd_migrate(const ioc_receiver::Settings& s) {
  try {
    ioc_receiver::pg::Connection db(s.database.url);
    const auto m = ioc_receiver::migrate(db);
    if (m.from == m.to)
      std::cout << "schema: already at version " << m.to << "\n";
    else
      std::cout << "schema: version " << m.from << " -> " << m.to << "\n";
    const auto made = ioc_receiver::ensure_partitions(db, std::chrono::system_clock::now(), s.database.partitions_ahead);
    std::cout << "readings partitions: " << made.size() << " created";
    for (const auto& name : made) std::cout << " " << name;
    std::cout << " (" << s.database.partitions_ahead << " months ahead)\n";
    return kExitOk;
  } catch (const ioc_receiver::pg::Error& e) {
    std::cerr << "ioc-receiver migrate: " << e.what() << "\n";
    return kExitFailure;
  }
}

ioc_receiver::Format format_of(const std::string& name) {
  if (name == "csv") return ioc_receiver::Format::Csv;
  if (name == "json") return ioc_receiver::Format::Json;
  if (name == "html") return ioc_receiver::Format::Html;
  return ioc_receiver::Format::Text;
}

// "2026-10-01" or "2026-10-01T00:00:00Z" (UTC) as a time point.
std::optional<ioc_receiver::TimePoint> parse_day_or_time(const std::string& text) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0, n = 0;
  if (text.size() == 10) {
    if (std::sscanf(text.c_str(), "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10) return std::nullopt;
  } else if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2dZ%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 ||
             n != static_cast<int>(text.size()) || h > 23 || mi > 59 || sec > 59) {
    return std::nullopt;
  }
  const std::chrono::year_month_day ymd{std::chrono::year(y), std::chrono::month(static_cast<unsigned>(mo)),
                                        std::chrono::day(static_cast<unsigned>(d))};
  if (!ymd.ok()) return std::nullopt;
  return ioc_receiver::TimePoint(std::chrono::sys_days(ymd)) + std::chrono::hours(h) + std::chrono::minutes(mi) +
         std::chrono::seconds(sec);
}

// Runs `fn` with a database connection; 1 and the database's words when it fails.
template <typename Fn>
int with_db(const ioc_receiver::Settings& s, const char* command, Fn fn) {
  try {
    ioc_receiver::pg::Connection db(s.database.url);
    db.exec("SET TIME ZONE 'UTC'");
    if (ioc_receiver::schema_version(db) != ioc_receiver::kSchemaVersion) {
      std::cerr << "ioc-receiver " << command << ": the database is not at schema version "
                << ioc_receiver::kSchemaVersion << ": run `ioc-receiver migrate -c " << s.file << "`\n";
      return kExitFailure;
    }
    return fn(db);
  } catch (const ioc_receiver::pg::Error& e) {
    std::cerr << "ioc-receiver " << command << ": " << e.what() << "\n";
    return kExitFailure;
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ioc-receiver: stores every office's stream from the IOC's broker in PostgreSQL exactly once"};
  app.require_subcommand(1);
  std::string config = "/etc/ioc-receiver/ioc-receiver.toml";

  std::string check_file;
  auto* check = app.add_subcommand("check-config", "validate a configuration file; exit 0 if valid, 78 if not");
  check->add_option("file", check_file, "configuration file")->required();

  auto* migrate = app.add_subcommand(
      "migrate", "create or upgrade the database schema and the months of partitions ahead; safe to run again");
  migrate->add_option("-c,--config", config, "configuration file")->capture_default_str();

  auto* run = app.add_subcommand("run", "receive the offices' messages from the broker into the database until SIGTERM");
  run->add_option("-c,--config", config, "configuration file")->capture_default_str();

  const std::vector<std::string> formats = {"text", "csv", "json", "html"};
  std::string format = "text";
  std::string site;
  auto* coverage = app.add_subcommand(
      "coverage", "per office store: seqs received, declared dropped (gaps) and holes (neither, after the grace)");
  coverage->add_option("-c,--config", config, "configuration file")->capture_default_str();
  coverage->add_option("--site", site, "only this office");
  coverage->add_option("--format", format, "text, csv, json or html")->check(CLI::IsMember(formats))->capture_default_str();

  auto* late = app.add_subcommand("late", "offices whose heartbeat is late and sources with no good data for too long");
  late->add_option("-c,--config", config, "configuration file")->capture_default_str();
  late->add_option("--format", format, "text, csv, json or html")->check(CLI::IsMember(formats))->capture_default_str();

  std::string from_text, to_text;
  auto* report = app.add_subcommand(
      "report", "per office and source over a period: completeness, late periods, declared drops, holes, availability");
  report->add_option("-c,--config", config, "configuration file")->capture_default_str();
  report->add_option("--from", from_text, "first day (UTC), 2026-10-01, or a time 2026-10-01T00:00:00Z")->required();
  report->add_option("--to", to_text, "end, exclusive: 2027-01-01 for the fourth quarter of 2026")->required();
  report->add_option("--format", format, "text, csv, json or html")->check(CLI::IsMember(formats))->capture_default_str();

  auto* version = app.add_subcommand("version", "print the version");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }
  if (*version) {
    std::cout << "ioc-receiver " << IOC_EDGE_VERSION << "\n";
    return kExitOk;
  }
  if (*check) {
    const auto s = load(check_file);
    if (!s) return kExitConfig;
    std::cout << check_file << ": ok (broker " << s->broker.url << ", share group "
              << (s->broker.share_group.empty() ? "none" : s->broker.share_group) << ")\n";
    return kExitOk;
  }
  if (*migrate) {
    const auto s = load(config);
    if (!s) return kExitConfig;
    return cmd_migrate(*s);
  }
  if (*run) {
    const auto s = load(config);
    if (!s) return kExitConfig;
    ioc_edge::set_log_level(s->log_level);
    return ioc_receiver::run_receiver(*s);
  }
  if (*coverage) {
    const auto s = load(config);
    if (!s) return kExitConfig;
    return with_db(*s, "coverage", [&](ioc_receiver::pg::Connection& db) {
      const auto c = ioc_receiver::query_coverage(db, *s, site.empty() ? std::nullopt : std::optional(site));
      std::cout << ioc_receiver::render_coverage(c, format_of(format));
      return kExitOk;
    });
  }
  if (*late) {
    const auto s = load(config);
    if (!s) return kExitConfig;
    return with_db(*s, "late", [&](ioc_receiver::pg::Connection& db) {
      std::cout << ioc_receiver::render_late(ioc_receiver::query_late(db, *s), format_of(format));
      return kExitOk;
    });
  }
  if (*report) {
    const auto from = parse_day_or_time(from_text), to = parse_day_or_time(to_text);
    if (!from || !to || *to <= *from) {
      std::cerr << "ioc-receiver report: --from and --to must be days like 2026-10-01 (or times like "
                   "2026-10-01T00:00:00Z), --to after --from\n";
      return kExitUsage;
    }
    const auto s = load(config);
    if (!s) return kExitConfig;
    return with_db(*s, "report", [&](ioc_receiver::pg::Connection& db) {
      std::cout << ioc_receiver::render_report(ioc_receiver::query_report(db, *s, *from, *to), format_of(format));
      return kExitOk;
    });
  }
  return kExitUsage;
}
