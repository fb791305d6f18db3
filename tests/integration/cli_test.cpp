// The command line's contract (docs/design.md section 6): exit codes, messages, systemd notification.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "integration/daemon_rig.h"

using namespace ioc_edge::test;

namespace {

// A datagram socket standing in for systemd's NOTIFY_SOCKET.
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    timeval tv{0, 100000};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~NotifySocket() { ::close(fd_); }
  // Collects what arrived so far.
  std::string drain() {
    char buf[4096];
    for (ssize_t n; (n = ::recv(fd_, buf, sizeof buf, 0)) > 0;) got_.append(buf, static_cast<std::size_t>(n)).push_back('\n');
    return got_;
  }

 private:
  std::string path_;
  int fd_ = -1;
  std::string got_;
};

}  // namespace

TEST_CASE("check-config exits 0 on a valid file and 78 with FILE:LINE:COL on an invalid one", "[integration][cli]") {
  TempDir dir;
  const auto good = dir.file("good.toml");
  write_file(good, "[gateway]\nsite = \"s\"\nprovince = \"p\"\n[uplink]\nurl = \"mqtt://127.0.0.1:1883\"\n");
  auto ok = run_cli({"check-config", good}, dir);
  CHECK(ok.code == 0);
  CHECK_THAT(ok.output, Catch::Contains("ok"));

  const auto bad = dir.file("bad.toml");
  write_file(bad, "[gateway]\nsite = \"s\"\nprovnce = \"p\"\n[uplink]\nurl = 5\n[buffer]\nsync = \"sometimes\"\n");
  auto res = run_cli({"check-config", bad}, dir);
  CHECK(res.code == 78);
  CHECK_THAT(res.output, Catch::Contains(bad + ":1:1: [gateway] missing required key 'province'"));
  CHECK_THAT(res.output, Catch::Contains(bad + ":3:1: [gateway] unknown key 'provnce' (did you mean 'province'?)"));
  CHECK_THAT(res.output, Catch::Contains(bad + ":5:7: [uplink] url: expected a string, got an integer"));
  CHECK_THAT(res.output, Catch::Contains(bad + ":7:8: [buffer] sync: \"sometimes\" is not one of"));

  auto missing = run_cli({"check-config", dir.file("nope.toml")}, dir);
  CHECK(missing.code == 78);
  CHECK_THAT(missing.output, Catch::Contains("cannot read the configuration file"));
}

TEST_CASE("run refuses an invalid file with exit 78 and the same messages", "[integration][cli]") {
  TempDir dir;
  const auto bad = dir.file("bad.toml");
  write_file(bad, "[gateway]\nsite = \"s\"\nprovince = \"p\"\n[uplink]\nurl = \"mqtt://127.0.0.1:1883\"\nmax_inflight = 0\n");
  auto res = run_cli({"run", "-c", bad}, dir);
  CHECK(res.code == 78);
  CHECK_THAT(res.output, Catch::Contains(bad + ":6:16: [uplink] max_inflight: must be 1..65535, got 0"));
}

TEST_CASE("bad usage exits 2, version exits 0", "[integration][cli]") {
  TempDir dir;
  CHECK(run_cli({"frobnicate"}, dir).code == 2);
  CHECK(run_cli({"check-config"}, dir).code == 2);
  auto v = run_cli({"version"}, dir);
  CHECK(v.code == 0);
  CHECK_THAT(v.output, Catch::StartsWith("ioc-edge "));
}

TEST_CASE("under systemd: READY after start-up, STOPPING and exit 0 on SIGTERM, status prints the backlog",
          "[integration][cli][lifecycle]") {
  RigOptions o;
  o.proxy = true;
  DaemonRig rig(o);
  rig.proxy().cut();  // nothing leaves: the backlog is visible
  NotifySocket notify(rig.tmp().file("notify.sock"));
  rig.start({{"NOTIFY_SOCKET", rig.tmp().file("notify.sock")}, {"WATCHDOG_USEC", "2000000"}});
  std::string notified;
  REQUIRE(wait_until([&] { notified += notify.drain(); return notified.find("READY=1") != std::string::npos; }, 10s));
  // WatchdogSec=2s: pinged every second while the main loop, the outbox and the forwarder turn.
  REQUIRE(wait_until([&] { notified += notify.drain(); return notified.find("WATCHDOG=1") != std::string::npos; }, 5s));
  REQUIRE(wait_until([&] { return rig.backlog() > 100; }, 10s));
  // systemctl reload: RELOADING=1, then READY=1 again once the file is read (unchanged here).
  notified = notify.drain();
  rig.daemon().signal(SIGHUP);
  REQUIRE(wait_until([&] {
    notified = notify.drain();
    const auto reloading = notified.find("RELOADING=1");
    return reloading != std::string::npos && notified.find("READY=1", reloading) != std::string::npos;
  }, 10s));
  CHECK_THAT(notified, Catch::Contains("reloaded: nothing changed"));

  auto st = run_cli({"status", "--address", "127.0.0.1:" + std::to_string(rig.status_port())}, rig.tmp());
  CHECK(st.code == 0);
  CHECK_THAT(st.output, Catch::Contains("backlog") && Catch::Contains("readings") && Catch::Contains("tram-bom-1"));
  auto js = run_cli({"status", "--json", "--address", "127.0.0.1:" + std::to_string(rig.status_port())}, rig.tmp());
  const auto status_json = nlohmann::json::parse(js.output);
  CHECK(status_json["backlog"]["readings"].get<int>() > 0);
  CHECK(status_json["sources"][0]["state"] == "up");
  CHECK(status_json["sources"][0]["last_error"].is_null());
  CHECK(http_get(rig.status_port(), "/healthz").status == 200);
  CHECK(http_get(rig.status_port(), "/nope").status == 404);

  CHECK(rig.stop() == 0);
  CHECK_THAT(notify.drain(), Catch::Contains("STOPPING=1"));
  // Nothing is lost on a clean stop: the backlog is still on disk.
  CHECK(rig.last_seq_on_disk() > 100);
  CHECK(DaemonRig::query_int(rig.tmp().file("data/outbox.db"), "SELECT coalesce(sum(n), 0) FROM records") == rig.last_seq_on_disk());

  auto down = run_cli({"status", "--address", "127.0.0.1:" + std::to_string(rig.status_port())}, rig.tmp());
  CHECK(down.code == 2);  // unreachable (1 is "not healthy")
  CHECK_THAT(down.output, Catch::Contains("cannot reach the daemon"));
}
