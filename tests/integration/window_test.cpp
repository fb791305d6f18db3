// The forwarder's window (forwarder.h, invariant 2) counted on the wire: many sources, a small
// window, the MQTT packets between the daemon and the broker counted by a proxy.
#include "integration/daemon_rig.h"

#include <mutex>

using namespace ioc_edge::test;

namespace {

// Follows one TCP stream of MQTT packets: QoS 1 PUBLISHes from the client, PUBACKs from the broker.
class WireCounter {
 public:
  void feed(bool up, std::string_view bytes) {
    std::lock_guard lk(mu_);
    auto& buf = up ? up_ : down_;
    buf.append(bytes);
    std::size_t at = 0;
    for (;;) {  // fixed header: type and flags, then the remaining length (1..4 bytes, 7 bits each)
      if (buf.size() - at < 2) break;
      std::size_t len = 0, i = 1;
      int shift = 0;
      bool complete = false;
      for (; i < 5 && at + i < buf.size(); ++i) {
        const auto b = static_cast<unsigned char>(buf[at + i]);
        len |= static_cast<std::size_t>(b & 0x7F) << shift;
        shift += 7;
        if ((b & 0x80) == 0) {
          complete = true;
          ++i;
          break;
        }
      }
      if (!complete || buf.size() - at < i + len) break;
      const auto first = static_cast<unsigned char>(buf[at]);
      const int type = first >> 4;
      if (up && type == 3 && ((first >> 1) & 3) == 1) {
        ++publishes_;
        max_outstanding_ = std::max(max_outstanding_, ++outstanding_);
      } else if (!up && type == 4) {
        --outstanding_;
      }
      at += i + len;
    }
    buf.erase(0, at);
  }
  int max_outstanding() {
    std::lock_guard lk(mu_);
    return max_outstanding_;
  }
  int publishes() {
    std::lock_guard lk(mu_);
    return publishes_;
  }

 private:
  std::mutex mu_;
  std::string up_, down_;
  int outstanding_ = 0, max_outstanding_ = 0, publishes_ = 0;
};

}  // namespace

TEST_CASE("fifty sources never take the window past max_inflight on the wire, and no publish is turned away",
          "[integration][window]") {
  RigOptions o;
  o.plain = true;
  o.extra_uplink = "max_inflight = 4\n";
  o.sources.clear();
  for (int i = 0; i < 50; ++i)
    o.sources += "[[source]]\nname = \"dong-ho-" + std::to_string(i) + "\"\ntype = \"generator\"\nrate = 40\npoints = 2\n\n";
  DaemonRig rig(o);
  WireCounter wire;
  rig.proxy().set_tap([&](bool up, std::string_view bytes) { wire.feed(up, bytes); });
  rig.start();
  REQUIRE(wait_until([&] { return rig.collector().distinct_data_seqs() >= 6000; }, 60s));
  const auto st = rig.status();
  REQUIRE(rig.stop() == 0);
  INFO("QoS 1 publishes on the wire: " << wire.publishes());
  CHECK(wire.publishes() > 100);
  // The data window plus at most one heartbeat (and the "offline" status at the very end).
  CHECK(wire.max_outstanding() <= 4 + 2);
  // Paho's buffer is sized from the window: a read that made more messages than the window has
  // room for would have been turned away ("client buffer full") and forced a reconnect.
  CHECK(st["uplink"]["publish_failures"] == 0);
  CHECK(st["uplink"]["connects"] == 1);
  CHECK(st["uplink"]["inflight"].get<int>() <= 4);
}
