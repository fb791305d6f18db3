// The modbus section's keys and every class of mistake, with line and column.
#include <catch2/catch.hpp>

#include "drivers/builtin.h"
#include "drivers/modbus/modbus_config.h"
#include "settings/settings.h"

using namespace ioc_edge;

namespace {
const std::string kHead = "[gateway]\nsite = \"s\"\nprovince = \"p\"\n[uplink]\nurl = \"mqtt://127.0.0.1:1\"\n";  // 5 lines

LoadResult load(const std::string& source) { return load_settings_text(kHead + source, "m.toml", builtin_drivers()); }

const char* kMeter = R"([[source]]
name = "dong-ho-dien-ubnd"
type = "modbus"
url = "tcp://192.168.1.50:502"
unit_id = 1
every = "5s"
timeout = "1s"
  [[source.point]]
  name = "voltage_l1"
  register = "input"
  address = 0
  type = "float32"
  order = "ABCD"
  scale = 1.0
  offset = 0.0
  unit = "V"
)";
}  // namespace

TEST_CASE("modbus config: the documented example loads", "[modbus][config]") {
  auto res = load(kMeter);
  INFO(res.diagnostics.format());
  REQUIRE(res.settings);
  const auto& c = static_cast<const modbus::Config&>(*res.settings->sources[0].config);
  CHECK(c.host == "192.168.1.50");
  CHECK(c.port == 502);
  CHECK_FALSE(c.rtu);
  CHECK(c.every == std::chrono::seconds(5));
  REQUIRE(c.points.size() == 1);
  CHECK(c.points[0].kind == modbus::RegisterKind::Input);
  CHECK(c.points[0].type == modbus::DataType::Float32);
  CHECK(c.points[0].unit == "V");
}

TEST_CASE("modbus config: rtu settings", "[modbus][config]") {
  auto res = load("[[source]]\nname = \"m\"\ntype = \"modbus\"\nurl = \"rtu:///dev/ttyUSB0\"\nbaud = 19200\nparity = \"even\"\n"
                  "[[source.point]]\nname = \"level\"\naddress = 3\ntype = \"int16\"\nscale = 0.01\n");
  INFO(res.diagnostics.format());
  REQUIRE(res.settings);
  const auto& c = static_cast<const modbus::Config&>(*res.settings->sources[0].config);
  CHECK(c.rtu);
  CHECK(c.serial.device == "/dev/ttyUSB0");
  CHECK(c.serial.baud == 19200);
  CHECK(c.serial.parity == 'E');
}

TEST_CASE("modbus config: mistakes are named with their position", "[modbus][config]") {
  auto out = load(std::string(kMeter) + "  [[source.point]]\n  name = \"voltage_l1\"\n  address = 70000\n  type = \"float\"\n")
                 .diagnostics.format();
  CHECK_THAT(out, Catch::Contains("m.toml:23:10: source \"dong-ho-dien-ubnd\": point \"voltage_l1\": name: \"voltage_l1\" is used by another point"));
  CHECK_THAT(out, Catch::Contains("m.toml:24:13: source \"dong-ho-dien-ubnd\": point \"voltage_l1\": address: must be 0..65535, got 70000"));
  CHECK_THAT(out, Catch::Contains("type: \"float\" is not one of"));
  auto bad_url = load("[[source]]\nname = \"m\"\ntype = \"modbus\"\nurl = \"modbus://x\"\n[[source.point]]\nname = \"a\"\naddress = 0\n");
  CHECK_THAT(bad_url.diagnostics.format(), Catch::Contains("m.toml:9:7: source \"m\": url: \"modbus://x\" is not a Modbus URL"));
  auto no_points = load("[[source]]\nname = \"m\"\ntype = \"modbus\"\nurl = \"tcp://127.0.0.1\"\n");
  CHECK_THAT(no_points.diagnostics.format(), Catch::Contains("needs at least one [[source.point]]"));
  auto tcp_baud = load("[[source]]\nname = \"m\"\ntype = \"modbus\"\nurl = \"tcp://127.0.0.1\"\nbaud = 9600\n[[source.point]]\nname = \"a\"\naddress = 0\n");
  CHECK_THAT(tcp_baud.diagnostics.format(), Catch::Contains("apply only to rtu:// URLs"));
  auto coil_float = load("[[source]]\nname = \"m\"\ntype = \"modbus\"\nurl = \"tcp://127.0.0.1\"\n[[source.point]]\nname = \"a\"\nregister = \"coil\"\naddress = 0\ntype = \"float32\"\n");
  CHECK_THAT(coil_float.diagnostics.format(), Catch::Contains("its type must be \"bool\""));
  auto str_len = load("[[source]]\nname = \"m\"\ntype = \"modbus\"\nurl = \"tcp://127.0.0.1\"\n[[source.point]]\nname = \"a\"\naddress = 0\ntype = \"string\"\n");
  CHECK_THAT(str_len.diagnostics.format(), Catch::Contains("needs length"));
  auto bool_bit = load("[[source]]\nname = \"m\"\ntype = \"modbus\"\nurl = \"tcp://127.0.0.1\"\n[[source.point]]\nname = \"a\"\naddress = 0\ntype = \"bool\"\n");
  CHECK_THAT(bool_bit.diagnostics.format(), Catch::Contains("needs bit (0..15)"));
  auto typo = load("[[source]]\nname = \"m\"\ntype = \"modbus\"\nurl = \"tcp://127.0.0.1\"\n[[source.point]]\nname = \"a\"\nadress = 0\n");
  CHECK_THAT(typo.diagnostics.format(), Catch::Contains("unknown key 'adress' (did you mean 'address'?)"));
}

TEST_CASE("modbus config: unit ids: 1..247 on a serial line, 0..247 or 255 on TCP", "[modbus][config]") {
  const auto with_unit = [](const std::string& url, int unit) {
    return load("[[source]]\nname = \"m\"\ntype = \"modbus\"\nurl = \"" + url + "\"\nunit_id = " + std::to_string(unit) +
                "\n[[source.point]]\nname = \"a\"\naddress = 0\n");
  };
  CHECK_THAT(with_unit("rtu:///dev/ttyUSB0", 0).diagnostics.format(),
             Catch::Contains("m.toml:10:11: source \"m\": unit_id: on a serial line must be 1..247 (0 is the broadcast"));
  CHECK_THAT(with_unit("rtu:///dev/ttyUSB0", 248).diagnostics.format(), Catch::Contains("must be 1..247"));
  CHECK(with_unit("rtu:///dev/ttyUSB0", 247).settings);
  CHECK(with_unit("tcp://127.0.0.1", 0).settings);  // many TCP devices ignore the unit id or expect 0
  CHECK(with_unit("tcp://127.0.0.1", 255).settings);
  CHECK_THAT(with_unit("tcp://127.0.0.1", 250).diagnostics.format(),
             Catch::Contains("unit_id: on Modbus TCP must be 0..247 or 255"));
}

TEST_CASE("modbus config: devices on one serial line must agree on its settings", "[modbus][config]") {
  const auto device = [](const std::string& name, const std::string& url, const std::string& serial) {
    return "[[source]]\nname = \"" + name + "\"\ntype = \"modbus\"\nurl = \"" + url + "\"\n" + serial +
           "[[source.point]]\nname = \"a\"\naddress = 0\n";
  };
  // Same line, same settings (the defaults spelled out or not): one bus, accepted.
  auto same = load(device("a", "rtu:///dev/ttyUSB0", "baud = 9600\n") + device("b", "rtu:///dev/ttyUSB0", ""));
  INFO(same.diagnostics.format());
  CHECK(same.settings);
  // Different lines may differ.
  CHECK(load(device("a", "rtu:///dev/ttyUSB0", "baud = 19200\n") + device("b", "rtu:///dev/ttyUSB1", "")).settings);
  // One line, two speeds: refused at the second device's url, naming both.
  auto clash = load(device("tram-bom", "rtu:///dev/ttyUSB0", "baud = 19200\nparity = \"even\"\n") +
                    device("muc-nuoc", "rtu:///dev/ttyUSB0", "baud = 9600\n"));
  CHECK_FALSE(clash.settings);
  CHECK_THAT(clash.diagnostics.format(),
             Catch::Contains("m.toml:18:7: source \"muc-nuoc\": rtu:///dev/ttyUSB0 is the serial line of source "
                             "\"tram-bom\" too, which sets 19200 baud, parity even, 8 data bits, 1 stop bit; this one "
                             "sets 9600 baud, parity none, 8 data bits, 1 stop bit"));
}

TEST_CASE("modbus config: order on 16-bit types: as sent or bytes swapped", "[modbus][config]") {
  const auto with = [](const std::string& type, const std::string& more) {
    return load("[[source]]\nname = \"m\"\ntype = \"modbus\"\nurl = \"tcp://127.0.0.1\"\n[[source.point]]\nname = \"a\"\naddress = 0\n"
                "type = \"" + type + "\"\n" + more);
  };
  // Device maps and generated templates write the order on every point.
  for (const char* type : {"int16", "uint16"})
    for (const char* order : {"ABCD", "CDAB", "BADC", "DCBA"}) {
      auto res = with(type, std::string("order = \"") + order + "\"\n");
      INFO(type << " " << order << ": " << res.diagnostics.format());
      REQUIRE(res.settings);
      const auto& p = static_cast<const modbus::Config&>(*res.settings->sources[0].config).points[0];
      CHECK(modbus::to_string(p.type) == type);
      CHECK(modbus::to_string(p.order) == order);
    }
  // An order that is not one of the four is still refused, at its value.
  auto typo = with("int16", "order = \"ABDC\"\n");
  CHECK_FALSE(typo.settings);
  CHECK_THAT(typo.diagnostics.format(),
             Catch::Contains("m.toml:14:9: source \"m\": point \"a\": order: \"ABDC\" is not one of \"ABCD\", \"CDAB\", \"BADC\", \"DCBA\""));
  auto lower = with("uint16", "order = \"badc\"\n");
  CHECK_FALSE(lower.settings);
  CHECK_THAT(lower.diagnostics.format(), Catch::Contains("order: \"badc\" is not one of"));
  // A bool is one bit, of a coil or of a register: no byte order.
  auto bit = with("bool", "bit = 3\norder = \"BADC\"\n");
  CHECK_FALSE(bit.settings);
  CHECK_THAT(bit.diagnostics.format(),
             Catch::Contains("m.toml:15:9: source \"m\": point \"a\": order: does not apply to type \"bool\""));
  auto coil = load("[[source]]\nname = \"m\"\ntype = \"modbus\"\nurl = \"tcp://127.0.0.1\"\n[[source.point]]\nname = \"a\"\n"
                   "register = \"coil\"\naddress = 0\norder = \"ABCD\"\n");
  CHECK_FALSE(coil.settings);
  CHECK_THAT(coil.diagnostics.format(), Catch::Contains("order: does not apply to type \"bool\""));
}
