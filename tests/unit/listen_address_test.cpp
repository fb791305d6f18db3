// The one rule for server addresses (settings/table_reader.h: parse_listen_address), used by the
// status API, http-ingest and ioc-receiver.
#include <catch2/catch.hpp>

#include "settings/table_reader.h"

using ioc_edge::parse_listen_address;

TEST_CASE("listen addresses: IPv4, [IPv6], localhost; everything else refused", "[unit][settings][listen]") {
  auto a = parse_listen_address("0.0.0.0:8780");
  REQUIRE(a);
  CHECK(a->host == "0.0.0.0");
  CHECK(a->port == 8780);
  a = parse_listen_address("[::1]:8787");
  REQUIRE(a);
  CHECK(a->host == "::1");
  a = parse_listen_address("[::]:1");
  REQUIRE(a);
  CHECK(a->host == "::");
  a = parse_listen_address("[fe80::1%eth0]:8780");  // link-local, with its interface
  REQUIRE(a);
  CHECK(a->host == "fe80::1%eth0");
  a = parse_listen_address("localhost:8788");
  REQUIRE(a);
  CHECK(a->host == "127.0.0.1");
  for (const char* bad : {"8780", ":8780", "127.0.0.1:", "127.0.0.1:80a", "host.lan:8780", "::1:8787", "[::1]8787",
                          "[abc]:8787", "127.0.0.1:123456", "[fe80::1%]:8787", "[fe80::1%e/th]:8787", ""}) {
    INFO(bad);
    bool port = true;
    CHECK_FALSE(parse_listen_address(bad, &port));
    CHECK_FALSE(port);
  }
  for (const char* bad : {"127.0.0.1:0", "127.0.0.1:65536", "[::1]:70000"}) {
    INFO(bad);
    bool port = false;
    CHECK_FALSE(parse_listen_address(bad, &port));
    CHECK(port);
  }
}
