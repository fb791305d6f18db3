#include "drivers/modbus/modbus_config.h"

#include <climits>
#include <cstdlib>
#include <map>
#include <regex>
#include <set>
#include <tuple>

#include "settings/table_reader.h"

namespace ioc_edge::modbus {

std::string_view to_string(RegisterKind k) {
  switch (k) {
    case RegisterKind::Coil: return "coil";
    case RegisterKind::Discrete: return "discrete";
    case RegisterKind::Holding: return "holding";
    case RegisterKind::Input: return "input";
  }
  return "holding";
}

std::string_view to_string(DataType t) {
  static constexpr std::string_view kNames[] = {"bool",   "int16",  "uint16",  "int32",   "uint32",
                                                "int64",  "uint64", "float32", "float64", "string"};
  return kNames[static_cast<int>(t)];
}

std::string_view to_string(Order o) {
  static constexpr std::string_view kNames[] = {"ABCD", "CDAB", "BADC", "DCBA"};
  return kNames[static_cast<int>(o)];
}

int width(const Point& p) {
  switch (p.type) {
    case DataType::Bool:
    case DataType::Int16:
    case DataType::Uint16: return 1;
    case DataType::Int32:
    case DataType::Uint32:
    case DataType::Float32: return 2;
    case DataType::Int64:
    case DataType::Uint64:
    case DataType::Float64: return 4;
    case DataType::String: return p.length;
  }
  return 1;
}

namespace {

template <typename E, std::size_t N>
E lookup(const std::string& s, const std::string_view (&names)[N]) {
  for (std::size_t i = 0; i < N; ++i)
    if (names[i] == s) return static_cast<E>(i);
  return static_cast<E>(0);
}

constexpr std::string_view kKinds[] = {"coil", "discrete", "holding", "input"};
constexpr std::string_view kTypes[] = {"bool",   "int16",  "uint16",  "int32",   "uint32",
                                       "int64",  "uint64", "float32", "float64", "string"};
constexpr std::string_view kOrders[] = {"ABCD", "CDAB", "BADC", "DCBA"};

void parse_url(TableReader& r, Config& c) {
  const auto url = r.string("url", true);
  if (!url) return;
  c.url = *url;
  std::tie(c.url_line, c.url_column) = r.position("url");
  static const std::regex tcp(R"(^tcp://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(:([0-9]{1,5}))?$)");
  static const std::regex rtu(R"(^rtu://(/[^\s]+)$)");
  std::smatch m;
  if (std::regex_match(c.url, m, tcp)) {
    c.host = m[1].str();
    if (c.host.front() == '[') c.host = c.host.substr(1, c.host.size() - 2);
    if (m[3].matched) {
      c.port = std::stoi(m[3].str());
      if (c.port < 1 || c.port > 65535) r.error_at_key("url", "port must be 1..65535");
    }
  } else if (std::regex_match(c.url, m, rtu)) {
    c.rtu = true;
    c.serial.device = m[1].str();
  } else {
    r.error_at_key("url", "\"" + c.url + "\" is not a Modbus URL like \"tcp://192.168.1.50:502\" or \"rtu:///dev/ttyUSB0\"");
  }
}

void parse_serial(TableReader& r, Config& c) {
  const bool any = r.raw().get("baud") || r.raw().get("parity") || r.raw().get("data_bits") || r.raw().get("stop_bits");
  c.serial.baud = static_cast<int>(r.integer_or("baud", 9600, 300, 921600));
  const auto parity = r.enum_or("parity", "none", {"none", "even", "odd"});
  c.serial.parity = parity == "even" ? 'E' : parity == "odd" ? 'O' : 'N';
  c.serial.data_bits = static_cast<int>(r.integer_or("data_bits", 8, 7, 8));
  c.serial.stop_bits = static_cast<int>(r.integer_or("stop_bits", 1, 1, 2));
  if (any && !c.rtu && !c.url.empty())
    r.error_here("baud, parity, data_bits and stop_bits apply only to rtu:// URLs");
}

void parse_point(const toml::table& t, Diagnostics& diag, const std::string& context, Config& c,
                 std::set<std::string>& names) {
  std::string ctx = context + "point: ";
  if (const auto* n = t.get("name"); n && n->is_string()) ctx = context + "point \"" + *n->value<std::string>() + "\": ";
  TableReader r(t, diag, ctx);
  Point p;
  if (auto name = r.string("name", true)) {
    p.name = *name;
    if (p.name.empty() || p.name.size() > 256) r.error_at_key("name", "must be 1 to 256 bytes");
    if (!names.insert(p.name).second) r.error_at_key("name", "\"" + p.name + "\" is used by another point of this device");
  }
  const auto kind = r.enum_or("register", "holding", {"coil", "discrete", "holding", "input"});
  p.kind = lookup<RegisterKind>(kind, kKinds);
  const bool bit_kind = p.kind == RegisterKind::Coil || p.kind == RegisterKind::Discrete;
  if (auto a = r.integer("address", 0, 65535, true)) p.address = static_cast<std::uint16_t>(*a);
  const auto type = r.enum_or("type", bit_kind ? "bool" : "uint16",
                              {"bool", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64", "string"});
  p.type = lookup<DataType>(type, kTypes);
  p.order = lookup<Order>(r.enum_or("order", "ABCD", {"ABCD", "CDAB", "BADC", "DCBA"}), kOrders);
  p.scale = r.number_or("scale", 1.0, -1e300, 1e300);
  p.offset = r.number_or("offset", 0.0, -1e300, 1e300);
  p.unit = r.string_or("unit", "");
  p.every = r.duration_or("every", std::chrono::milliseconds(0), std::chrono::milliseconds(10));
  if (auto len = r.integer("length", 1, 125)) p.length = static_cast<int>(*len);
  if (auto bit = r.integer("bit", 0, 15)) p.bit = static_cast<int>(*bit);

  if (bit_kind && p.type != DataType::Bool)
    r.error_at_key("type", "a " + kind + " is one bit: its type must be \"bool\"");
  if (p.type == DataType::String && p.length == 0) r.error_here("type \"string\" needs length (registers, 2 characters each)");
  if (p.type != DataType::String && t.get("length")) r.error_at_key("length", "applies only to type \"string\"");
  if (p.bit >= 0 && (bit_kind || p.type != DataType::Bool))
    r.error_at_key("bit", "applies only to type \"bool\" read from a holding or input register");
  if (!bit_kind && p.type == DataType::Bool && p.bit < 0)
    r.error_here("a bool from a " + kind + " register needs bit (0..15)");
  if ((p.type == DataType::Bool || p.type == DataType::String) && (t.get("scale") || t.get("offset")))
    r.error_here("scale and offset apply only to numeric types");
  // Every type read from whole registers takes `order`; on int16 and uint16 BADC and DCBA swap the
  // register's two bytes. A bool is one bit (of a coil or of a register) and has no byte order.
  if (t.get("order") && p.type == DataType::Bool)
    r.error_at_key("order", "does not apply to type \"bool\" (one bit); byte orders are for int16, uint16, int32, uint32, "
                            "int64, uint64, float32, float64 and string");
  if (static_cast<int>(p.address) + width(p) - 1 > 65535)
    r.error_at_key("address", "the point runs past address 65535");
  const int limit = bit_kind ? c.max_bits : c.max_registers;
  if (width(p) > limit) r.error_at_key("length", "wider than max_registers (" + std::to_string(limit) + ")");
  r.finish();
  c.points.push_back(std::move(p));
}

}  // namespace

std::unique_ptr<DriverConfig> parse_config(TableReader& r) {
  auto c = std::make_unique<Config>();
  parse_url(r, *c);
  parse_serial(r, *c);
  c->unit_id = static_cast<int>(r.integer_or("unit_id", 1, 0, 255));
  if (c->rtu && (c->unit_id < 1 || c->unit_id > 247))
    r.error_at_key("unit_id", "on a serial line must be 1..247 (0 is the broadcast address, which no device answers)");
  if (!c->rtu && c->unit_id > 247 && c->unit_id != 255)
    r.error_at_key("unit_id", "on Modbus TCP must be 0..247 or 255 (248..254 are reserved)");
  c->every = r.duration_or("every", c->every, std::chrono::milliseconds(10));
  c->timeout = r.duration_or("timeout", c->timeout, std::chrono::milliseconds(10));
  c->retry_max = r.duration_or("retry_max", c->retry_max, std::chrono::milliseconds(100));
  c->max_gap = static_cast<int>(r.integer_or("max_gap", c->max_gap, 0, 2000));
  c->max_registers = static_cast<int>(r.integer_or("max_registers", 125, 1, 125));
  c->max_bits = static_cast<int>(r.integer_or("max_bits", 2000, 1, 2000));
  std::set<std::string> names;
  if (const auto* points = r.array("point")) {
    c->points.reserve(points->size());
    int i = 0;
    for (const auto& node : *points) {
      ++i;
      if (const auto* t = node.as_table())
        parse_point(*t, r.diagnostics(), r.context(), *c, names);
      else
        r.diagnostics().error(node.source(), r.context() + "point #" + std::to_string(i) + ": expected a table ([[source.point]])");
    }
  }
  if (c->points.empty()) r.error_here("a modbus source needs at least one [[source.point]]");
  return c;
}

std::string connection_key(const Config& cfg) {
  if (!cfg.rtu) return "tcp://" + cfg.host + ":" + std::to_string(cfg.port);
  char resolved[PATH_MAX];
  return "rtu://" + std::string(::realpath(cfg.serial.device.c_str(), resolved) ? resolved : cfg.serial.device);
}

bool same_line_settings(const SerialSettings& a, const SerialSettings& b) {
  return a.baud == b.baud && a.parity == b.parity && a.data_bits == b.data_bits && a.stop_bits == b.stop_bits;
}

std::string describe_line_settings(const SerialSettings& s) {
  return std::to_string(s.baud) + " baud, parity " + (s.parity == 'E' ? "even" : s.parity == 'O' ? "odd" : "none") +
         ", " + std::to_string(s.data_bits) + " data bits, " + std::to_string(s.stop_bits) + " stop bit" +
         (s.stop_bits == 1 ? "" : "s");
}

void check_together(const std::vector<ParsedSource>& sources, Diagnostics& diag) {
  std::map<std::string, const ParsedSource*> first_on_line;
  for (const auto& src : sources) {
    const auto& c = static_cast<const Config&>(*src.config);
    if (!c.rtu) continue;
    const auto [it, inserted] = first_on_line.emplace(connection_key(c), &src);
    if (inserted) continue;
    const auto& f = static_cast<const Config&>(*it->second->config);
    if (same_line_settings(f.serial, c.serial)) continue;
    diag.error(c.url_line, c.url_column,
               "source \"" + std::string(src.name) + "\": " + c.url + " is the serial line of source \"" +
                   std::string(it->second->name) + "\" too, which sets " + describe_line_settings(f.serial) +
                   "; this one sets " + describe_line_settings(c.serial) + "; devices on one line must use the same settings");
  }
}

}  // namespace ioc_edge::modbus
