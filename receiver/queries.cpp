#include "receiver/queries.h"

#include <algorithm>
#include <map>

#include "receiver/schema.h"

namespace ioc_receiver {

namespace {

std::string seconds(std::chrono::milliseconds d) { return std::to_string(d.count() / 1000.0); }

TimePoint from_ms(long long ms) { return TimePoint(std::chrono::milliseconds(ms)); }

std::string ms_text(TimePoint t) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count());
}

std::optional<TimePoint> opt_time(const pg::Result& r, int row, int col) {
  if (r.is_null(row, col)) return std::nullopt;
  return from_ms(r.integer(row, col));
}

// "{[1,501),[731,732)}" (an int8multirange's text) as inclusive ranges.
std::vector<SeqRange> parse_multirange(std::string_view text) {
  std::vector<SeqRange> out;
  std::size_t i = 0;
  while ((i = text.find('[', i)) != std::string_view::npos) {
    const auto comma = text.find(',', i);
    const auto close = text.find(')', comma);
    if (comma == std::string_view::npos || close == std::string_view::npos) break;
    const auto lo = std::stoll(std::string(text.substr(i + 1, comma - i - 1)));
    const auto hi = std::stoll(std::string(text.substr(comma + 1, close - comma - 1)));
    out.push_back({lo, hi - 1});
    i = close;
  }
  return out;
}

// A time as SQL: to_timestamp of milliseconds.
constexpr const char* kMs = "(extract(epoch FROM %)*1000)::bigint";

std::string ms(const std::string& expr) {
  std::string s = kMs;
  return s.replace(s.find('%'), 1, expr);
}

}  // namespace

std::vector<StoreCoverage> query_coverage(pg::Connection& db, const Settings& s, const std::optional<std::string>& site) {
  // Missing seqs at or below the highest seq received before the grace period are holes, unless
  // the office's last status says this store still has a backlog (they may be on their way).
  const auto r = db.exec(
      "WITH c AS (SELECT * FROM coverage WHERE $1::text IS NULL OR site = $1), "
      "settled AS (SELECT site, store, max(last_seq) AS top FROM seq_ranges "
      "  WHERE received_at < now() - make_interval(secs => $2::float8) GROUP BY site, store), "
      "x AS (SELECT c.*, coalesce(st.top, 0) AS top, "
      "  coalesce(o.last_status->>'store' = c.store::text AND (CASE WHEN jsonb_typeof(o.last_status->'backlog') = "
      "    'number' THEN (o.last_status->>'backlog')::numeric > 0 ELSE false END OR CASE WHEN "
      "    jsonb_typeof(o.last_status->'held') = 'number' THEN (o.last_status->>'held')::numeric > 0 ELSE false END), "
      "    false) AS backlog "
      "  FROM c LEFT JOIN settled st USING (site, store) LEFT JOIN offices o ON o.site = c.site), "
      "y AS (SELECT x.*, CASE WHEN backlog THEN '{}'::int8multirange "
      "  ELSE missing * int8multirange(int8range(1, top + 1)) END AS holes FROM x) "
      "SELECT site, store::text, max_seq, ioc_seq_count(received), declared::text, ioc_seq_count(declared), "
      "  holes::text, ioc_seq_count(holes), (missing - holes)::text, ioc_seq_count(missing - holes), " +
          ms("last_received_at") + " FROM y ORDER BY site, store",
      {site, seconds(s.coverage.hole_grace)});
  std::vector<StoreCoverage> out;
  for (int i = 0; i < r.rows(); ++i) {
    StoreCoverage c;
    c.site = r.text(i, 0);
    c.store = r.text(i, 1);
    c.max_seq = r.integer(i, 2);
    c.received = r.integer(i, 3);
    c.declared = parse_multirange(r.text(i, 4));
    c.declared_count = r.integer(i, 5);
    c.holes = parse_multirange(r.text(i, 6));
    c.hole_count = r.integer(i, 7);
    c.pending = parse_multirange(r.text(i, 8));
    c.pending_count = r.integer(i, 9);
    c.last_received_at = opt_time(r, i, 10);
    out.push_back(std::move(c));
  }
  return out;
}

LateList query_late(pg::Connection& db, const Settings& s) {
  LateList late;
  late.at = std::chrono::system_clock::now();
  late.office_after_s = s.late.office_after.count() / 1000.0;
  late.source_factor = s.late.source_factor;
  const auto o = db.exec(
      "SELECT site, coalesce(province, ''), coalesce(name, ''), " + ms("last_heartbeat_at") +
          ", online IS FALSE, extract(epoch FROM now() - coalesce(last_heartbeat_at, first_seen)) "
          "FROM offices WHERE online IS FALSE OR coalesce(last_heartbeat_at, first_seen) < now() - "
          "make_interval(secs => $1::float8) ORDER BY site",
      {seconds(s.late.office_after)});
  for (int i = 0; i < o.rows(); ++i)
    late.offices.push_back({std::string(o.text(i, 0)), std::string(o.text(i, 1)), std::string(o.text(i, 2)),
                            opt_time(o, i, 3), o.text(i, 4) == "t", std::stod(std::string(o.text(i, 5)))});
  // A source is late after factor x its cadence, and never sooner than source_min_silence.
  const auto src = db.exec(
      "SELECT site, source, " + ms("last_good_at") +
          ", extract(epoch FROM coalesce(expected_every, learned_every)), expected_every IS NOT NULL, "
          "extract(epoch FROM now() - coalesce(last_good_at, first_seen)) FROM sources "
          "WHERE coalesce(expected_every, learned_every) IS NOT NULL AND coalesce(last_good_at, first_seen) < now() - "
          "greatest(coalesce(expected_every, learned_every) * $1::float8, make_interval(secs => $2::float8)) "
          "ORDER BY site, source",
      {std::to_string(s.late.source_factor), seconds(s.late.source_min_silence)});
  for (int i = 0; i < src.rows(); ++i)
    late.sources.push_back({std::string(src.text(i, 0)), std::string(src.text(i, 1)), opt_time(src, i, 2),
                            std::stod(std::string(src.text(i, 3))), src.text(i, 4) == "t",
                            std::stod(std::string(src.text(i, 5)))});
  return late;
}

void merge_seq_ranges(pg::Connection& db, std::chrono::milliseconds older_than) {
  db.exec("BEGIN");
  try {
    const auto got = db.exec("SELECT pg_try_advisory_xact_lock(" + std::to_string(kSchemaLockKey + 1) + ")");
    if (got.text(0, 0) != "t") {
      db.exec("COMMIT");
      return;
    }
    db.exec("CREATE TEMP TABLE IF NOT EXISTS merge_seqs (site text, store uuid, first_seq bigint, last_seq bigint, "
            "received_at timestamptz) ON COMMIT DELETE ROWS");
    // Only the stores with more than one old row: a store already merged is left alone.
    db.exec("WITH old AS (DELETE FROM seq_ranges WHERE received_at < now() - make_interval(secs => $1::float8) "
            "  AND (site, store) IN (SELECT site, store FROM seq_ranges WHERE received_at < now() - "
            "  make_interval(secs => $1::float8) GROUP BY site, store HAVING count(*) > 1) "
            "  RETURNING site, store, first_seq, last_seq, received_at), "
            "m AS (SELECT site, store, range_agg(int8range(first_seq, last_seq, '[]')) AS r, max(received_at) AS t "
            "  FROM old GROUP BY site, store) "
            "INSERT INTO merge_seqs SELECT site, store, lower(u), upper(u) - 1, t FROM m, unnest(m.r) AS u",
            {seconds(older_than)});
    db.exec("INSERT INTO seq_ranges AS r (site, store, first_seq, last_seq, received_at) "
            "SELECT site, store, first_seq, last_seq, received_at FROM merge_seqs ORDER BY site, store, first_seq "
            "ON CONFLICT (site, store, first_seq) DO UPDATE SET last_seq = greatest(r.last_seq, excluded.last_seq)");
    db.exec("COMMIT");
  } catch (...) {
    try {
      db.exec("ROLLBACK");
    } catch (...) {
    }
    throw;
  }
}

Report query_report(pg::Connection& db, const Settings& s, TimePoint from, TimePoint to) {
  Report rep;
  rep.from = from;
  rep.to = to;
  rep.generated_at = std::chrono::system_clock::now();
  rep.office_after_s = s.late.office_after.count() / 1000.0;
  const pg::Params window = {ms_text(from), ms_text(to)};
  const std::string f = "to_timestamp($1::bigint / 1000.0)", t = "to_timestamp($2::bigint / 1000.0)";

  std::map<std::string, std::size_t> index;
  const auto offices = db.exec(
      "SELECT site, coalesce(province, ''), coalesce(name, ''), coalesce(unit_code, ''), coalesce(agency_code, ''), " +
          ms("first_seen") + " FROM offices WHERE first_seen < to_timestamp($1::bigint / 1000.0) ORDER BY site",
      {ms_text(to)});
  std::map<std::string, TimePoint> known_from;  // an office counts from the start or from when it was first seen
  for (int i = 0; i < offices.rows(); ++i) {
    ReportOffice o;
    o.site = offices.text(i, 0);
    o.province = offices.text(i, 1);
    o.name = offices.text(i, 2);
    o.unit_code = offices.text(i, 3);
    o.agency_code = offices.text(i, 4);
    known_from[o.site] = std::max(from, from_ms(offices.integer(i, 5)));
    index[o.site] = rep.offices.size();
    rep.offices.push_back(std::move(o));
  }
  const auto office = [&](std::string_view site) -> ReportOffice* {
    const auto it = index.find(std::string(site));
    return it == index.end() ? nullptr : &rep.offices[it->second];
  };

  // Completeness: per store, the seqs from the lowest to the highest of the period's readings,
  // events and blobs (and of the gaps declared in it): received, declared dropped, holes.
  const auto seqs = db.exec(
      "WITH rows AS (SELECT site, store, seq FROM readings WHERE ts >= " + f + " AND ts < " + t +
          " UNION ALL SELECT site, store, seq FROM events WHERE ts >= " + f + " AND ts < " + t +
          " UNION ALL SELECT site, store, seq FROM blobs WHERE ts >= " + f + " AND ts < " + t +
          " UNION ALL SELECT site, store, first_seq FROM gaps WHERE declared_at >= " + f + " AND declared_at < " + t +
          " UNION ALL SELECT site, store, last_seq FROM gaps WHERE declared_at >= " + f + " AND declared_at < " + t +
          "), span AS (SELECT site, store, int8multirange(int8range(min(seq), max(seq), '[]')) AS m FROM rows "
          "  GROUP BY site, store), "
          "got AS (SELECT s.site, s.store, s.m, "
          "  coalesce((SELECT range_agg(int8range(first_seq, last_seq, '[]')) FROM seq_ranges r "
          "    WHERE r.site = s.site AND r.store = s.store), '{}') * s.m AS received, "
          "  coalesce((SELECT range_agg(int8range(first_seq, last_seq, '[]')) FROM gaps g "
          "    WHERE g.site = s.site AND g.store = s.store), '{}') * s.m AS declared FROM span s) "
          "SELECT site, sum(ioc_seq_count(m)), sum(ioc_seq_count(received)), "
          "  sum(ioc_seq_count(declared - received)), sum(ioc_seq_count(m - received - declared)) "
          "FROM got GROUP BY site",
      window);
  for (int i = 0; i < seqs.rows(); ++i)
    if (auto* o = office(seqs.text(i, 0))) {
      o->seqs_expected = seqs.integer(i, 1);
      o->seqs_received = seqs.integer(i, 2);
      o->declared_dropped = seqs.integer(i, 3);
      o->holes = seqs.integer(i, 4);
    }

  // Late periods from the heartbeats: an offline spell lasts until the next status message; a
  // silence longer than office_after is late from office_after after the last heartbeat.
  const auto end = std::min(to, rep.generated_at);
  const pg::Params hb_params = {ms_text(from), ms_text(end), seconds(s.late.office_after)};
  const auto hb = db.exec(
      "WITH h AS (SELECT site, received_at, state, lead(received_at) OVER (PARTITION BY site ORDER BY received_at) "
      "  AS next FROM heartbeats WHERE received_at >= to_timestamp($1::bigint / 1000.0) - "
      "  make_interval(secs => $3::float8) AND received_at < to_timestamp($2::bigint / 1000.0)), "
      "p AS (SELECT site, CASE WHEN state = 'offline' THEN received_at ELSE received_at + make_interval(secs => "
      "  $3::float8) END AS a, coalesce(next, to_timestamp($2::bigint / 1000.0)) AS b FROM h) "
      "SELECT site, " + ms("greatest(a, to_timestamp($1::bigint / 1000.0))") + ", " + ms("b") +
          " FROM p WHERE b > greatest(a, to_timestamp($1::bigint / 1000.0)) ORDER BY site, a",
      hb_params);
  for (int i = 0; i < hb.rows(); ++i)
    if (auto* o = office(hb.text(i, 0))) o->late.push_back({from_ms(hb.integer(i, 1)), from_ms(hb.integer(i, 2))});
  // Before an office's first heartbeat of the window it was late too (silent since before it),
  // counted from the start of the period or from when the office was first seen, if later.
  const auto first = db.exec(
      "SELECT o.site, " + ms("min(h.received_at)") +
          " FROM offices o LEFT JOIN heartbeats h ON h.site = o.site AND h.received_at >= "
          "to_timestamp($1::bigint / 1000.0) - make_interval(secs => $3::float8) AND h.received_at < "
          "to_timestamp($2::bigint / 1000.0) GROUP BY o.site",
      hb_params);
  for (int i = 0; i < first.rows(); ++i) {
    auto* o = office(first.text(i, 0));
    if (!o) continue;
    const auto from_plus = known_from[o->site] + std::chrono::duration_cast<TimePoint::duration>(s.late.office_after);
    const TimePoint first_hb = first.is_null(i, 1) ? end : from_ms(first.integer(i, 1));
    if (first_hb > from_plus) o->late.insert(o->late.begin(), {from_plus, std::max(from_plus, first_hb)});
  }
  for (auto& o : rep.offices) {
    const auto start = known_from[o.site];
    const double length = std::max(1e-9, std::chrono::duration<double>(end - start).count());
    o.late.erase(std::remove_if(o.late.begin(), o.late.end(), [](const Period& p) { return p.to <= p.from; }),
                 o.late.end());
    double late_s = 0;
    for (const auto& p : o.late) late_s += p.seconds();
    o.availability_pct = end <= start ? 100.0 : std::clamp(100.0 * (1.0 - late_s / length), 0.0, 100.0);
  }

  // Sources: readings in the period.
  const auto source = [&](std::string_view site, std::string_view name) -> ReportSource* {
    auto* o = office(site);
    if (!o) return nullptr;
    for (auto& rs : o->sources)
      if (rs.source == name) return &rs;
    o->sources.push_back({});
    o->sources.back().source = name;
    return &o->sources.back();
  };
  const auto counts = db.exec(
      "SELECT site, source, count(*), count(*) FILTER (WHERE quality <> 'bad'), count(*) FILTER (WHERE quality = "
      "'bad'), " + ms("max(ts) FILTER (WHERE quality <> 'bad')") + " FROM readings WHERE ts >= " + f + " AND ts < " +
          t + " GROUP BY site, source ORDER BY site, source",
      window);
  for (int i = 0; i < counts.rows(); ++i)
    if (auto* rs = source(counts.text(i, 0), counts.text(i, 1))) {
      rs->readings = counts.integer(i, 2);
      rs->good = counts.integer(i, 3);
      rs->bad = counts.integer(i, 4);
      rs->last_good = opt_time(counts, i, 5);
    }
  // Stale periods: source_stale .. source_recovered (a recovery without its stale event in the
  // period: stale since the period began; a stale event without recovery: until its end).
  const auto stale = db.exec("SELECT site, source, event, " + ms("ts") +
                                 " FROM events WHERE event IN ('source_stale', 'source_recovered') AND ts >= " + f +
                                 " AND ts < " + t + " ORDER BY site, source, ts, seq",
                             window);
  std::map<std::pair<std::string, std::string>, TimePoint> open;
  for (int i = 0; i < stale.rows(); ++i) {
    const std::pair<std::string, std::string> key{std::string(stale.text(i, 0)), std::string(stale.text(i, 1))};
    auto* rs = source(key.first, key.second);
    if (!rs) continue;
    const auto at = from_ms(stale.integer(i, 3));
    if (stale.text(i, 2) == "source_stale") {
      open.emplace(key, at);
    } else {
      const auto it = open.find(key);
      rs->stale.push_back({it == open.end() ? from : it->second, at});
      if (it != open.end()) open.erase(it);
    }
  }
  for (const auto& [key, at] : open)
    if (auto* rs = source(key.first, key.second)) rs->stale.push_back({at, std::max(at, end)});
  // Declared drops per source (gap events name them) and readings refused at the office.
  const auto drops = db.exec(
      "SELECT e.site, kv.key, sum(kv.value::text::numeric)::bigint FROM events e, jsonb_each(e.body->'sources') AS kv "
      "WHERE e.event = 'gap' AND jsonb_typeof(e.body->'sources') = 'object' AND jsonb_typeof(kv.value) = 'number' "
      "AND e.ts >= " + f + " AND e.ts < " + t +
          " GROUP BY 1, 2",
      window);
  for (int i = 0; i < drops.rows(); ++i)
    if (auto* rs = source(drops.text(i, 0), drops.text(i, 1))) rs->declared_dropped = drops.integer(i, 2);
  const auto refused = db.exec(
      "SELECT site, source, sum((body->>'count')::numeric)::bigint FROM events WHERE event = 'refused' AND "
      "jsonb_typeof(body->'count') = 'number' AND ts >= " + f +
          " AND ts < " + t + " GROUP BY 1, 2",
      window);
  for (int i = 0; i < refused.rows(); ++i)
    if (auto* rs = source(refused.text(i, 0), refused.text(i, 1))) rs->refused = refused.integer(i, 2);
  for (auto& o : rep.offices)
    std::sort(o.sources.begin(), o.sources.end(),
              [](const ReportSource& a, const ReportSource& b) { return a.source < b.source; });
  return rep;
}

}  // namespace ioc_receiver
