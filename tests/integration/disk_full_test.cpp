// A full disk: a clear error, nothing stored is lost, new data is refused (not pretended), and the
// daemon recovers by itself when space returns. The data directory is a small tmpfs.
#include <sys/mount.h>

#include <filesystem>
#include <fstream>

#include "integration/daemon_rig.h"

using namespace ioc_edge::test;

namespace {

// A tmpfs of `size` mounted on a fresh directory; unmounted on destruction.
class SmallDisk {
 public:
  SmallDisk(const std::string& path, const std::string& size) : path_(path) {
    std::filesystem::create_directories(path);
    const std::string opts = "size=" + size + ",mode=0755";
    const int rc = ::mount("tmpfs", path.c_str(), "tmpfs", 0, opts.c_str());
    INFO("mounting a tmpfs needs root (CAP_SYS_ADMIN); errno " << errno);
    REQUIRE(rc == 0);
  }
  ~SmallDisk() {
    if (!std::getenv("IOC_EDGE_KEEP_TEMP")) ::umount2(path_.c_str(), MNT_DETACH);
  }

 private:
  std::string path_;
};

// Takes 2.5 MB of the small disk, so that about 3.5 MB are left for the database and its reserve.
std::string fill(const std::string& path) {
  std::ofstream f(path, std::ios::binary);
  const std::string block(1 << 16, 'x');
  for (int i = 0; i < 40; ++i) f.write(block.data(), static_cast<std::streamsize>(block.size()));
  return path;
}

}  // namespace

TEST_CASE("a full disk refuses new data with a clear error, keeps what is stored, and recovers",
          "[integration][diskfull]") {
  TempDir mnt;
  SmallDisk disk(mnt.file("disk"), "6m");
  RigOptions o;
  o.data_dir = mnt.file("disk") + "/data";
  o.extra_buffer = "max_size = \"16MiB\"\n";  // above what the disk holds; sets a 1 MiB reserve
  o.sources = "[[source]]\nname = \"tram-bom-1\"\ntype = \"generator\"\nrate = 20000\npoints = 8\n";
  DaemonRig rig(o);
  rig.proxy().cut();  // the link is down, so the backlog fills the disk
  const auto filler = fill(mnt.file("disk") + "/filler");
  rig.start();
  REQUIRE(wait_until([&] { return !rig.status()["backlog"]["fault"].is_null(); }, 30s));
  const auto st = rig.status();
  CHECK_THAT(st["backlog"]["fault"].get<std::string>(), Catch::Contains("disk full"));
  CHECK(st["sources"][0]["refused"].get<std::int64_t>() > 0);
  CHECK(http_get(rig.status_port(), "/healthz").status == 503);
  CHECK_THAT(rig.daemon_log(), Catch::Contains("disk full: cannot store new data"));
  // Still running, and what was stored is still counted.
  CHECK(rig.daemon().running());
  const auto stored = st["backlog"]["readings"].get<std::int64_t>();
  CHECK(stored > 0);

  // Space returns: the daemon notices by itself and accepts data again.
  std::filesystem::remove(filler);
  REQUIRE(wait_until([&] { return rig.status()["backlog"]["fault"].is_null(); }, 30s));
  CHECK(http_get(rig.status_port(), "/healthz").status == 200);
  CHECK_THAT(rig.daemon_log(), Catch::Contains("storage recovered"));
  REQUIRE(wait_until([&] { return rig.backlog() > stored; }, 30s));
  // ... until the disk is full again.
  REQUIRE(wait_until([&] { return !rig.status()["backlog"]["fault"].is_null(); }, 30s));

  // On a full disk the link returns: deleting what the IOC acknowledged needs disk space too,
  // which the reserve provides. Everything committed reaches the IOC; nothing was lost.
  REQUIRE(rig.stop() == 0);
  rig.drain_without_sources(120s);
  const auto last = rig.last_seq_on_disk();
  CHECK(rig.missing(last).empty());
  CHECK(rig.gap_seqs().empty());
  CHECK(rig.integrity_check() == "ok");
  // The refusal came from the headroom check, before SQLite ran out of disk.
  CHECK_THAT(rig.daemon_log(), Catch::Contains("KiB are kept free so that delivered data can always be deleted"));
}

TEST_CASE("after a full disk drains, new data is stored again and the IOC hears what was refused",
          "[integration][diskfull]") {
  TempDir mnt;
  SmallDisk disk(mnt.file("disk"), "6m");
  RigOptions o;
  o.data_dir = mnt.file("disk") + "/data";
  o.extra_buffer = "max_size = \"16MiB\"\n";
  o.sources = "[[source]]\nname = \"tram-bom-1\"\ntype = \"generator\"\nrate = 20000\npoints = 8\n";
  DaemonRig rig(o);
  rig.proxy().cut();
  const auto filler = fill(mnt.file("disk") + "/filler");
  rig.start();
  REQUIRE(wait_until([&] { return !rig.status()["backlog"]["fault"].is_null(); }, 30s));
  REQUIRE(wait_until([&] { return rig.status()["sources"][0]["refused"].get<std::int64_t>() > 1000; }, 30s));

  // The link returns and the backlog drains; the disk stays as full as before (the database file
  // does not shrink), yet its freed pages are room: data is stored again, for good.
  rig.proxy().restore();
  REQUIRE(wait_until([&] { return rig.status()["backlog"]["fault"].is_null(); }, 60s));
  const auto stored = rig.status()["sources"][0]["stored"].get<std::int64_t>();
  const bool stored_again =
      wait_until([&] { return rig.status()["sources"][0]["stored"].get<std::int64_t>() > stored + 50000; }, 30s);
  INFO(rig.daemon_log());
  REQUIRE(stored_again);
  const auto st = rig.status();
  CHECK(st["backlog"]["fault"].is_null());
  CHECK(http_get(rig.status_port(), "/healthz").status == 200);
  const auto refused = st["sources"][0]["refused"].get<std::int64_t>();

  // The IOC hears how many readings were refused, from which source and over which span.
  std::int64_t reported = 0;
  REQUIRE(wait_until([&] {
    reported = 0;
    for (const auto& batch : rig.collector().json_on("/event/tram-bom-1"))
      for (const auto& r : batch["readings"])
        if (r["value"]["event"] == "refused") {
          CHECK(r["source"] == "tram-bom-1");
          CHECK_THAT(r["value"]["reason"].get<std::string>(), Catch::Contains("disk full"));
          CHECK(r["value"]["from"].get<std::string>() <= r["value"]["to"].get<std::string>());
          reported += r["value"]["count"].get<std::int64_t>();
        }
    return reported > 0;
  }, 30s));
  CHECK(reported <= refused);
  CHECK(reported >= 1000);
  // One line per change of state, not a flood. While the backlog drains at this rate the buffer
  // may fill and free up a few times (each drained batch frees pages the generator fills again),
  // how often depends on the machine's speed; every time is one "refusing" line followed by one
  // "recovered" line. A flood would be a line per refused batch: thousands at 20,000 readings/s.
  const auto log = rig.daemon_log();
  std::size_t full_lines = 0, recovered_lines = 0;
  for (auto at = log.find("refusing new data"); at != std::string::npos; at = log.find("refusing new data", at + 1))
    ++full_lines;
  for (auto at = log.find("storage recovered"); at != std::string::npos; at = log.find("storage recovered", at + 1))
    ++recovered_lines;
  CHECK(recovered_lines >= 1);
  CHECK((full_lines == recovered_lines || full_lines == recovered_lines + 1));
  CHECK(full_lines <= 10);
  REQUIRE(rig.stop() == 0);
  CHECK(rig.validate_against_schema() == 0);
}
