// The spool source in-process, on a real directory, with a sink that keeps marks like the outbox:
// when files are taken, exactly-once through marks (resume, duplicates, refusals), what is refused
// unread, and the directory's state.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <openssl/evp.h>

#include "core/log.h"
#include "drivers/spool/spool_config.h"
#include "drivers/spool/spool_source.h"
#include "support/fakes.h"
#include "support/support.h"

namespace ioc_edge::spool {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using test::wait_until;

// A sink that stores batches and marks together, as the outbox does; it can refuse batches.
class MarkSink final : public Sink {
 public:
  void push(std::vector<Reading> r, std::function<void(const SinkResult&)> done) override { store({}, std::move(r), done); }
  void event(Reading e, std::function<void(const SinkResult&)> done) override {
    {
      std::lock_guard lk(mu);
      events.push_back(std::move(e));
    }
    if (done) done({SinkStatus::Stored, {}, 0, 0});
  }
  void blob(Blob, std::function<void(const SinkResult&)> done) override {
    if (done) done({SinkStatus::Invalid, "no blobs here", 0, 0});
  }
  void push_as(std::string, Kind, std::vector<Reading> r, std::function<void(const SinkResult&)> done) override {
    store({}, std::move(r), done);
  }
  void push_batch(Batch batch, std::function<void(const SinkResult&)> done) override {
    std::vector<Reading> all;
    for (auto& g : batch.groups)
      for (auto& r : g.readings) all.push_back(std::move(r));
    store(std::move(batch.marks), std::move(all), done);
  }
  std::optional<std::vector<Mark>> marks(std::string_view prefix) override {
    std::lock_guard lk(mu);
    std::vector<Mark> out;
    for (const auto& [k, m] : kept)
      if (k.compare(0, prefix.size(), prefix) == 0) out.push_back(m);
    return out;
  }

  void set_mark(const std::string& key, const std::string& value) {
    std::lock_guard lk(mu);
    kept[key] = Mark{key, value, 0};
  }
  std::string mark(const std::string& key) {
    std::lock_guard lk(mu);
    const auto it = kept.find(key);
    return it == kept.end() ? std::string() : it->second.value;
  }
  std::size_t count() {
    std::lock_guard lk(mu);
    return readings.size();
  }
  std::vector<Reading> copy() {
    std::lock_guard lk(mu);
    return readings;
  }

  std::mutex mu;
  std::vector<Reading> readings, events;
  std::map<std::string, Mark> kept;
  int batches = 0;
  std::set<int> refuse;  // batch numbers (1-based, counting refused ones) to refuse

 private:
  void store(std::vector<Mark> marks, std::vector<Reading> r, const std::function<void(const SinkResult&)>& done) {
    SinkResult res{SinkStatus::Stored, {}, 0, 0};
    {
      std::lock_guard lk(mu);
      ++batches;
      if (refuse.count(batches)) {
        res.status = SinkStatus::Refused;
        res.error = "disk full";
      } else {
        res.first_seq = static_cast<std::int64_t>(readings.size()) + 1;
        for (auto& x : r) readings.push_back(std::move(x));
        res.last_seq = static_cast<std::int64_t>(readings.size());
        for (auto& m : marks) kept[m.key] = std::move(m);
      }
    }
    if (done) done(res);
  }
};

std::string sha256_of(const std::string& bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr);
  std::string hex;
  char b[3];
  for (unsigned i = 0; i < len; ++i) {
    std::snprintf(b, sizeof b, "%02x", md[i]);
    hex += b;
  }
  return hex;
}

struct Rig {
  explicit Rig(std::function<void(Config&)> tweak = {}) {
    dir = tmp.file("spool");
    fs::create_directories(dir);
    auto c = std::make_shared<Config>();
    c->dir = dir;
    c->settle_time = 300ms;
    c->retry_min = 20ms;
    c->retry_max = 100ms;
    if (tweak) tweak(*c);
    cfg = c;
  }
  ~Rig() {
    if (source) source->stop();
  }
  void start() {
    source = create(SourceContext{"chi-tieu", "site", logger("spool/chi-tieu"), clock, sink, io, counters}, cfg);
    REQUIRE(source);
    source->start();
  }
  bool exists(const std::string& rel) const { return ::access((dir + "/" + rel).c_str(), F_OK) == 0; }

  test::TempDir tmp;
  std::string dir;
  std::shared_ptr<const Config> cfg;
  test::FakeClock clock;
  MarkSink sink;
  boost::asio::io_context io;
  SourceCounters counters;
  std::unique_ptr<Source> source;
};

const std::string kRows = "a,b\n1,2\n3,4\n5,6\n7,8\n9,10\n";  // 5 rows, 10 readings (wide layout)

}  // namespace

TEST_CASE("spool: numbered names in done/ and failed/", "[spool]") {
  CHECK(numbered_name("bao-cao.csv", 1) == "bao-cao.csv");
  CHECK(numbered_name("bao-cao.csv", 2) == "bao-cao-2.csv");
  CHECK(numbered_name("bao.cao.csv", 3) == "bao.cao-3.csv");
  CHECK(numbered_name("README", 2) == "README-2");
  CHECK(numbered_name(".x", 2) == ".x-2");
}

TEST_CASE("spool: a file closed after writing is taken at once, imported and moved to done/", "[spool]") {
  Rig rig([](Config& c) { c.settle_time = std::chrono::hours(1); });  // only the close can make it complete
  rig.start();
  REQUIRE(wait_until([&] { return rig.exists("failed"); }, 10s));  // watching (spool_source.cpp: open_dir)
  test::write_file(rig.dir + "/so-lieu.csv", kRows);
  REQUIRE(wait_until([&] { return rig.exists("done/so-lieu.csv"); }, 10s));
  CHECK(rig.sink.count() == 10);
  CHECK(rig.sink.mark("file/" + sha256_of(kRows)).rfind("done ", 0) == 0);
  CHECK(rig.counters.messages == 1);
  for (const auto& r : rig.sink.copy()) CHECK(r.ts_ms == rig.clock.now_ms());  // no ts_column: time of import
  CHECK_FALSE(rig.exists("so-lieu.csv"));
}

TEST_CASE("spool: a file still growing is left alone until it is complete", "[spool]") {
  Rig rig([](Config& c) { c.settle_time = 400ms; });
  rig.start();
  const auto path = rig.dir + "/dang-ghi.csv";
  {
    std::ofstream f(path, std::ios::binary);
    f << "a,b\n";
    // Grows every 100 ms for 2 s (longer than settle_time), never closed meanwhile.
    const auto until = std::chrono::steady_clock::now() + 2s;
    int i = 0;
    while (std::chrono::steady_clock::now() < until) {
      f << i << "," << i << "\n" << std::flush;
      ++i;
      CHECK(rig.sink.count() == 0);
      std::this_thread::sleep_for(100ms);  // the writer's pace: the test is about a slow writer
    }
    CHECK_FALSE(rig.exists("done/dang-ghi.csv"));
  }
  REQUIRE(wait_until([&] { return rig.exists("done/dang-ghi.csv"); }, 10s));
  CHECK(rig.sink.count() > 20);
}

TEST_CASE("spool: an import interrupted after row n resumes after row n, with the same import time", "[spool]") {
  Rig rig([](Config& c) { c.batch_max_readings = 2; });
  const std::int64_t first_import = 1'700'000'000'000;
  rig.sink.set_mark("file/" + sha256_of(kRows), "rows 2 at " + std::to_string(first_import));
  rig.start();
  test::write_file(rig.dir + "/a.csv", kRows);
  REQUIRE(wait_until([&] { return rig.exists("done/a.csv"); }, 10s));
  const auto got = rig.sink.copy();
  REQUIRE(got.size() == 6);  // rows 3..5
  CHECK(got[0].value == Value{std::int64_t{5}});
  for (const auto& r : got) CHECK(r.ts_ms == first_import);
}

TEST_CASE("spool: the same content again is moved to done/ without importing it", "[spool]") {
  Rig rig;
  rig.start();
  test::write_file(rig.dir + "/a.csv", kRows);
  REQUIRE(wait_until([&] { return rig.exists("done/a.csv"); }, 10s));
  test::write_file(rig.dir + "/a.csv", kRows);
  test::write_file(rig.dir + "/b.csv", kRows);
  REQUIRE(wait_until([&] { return rig.exists("done/a-2.csv") && rig.exists("done/b.csv"); }, 10s));
  CHECK(rig.sink.count() == 10);
  CHECK(rig.counters.messages == 3);
  CHECK(rig.counters.redelivered == 2);
}

TEST_CASE("spool: a refused batch leaves the file in place; the retry stores every row once", "[spool]") {
  Rig rig([](Config& c) { c.batch_max_readings = 2; });
  rig.sink.refuse = {2, 3};  // the second batch, and its first retry
  rig.start();
  test::write_file(rig.dir + "/a.csv", kRows);
  REQUIRE(wait_until([&] { return rig.exists("done/a.csv"); }, 10s));
  const auto got = rig.sink.copy();
  REQUIRE(got.size() == 10);
  for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i].value == Value{static_cast<std::int64_t>(i + 1)});
  CHECK(rig.counters.last_error().first.find("disk full") != std::string::npos);
}

TEST_CASE("spool: a bad file goes to failed/ with its report and nothing of it is stored", "[spool]") {
  Rig rig([](Config& c) {
    c.ts_column = "t";
    c.ts_format = TsFormat::Pattern;
    c.ts_pattern = "%d/%m/%Y";
  });
  rig.start();
  test::write_file(rig.dir + "/x.csv", "t;v\n01/11/2026;1\n30/02/2026;2\n");
  REQUIRE(wait_until([&] { return rig.exists("failed/x.csv.error.txt"); }, 10s));
  CHECK(rig.exists("failed/x.csv"));
  CHECK(rig.sink.count() == 0);
  const auto report = test::read_file(rig.dir + "/failed/x.csv.error.txt");
  CHECK(report.find("line 3, column 1 (\"t\"): \"30/02/2026\" is not a time that exists (read with ts_format \"%d/%m/%Y\")") != std::string::npos);
  CHECK(rig.counters.bad_input()["bad_time"] == 1);
}

TEST_CASE("spool: links and special files are refused unread; other names are left alone", "[spool]") {
  Rig rig;
  test::write_file(rig.tmp.file("outside.csv"), kRows);
  fs::create_symlink(rig.tmp.file("outside.csv"), rig.dir + "/sym.csv");
  REQUIRE(::link(rig.tmp.file("outside.csv").c_str(), (rig.dir + "/hard.csv").c_str()) == 0);
  REQUIRE(::mkfifo((rig.dir + "/pipe.csv").c_str(), 0600) == 0);
  test::write_file(rig.dir + "/.hidden.csv", kRows);
  test::write_file(rig.dir + "/dang-chep.csv.part", kRows);
  test::write_file(rig.dir + "/anh.jpg", "not a table");
  fs::create_directories(rig.dir + "/thu-muc-con.csv");
  rig.start();
  REQUIRE(wait_until([&] {
    return rig.exists("failed/sym.csv.error.txt") && rig.exists("failed/hard.csv.error.txt") &&
           rig.exists("failed/pipe.csv.error.txt");
  }, 10s));
  CHECK(fs::is_symlink(rig.dir + "/failed/sym.csv"));
  CHECK(rig.sink.count() == 0);
  const auto bad = rig.counters.bad_input();
  CHECK(bad.at("symlink") == 1);
  CHECK(bad.at("hard_link") == 1);
  CHECK(bad.at("not_a_file") == 1);
  for (const auto* left : {".hidden.csv", "dang-chep.csv.part", "anh.jpg", "thu-muc-con.csv"}) CHECK(rig.exists(left));
}

TEST_CASE("spool: a missing directory is source_down until it appears", "[spool]") {
  Rig rig([](Config& c) { c.dir += "/chua-co"; });
  rig.start();
  REQUIRE(wait_until([&] { return rig.counters.down.load(); }, 10s));
  fs::create_directories(rig.cfg->dir);
  test::write_file(rig.cfg->dir + "/a.csv", kRows);
  REQUIRE(wait_until([&] { return ::access((rig.cfg->dir + "/done/a.csv").c_str(), F_OK) == 0; }, 10s));
  CHECK_FALSE(rig.counters.down.load());
  std::lock_guard lk(rig.sink.mu);
  REQUIRE(rig.sink.events.size() == 2);
  CHECK(rig.sink.events[0].point == "source_down");
  CHECK(rig.sink.events[1].point == "source_up");
}

}  // namespace ioc_edge::spool
