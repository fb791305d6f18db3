#include "drivers/modbus/modbus_probe.h"

#include <modbus.h>

#include <cerrno>
#include <iomanip>
#include <regex>
#include <sstream>

#include "drivers/modbus/modbus_decode.h"
#include "drivers/modbus/modbus_source.h"

namespace ioc_edge::modbus {

namespace {

std::string show(const Value& v) {
  std::ostringstream s;
  if (const auto* d = std::get_if<double>(&v)) s << std::setprecision(9) << *d;
  else if (const auto* i = std::get_if<std::int64_t>(&v)) s << *i;
  else if (const auto* b = std::get_if<bool>(&v)) s << (*b ? "true" : "false");
  else if (const auto* str = std::get_if<std::string>(&v)) s << '"' << *str << '"';
  else s << "-";
  return s.str();
}

std::string cell(DataType t, Order o, const std::uint16_t* regs) {
  Point p;
  p.type = t;
  p.order = o;
  const auto d = decode(p, regs);
  return d.quality == Quality::Good ? show(d.value) : "(" + d.error + ")";
}

}  // namespace

void print_decodings(const std::vector<std::uint16_t>& regs, int address, std::ostream& out) {
  const int n = static_cast<int>(regs.size());
  out << "16-bit values at each address, as sent (ABCD, CDAB) and with the two bytes swapped (BADC, DCBA):\n";
  out << "address  hex     uint16  int16   uint16 BADC  int16 BADC\n";
  for (int i = 0; i < n; ++i) {
    const std::uint16_t* r = regs.data() + i;
    out << std::left << std::setw(9) << address + i << "0x" << std::right << std::hex << std::setw(4)
        << std::setfill('0') << *r << std::dec << std::setfill(' ') << "  " << std::left << std::setw(8)
        << cell(DataType::Uint16, Order::ABCD, r) << std::setw(8) << cell(DataType::Int16, Order::ABCD, r)
        << std::setw(13) << cell(DataType::Uint16, Order::BADC, r) << cell(DataType::Int16, Order::BADC, r) << "\n";
  }
  const Order orders[] = {Order::ABCD, Order::CDAB, Order::BADC, Order::DCBA};
  for (const auto& [width, types] : {std::pair{2, std::vector{DataType::Float32, DataType::Int32, DataType::Uint32}},
                                     std::pair{4, std::vector{DataType::Float64, DataType::Int64, DataType::Uint64}}}) {
    if (n < width) continue;
    out << "\n" << width * 16 << "-bit values starting at each address, in each order:\n";
    out << std::left << std::setw(9) << "address" << std::setw(9) << "type";
    for (auto o : orders) out << std::setw(24) << to_string(o);
    out << "\n";
    for (int i = 0; i + width <= n; ++i)
      for (auto t : types) {
        out << std::setw(9) << address + i << std::setw(9) << to_string(t);
        for (auto o : orders) out << std::setw(24) << cell(t, o, regs.data() + i);
        out << "\n";
      }
  }
  Point s;
  s.type = DataType::String;
  s.length = n;
  s.order = Order::ABCD;
  const auto ab = decode(s, regs.data());
  s.order = Order::BADC;
  const auto ba = decode(s, regs.data());
  out << "\nstring (ABCD): " << (ab.quality == Quality::Good ? show(ab.value) : "(" + ab.error + ")")
      << "\nstring (BADC): " << (ba.quality == Quality::Good ? show(ba.value) : "(" + ba.error + ")") << "\n";
  out << std::right;
}

int run_probe(const ProbeOptions& o, std::ostream& out, std::ostream& err) {
  static const std::regex tcp(R"(^tcp://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(:([0-9]{1,5}))?$)");
  static const std::regex rtu(R"(^rtu://(/[^\s]+)$)");
  std::smatch m;
  modbus_t* ctx = nullptr;
  if (std::regex_match(o.url, m, tcp)) {
    std::string host = m[1].str();
    if (host.front() == '[') host = host.substr(1, host.size() - 2);
    ctx = modbus_new_tcp_pi(host.c_str(), m[3].matched ? m[3].str().c_str() : "502");
  } else if (std::regex_match(o.url, m, rtu)) {
    ctx = modbus_new_rtu(m[1].str().c_str(), o.serial.baud, o.serial.parity, o.serial.data_bits, o.serial.stop_bits);
  } else {
    err << "ioc-edge modbus probe: \"" << o.url << "\" is not tcp://HOST[:PORT] or rtu:///dev/DEVICE\n";
    return 2;
  }
  const bool bits = o.reg == "coil" || o.reg == "discrete";
  const int max = bits ? 2000 : 125;
  if (o.count < 1 || o.count > max || o.address < 0 || o.address + o.count > 65536) {
    err << "ioc-edge modbus probe: --count must be 1.." << max << " and the range must end by address 65535\n";
    modbus_free(ctx);
    return 2;
  }
  if (modbus_set_slave(ctx, o.unit_id) != 0) {
    err << "ioc-edge modbus probe: --unit " << o.unit_id << " is not valid here (TCP: 0..247 or 255, RTU: 1..247)\n";
    modbus_free(ctx);
    return 2;
  }
  modbus_set_response_timeout(ctx, static_cast<std::uint32_t>(o.timeout.count() / 1000),
                              static_cast<std::uint32_t>((o.timeout.count() % 1000) * 1000));
  if (modbus_connect(ctx) != 0) {
    err << "ioc-edge modbus probe: cannot connect to " << o.url << ": " << describe_error(errno) << "\n";
    modbus_free(ctx);
    return 1;
  }
  std::vector<std::uint16_t> regs;
  std::vector<std::uint8_t> bitv;
  const auto kind = o.reg == "holding" ? RegisterKind::Holding
                    : o.reg == "input" ? RegisterKind::Input
                    : o.reg == "coil"  ? RegisterKind::Coil
                                       : RegisterKind::Discrete;
  const int n = read_block(ctx, kind, o.address, o.count, regs, bitv);
  const int saved = errno;
  modbus_close(ctx);
  modbus_free(ctx);
  if (n != o.count) {
    err << "ioc-edge modbus probe: reading " << o.count << " " << o.reg << " from address " << o.address << " of unit "
        << o.unit_id << " failed: " << describe_error(n < 0 ? saved : EMBBADDATA) << "\n";
    return 1;
  }
  out << o.url << " unit " << o.unit_id << ", " << o.count << " " << o.reg << (bits ? " bits" : " registers")
      << " from address " << o.address << " (zero-based protocol address)\n\n";
  if (bits) {
    for (int i = 0; i < o.count; ++i) out << o.address + i << ": " << (bitv[static_cast<std::size_t>(i)] ? 1 : 0) << "\n";
    return 0;
  }
  print_decodings(regs, o.address, out);
  return 0;
}

}  // namespace ioc_edge::modbus
