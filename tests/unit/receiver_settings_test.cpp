// ioc-receiver's settings (receiver/settings.h): the documented file loads with the documented
// defaults, so the documentation cannot rot.
#include <catch2/catch.hpp>

#include "receiver/settings.h"
#include "support/support.h"

TEST_CASE("config/ioc-receiver.toml loads, with its defaults", "[unit][receiver]") {
  const auto path = ioc_edge::test::repo_root() + "/config/ioc-receiver.toml";
  const auto res = ioc_receiver::load_settings_text(ioc_edge::test::read_file(path), path, /*check_files=*/false);
  INFO(res.diagnostics.format());
  REQUIRE(res.settings);
  const auto& s = *res.settings;
  CHECK(s.broker.tls);
  CHECK(s.broker.host == "ioc-broker.example.gov.vn");
  CHECK(s.broker.port == 8883);
  CHECK(s.broker.share_group == "ioc-receivers");
  CHECK(s.broker.topic_root == "ioc");
  CHECK(s.broker.client_id.rfind("ioc-receiver-", 0) == 0);
  CHECK(s.database.url == "postgresql://ioc@/ioc?host=/run/postgresql");
  CHECK(s.database.batch_max_rows == 5000);
  CHECK(s.database.batch_wait == std::chrono::milliseconds(100));
  CHECK(s.database.partitions_ahead == 3);
  CHECK(s.status.host == "127.0.0.1");
  CHECK(s.status.port == 8788);
  CHECK(s.late.office_after == std::chrono::minutes(10));
  CHECK(s.late.source_factor == 3.0);
  CHECK(s.coverage.hole_grace == std::chrono::minutes(10));
  CHECK(s.log_level == "info");
}
