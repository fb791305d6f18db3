// The modbus source against real peers: a libmodbus TCP server, the independent pymodbus server,
// and an RTU link over a socat pseudo-terminal pair. Faults: exceptions, silence, a wrong unit id,
// connection refused and the server coming back.
#include <catch2/catch.hpp>

#include <boost/asio/io_context.hpp>
#include <modbus.h>

#include <cstring>

#include "core/log.h"
#include "drivers/builtin.h"
#include "drivers/modbus/modbus_config.h"
#include "drivers/modbus/modbus_source.h"
#include "settings/settings.h"
#include "support/fakes.h"
#include "support/modbus_peers.h"
#include "support/support.h"

using namespace ioc_edge;
using namespace ioc_edge::test;
using namespace std::chrono_literals;

namespace {

// A modbus source built from a [[source]] text, feeding a CapturingSink.
class Rig {
 public:
  explicit Rig(const std::string& source_toml) {
    auto res = load_settings_text("[gateway]\nsite = \"s\"\nprovince = \"p\"\n[uplink]\nurl = \"mqtt://127.0.0.1:1\"\n" +
                                      source_toml,
                                  "t.toml", builtin_drivers());
    INFO(res.diagnostics.format());
    REQUIRE(res.settings);
    settings_ = std::move(*res.settings);
    src_ = modbus::create({settings_.sources[0].name, "s", logger("modbus/" + settings_.sources[0].name), clock_, sink_, io_,
                           counters_},
                          settings_.sources[0].config);
  }
  ~Rig() { src_->stop(); }
  void start() { src_->start(); }
  void stop() { src_->stop(); }
  // The latest reading of `point`, waiting until one exists that satisfies pred.
  Reading latest(const std::string& point, const std::function<bool(const Reading&)>& pred = [](const Reading&) { return true; },
                 std::chrono::milliseconds timeout = 10s) {
    Reading found;
    const bool ok = wait_until([&] {
      std::lock_guard lk(sink_.mu);
      for (auto it = sink_.readings.rbegin(); it != sink_.readings.rend(); ++it)
        if (it->point == point) {
          if (!pred(*it)) return false;
          found = *it;
          return true;
        }
      return false;
    }, timeout);
    INFO("point " << point);
    REQUIRE(ok);
    return found;
  }
  std::vector<std::string> events() {
    std::lock_guard lk(sink_.mu);
    std::vector<std::string> out;
    for (const auto& e : sink_.events) out.push_back(e.point);
    return out;
  }
  std::size_t count() { return sink_.count(); }
  CapturingSink& sink() { return sink_; }
  SourceCounters& counters() { return counters_; }
  std::size_t count_of(const std::string& point) {
    std::lock_guard lk(sink_.mu);
    return static_cast<std::size_t>(std::count_if(sink_.readings.begin(), sink_.readings.end(),
                                                  [&](const Reading& r) { return r.point == point; }));
  }

 private:
  Settings settings_;
  boost::asio::io_context io_;
  SystemClock clock_;
  CapturingSink sink_;
  SourceCounters counters_;
  std::unique_ptr<Source> src_;
};

std::string device(const std::string& url, const std::string& extra, const std::string& points,
                   const std::string& every = "100ms") {
  return "[[source]]\nname = \"dev\"\ntype = \"modbus\"\nurl = \"" + url + "\"\nevery = \"" + every + "\"\ntimeout = \"300ms\"\n"
         "retry_max = \"500ms\"\n" + extra + points;
}

std::string point(const std::string& name, const std::string& reg, int address, const std::string& type,
                  const std::string& more = "") {
  return "[[source.point]]\nname = \"" + name + "\"\nregister = \"" + reg + "\"\naddress = " + std::to_string(address) +
         "\ntype = \"" + type + "\"\n" + more;
}

double num(const Reading& r) {
  if (const auto* d = std::get_if<double>(&r.value)) return *d;
  if (const auto* i = std::get_if<std::int64_t>(&r.value)) return static_cast<double>(*i);
  FAIL("not a number: point " << r.point << " error " << r.error);
  return 0;
}

bool good(const Reading& r) { return r.quality == Quality::Good; }

// Registers holding the same values in every type and order, and the points reading them.
struct Layout {
  std::vector<std::uint16_t> regs;
  std::string points;
};

Layout known_values(const std::string& reg) {
  Layout l;
  auto add = [&](std::vector<std::uint16_t> v, const std::string& name, const std::string& type, const std::string& more) {
    l.points += point(name, reg, static_cast<int>(l.regs.size()), type, more);
    l.regs.insert(l.regs.end(), v.begin(), v.end());
  };
  add({0xFFFE}, "i16", "int16", "");
  add({0xFFFE}, "u16", "uint16", "");
  // -2 / 65534 = 0xFFFE from a device sending 16-bit registers little-endian, and as sent
  add({0xFEFF}, "i16_badc", "int16", "order = \"BADC\"\n");
  add({0xFEFF}, "u16_dcba", "uint16", "order = \"DCBA\"\n");
  add({0xFFFE}, "i16_cdab", "int16", "order = \"CDAB\"\n");
  add({1234}, "scaled", "int16", "scale = 0.1\noffset = -10.0\n");
  add({0x0008}, "flag3", "bool", "bit = 3\n");
  // float32 25.5 = 0x41CC0000 in each order
  add({0x41CC, 0x0000}, "f32_abcd", "float32", "order = \"ABCD\"\n");
  add({0x0000, 0x41CC}, "f32_cdab", "float32", "order = \"CDAB\"\n");
  add({0xCC41, 0x0000}, "f32_badc", "float32", "order = \"BADC\"\n");
  add({0x0000, 0xCC41}, "f32_dcba", "float32", "order = \"DCBA\"\n");
  // int32 -123456789 = 0xF8A432EB
  add({0xF8A4, 0x32EB}, "i32_abcd", "int32", "order = \"ABCD\"\n");
  add({0x32EB, 0xF8A4}, "i32_cdab", "int32", "order = \"CDAB\"\n");
  add({0xA4F8, 0xEB32}, "i32_badc", "int32", "order = \"BADC\"\n");
  add({0xEB32, 0xA4F8}, "i32_dcba", "int32", "order = \"DCBA\"\n");
  add({0x1234, 0x5678}, "u32", "uint32", "");
  // int64 -2 and uint64 0x0102030405060708 and float64 -1.25 (0xBFF4000000000000)
  add({0xFFFF, 0xFFFF, 0xFFFF, 0xFFFE}, "i64", "int64", "");
  add({0x0807, 0x0605, 0x0403, 0x0201}, "u64_dcba", "uint64", "order = \"DCBA\"\n");
  add({0x0000, 0x0000, 0x0000, 0xBFF4}, "f64_cdab", "float64", "order = \"CDAB\"\n");
  add({0x4869, 0x2D31, 0x0000}, "text", "string", "length = 3\n");  // "Hi-1"
  return l;
}

void check_known_values(Rig& rig) {
  CHECK(num(rig.latest("i16", good)) == -2);
  CHECK(num(rig.latest("u16", good)) == 65534);
  CHECK(num(rig.latest("i16_badc", good)) == -2);
  CHECK(num(rig.latest("u16_dcba", good)) == 65534);
  CHECK(num(rig.latest("i16_cdab", good)) == -2);
  CHECK(num(rig.latest("scaled", good)) == Approx(113.4));
  CHECK(std::get<bool>(rig.latest("flag3", good).value));
  for (const char* n : {"f32_abcd", "f32_cdab", "f32_badc", "f32_dcba"}) CHECK(num(rig.latest(n, good)) == 25.5);
  for (const char* n : {"i32_abcd", "i32_cdab", "i32_badc", "i32_dcba"}) CHECK(num(rig.latest(n, good)) == -123456789);
  CHECK(num(rig.latest("u32", good)) == 0x12345678);
  CHECK(num(rig.latest("i64", good)) == -2);
  CHECK(std::get<std::int64_t>(rig.latest("u64_dcba", good).value) == 0x0102030405060708);
  CHECK(num(rig.latest("f64_cdab", good)) == -1.25);
  CHECK(std::get<std::string>(rig.latest("text", good).value) == "Hi-1");
}

}  // namespace

TEST_CASE("modbus: every type and order with known values, libmodbus TCP server", "[modbus][peer]") {
  ModbusTcpServer server;
  auto holding = known_values("holding");
  auto input = known_values("input");
  server.set_holding(0, holding.regs);
  server.set_input(0, input.regs);
  server.set_coils(10, {true, false, true});
  server.set_discrete(20, {false, true});
  // The input-register copy of the layout under other names.
  std::string input_points = input.points;
  for (std::size_t pos = 0; (pos = input_points.find("name = \"", pos)) != std::string::npos; pos += 9)
    input_points.insert(pos + 8, "in_");
  Rig rig(device("tcp://127.0.0.1:" + std::to_string(server.port()), "",
                 holding.points + input_points + point("c10", "coil", 10, "bool") + point("c11", "coil", 11, "bool") +
                     point("d21", "discrete", 21, "bool")));
  rig.start();
  check_known_values(rig);
  CHECK(num(rig.latest("in_f32_dcba", good)) == 25.5);
  CHECK(std::get<std::string>(rig.latest("in_text", good).value) == "Hi-1");
  CHECK(std::get<bool>(rig.latest("c10", good).value));
  CHECK_FALSE(std::get<bool>(rig.latest("c11", good).value));
  CHECK(std::get<bool>(rig.latest("d21", good).value));
  const auto r = rig.latest("f32_abcd", good);
  CHECK(r.ts_ms > 0);
  CHECK(r.error.empty());
}

TEST_CASE("modbus: batching reads adjacent points in one request per kind", "[modbus][peer][batching]") {
  ModbusTcpServer server;
  std::vector<std::uint16_t> regs(100);
  for (int i = 0; i < 100; ++i) regs[static_cast<std::size_t>(i)] = static_cast<std::uint16_t>(i * 3);
  server.set_holding(0, regs);
  std::string points;
  for (int i = 0; i < 100; ++i) points += point("r" + std::to_string(i), "holding", i, "uint16");
  points += point("far", "holding", 5000, "uint16");  // beyond max_gap: a second request
  Rig rig(device("tcp://127.0.0.1:" + std::to_string(server.port()), "", points, "1h"));
  rig.start();
  CHECK(num(rig.latest("r99", good)) == 297);
  CHECK(num(rig.latest("far", good)) == 0);
  rig.stop();
  // One poll of 101 points = 2 read-holding-registers requests (function 3).
  CHECK(server.requests_by_function()[3] == 2);
}

TEST_CASE("modbus: the independent pymodbus server, units 1 and 2, zero-based addresses", "[modbus][peer][pymodbus]") {
  TempDir dir;
  // 16844, 0 = 0x41CC 0x0000 = float32 25.5; 4660, 22136 = 0x1234 0x5678.
  PymodbusServer py(dir.path(),
                    R"({"holding": {"0": [16844, 0, 100]}, "input": {"100": [4660, 22136]}, "coils": {"0": [1, 0, 1]}, "discrete": {"5": [1]}})");
  const std::string url = "tcp://127.0.0.1:" + std::to_string(py.port());
  {
    Rig one(device(url, "unit_id = 1\n",
                   point("f", "holding", 0, "float32") + point("i", "holding", 2, "int16") +
                       point("u32", "input", 100, "uint32") + point("c2", "coil", 2, "bool") +
                       point("d5", "discrete", 5, "bool")));
    one.start();
    CHECK(num(one.latest("f", good)) == 25.5);  // address 0 is the first value: zero-based
    CHECK(num(one.latest("i", good)) == 100);
    CHECK(num(one.latest("u32", good)) == 0x12345678);
    CHECK(std::get<bool>(one.latest("c2", good).value));
    CHECK(std::get<bool>(one.latest("d5", good).value));
  }
  // Unit 2 behind the same address holds every register value + 1000.
  Rig two(device(url, "unit_id = 2\n", point("i", "holding", 2, "uint16")));
  two.start();
  CHECK(num(two.latest("i", good)) == 1100);
}

TEST_CASE("modbus: every type and order with known values, pymodbus server", "[modbus][peer][pymodbus]") {
  TempDir dir;
  const auto layout = known_values("input");
  std::string regs;
  for (auto v : layout.regs) regs += (regs.empty() ? "" : ",") + std::to_string(v);
  PymodbusServer py(dir.path(), R"({"input": {"0": [)" + regs + "]}}");
  Rig rig(device("tcp://127.0.0.1:" + std::to_string(py.port()), "", layout.points));
  rig.start();
  check_known_values(rig);
}

TEST_CASE("modbus: RTU over a serial line (socat pseudo-terminals)", "[modbus][peer][rtu]") {
  TempDir dir;
  ModbusRtuServer server(dir.path(), 3, 19200);
  server.set_holding(0, {1234, 0xFFFE});
  server.set_input(7, {0x41CC, 0x0000});
  server.set_coils(2, {true});
  Rig rig(device("rtu://" + server.client_path(), "unit_id = 3\nbaud = 19200\nparity = \"none\"\n",
                 point("level", "holding", 0, "int16", "scale = 0.01\n") + point("t", "holding", 1, "int16") +
                     point("flow", "input", 7, "float32") + point("pump", "coil", 2, "bool")));
  rig.start();
  CHECK(num(rig.latest("level", good)) == Approx(12.34));
  CHECK(num(rig.latest("t", good)) == -2);
  CHECK(num(rig.latest("flow", good)) == 25.5);
  CHECK(std::get<bool>(rig.latest("pump", good).value));
  CHECK(server.requests() >= 3);
}

TEST_CASE("modbus: an exception response gives bad readings naming it, and a source_down event", "[modbus][peer][faults]") {
  ModbusTcpServer server;
  server.set_holding(0, {42});
  Rig rig(device("tcp://127.0.0.1:" + std::to_string(server.port()), "", point("v", "holding", 0, "uint16")));
  rig.start();
  CHECK(num(rig.latest("v", good)) == 42);
  server.fail_with_exception(MODBUS_EXCEPTION_ILLEGAL_DATA_ADDRESS);
  const auto bad = rig.latest("v", [](const Reading& r) { return r.quality == Quality::Bad; });
  CHECK(bad.error == "exception 2 (illegal data address)");
  CHECK(std::holds_alternative<std::monostate>(bad.value));
  REQUIRE(wait_until([&] { auto e = rig.events(); return std::count(e.begin(), e.end(), "source_down") == 1; }, 5s));
  server.fail_with_exception(0);
  CHECK(num(rig.latest("v", good)) == 42);
  REQUIRE(wait_until([&] { auto e = rig.events(); return std::count(e.begin(), e.end(), "source_up") == 1; }, 5s));
}

TEST_CASE("modbus: a device that stops answering costs its own timeout, not others' polls", "[modbus][peer][faults]") {
  ModbusTcpServer dead, alive;
  dead.set_holding(0, {1});
  alive.set_holding(0, {2});
  Rig a(device("tcp://127.0.0.1:" + std::to_string(dead.port()), "", point("v", "holding", 0, "uint16")));
  Rig b("[[source]]\nname = \"other\"\ntype = \"modbus\"\nurl = \"tcp://127.0.0.1:" + std::to_string(alive.port()) +
        "\"\nevery = \"100ms\"\ntimeout = \"300ms\"\n" + point("w", "holding", 0, "uint16"));
  a.start();
  b.start();
  CHECK(num(a.latest("v", good)) == 1);
  dead.set_silent(true);
  const auto t = a.latest("v", [](const Reading& r) { return r.quality == Quality::Bad; });
  CHECK(t.error == "timeout");
  // The other device, on its own connection, keeps its schedule: 10 polls in ~1 s despite the dead one.
  const auto before = b.count();
  REQUIRE(wait_until([&] { return b.count() >= before + 10; }, 3s));
  REQUIRE(wait_until([&] { auto e = a.events(); return std::count(e.begin(), e.end(), "source_down") == 1; }, 5s));
}

TEST_CASE("modbus: a wrong unit id behind a gateway times out with bad readings", "[modbus][peer][faults]") {
  ModbusTcpServer gateway;
  gateway.set_holding(0, {7});
  gateway.only_unit(1);
  Rig rig(device("tcp://127.0.0.1:" + std::to_string(gateway.port()), "unit_id = 5\n", point("v", "holding", 0, "uint16")));
  rig.start();
  const auto r = rig.latest("v", [](const Reading& x) { return x.quality == Quality::Bad; });
  CHECK(r.error == "timeout");
}

TEST_CASE("modbus: connection refused, then reconnect when the server returns", "[modbus][peer][faults]") {
  ModbusTcpServer server;
  server.set_holding(0, {9});
  Rig rig(device("tcp://127.0.0.1:" + std::to_string(server.port()), "", point("v", "holding", 0, "uint16")));
  rig.start();
  CHECK(num(rig.latest("v", good)) == 9);
  CHECK_FALSE(rig.counters().down.load());
  CHECK(rig.counters().last_error().first.empty());
  server.stop();
  const auto r = rig.latest("v", [](const Reading& x) { return x.quality == Quality::Bad && x.error == "connection refused"; });
  CHECK(r.error == "connection refused");
  REQUIRE(wait_until([&] { auto e = rig.events(); return std::count(e.begin(), e.end(), "source_down") == 1; }, 5s));
  // What the status API shows: down, and why.
  CHECK(rig.counters().down.load());
  CHECK(rig.counters().last_error().first == "connection refused");
  CHECK(rig.counters().last_error().second > 0);
  // Still down: more refused polls (with backoff) do not claim the device is back.
  const auto errors = rig.counters().errors.load();
  REQUIRE(wait_until([&] { return rig.counters().errors.load() >= errors + 2; }, 5s));
  {
    auto e = rig.events();
    CHECK(std::count(e.begin(), e.end(), "source_up") == 0);
  }
  server.start();
  CHECK(num(rig.latest("v", good, 15s)) == 9);
  REQUIRE(wait_until([&] { auto e = rig.events(); return std::count(e.begin(), e.end(), "source_up") == 1; }, 5s));
  CHECK_FALSE(rig.counters().down.load());
  CHECK(rig.counters().last_error().first == "connection refused");  // kept, with its time, for the officer
}

TEST_CASE("modbus: a point's own every makes its own schedule", "[modbus][peer][schedule]") {
  ModbusTcpServer server;
  server.set_holding(0, {1, 2});
  Rig rig(device("tcp://127.0.0.1:" + std::to_string(server.port()), "",
                 point("fast", "holding", 0, "uint16", "every = \"50ms\"\n") +
                     point("slow", "holding", 1, "uint16", "every = \"400ms\"\n")));
  rig.start();
  REQUIRE(wait_until([&] { return rig.count_of("slow") >= 3; }, 5s));
  rig.stop();
  // 8 fast polls per slow one; allow for the start and the stop falling between polls.
  const auto fast = rig.count_of("fast"), slow = rig.count_of("slow");
  INFO("fast " << fast << ", slow " << slow);
  CHECK(fast >= 6 * (slow - 1));
  CHECK(fast <= 8 * slow + 2);
}

TEST_CASE("modbus: a poll that runs past its period counts an overrun instead of queueing", "[modbus][peer][schedule]") {
  ModbusTcpServer server;
  server.set_holding(0, {1});
  Rig rig(device("tcp://127.0.0.1:" + std::to_string(server.port()), "", point("v", "holding", 0, "uint16"), "50ms"));
  rig.start();
  CHECK(num(rig.latest("v", good)) == 1);
  server.set_silent(true);  // the next poll waits its 300 ms timeout: six periods of 50 ms
  REQUIRE(wait_until([&] { return rig.counters().overruns.load() >= 5; }, 5s));
  // Bad readings, but not a burst of queued polls: at most one poll per period went out.
  CHECK(server.requests() < 200);
}

TEST_CASE("modbus: one bad address gives bad readings for its points only, the device stays up", "[modbus][peer][faults]") {
  ModbusTcpServer server;  // 10,000 registers: reading past them is an exception
  server.set_holding(0, {0x41CC, 0x0000});
  Rig rig(device("tcp://127.0.0.1:" + std::to_string(server.port()), "",
                 point("good", "holding", 0, "float32") + point("wrong", "holding", 9999, "float32")));
  rig.start();
  const auto bad = rig.latest("wrong", [](const Reading& r) { return r.quality == Quality::Bad; });
  CHECK(bad.error == "exception 2 (illegal data address)");
  CHECK(num(rig.latest("good", good)) == 25.5);
  // Several polls later: still no source_down, the good point still good.
  const auto n = rig.count_of("good");
  REQUIRE(wait_until([&] { return rig.count_of("good") >= n + 3; }, 5s));
  CHECK(rig.events().empty());
  CHECK(num(rig.latest("good")) == 25.5);
}

TEST_CASE("modbus: an exception on one schedule alone gives bad readings there, the device stays up",
          "[modbus][peer][faults][schedule]") {
  ModbusTcpServer server;  // 10,000 registers: the slow total is configured past them
  server.set_holding(0, {7});
  Rig rig(device("tcp://127.0.0.1:" + std::to_string(server.port()), "",
                 point("level", "holding", 0, "uint16", "every = \"50ms\"\n") +
                     point("total", "holding", 9998, "uint64", "every = \"150ms\"\n")));
  rig.start();
  const auto bad = rig.latest("total", [](const Reading& r) { return r.quality == Quality::Bad; });
  CHECK(bad.error == "exception 2 (illegal data address)");
  // Several slow polls, every one an exception: no source_down / source_up flapping.
  REQUIRE(wait_until([&] { return rig.count_of("total") >= 4; }, 5s));
  CHECK(rig.events().empty());
  CHECK(num(rig.latest("level", good)) == 7);
}

TEST_CASE("modbus: a gateway saying the device behind it did not answer takes the device down at once",
          "[modbus][peer][faults][schedule]") {
  ModbusTcpServer gateway;
  gateway.set_holding(0, {5, 6});
  Rig rig(device("tcp://127.0.0.1:" + std::to_string(gateway.port()), "",
                 point("level", "holding", 0, "uint16", "every = \"50ms\"\n") +
                     point("total", "holding", 1, "uint16", "every = \"1h\"\n")));
  rig.start();
  CHECK(num(rig.latest("level", good)) == 5);
  CHECK(num(rig.latest("total", good)) == 6);  // the hourly schedule has answered once
  gateway.fail_with_exception(MODBUS_EXCEPTION_GATEWAY_TARGET);
  const auto bad = rig.latest("level", [](const Reading& r) { return r.quality == Quality::Bad; });
  CHECK(bad.error == "exception 11 (target device failed to respond)");
  // Down on the fast schedule alone: no waiting an hour for the other one to fail too.
  REQUIRE(wait_until([&] { auto e = rig.events(); return std::count(e.begin(), e.end(), "source_down") == 1; }, 5s));
  CHECK(rig.counters().down.load());
}

TEST_CASE("modbus probe: reads a real device once and shows every decoding", "[modbus][peer][probe]") {
  ModbusTcpServer server;
  server.set_input(7, {0x0000, 0x41CC});  // float32 25.5 in CDAB order
  TempDir dir;
  const auto url = "tcp://127.0.0.1:" + std::to_string(server.port());
  const int rc = run_to_exit({ioc_edge_binary(), "modbus", "probe", url, "--unit", "4", "--register", "input", "--address",
                              "7", "--count", "2"},
                             dir.file("probe.log"), 20s);
  const auto out = read_file(dir.file("probe.log"));
  INFO(out);
  CHECK(rc == 0);
  CHECK_THAT(out, Catch::Contains("unit 4, 2 input registers from address 7"));
  CHECK_THAT(out, Catch::Contains("0x41cc"));
  CHECK_THAT(out, Catch::Contains("float32") && Catch::Contains("25.5"));
  CHECK(run_to_exit({ioc_edge_binary(), "modbus", "probe", url, "--count", "0"}, dir.file("bad.log"), 20s) == 2);
  server.stop();
  CHECK(run_to_exit({ioc_edge_binary(), "modbus", "probe", url}, dir.file("refused.log"), 20s) == 1);
  CHECK_THAT(read_file(dir.file("refused.log")), Catch::Contains("connection refused"));
}

TEST_CASE("modbus: devices behind one gateway share one connection and are polled in turn", "[modbus][peer][bus]") {
  ModbusTcpServer gateway;  // answers every unit id
  gateway.set_holding(0, {11});
  const auto port = std::to_string(gateway.port());
  Rig a(device("tcp://127.0.0.1:" + port, "unit_id = 1\n", point("v", "holding", 0, "uint16")));
  Rig b("[[source]]\nname = \"other\"\ntype = \"modbus\"\nurl = \"tcp://127.0.0.1:" + port +
        "\"\nunit_id = 2\nevery = \"100ms\"\n" + point("v", "holding", 0, "uint16"));
  const auto before = gateway.connections();  // the server's own readiness check connected once
  a.start();
  b.start();
  CHECK(num(a.latest("v", good)) == 11);
  CHECK(num(b.latest("v", good)) == 11);
  CHECK(gateway.connections() - before == 1);
}
