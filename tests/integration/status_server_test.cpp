// The status API's request limits (daemon/ops/status_server.h): oversized bodies and headers and
// garbage get their status codes, and the API keeps answering. The status API under load and in a
// hostile environment (port taken, 1,200 slow clients, no descriptors left) is measured by
// tests/serial/status_server_load_test.cpp.
#include <string>

#include "integration/daemon_rig.h"

using namespace ioc_edge::test;
using namespace std::chrono_literals;

TEST_CASE("request limits: a body over 1 KiB gets 413, headers over 8 KiB get 431, garbage gets 400",
          "[integration][status]") {
  DaemonRig rig;
  rig.start();
  const int port = rig.status_port();

  const auto big_body = http_request(port, "GET", "/status", std::string(4096, 'x'), {}, 5s);
  CHECK(big_body.status == 413);
  CHECK_THAT(big_body.body, Catch::Contains("larger than 1024 bytes"));
  const auto small_body = http_request(port, "POST", "/outbox/requeue", std::string(512, 'x'), {}, 5s);
  CHECK(small_body.status == 200);
  const auto big_headers = http_request(port, "GET", "/status", {}, {{"X-Big", std::string(10 * 1024, 'y')}}, 5s);
  CHECK(big_headers.status == 431);
  const auto bad = http_request(port, "GET", "/status", {}, {{"Content-Length", "banana"}}, 5s);
  CHECK(bad.status == 400);
  CHECK(http_get(port, "/status").status == 200);
  CHECK(rig.stop() == 0);
}
