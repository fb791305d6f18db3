// Reloading the configuration on SIGHUP (ops/reload.h, docs/operations.md): sources added, changed
// and removed under load with no seq gap and nothing lost; the link to the IOC reconnects only when
// its settings changed; an invalid file, or a change only a restart can apply, is refused and the
// running configuration kept.
#include "daemon_rig.h"

using namespace ioc_edge::test;

namespace {

std::string generator(const std::string& name, int rate, int points = 2) {
  return "[[source]]\nname = \"" + name + "\"\ntype = \"generator\"\nrate = " + std::to_string(rate) +
         "\npoints = " + std::to_string(points) + "\n\n";
}

std::uint64_t reloads(const DaemonRig& rig, const char* key) {
  const auto s = rig.status();
  return s.is_null() ? 0 : s["config"][key].get<std::uint64_t>();
}

std::string last_reload(const DaemonRig& rig) {
  const auto s = rig.status();
  return s.is_null() || s["config"]["last_reload"].is_null() ? "" : s["config"]["last_reload"].get<std::string>();
}

std::set<std::string> source_names(const DaemonRig& rig) {
  std::set<std::string> out;
  const auto status = rig.status();  // kept: a range-for over a temporary's member would dangle
  for (const auto& s : status["sources"]) out.insert(s["name"].get<std::string>());
  return out;
}

std::uint64_t stored(const DaemonRig& rig, const std::string& name) {
  const auto status = rig.status();
  for (const auto& s : status["sources"])
    if (s["name"] == name) return s["stored"].get<std::uint64_t>();
  return 0;
}

// Readings the IOC got from `source` whose point is `point`.
std::size_t received(DaemonRig& rig, const std::string& source, const std::string& point) {
  std::size_t n = 0;
  for (const auto& batch : rig.collector().json_on("/data/" + source))
    for (const auto& r : batch["readings"])
      if (r["point"] == point) ++n;
  return n;
}

}  // namespace

TEST_CASE("reload under load: sources added, changed and removed, no seq gap, nothing lost, the link stays up",
          "[reload][integration]") {
  RigOptions o;
  o.sources = generator("gen-a", 200) + generator("gen-b", 200) + generator("gen-c", 200);
  DaemonRig rig(o);
  rig.start();
  REQUIRE(wait_until([&] { return stored(rig, "gen-c") > 200 && rig.collector().distinct_data_seqs() > 500; }, 20s));
  const auto connects = rig.stat("uplink", "connects");

  // gen-a stays, gen-b gets a third point, gen-c goes, gen-d comes.
  rig.options().sources = generator("gen-a", 200) + generator("gen-b", 200, 3) + generator("gen-d", 200);
  rig.rewrite_config();
  rig.daemon().signal(SIGHUP);
  const bool reloaded = wait_until([&] { return reloads(rig, "reloads") == 1; }, 20s);
  INFO(rig.daemon_log());
  REQUIRE(reloaded);
  CHECK(last_reload(rig) ==
        "applied: 1 source added (gen-d), 1 changed (gen-b), 1 removed (gen-c), 1 unchanged; the uplink stays connected");
  CHECK(source_names(rig) == std::set<std::string>{"gen-a", "gen-b", "gen-d"});
  CHECK(rig.daemon_log().find("reload applied: 1 source added (gen-d)") != std::string::npos);

  // The new and the changed source deliver; the one that stays never stopped.
  REQUIRE(wait_until([&] { return received(rig, "gen-d", "p1") > 20 && received(rig, "gen-b", "p2") > 20; }, 20s));
  const auto gen_c_after = stored(rig, "gen-c");
  CHECK(gen_c_after == 0);  // gone from the status
  CHECK(rig.stat("uplink", "connects") == connects);

  // A second reload under load: the counters of a changed source carry on.
  const auto gen_b_before = stored(rig, "gen-b");
  rig.options().sources = generator("gen-a", 200) + generator("gen-b", 100) + generator("gen-d", 200);
  rig.rewrite_config();
  rig.daemon().signal(SIGHUP);
  REQUIRE(wait_until([&] { return reloads(rig, "reloads") == 2; }, 20s));
  CHECK(stored(rig, "gen-b") >= gen_b_before);

  REQUIRE(rig.stop() == 0);
  const auto last = rig.last_seq_on_disk();
  REQUIRE(last > 1000);
  rig.drain_without_sources();
  // Every seq ever committed reached the IOC: no gap where sources were stopped and started.
  const auto missing = rig.missing(last);
  CHECK(missing.empty());
  CHECK(rig.gap_seqs().empty());
  CHECK(rig.validate_against_schema() == 0);
}

TEST_CASE("reload: changed uplink settings reconnect, and readings keep flowing", "[reload][integration]") {
  RigOptions o;
  o.sources = generator("gen-a", 200);
  DaemonRig rig(o);
  rig.start();
  REQUIRE(wait_until([&] { return rig.collector().distinct_data_seqs() > 200; }, 20s));
  const auto connects = rig.stat("uplink", "connects");
  const auto sent = rig.stat("uplink", "readings_sent");
  REQUIRE(connects >= 1);

  rig.options().extra_uplink = "max_inflight = 20\n";
  rig.rewrite_config();
  rig.daemon().signal(SIGHUP);
  REQUIRE(wait_until([&] { return reloads(rig, "reloads") == 1; }, 20s));
  INFO(rig.daemon_log());
  CHECK(last_reload(rig) == "applied: 1 unchanged; the uplink reconnects ([uplink] max_inflight)");
  REQUIRE(wait_until([&] { return rig.stat("uplink", "connects") == connects + 1 && rig.uplink_state() == "up"; }, 20s));
  // The totals count on from the first link's.
  CHECK(rig.stat("uplink", "readings_sent") >= sent);
  const auto before = rig.collector().distinct_data_seqs();
  REQUIRE(wait_until([&] { return rig.collector().distinct_data_seqs() > before + 200; }, 20s));

  REQUIRE(rig.stop() == 0);
  const auto last = rig.last_seq_on_disk();
  rig.drain_without_sources();
  CHECK(rig.missing(last).empty());
}

TEST_CASE("reload: an invalid file and a change that needs a restart are refused; the running configuration stays",
          "[reload][integration]") {
  RigOptions o;
  o.sources = generator("gen-a", 100);
  DaemonRig rig(o);
  rig.start();
  REQUIRE(wait_until([&] { return stored(rig, "gen-a") > 50; }, 20s));

  SECTION("an invalid file") {
    rig.options().sources = generator("gen-a", 100) + "[[source]]\nname = \"gen-x\"\ntype = \"generator\"\nrat = 5\n";
    rig.rewrite_config();
    rig.daemon().signal(SIGHUP);
    REQUIRE(wait_until([&] { return reloads(rig, "reloads_refused") == 1; }, 20s));
    INFO(rig.daemon_log());
    // The problem with its FILE:LINE:COL, in the log and in the status.
    const auto where = rig.config_path() + ":";
    const auto log = rig.daemon_log();
    const auto at = log.find("reload: " + where);
    REQUIRE(at != std::string::npos);
    CHECK(log.find("unknown key 'rat'", at) != std::string::npos);
    CHECK(log.find("reload refused: " + rig.config_path() + " has 1 problem(s)") != std::string::npos);
    CHECK(last_reload(rig).rfind("refused: 1 problem(s) in the file, the first: " + where, 0) == 0);
  }
  SECTION("a change only a restart applies") {
    rig.options().extra_gateway = "unit_code = \"99999\"\n";
    // The rig's own unit_code line comes first; a second one would be a duplicate key: replace it.
    auto text = rig.config_text();
    text.replace(text.find("unit_code = \"01843\"\n"), std::string("unit_code = \"01843\"\n").size(), "");
    write_file(rig.config_path(), text);
    rig.daemon().signal(SIGHUP);
    REQUIRE(wait_until([&] { return reloads(rig, "reloads_refused") == 1; }, 20s));
    INFO(rig.daemon_log());
    CHECK(last_reload(rig) == "refused: [gateway] unit_code changed: restart the service to apply");
    CHECK(rig.daemon_log().find("reload refused: [gateway] unit_code changed") != std::string::npos);
  }
  // Nothing changed: the same source keeps storing, none was added.
  CHECK(reloads(rig, "reloads") == 0);
  CHECK(source_names(rig) == std::set<std::string>{"gen-a"});
  const auto before = stored(rig, "gen-a");
  CHECK(wait_until([&] { return stored(rig, "gen-a") > before + 50; }, 20s));
  REQUIRE(rig.daemon().running());
}
