// `ioc-edge outbox stats|peek|export` (ops/outbox_tool.h): the buffer read through a read-only
// connection while the daemon writes it, and after it stopped; export writes exactly the messages
// the IOC would get.
#include <fstream>

#include "integration/daemon_rig.h"

using namespace ioc_edge::test;

namespace {

std::vector<nlohmann::json> read_lines(const std::string& path) {
  std::ifstream f(path);
  std::vector<nlohmann::json> out;
  for (std::string line; std::getline(f, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

// The seqs of every reading in the exported data and event lines.
std::set<std::int64_t> exported_seqs(const std::vector<nlohmann::json>& lines, std::size_t& blobs) {
  std::set<std::int64_t> seqs;
  blobs = 0;
  for (const auto& l : lines) {
    if (l.contains("payload")) {
      for (const auto& r : l["payload"]["readings"]) seqs.insert(r["seq"].get<std::int64_t>());
    } else {
      ++blobs;
      seqs.insert(std::stoll(l["properties"]["seq"].get<std::string>()));
    }
  }
  return seqs;
}

}  // namespace

TEST_CASE("outbox stats, peek and export read the buffer while the daemon writes it", "[integration][outbox-tool]") {
  RigOptions o;
  o.sources =
      "[[source]]\nname = \"tram-bom-1\"\ntype = \"generator\"\nrate = 300\npoints = 3\n\n"
      "[[source]]\nname = \"cam-1\"\ntype = \"generator\"\nrate = 1\npoints = 1\nblob_size = 3000\nblob_every = \"200ms\"\n";
  DaemonRig rig(o);
  rig.proxy().cut();  // nothing leaves: everything committed stays in the buffer
  rig.start();
  REQUIRE(wait_until([&] { return rig.backlog() > 600; }, 20s));
  const auto config = rig.config_path();

  auto st = run_cli({"outbox", "stats", "--json", "-c", config}, rig.tmp());
  INFO(st.output);
  REQUIRE(st.code == 0);
  const auto stats = nlohmann::json::parse(st.output.substr(st.output.find('{')));
  CHECK(stats["readings"].get<std::int64_t>() > 600);
  CHECK(stats["held"] == 0);
  CHECK(stats["first_seq"] == 1);
  std::set<std::string> kinds;
  for (const auto& s : stats["sources"]) kinds.insert(s["source"].get<std::string>() + "/" + s["kind"].get<std::string>());
  CHECK(kinds.count("tram-bom-1/data"));
  CHECK(kinds.count("cam-1/blob"));

  auto text = run_cli({"outbox", "stats", "-c", config}, rig.tmp());
  CHECK(text.code == 0);
  CHECK_THAT(text.output, Catch::Contains("waiting") && Catch::Contains("tram-bom-1") && Catch::Contains("cam-1"));

  auto peek = run_cli({"outbox", "peek", "-n", "2", "--readings", "2", "--source", "tram-bom-1", "-c", config}, rig.tmp());
  INFO(peek.output);
  CHECK(peek.code == 0);
  CHECK_THAT(peek.output, Catch::Contains("seq 1..") && Catch::Contains("tram-bom-1") && Catch::Contains("\"point\":\"p"));
  CHECK(peek.output.find("cam-1") == std::string::npos);

  // Export while the daemon keeps writing: one consistent snapshot, seqs 1..N without a hole.
  const auto live = rig.tmp().file("live.jsonl");
  auto ex = run_cli({"outbox", "export", "-o", live, "-c", config}, rig.tmp());
  INFO(ex.output);
  REQUIRE(ex.code == 0);
  CHECK_THAT(ex.output, Catch::Contains("exported"));
  std::size_t blobs = 0;
  const auto live_seqs = exported_seqs(read_lines(live), blobs);
  REQUIRE(live_seqs.size() > 600);
  CHECK(*live_seqs.begin() == 1);
  CHECK(*live_seqs.rbegin() == static_cast<std::int64_t>(live_seqs.size()));
  CHECK(blobs > 0);

  // A hand-over file is never overwritten.
  auto again = run_cli({"outbox", "export", "-o", live, "-c", config}, rig.tmp());
  CHECK(again.code == 1);
  CHECK_THAT(again.output, Catch::Contains("never overwritten"));

  // The daemon was not disturbed: still storing.
  const auto before = rig.backlog();
  CHECK(wait_until([&] { return rig.backlog() > before + 100; }, 20s));
  REQUIRE(rig.stop() == 0);

  // After the stop: the export holds every seq ever committed, as the IOC would get it.
  const auto last = rig.last_seq_on_disk();
  const auto all = rig.tmp().file("all.jsonl");
  auto ex2 = run_cli({"outbox", "export", "-o", all, "--db", rig.tmp().file("data/outbox.db"), "-c", config}, rig.tmp());
  INFO(ex2.output);
  REQUIRE(ex2.code == 0);
  const auto lines = read_lines(all);
  const auto seqs = exported_seqs(lines, blobs);
  CHECK(static_cast<std::int64_t>(seqs.size()) == last);
  CHECK(*seqs.rbegin() == last);
  // The number a script (the package's removal) reads: every seq committed is still waiting.
  auto count = run_cli({"outbox", "stats", "--count", "--db", rig.tmp().file("data/outbox.db")}, rig.tmp());
  INFO(count.output);
  CHECK(count.code == 0);
  CHECK(count.output == std::to_string(last) + "\n");
  // Each line is the message: its topic, a batch that validates against the published schema,
  // a blob's bytes intact.
  std::string payloads;
  for (const auto& l : lines) {
    const auto topic = l["topic"].get<std::string>();
    CHECK(topic.rfind("ioc/bac-kan/bk-cho-don/", 0) == 0);
    if (l.contains("payload")) {
      CHECK(l["payload"]["site"] == "bk-cho-don");
      payloads += l["payload"].dump() + "\n";
    } else {
      CHECK(topic == "ioc/bac-kan/bk-cho-don/blob/cam-1");
      CHECK(l["properties"]["size"] == "3000");
      CHECK(l["payload_base64"].get<std::string>().size() == 4000);
    }
  }
  write_file(rig.tmp().file("payloads.jsonl"), payloads);
  const auto vlog = rig.tmp().file("validate.log");
  const int rc = run_to_exit({"/usr/bin/python3", repo_root() + "/tests/schema/validate.py",
                              repo_root() + "/docs/schema/batch.schema.json", rig.tmp().file("payloads.jsonl")},
                             vlog, 60s);
  INFO(DaemonRig::read_log(vlog));
  CHECK(rc == 0);
  // The buffer itself is untouched by all of this.
  CHECK(rig.integrity_check() == "ok");
  CHECK(DaemonRig::query_int(rig.tmp().file("data/outbox.db"), "SELECT coalesce(sum(n), 0) FROM records") == last);
}

TEST_CASE("outbox tools: a missing file and a file that is not an outbox get a clear error", "[integration][outbox-tool]") {
  TempDir dir;
  auto missing = run_cli({"outbox", "stats", "--db", dir.file("nope.db")}, dir);
  CHECK(missing.code == 1);
  CHECK_THAT(missing.output, Catch::Contains("cannot open") && Catch::Contains("nope.db"));
  write_file(dir.file("junk.db"), std::string(4096, 'x'));
  auto junk = run_cli({"outbox", "peek", "--db", dir.file("junk.db")}, dir);
  CHECK(junk.code == 1);
  CHECK_THAT(junk.output, Catch::Contains("junk.db"));
}
