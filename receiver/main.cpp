// ioc-receiver: the IOC-side program (docs/ioc-database.md). Exit codes as the gateway's: 0 ok,
// 1 runtime failure (e.g. the database cannot be reached), 2 bad usage, 78 invalid configuration.
//
// Built so far: check-config and migrate. Taking the offices' streams from the broker (run) and
// the coverage, late and report commands are the next steps of docs/ioc-database.md.
#include <chrono>
#include <iostream>

#include <CLI/CLI.hpp>

#include "receiver/pg.h"
#include "receiver/schema.h"
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
  return kExitUsage;
}
