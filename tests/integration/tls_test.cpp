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
