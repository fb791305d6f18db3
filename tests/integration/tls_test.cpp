// The uplink refuses servers it cannot trust, says why, and keeps buffering.
#include "integration/daemon_rig.h"

using namespace ioc_edge::test;

namespace {

void expect_refused(DaemonRig& rig, const std::string& expected_words) {
  rig.start();
  // Data keeps buffering while the uplink cannot connect.
  REQUIRE(wait_until([&] { return rig.backlog() >= 1000; }, 30s));
  REQUIRE(wait_until([&] { return rig.stat("uplink", "connect_failures") >= 2; }, 30s));
  const auto st = rig.status();
  CHECK(st["uplink"]["state"] != "up");
  CHECK(st["uplink"]["readings_sent"] == 0);
  CHECK_THAT(st["uplink"]["last_error"].get<std::string>(), Catch::Contains(expected_words));
  // One clear log line naming the cause.
  CHECK_THAT(rig.daemon_log(), Catch::Contains("cannot connect to mqtts://127.0.0.1:") && Catch::Contains(expected_words));
  // Nothing reached the broker as a session: it never logged our client in.
  CHECK_THAT(rig.broker().log(), !Catch::Contains("as ioc-edge-bk-cho-don"));
  REQUIRE(rig.stop() == 0);
  CHECK(rig.last_seq_on_disk() >= 1000);  // kept, to be sent once the certificate is fixed
}

}  // namespace

TEST_CASE("a server certificate from an unknown CA is refused", "[integration][tls]") {
  RigOptions o;
  o.collector = false;  // the IOC side's own consumer cannot trust this broker either
  o.proxy = false;
  // The broker presents a certificate signed by a CA the office does not pin.
  o.broker.server_cert = "other-server.pem";
  o.broker.server_key = "other-server.key";
  DaemonRig rig(o);
  expect_refused(rig, "certificate was rejected");
}

TEST_CASE("a server certificate for another host name is refused", "[integration][tls]") {
  RigOptions o;
  o.collector = false;
  o.proxy = false;
  o.broker.server_cert = "wronghost-server.pem";
  o.broker.server_key = "wronghost-server.key";
  DaemonRig rig(o);
  expect_refused(rig, "host name mismatch");
}

TEST_CASE("a server with a 1024-bit RSA key is refused (OpenSSL security level 2, not Paho's 1)",
          "[integration][tls]") {
  RigOptions o;
  o.collector = false;
  o.proxy = false;
  o.broker.server_cert = "weakkey-server.pem";
  o.broker.server_key = "weakkey-server.key";
  o.broker.extra_config = "ciphers DEFAULT:@SECLEVEL=1\n";  // the broker itself must accept its weak key
  DaemonRig rig(o);
  expect_refused(rig, "key too weak");
}

TEST_CASE("a second daemon on the same buffer exits at once, naming the running one, and touches nothing",
          "[integration][lock]") {
  DaemonRig rig;
  rig.start();
  REQUIRE(wait_until([&] { return rig.backlog() >= 0 && rig.stat("backlog", "last_seq") > 100; }, 30s));
  const auto log = rig.tmp().file("second.log");
  const int rc = run_to_exit({ioc_edge_binary(), "run", "-c", rig.config_path()}, log, 15s);
  const auto second = DaemonRig::read_log(log);
  INFO(second);
  CHECK(rc == 1);
  CHECK_THAT(second, Catch::Contains("already running") && Catch::Contains("pid " + std::to_string(rig.daemon().pid())) &&
                         Catch::Contains("ioc-edge status"));
  CHECK_THAT(second, !Catch::Contains("opened") && !Catch::Contains("status API on"));
  // The first one goes on as before.
  const auto seq = rig.stat("backlog", "last_seq");
  REQUIRE(wait_until([&] { return rig.stat("backlog", "last_seq") > seq; }, 10s));
  CHECK(rig.daemon().running());
  REQUIRE(rig.stop() == 0);
  CHECK(rig.integrity_check() == "ok");
}
