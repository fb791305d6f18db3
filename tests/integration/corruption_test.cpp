// A buffer file damaged on disk (a bad sector, a torn write on cheap flash) found by the running
// daemon: every readable record still reaches the IOC, the unreadable seqs are named in a gap
// event, the damaged file is kept, and the status says so (core/outbox.h, invariant 10).
#include <algorithm>
#include <filesystem>
#include <fstream>

#include "integration/daemon_rig.h"

using namespace ioc_edge::test;

namespace {

// Every row of `sql` (integer columns), read with a read-only connection.
std::vector<std::vector<std::int64_t>> int_rows(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  std::vector<std::vector<std::int64_t>> out;
  const int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  INFO(path << ": " << (db ? sqlite3_errmsg(db) : "out of memory"));
  REQUIRE(rc == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  const int prc = sqlite3_prepare_v2(db, sql, -1, &st, nullptr);
  INFO(sql << ": " << sqlite3_errmsg(db));
  REQUIRE(prc == SQLITE_OK);
  int step;
  while ((step = sqlite3_step(st)) == SQLITE_ROW) {
    std::vector<std::int64_t> row;
    for (int c = 0; c < sqlite3_column_count(st); ++c) row.push_back(sqlite3_column_int64(st, c));
    out.push_back(std::move(row));
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  REQUIRE(step == SQLITE_DONE);
  return out;
}

// A page of the records table's b-tree, as dbstat describes it.
struct TreePage {
  std::string path;  // "/" the root, "/000/" its first child, ...; "/000/003+000001" the second
                     // overflow page of cell 3 of page "/000/"
  std::int64_t pageno = 0;
  std::string type;  // internal, leaf, overflow
  std::int64_t ncell = 0;
};

std::vector<TreePage> records_tree(const std::string& path) {
  sqlite3* db = nullptr;
  std::vector<TreePage> out;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  const int prc =
      sqlite3_prepare_v2(db, "SELECT path, pageno, pagetype, ncell FROM dbstat WHERE name='records'", -1, &st, nullptr);
  INFO("dbstat: " << sqlite3_errmsg(db));
  REQUIRE(prc == SQLITE_OK);
  int step;
  while ((step = sqlite3_step(st)) == SQLITE_ROW)
    out.push_back({reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), sqlite3_column_int64(st, 1),
                   reinterpret_cast<const char*>(sqlite3_column_text(st, 2)), sqlite3_column_int64(st, 3)});
  sqlite3_finalize(st);
  sqlite3_close(db);
  REQUIRE(step == SQLITE_DONE);
  return out;
}

std::int64_t int_value(const std::string& path, const char* sql) {
  const auto rows = int_rows(path, sql);
  REQUIRE(rows.size() == 1);
  return rows.front().at(0);
}

std::string log_tail(const std::string& log, std::size_t bytes = 6000) {
  return log.size() <= bytes ? log : "...\n" + log.substr(log.size() - bytes);
}

}  // namespace

TEST_CASE("garbage pages in the buffer file: the running daemon salvages it, delivers every readable reading and "
          "names the rest",
          "[integration][corrupt]") {
  RigOptions o;
  // 2,000 readings/s in 10 ms ticks: records of about 20 readings. On the store's 1 KiB pages that
  // is one record per leaf plus its overflow pages, so about a third of the file is leaves of
  // records (eight damaged pages mid-file always include some) and eight pages hold a hundred
  // readings or so, not thousands.
  o.sources = "[[source]]\nname = \"tram-bom-1\"\ntype = \"generator\"\nrate = 2000\npoints = 4\n";
  DaemonRig rig(o);
  const auto data_dir = rig.options().data_dir;
  const auto db = data_dir + "/outbox.db";

  // 1. The link is down: a backlog of about 20,000 readings builds up, then a clean stop
  //    checkpoints it all into outbox.db.
  rig.proxy().cut();
  rig.start();
  {
    const bool filled = wait_until([&] { return rig.backlog() >= 20000; }, 60s, 100ms);
    INFO("backlog " << rig.backlog() << "\n" << log_tail(rig.daemon_log()));
    REQUIRE(filled);
  }
  REQUIRE(rig.stop() == 0);
  REQUIRE(rig.collector().distinct_data_seqs() == 0);  // nothing reached the IOC before the damage
  {
    std::error_code ec;
    const auto wal = std::filesystem::file_size(db + "-wal", ec);
    INFO("a clean stop leaves no WAL behind (" << wal << " bytes)");
    REQUIRE((ec || wal == 0));
  }

  // 2. What the file holds, then eight pages of garbage from the middle on; at least one of them
  //    holds records (a leaf of the table), so readings are lost, not only index entries.
  const auto rows = int_rows(db, "SELECT seq, n FROM records ORDER BY seq");
  std::set<std::int64_t> stored;
  std::size_t overlaps = 0;
  for (const auto& row : rows) {
    if (row.at(1) < 1) ++overlaps;  // not a record the writer could have made
    for (auto s = row.at(0) - row.at(1) + 1; s <= row.at(0); ++s) overlaps += !stored.insert(s).second;
  }
  REQUIRE(overlaps == 0);  // a record covers seq-n+1..seq (n >= 1), and no two records share a seq
  REQUIRE(stored.size() >= 20000);
  const auto page_size = int_value(db, "PRAGMA page_size");
  const auto pages = int_value(db, "PRAGMA page_count");
  const std::int64_t first_bad = pages / 2;
  constexpr int kBadPages = 8;
  const auto damaged = [&](std::int64_t p) { return p >= first_bad && p < first_bad + kBadPages; };

  // Which seqs the damage can take: those on a damaged leaf, below a damaged internal page (its
  // whole subtree is out of reach, however healthy its leaves), or with a damaged overflow page.
  // The leaves in b-tree order hold the records in seq order, ncell each.
  auto tree = records_tree(db);
  std::vector<std::string> lost_subtrees;                       // paths of damaged tree pages
  std::set<std::pair<std::string, std::int64_t>> lost_cells;    // (leaf path, cell) with a damaged overflow page
  std::vector<const TreePage*> leaves;
  std::int64_t bad_leaves = 0, bad_internal = 0, bad_overflow = 0;
  for (const auto& p : tree) {
    if (p.type == "leaf") leaves.push_back(&p);
    if (!damaged(p.pageno)) continue;
    if (p.type == "overflow") {
      ++bad_overflow;
      const auto slash = p.path.rfind('/'), plus = p.path.find('+', slash);
      REQUIRE(plus != std::string::npos);
      lost_cells.emplace(p.path.substr(0, slash + 1), std::stoll(p.path.substr(slash + 1, plus - slash - 1), nullptr, 16));
    } else {
      (p.type == "leaf" ? bad_leaves : bad_internal) += 1;
      lost_subtrees.push_back(p.path);
    }
  }
  std::sort(leaves.begin(), leaves.end(), [](const TreePage* a, const TreePage* b) { return a->path < b->path; });
  std::set<std::int64_t> at_risk;
  {
    std::size_t k = 0;
    for (const auto* leaf : leaves) {
      bool below_damage = false;
      for (const auto& t : lost_subtrees) below_damage |= leaf->path.rfind(t, 0) == 0;
      for (std::int64_t c = 0; c < leaf->ncell && k < rows.size(); ++c, ++k) {
        if (below_damage || lost_cells.count({leaf->path, c}))
          for (auto s = rows[k].at(0) - rows[k].at(1) + 1; s <= rows[k].at(0); ++s) at_risk.insert(s);
      }
    }
    std::int64_t cells = 0;
    for (const auto* leaf : leaves) cells += leaf->ncell;
    REQUIRE(cells == static_cast<std::int64_t>(rows.size()));  // every record sits on one leaf cell
  }
  INFO(pages << " pages of " << page_size << " bytes, " << leaves.size() << " leaves of records, damaged from page "
             << first_bad);
  REQUIRE(bad_leaves > 0);
  write_garbage_pages(db, first_bad, kBadPages, page_size);
  CHECK(rig.integrity_check() != "ok");

  // 3. Again, without sources (no new data) and with the link up.
  rig.options().sources = "";
  rig.rewrite_config();
  rig.proxy().restore();
  const auto started = std::chrono::steady_clock::now();
  rig.start();

  // 4. Every stored seq reaches the IOC or is named in a gap event.
  std::set<std::int64_t> got, named;
  std::size_t missing = 0;
  const bool accounted = wait_until([&] {
    got = rig.received_seqs();
    named = rig.gap_seqs();
    missing = 0;
    for (const auto s : stored) missing += !got.count(s) && !named.count(s);
    return missing == 0;
  }, 60s, 200ms);
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  INFO("missing " << missing << " of " << stored.size() << "; received " << got.size() << ", named " << named.size()
                  << "\n" << log_tail(rig.daemon_log()));
  REQUIRE(accounted);
  CHECK(rig.daemon().running());

  std::size_t delivered = 0, both = 0, named_unknown = 0;
  for (const auto s : stored) delivered += got.count(s);
  for (const auto s : named) {
    both += got.count(s);              // nothing was delivered before the damage, so none is both
    named_unknown += !stored.count(s);  // only seqs the file held are named
  }
  const auto figures = [&] {
    std::ostringstream f;
    f << "corrupt buffer: " << stored.size() << " readings stored (seq " << *stored.begin() << ".." << *stored.rbegin()
      << "), " << pages << " pages of " << page_size << " bytes, " << leaves.size() << " leaves of records; the "
      << kBadPages << " damaged pages from page " << first_bad << " held " << bad_leaves << " leaves, " << bad_internal
      << " internal and " << bad_overflow << " overflow pages of records, " << at_risk.size()
      << " seqs at risk; delivered " << delivered << ", named " << named.size() << ", accounted for " << took.count()
      << " ms after the restart";
    return f.str();
  }();
  WARN(figures);
  CHECK_FALSE(named.empty());
  CHECK(both == 0);
  CHECK(named_unknown == 0);
  // Only what the damage took is named: seqs on damaged leaves, under damaged internal pages, or
  // with a damaged overflow page; nothing readable is written off.
  std::size_t named_readable = 0;
  for (const auto s : named) named_readable += !at_risk.count(s);
  CHECK(named_readable == 0);
  CHECK(named.size() == at_risk.size());  // and all of it (the garbage is never a valid b-tree page)
  // Eight pages hold at most a few hundred readings. An internal page among them (about one run in
  // ten) takes its whole subtree, healthy leaves and all, out of SQLite's reach: over a hundred
  // leaves, some 2,500 readings; at_risk counts them, so the checks above still hold exactly.
  if (bad_internal == 0) CHECK(named.size() < 2000);
  CHECK(delivered + named.size() == stored.size());

  // The gap events: reason corrupt, no priority (it could not be read either), counts that add up.
  int gap_events = 0;
  for (const auto& batch : rig.collector().json_on("/event/_gateway"))
    for (const auto& r : batch["readings"])
      if (r["point"] == "gap") {
        ++gap_events;
        const auto& v = r["value"];
        CHECK(v["event"] == "gap");
        CHECK(v["reason"] == "corrupt");
        CHECK_FALSE(v.contains("priority"));
        std::int64_t count = 0;
        for (const auto& range : v["ranges"]) count += range[1].get<std::int64_t>() - range[0].get<std::int64_t>() + 1;
        CHECK(v["count"] == count);
        CHECK(r["seq"].get<std::int64_t>() > *stored.rbegin());  // a new seq, above the damaged file's
      }
  CHECK(gap_events >= 1);

  // The status says what happened; the damaged file is kept beside the new one.
  const auto st = rig.status();
  REQUIRE(st["backlog"]["corruption"].is_string());
  const auto corruption = st["backlog"]["corruption"].get<std::string>();
  CHECK_THAT(corruption, Catch::Contains(".corrupt-"));
  bool kept = false;
  for (const auto& e : std::filesystem::directory_iterator(data_dir))
    kept |= e.path().filename().string().rfind("outbox.db.corrupt-", 0) == 0;
  CHECK(kept);
  const auto log = rig.daemon_log();
  CHECK_THAT(log, Catch::Contains("is damaged") && Catch::Contains("salvag"));
  {
    const bool drained = wait_until([&] { return rig.backlog() == 0; }, 30s, 100ms);
    INFO("backlog still " << rig.backlog());
    CHECK(drained);
  }
  CHECK(rig.daemon().running());
  REQUIRE(rig.stop() == 0);
  CHECK(rig.integrity_check() == "ok");  // the salvaged file is a healthy store
  CHECK(rig.validate_against_schema() == 0);
}
