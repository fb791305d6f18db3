// The `spool` source in the real daemon: sample files dropped into its directory reach the IOC
// stand-in (a real Mosquitto with mutual TLS and its consumer); a bad file lands in failed/ with its
// report; a duplicate drop is not imported again; kill -9 during an import stores every row once.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <thread>

#include "integration/daemon_rig.h"

namespace ioc_edge::test {
namespace {

namespace fs = std::filesystem;

std::string sample(const std::string& name) { return repo_root() + "/drivers/spool/tests/samples/" + name; }

std::string spool_source(const std::string& name, const std::string& dir, const std::string& more) {
  return "[[source]]\nname = \"" + name + "\"\ntype = \"spool\"\ndir = \"" + dir + "\"\nsettle_time = \"300ms\"\n" +
         "retry_min = \"50ms\"\nretry_max = \"500ms\"\n" + more + "\n";
}

const char* kLong = "ts_column = \"Ngày\"\nts_format = \"%d/%m/%Y\"\npoint_column = \"Chỉ tiêu\"\nvalue_column = \"Giá trị\"\n";

// Copies a file in the way staff do it: written under a temporary name, then moved in.
void drop(const std::string& from, const std::string& dir, const std::string& name) {
  fs::copy_file(from, dir + "/.incoming-" + name, fs::copy_options::overwrite_existing);
  fs::rename(dir + "/.incoming-" + name, dir + "/" + name);
}

std::vector<nlohmann::json> readings_on(Collector& c, const std::string& topic_part) {
  std::vector<nlohmann::json> out;
  for (const auto& batch : c.json_on(topic_part))
    for (const auto& r : batch["readings"]) out.push_back(r);
  return out;
}

bool exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

}  // namespace

TEST_CASE("spool: Excel exports reach the IOC; a bad file is reported in failed/; a duplicate is not imported again",
          "[integration][spool]") {
  TempDir tmp;
  const auto dir = tmp.file("chi-tieu");
  fs::create_directories(dir);
  RigOptions o;
  o.sources = spool_source("chi-tieu-ktxh", dir, std::string(kLong) + "unit_column = \"Đơn vị\"\n");
  DaemonRig rig(o);
  rig.start();
  // bad-date.csv with the unit column this source wants: the date on line 4 is impossible.
  write_file(tmp.file("sai-ngay.csv"), "Ngày;Chỉ tiêu;Giá trị;Đơn vị\r\n01/11/2026;A;1;ha\r\n01/11/2026;B;2;ha\r\n"
                                       "31/02/2026;C;3;ha\r\n01/11/2026;D;4;ha\r\n");

  drop(sample("excel-bom-semicolon.csv"), dir, "bao-cao-thang-11.csv");
  drop(tmp.file("sai-ngay.csv"), dir, "sai-ngay.csv");
  REQUIRE(wait_until([&] { return exists(dir + "/done/bao-cao-thang-11.csv") && exists(dir + "/failed/sai-ngay.csv"); }, 20s));
  auto& c = rig.collector();
  REQUIRE(wait_until([&] { return readings_on(c, "/data/chi-tieu-ktxh").size() >= 5; }, 20s));

  const auto got = readings_on(c, "/data/chi-tieu-ktxh");
  REQUIRE(got.size() == 5);
  CHECK(got[0]["point"] == "Tổng sản phẩm (GRDP)");
  CHECK(got[0]["value"] == 1234.5);
  CHECK(got[0]["unit"] == "tỷ đồng");
  CHECK(got[0]["ts"] == "2026-10-31T17:00:00.000Z");  // 01/11/2026 00:00 in Asia/Ho_Chi_Minh
  CHECK(got[2]["point"] == "Ghi chú \"quý IV\"\nđã rà soát");
  CHECK(got[4]["quality"] == "bad");

  // The bad file: nothing of it imported, its report beside it.
  CHECK(readings_on(c, "/data/chi-tieu-ktxh").size() == 5);
  const auto report = read_file(dir + "/failed/sai-ngay.csv.error.txt");
  CHECK(report.find("line 4, column 1 (\"Ngày\"): \"31/02/2026\" is not a possible date and time") != std::string::npos);
  CHECK(report.find("Nothing of this file was imported") != std::string::npos);

  // The same content again, under another name and under the same name: moved to done/ with a
  // number, nothing imported.
  drop(sample("excel-bom-semicolon.csv"), dir, "bao-cao-thang-11.csv");
  drop(sample("excel-bom-semicolon.csv"), dir, "ban-sao.csv");
  REQUIRE(wait_until([&] { return exists(dir + "/done/bao-cao-thang-11-2.csv") && exists(dir + "/done/ban-sao.csv"); }, 20s));
  // A bad file of the same name as the first one in failed/ is numbered too.
  drop(tmp.file("sai-ngay.csv"), dir, "sai-ngay.csv");
  REQUIRE(wait_until([&] { return exists(dir + "/failed/sai-ngay-2.csv.error.txt"); }, 20s));

  const auto s = rig.status()["sources"][0];
  INFO(s.dump());
  CHECK(s["messages"] == 5);      // files taken
  CHECK(s["redelivered"] == 2);   // of those, duplicates
  CHECK(s["stored"] == 5);
  CHECK(s["bad_input"]["bad_time"] == 2);
  CHECK(s["last_error"].get<std::string>().find("sai-ngay.csv") != std::string::npos);
  CHECK(readings_on(c, "/data/chi-tieu-ktxh").size() == 5);
  CHECK(rig.validate_against_schema() == 0);
  CHECK(rig.stop() == 0);
}

TEST_CASE("spool: a symbolic link is refused unread", "[integration][spool]") {
  TempDir tmp;
  const auto dir = tmp.file("in");
  fs::create_directories(dir);
  write_file(tmp.file("secret.csv"), "a,b\n1,2\n");
  fs::create_symlink(tmp.file("secret.csv"), dir + "/link.csv");
  RigOptions o;
  o.sources = spool_source("files", dir, "");
  DaemonRig rig(o);
  rig.start();
  REQUIRE(wait_until([&] { return exists(dir + "/failed/link.csv.error.txt"); }, 20s));
  CHECK(fs::is_symlink(dir + "/failed/link.csv"));
  CHECK(exists(tmp.file("secret.csv")));
  CHECK(read_file(dir + "/failed/link.csv.error.txt").find("a symbolic link") != std::string::npos);
  CHECK(rig.status()["sources"][0]["stored"] == 0);
  CHECK(rig.stop() == 0);
}

TEST_CASE("spool: kill -9 during the import of a large file stores every row exactly once",
          "[integration][spool][kill9]") {
  TempDir tmp;
  const auto dir = tmp.file("chi-tieu");
  fs::create_directories(dir);
  constexpr int kRows = 300000;
  {
    std::ofstream f(tmp.file("big.csv"), std::ios::binary);
    f << "\xEF\xBB\xBFNgày;Chỉ tiêu;Giá trị\r\n";
    for (int i = 0; i < kRows; ++i) f << "01/11/2026;hang-" << i % 50 << ";" << i << "\r\n";
  }
  RigOptions o;
  o.sources = spool_source("chi-tieu-ktxh", dir, std::string(kLong) + "batch_max_readings = 500\n");
  DaemonRig rig(o);
  rig.start();
  fs::rename(tmp.file("big.csv"), dir + "/big.csv");

  std::mt19937 rng(std::random_device{}());
  int kills = 0;
  for (int round = 0; round < 3 && !exists(dir + "/done/big.csv"); ++round) {
    // Wait until this run has stored something, then a random moment more.
    wait_until([&] {
      const auto s = rig.status();
      return exists(dir + "/done/big.csv") || (!s.is_null() && s["sources"][0]["stored"].get<std::int64_t>() > 0);
    }, 30s, 5ms);
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 300)(rng)));
    if (exists(dir + "/done/big.csv")) break;
    rig.kill9();
    ++kills;
    rig.start();
  }
  REQUIRE(wait_until([&] { return exists(dir + "/done/big.csv"); }, 120s));
  INFO("kills: " << kills << "\n" << rig.daemon_log());
  CHECK(kills > 0);

  // Every row's reading reaches the IOC under exactly one seq: a row imported twice would come
  // with two seqs (the IOC stand-in may see a seq twice: delivery is at least once).
  std::map<std::int64_t, std::set<std::int64_t>> seqs_of_row;
  REQUIRE(wait_until([&] {
    seqs_of_row.clear();
    for (const auto& r : readings_on(rig.collector(), "/data/chi-tieu-ktxh"))
      seqs_of_row[r["value"].get<std::int64_t>()].insert(r["seq"].get<std::int64_t>());
    return seqs_of_row.size() == kRows;
  }, 120s, 200ms));
  std::size_t twice = 0;
  std::vector<std::int64_t> examples;
  for (const auto& [row, seqs] : seqs_of_row)
    if (seqs.size() != 1) {
      ++twice;
      if (examples.size() < 10) examples.push_back(row);
    }
  INFO("rows stored more than once: " << twice << ", e.g. " << Catch::Detail::stringify(examples));
  CHECK(twice == 0);
  CHECK(seqs_of_row.begin()->first == 0);
  CHECK(seqs_of_row.rbegin()->first == kRows - 1);
  WARN("kill -9 x" << kills << " during the import of " << kRows << " rows: each stored once");
  CHECK(rig.stop() == 0);
}

}  // namespace ioc_edge::test
