// kill -9 at random moments, repeatedly: every committed seq reaches the IOC (duplicates allowed,
// gaps never) and the database stays sound.
#include <random>

#include "integration/daemon_rig.h"

using namespace ioc_edge::test;

TEST_CASE("kill -9 at random moments loses no committed reading", "[chaos][kill9]") {
  RigOptions o;
  o.proxy = false;
  o.sources = "[[source]]\nname = \"tram-bom-1\"\ntype = \"generator\"\nrate = 5000\npoints = 8\n";
  DaemonRig rig(o);
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> delay_ms(100, 1500);
  constexpr int kKills = 12;
  std::string store;
  for (int i = 0; i < kKills; ++i) {
    rig.start();
    const auto s = rig.status()["store"].get<std::string>();
    if (store.empty()) store = s;
    CHECK(s == store);  // the store id is made once and kept across crashes
    const auto d = std::chrono::milliseconds(delay_ms(rng));
    // A bounded wait on a condition that never becomes true: the daemon is killed at a random
    // moment, not at a moment of its choosing.
    wait_until([&] { return !rig.daemon().running(); }, d);
    rig.kill9();
  }
  // A last clean run without the generator drains the outbox.
  rig.drain_without_sources(60s);

  const auto last = rig.last_seq_on_disk();
  INFO("last committed seq " << last << ", received " << rig.collector().distinct_data_seqs() << " distinct, "
                             << rig.collector().data_readings() << " with duplicates");
  REQUIRE(last > 1000);
  const auto missing = rig.missing(last);
  CHECK(missing.empty());
  CHECK(rig.gap_seqs().empty());
  CHECK(rig.integrity_check() == "ok");
  std::printf("kill9: %d kills, %lld committed seqs, %zu distinct received, %zu readings received (duplicates %zu)\n",
              kKills, static_cast<long long>(last), rig.collector().distinct_data_seqs(), rig.collector().data_readings(),
              rig.collector().data_readings() - rig.collector().distinct_data_seqs());
}
