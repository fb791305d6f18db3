// Decoding with known byte patterns, every type and order; request planning.
#include <catch2/catch.hpp>

#include <sstream>

#include "drivers/modbus/modbus_decode.h"
#include "drivers/modbus/modbus_probe.h"

using namespace ioc_edge;
using namespace ioc_edge::modbus;

namespace {
Point pt(DataType t, Order o = Order::ABCD) {
  Point p;
  p.type = t;
  p.order = o;
  return p;
}
template <typename T>
T as(const Decoded& d) {
  REQUIRE(d.quality == Quality::Good);
  REQUIRE(std::holds_alternative<T>(d.value));
  return std::get<T>(d.value);
}
}  // namespace

TEST_CASE("modbus: the four orders of float32 25.5 (0x41CC0000)", "[modbus][decode]") {
  // Bytes A=0x41 B=0xCC C=0x00 D=0x00 as four devices would send them.
  const std::uint16_t abcd[] = {0x41CC, 0x0000};
  const std::uint16_t cdab[] = {0x0000, 0x41CC};
  const std::uint16_t badc[] = {0xCC41, 0x0000};
  const std::uint16_t dcba[] = {0x0000, 0xCC41};
  CHECK(as<double>(decode(pt(DataType::Float32, Order::ABCD), abcd)) == 25.5);
  CHECK(as<double>(decode(pt(DataType::Float32, Order::CDAB), cdab)) == 25.5);
  CHECK(as<double>(decode(pt(DataType::Float32, Order::BADC), badc)) == 25.5);
  CHECK(as<double>(decode(pt(DataType::Float32, Order::DCBA), dcba)) == 25.5);
  CHECK(as<double>(decode(pt(DataType::Float32, Order::ABCD), cdab)) != 25.5);
}

TEST_CASE("modbus: float32 is published at float precision, not with binary noise", "[modbus][decode]") {
  const std::uint16_t v[] = {0x4365, 0xCCCD};  // 229.8f
  CHECK(as<double>(decode(pt(DataType::Float32), v)) == 229.8);
}

TEST_CASE("modbus: integers of every width and sign, in every order", "[modbus][decode]") {
  const std::uint16_t neg16[] = {0xFFFE};
  CHECK(as<std::int64_t>(decode(pt(DataType::Int16), neg16)) == -2);
  CHECK(as<std::int64_t>(decode(pt(DataType::Uint16), neg16)) == 65534);
  // 0x12345678
  const std::uint16_t i32[4][2] = {{0x1234, 0x5678}, {0x5678, 0x1234}, {0x3412, 0x7856}, {0x7856, 0x3412}};
  const Order orders[] = {Order::ABCD, Order::CDAB, Order::BADC, Order::DCBA};
  for (int k = 0; k < 4; ++k) {
    CHECK(as<std::int64_t>(decode(pt(DataType::Uint32, orders[k]), i32[k])) == 0x12345678);
    CHECK(as<std::int64_t>(decode(pt(DataType::Int32, orders[k]), i32[k])) == 0x12345678);
  }
  const std::uint16_t m1[] = {0xFFFF, 0xFFFF};
  CHECK(as<std::int64_t>(decode(pt(DataType::Int32), m1)) == -1);
  CHECK(as<std::int64_t>(decode(pt(DataType::Uint32), m1)) == 4294967295);
  // 0x0102030405060708 as ABCD and DCBA
  const std::uint16_t i64[] = {0x0102, 0x0304, 0x0506, 0x0708};
  const std::uint16_t i64r[] = {0x0807, 0x0605, 0x0403, 0x0201};
  CHECK(as<std::int64_t>(decode(pt(DataType::Int64), i64)) == 0x0102030405060708);
  CHECK(as<std::int64_t>(decode(pt(DataType::Uint64, Order::DCBA), i64r)) == 0x0102030405060708);
  const std::uint16_t cdab64[] = {0x0708, 0x0506, 0x0304, 0x0102};
  CHECK(as<std::int64_t>(decode(pt(DataType::Int64, Order::CDAB), cdab64)) == 0x0102030405060708);
  const std::uint16_t big[] = {0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF};
  CHECK(as<double>(decode(pt(DataType::Uint64), big)) == Approx(1.8446744073709552e19));
  CHECK(as<std::int64_t>(decode(pt(DataType::Int64), big)) == -1);
  // float64 1.5 = 0x3FF8000000000000
  const std::uint16_t f64[] = {0x3FF8, 0, 0, 0};
  CHECK(as<double>(decode(pt(DataType::Float64), f64)) == 1.5);
}

TEST_CASE("modbus: 16-bit types in every order: ABCD and CDAB as sent, BADC and DCBA bytes swapped", "[modbus][decode]") {
  const Order orders[] = {Order::ABCD, Order::CDAB, Order::BADC, Order::DCBA};
  // One register, 0x1234: 4660 as sent, 0x3412 = 13330 with its bytes swapped.
  const std::uint16_t r[] = {0x1234};
  const std::int64_t r_expected[] = {4660, 4660, 13330, 13330};
  // 0xFEFF: -257 / 65279 as sent; swapped 0xFFFE = -2 / 65534 (a little-endian device sending -2).
  const std::uint16_t neg[] = {0xFEFF};
  const std::int64_t neg_int16[] = {-257, -257, -2, -2};
  const std::int64_t neg_uint16[] = {65279, 65279, 65534, 65534};
  // 0x0080: 128 as sent; swapped 0x8000 = -32768 / 32768: the sign bit comes from the second byte.
  const std::uint16_t low[] = {0x0080};
  const std::int64_t low_int16[] = {128, 128, -32768, -32768};
  const std::int64_t low_uint16[] = {128, 128, 32768, 32768};
  for (int k = 0; k < 4; ++k) {
    INFO("order " << to_string(orders[k]));
    CHECK(as<std::int64_t>(decode(pt(DataType::Int16, orders[k]), r)) == r_expected[k]);
    CHECK(as<std::int64_t>(decode(pt(DataType::Uint16, orders[k]), r)) == r_expected[k]);
    CHECK(as<std::int64_t>(decode(pt(DataType::Int16, orders[k]), neg)) == neg_int16[k]);
    CHECK(as<std::int64_t>(decode(pt(DataType::Uint16, orders[k]), neg)) == neg_uint16[k]);
    CHECK(as<std::int64_t>(decode(pt(DataType::Int16, orders[k]), low)) == low_int16[k]);
    CHECK(as<std::int64_t>(decode(pt(DataType::Uint16, orders[k]), low)) == low_uint16[k]);
  }
  // The swap comes before scale and offset: 1234 sent little-endian (0xD204), scaled.
  auto p = pt(DataType::Int16, Order::DCBA);
  p.scale = 0.1;
  p.offset = -10;
  const std::uint16_t le[] = {0xD204};
  CHECK(as<double>(decode(p, le)) == Approx(113.4));
  // The byte order of one register on its own.
  CHECK(ordered_bytes(r, 1, Order::ABCD) == std::vector<std::uint8_t>{0x12, 0x34});
  CHECK(ordered_bytes(r, 1, Order::CDAB) == std::vector<std::uint8_t>{0x12, 0x34});
  CHECK(ordered_bytes(r, 1, Order::BADC) == std::vector<std::uint8_t>{0x34, 0x12});
  CHECK(ordered_bytes(r, 1, Order::DCBA) == std::vector<std::uint8_t>{0x34, 0x12});
}

TEST_CASE("modbus: scale and offset, bits, strings, NaN", "[modbus][decode]") {
  auto p = pt(DataType::Int16);
  p.scale = 0.1;
  p.offset = -10;
  const std::uint16_t r[] = {1234};
  CHECK(as<double>(decode(p, r)) == Approx(113.4));
  auto b = pt(DataType::Bool);
  b.bit = 3;
  const std::uint16_t flags[] = {0x0008};
  CHECK(as<bool>(decode(b, flags)));
  b.bit = 2;
  CHECK_FALSE(as<bool>(decode(b, flags)));
  auto s = pt(DataType::String);
  s.length = 3;
  const std::uint16_t text[] = {0x4142, 0x4344, 0x4500};  // "ABCDE\0"
  CHECK(as<std::string>(decode(s, text)) == "ABCDE");
  s.order = Order::BADC;
  CHECK(as<std::string>(decode(s, text)) == "BADC");  // bytes B A D C 00 E: the string ends at the NUL
  const std::uint16_t bad[] = {0xFF41, 0x0000, 0x0000};
  s.order = Order::ABCD;
  CHECK(decode(s, bad).quality == Quality::Bad);
  const std::uint16_t nan[] = {0x7FC0, 0x0000};
  const auto d = decode(pt(DataType::Float32), nan);
  CHECK(d.quality == Quality::Bad);
  CHECK_THAT(d.error, Catch::Contains("not a finite number"));
}

TEST_CASE("modbus: nearby points of one kind are read in as few requests as possible", "[modbus][plan]") {
  std::vector<Point> pts;
  auto add = [&](RegisterKind k, int addr, DataType t) {
    Point p;
    p.name = "p" + std::to_string(pts.size());
    p.kind = k;
    p.address = static_cast<std::uint16_t>(addr);
    p.type = t;
    pts.push_back(p);
  };
  add(RegisterKind::Input, 0, DataType::Float32);    // 0-1
  add(RegisterKind::Input, 2, DataType::Float32);    // 2-3
  add(RegisterKind::Input, 10, DataType::Float32);   // 10-11: gap of 6
  add(RegisterKind::Input, 100, DataType::Uint16);   // far away: new request
  add(RegisterKind::Holding, 0, DataType::Uint16);   // other kind: new request
  add(RegisterKind::Coil, 5, DataType::Bool);
  add(RegisterKind::Coil, 200, DataType::Bool);      // bits: a gap of 194 bits <= 16 * 16
  std::vector<std::size_t> all(pts.size());
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
  auto reqs = plan(pts, all, 16, 125, 2000);
  REQUIRE(reqs.size() == 4);  // coils, holding, input 0..11, input 100
  CHECK(reqs[0].kind == RegisterKind::Coil);
  CHECK(reqs[0].count == 196);
  CHECK(reqs[2].kind == RegisterKind::Input);
  CHECK(reqs[2].start == 0);
  CHECK(reqs[2].count == 12);
  CHECK(reqs[2].points.size() == 3);
  CHECK(reqs[3].start == 100);
  // a smaller gap splits; a per-device cap splits
  CHECK(plan(pts, all, 4, 125, 2000).size() == 6);  // input 2-3 / 10-11 and the two coils split
  CHECK(plan(pts, all, 16, 4, 2000).size() == 5);
  // 100 consecutive registers: one request; 250: two (125 each)
  std::vector<Point> many;
  for (int i = 0; i < 250; ++i) {
    Point p;
    p.name = "r" + std::to_string(i);
    p.address = static_cast<std::uint16_t>(i);
    many.push_back(p);
  }
  std::vector<std::size_t> first100(100), all250(250);
  for (std::size_t i = 0; i < 250; ++i) {
    all250[i] = i;
    if (i < 100) first100[i] = i;
  }
  CHECK(plan(many, first100, 16, 125, 2000).size() == 1);
  CHECK(plan(many, all250, 16, 125, 2000).size() == 2);
}

TEST_CASE("modbus probe: shows every type in every order", "[modbus][probe]") {
  std::ostringstream out;
  print_decodings({0x41CC, 0x0000}, 100, out);
  const auto s = out.str();
  CHECK_THAT(s, Catch::Contains("0x41cc"));
  CHECK_THAT(s, Catch::Contains("float32"));
  CHECK_THAT(s, Catch::Contains("25.5"));
  CHECK_THAT(s, Catch::Contains("ABCD") && Catch::Contains("CDAB") && Catch::Contains("BADC") && Catch::Contains("DCBA"));
}

TEST_CASE("modbus probe: shows each register as sent and with its bytes swapped", "[modbus][probe]") {
  std::ostringstream out;
  print_decodings({0x1234, 0xFEFF}, 100, out);
  const auto s = out.str();
  INFO(s);
  CHECK_THAT(s, Catch::Contains("16-bit values at each address, as sent (ABCD, CDAB) and with the two bytes swapped (BADC, DCBA):\n"));
  CHECK_THAT(s, Catch::Contains("address  hex     uint16  int16   uint16 BADC  int16 BADC\n"));
  CHECK_THAT(s, Catch::Contains("\n100      0x1234  4660    4660    13330        13330\n"));
  CHECK_THAT(s, Catch::Contains("\n101      0xfeff  65279   -257    65534        -2\n"));
}
