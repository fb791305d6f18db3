#pragma once
// The IOC database's schema (docs/ioc-database.md) and its migrations.
//
// migrate() brings a database to kSchemaVersion in one transaction, under a transaction-scoped
// advisory lock: receivers started together migrate it once, the others wait
// and find it done. A database written by a newer ioc-receiver is refused, never downgraded.
//
// `readings` is partitioned by month of the reading's time. ensure_partitions() creates the months
// ahead; a reading outside them lands in the default partition, and when its month's partition is
// created later, its rows move there in the same transaction (PostgreSQL refuses to attach a
// partition whose rows sit in the default one).
#include <chrono>
#include <string>
#include <vector>

#include "receiver/pg.h"

namespace ioc_receiver {

constexpr int kSchemaVersion = 1;
// The advisory lock (pg_advisory_xact_lock) every schema change of ioc-receiver takes.
constexpr long long kSchemaLockKey = 4319117041;

struct MigrateResult {
  int from = 0;  // 0: an empty database
  int to = 0;
};

// Throws pg::Error (also for a database newer than this program: sqlstate "IOC01").
MigrateResult migrate(pg::Connection& db);

// The version the database is at; 0 when it has no ioc-receiver schema.
int schema_version(pg::Connection& db);

// The monthly partitions of `readings` from the month of `now` to `months_ahead` months after it
// (UTC months), named readings_YYYY_MM. Returns the names of those it created.
std::vector<std::string> ensure_partitions(pg::Connection& db, std::chrono::system_clock::time_point now,
                                           int months_ahead);

}  // namespace ioc_receiver
