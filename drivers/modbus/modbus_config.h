#pragma once
// The `modbus` source's configuration: one device (a unit id behind a TCP address or a serial line)
// and its points. See drivers/modbus/README.md for every key.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/source.h"

namespace ioc_edge {
class TableReader;
}

namespace ioc_edge::modbus {

enum class RegisterKind : std::uint8_t { Coil, Discrete, Holding, Input };
enum class DataType : std::uint8_t { Bool, Int16, Uint16, Int32, Uint32, Int64, Uint64, Float32, Float64, String };
// Byte/word order of multi-register values, named by where bytes A (most significant) .. D land.
enum class Order : std::uint8_t { ABCD, CDAB, BADC, DCBA };

std::string_view to_string(RegisterKind k);
std::string_view to_string(DataType t);
std::string_view to_string(Order o);

struct Point {
  std::string name;
  RegisterKind kind = RegisterKind::Holding;
  std::uint16_t address = 0;
  DataType type = DataType::Uint16;
  Order order = Order::ABCD;
  double scale = 1.0;
  double offset = 0.0;
  std::string unit;
  int length = 0;   // string: registers (2 characters each)
  int bit = -1;     // bool from one bit (0..15) of a holding/input register
  std::chrono::milliseconds every{0};  // 0: the device's `every`
};

// Registers (or bits, for coils/discrete inputs) a point occupies.
int width(const Point& p);

struct SerialSettings {
  std::string device;
  int baud = 9600;
  char parity = 'N';  // N, E, O
  int data_bits = 8;
  int stop_bits = 1;
};

struct Config final : DriverConfig {
  std::string url;          // as written
  int url_line = 0, url_column = 0;  // where, for errors that involve several sources
  bool rtu = false;
  std::string host;         // tcp
  int port = 502;           // tcp
  SerialSettings serial;    // rtu
  int unit_id = 1;
  std::chrono::milliseconds every{5000};
  std::chrono::milliseconds timeout{1000};
  std::chrono::milliseconds retry_max{60000};  // longest wait between attempts at a dead device
  int max_gap = 16;            // unused registers a request may span to join two points
  int max_registers = 125;     // per request (the protocol allows 125)
  int max_bits = 2000;         // per request for coils / discrete inputs (the protocol allows 2000)
  std::vector<Point> points;

  // The shortest schedule among the points (each its own `every`, or the device's).
  std::chrono::milliseconds poll_interval() const override {
    if (points.empty()) return every;
    auto shortest = std::chrono::milliseconds::max();
    for (const auto& p : points) shortest = std::min(shortest, p.every.count() > 0 ? p.every : every);
    return shortest;
  }
};

std::unique_ptr<DriverConfig> parse_config(TableReader& section);

// One physical connection: "tcp://h" and "tcp://h:502" are the same; a /dev/serial/by-id link and
// the device it points to are the same line. Devices with one key share a connection and a thread.
std::string connection_key(const Config& cfg);

// Whether two devices ask for the same line settings (baud, parity, data and stop bits), and
// those settings in words: "19200 baud, parity even, 8 data bits, 1 stop bit".
bool same_line_settings(const SerialSettings& a, const SerialSettings& b);
std::string describe_line_settings(const SerialSettings& s);

// Devices on one serial line must agree on its settings (baud, parity, data and stop bits).
void check_together(const std::vector<ParsedSource>& sources, Diagnostics& diag);

}  // namespace ioc_edge::modbus
