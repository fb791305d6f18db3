#include "receiver/schema.h"

#include <cstdio>

namespace ioc_receiver {

namespace {

struct Migration {
  int version;
  const char* description;
  const char* sql;
};

// Append only: a released migration is never edited; a change is a new version.
constexpr Migration kMigrations[] = {
    {1, "offices, sources, readings (partitioned by month), events, blobs, gaps, seq_ranges, quarantine", R"sql(
CREATE TABLE offices (
  site            text PRIMARY KEY,
  province        text,
  unit_code       text,
  agency_code     text,
  name            text,
  first_seen      timestamptz NOT NULL DEFAULT now(),
  last_message_at timestamptz,
  last_status     jsonb,
  last_status_at  timestamptz,
  last_heartbeat_at timestamptz,
  online          boolean
);
COMMENT ON TABLE offices IS 'One row per office (site): its codes, its last status message (heartbeat or last will) and whether it said offline';
COMMENT ON COLUMN offices.last_status_at IS 'When the last status message was received (a retained one: when it was sent, as its ts says)';
COMMENT ON COLUMN offices.last_heartbeat_at IS 'When the last online heartbeat was received: what [late] office_after is measured from';

CREATE TABLE heartbeats (
  site        text NOT NULL,
  received_at timestamptz NOT NULL,
  state       text NOT NULL,
  backlog     bigint,
  held        bigint
);
COMMENT ON TABLE heartbeats IS 'Every live status message (heartbeats and last wills, not retained copies): the link availability of the report';
CREATE INDEX heartbeats_site_received ON heartbeats (site, received_at);

CREATE TABLE sources (
  site            text NOT NULL,
  source          text NOT NULL,
  first_seen      timestamptz NOT NULL DEFAULT now(),
  last_reading_at timestamptz,
  last_good_at    timestamptz,
  expected_every  interval,
  learned_every   interval,
  PRIMARY KEY (site, source)
);
COMMENT ON TABLE sources IS 'One row per (office, source named in readings): the last good reading and the cadence, configured (expected_every) or learned';

CREATE TABLE readings (
  site        text NOT NULL,
  store       uuid NOT NULL,
  seq         bigint NOT NULL,
  ts          timestamptz NOT NULL,
  source      text NOT NULL,
  point       text NOT NULL,
  value_num   double precision,
  value_json  jsonb,
  unit        text,
  quality     text NOT NULL CHECK (quality IN ('good', 'uncertain', 'bad')),
  error       text,
  received_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (site, store, seq, ts)
) PARTITION BY RANGE (ts);
COMMENT ON TABLE readings IS 'Every reading once: (site, store, seq) names it (ts is in the key because the table is partitioned by it; a resent reading has the same ts)';
CREATE TABLE readings_default PARTITION OF readings DEFAULT;
CREATE INDEX readings_source_point_ts ON readings (site, source, point, ts);

CREATE TABLE events (
  site        text NOT NULL,
  store       uuid NOT NULL,
  seq         bigint NOT NULL,
  ts          timestamptz NOT NULL,
  source      text NOT NULL,
  event       text NOT NULL,
  body        jsonb NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (site, store, seq)
);
COMMENT ON TABLE events IS 'Events of sources and gateways (source_down, source_stale, gap, rejected, ...), each once';
CREATE INDEX events_site_ts ON events (site, ts);
-- MQTT 3.1.1 blobs carry no metadata: they are matched to their event by the SHA-256 of the bytes.
CREATE INDEX events_blob_sha256 ON events (site, (body->>'sha256')) WHERE event = 'blob';

CREATE TABLE blobs (
  site         text NOT NULL,
  store        uuid NOT NULL,
  seq          bigint NOT NULL,
  ts           timestamptz NOT NULL,
  source       text NOT NULL,
  point        text,
  content_type text,
  size         integer NOT NULL,
  sha256       bytea NOT NULL,
  content      bytea NOT NULL,
  meta         jsonb NOT NULL,
  received_at  timestamptz NOT NULL DEFAULT now(),
  UNIQUE (site, store, seq)
);
COMMENT ON TABLE blobs IS 'Binary payloads (camera snapshots) with their metadata, each once';

CREATE TABLE gaps (
  site        text NOT NULL,
  store       uuid NOT NULL,
  first_seq   bigint NOT NULL,
  last_seq    bigint NOT NULL CHECK (last_seq >= first_seq),
  reason      text NOT NULL,
  declared_at timestamptz NOT NULL,
  event_seq   bigint NOT NULL,
  PRIMARY KEY (site, store, first_seq)
);
COMMENT ON TABLE gaps IS 'Seq ranges an office declared dropped (gap events: a buffer limit); not holes';

CREATE TABLE seq_ranges (
  site      text NOT NULL,
  store     uuid NOT NULL,
  first_seq bigint NOT NULL,
  last_seq  bigint NOT NULL CHECK (last_seq >= first_seq),
  received_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (site, store, first_seq)
);
COMMENT ON TABLE seq_ranges IS 'The seqs received per (site, store), one row per committed batch, merged once older than the hole grace: what coverage is computed from';

-- The number of integers in a multirange of bigints.
CREATE FUNCTION ioc_seq_count(m int8multirange) RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
  $$ SELECT coalesce(sum(upper(r) - lower(r)), 0)::bigint FROM unnest(m) AS r $$;

CREATE VIEW coverage AS
WITH r AS (SELECT site, store, range_agg(int8range(first_seq, last_seq, '[]')) AS received, max(last_seq) AS top,
                  max(received_at) AS last_received_at
             FROM seq_ranges GROUP BY site, store),
     g AS (SELECT site, store, range_agg(int8range(first_seq, last_seq, '[]')) AS declared, max(last_seq) AS top
             FROM gaps GROUP BY site, store)
SELECT site, store, greatest(r.top, g.top) AS max_seq,
       coalesce(r.received, '{}') AS received, coalesce(g.declared, '{}') AS declared,
       int8multirange(int8range(1, greatest(r.top, g.top), '[]')) - coalesce(r.received, '{}') - coalesce(g.declared, '{}')
         AS missing,
       r.last_received_at
  FROM r FULL JOIN g USING (site, store);
COMMENT ON VIEW coverage IS 'Per (site, store): seqs received, declared dropped (gaps) and missing (neither: holes once older than the grace period); ioc-receiver coverage splits missing into holes and pending';

CREATE TABLE quarantine (
  id            bigserial PRIMARY KEY,
  received_at   timestamptz NOT NULL DEFAULT now(),
  topic         text NOT NULL,
  site_in_topic text,
  reason        text NOT NULL,
  payload       bytea NOT NULL,
  properties    jsonb
);
COMMENT ON TABLE quarantine IS 'Messages refused (invalid against docs/schema, or a site other than their topic''s), kept with the reason, never stored as data';
)sql"},
};

// One advisory lock for every schema change (migrations and partitions) of this program.
const std::string kLock = "SELECT pg_advisory_xact_lock(" + std::to_string(kSchemaLockKey) + ")";

// Whether the table exists, read from pg_class with the statement's own snapshot. Not
// to_regclass(): it answers from this session's catalog cache, which can still hold "no such
// table" from before another receiver's transaction committed it (a cache that taking an advisory
// lock does not refresh; the two-receiver test caught it).
bool table_exists(pg::Connection& db, const std::string& name) {
  return db.exec("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON "
                 "n.oid = c.relnamespace WHERE c.relname = $1 AND n.nspname = current_schema())",
                 {name})
             .text(0, 0) == "t";
}

int version_now(pg::Connection& db) {
  if (!table_exists(db, "ioc_schema_migrations")) return 0;
  return static_cast<int>(db.exec("SELECT coalesce(max(version), 0) FROM ioc_schema_migrations").integer(0, 0));
}

void rollback(pg::Connection& db) noexcept {
  try {
    db.exec("ROLLBACK");
  } catch (...) {
  }
}

struct Month {
  int year;
  unsigned month;
};

std::string month_start(Month m) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02u-01 00:00:00+00", m.year, m.month);
  return buf;
}

Month next(Month m) { return m.month == 12 ? Month{m.year + 1, 1} : Month{m.year, m.month + 1}; }

}  // namespace

int schema_version(pg::Connection& db) { return version_now(db); }

MigrateResult migrate(pg::Connection& db) {
  MigrateResult result;
  db.exec("BEGIN");
  try {
    db.exec(kLock);
    if (version_now(db) == 0)
      db.exec("CREATE TABLE ioc_schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL "
              "DEFAULT now(), description text NOT NULL);"
              "COMMENT ON TABLE ioc_schema_migrations IS 'The schema versions applied by ioc-receiver migrate "
              "(its own name: other tools keep a schema_migrations table)'");
    result.from = version_now(db);
    if (result.from > kSchemaVersion)
      throw pg::Error("the database is at schema version " + std::to_string(result.from) + ", newer than this " +
                          "ioc-receiver (" + std::to_string(kSchemaVersion) + "): upgrade ioc-receiver",
                      "IOC01");
    result.to = result.from;
    for (const auto& m : kMigrations) {
      if (m.version <= result.from) continue;
      db.exec(m.sql);
      db.exec("INSERT INTO ioc_schema_migrations (version, description) VALUES ($1, $2)",
              {std::to_string(m.version), std::string(m.description)});
      result.to = m.version;
    }
    db.exec("COMMIT");
  } catch (...) {
    rollback(db);
    throw;
  }
  return result;
}

std::vector<std::string> ensure_partitions(pg::Connection& db, std::chrono::system_clock::time_point now,
                                           int months_ahead) {
  const std::chrono::year_month_day ymd{std::chrono::floor<std::chrono::days>(now)};
  Month m{static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month())};
  std::vector<std::string> created;
  for (int i = 0; i <= months_ahead; ++i, m = next(m)) {
    char name[48];
    std::snprintf(name, sizeof name, "readings_%04d_%02u", m.year, m.month);
    if (table_exists(db, name)) continue;
    const std::string from = month_start(m), to = month_start(next(m));
    db.exec("BEGIN");
    try {
      db.exec(kLock);
      if (table_exists(db, name)) {
        db.exec("COMMIT");  // another receiver made it while this one waited for the lock
        continue;
      }
      // Writers must not put a reading of this month into the default partition between the
      // move below and the ATTACH (which would then refuse): they wait for this transaction.
      // Never queue writers behind a long reader (a report holds every partition): give up after
      // 5 s and try again on the next maintenance pass (the month begins in days, not seconds).
      db.exec("SET LOCAL lock_timeout = '5s'");
      db.exec("LOCK TABLE readings_default IN SHARE ROW EXCLUSIVE MODE");
      db.exec(std::string("CREATE TABLE ") + name + " (LIKE readings INCLUDING DEFAULTS INCLUDING CONSTRAINTS)");
      // Readings that arrived before their month had a partition sit in the default one.
      db.exec(std::string("WITH moved AS (DELETE FROM readings_default WHERE ts >= $1 AND ts < $2 RETURNING *) ") +
                  "INSERT INTO " + name + " SELECT * FROM moved",
              {from, to});
      db.exec(std::string("ALTER TABLE readings ATTACH PARTITION ") + name + " FOR VALUES FROM ('" + from +
              "') TO ('" + to + "')");
      db.exec("COMMIT");
    } catch (...) {
      rollback(db);
      throw;
    }
    created.emplace_back(name);
  }
  return created;
}

}  // namespace ioc_receiver
