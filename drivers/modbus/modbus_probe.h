#pragma once
// `ioc-edge modbus probe`: read registers once and print them decoded as every type in every byte
// order, so an officer facing an unlabelled meter can find its encoding in a minute.
#include <chrono>
#include <ostream>
#include <string>

#include "drivers/modbus/modbus_config.h"

namespace ioc_edge::modbus {

struct ProbeOptions {
  std::string url;                 // tcp://host:port or rtu:///dev/ttyUSB0
  int unit_id = 1;
  std::string reg = "holding";     // coil | discrete | holding | input
  int address = 0;
  int count = 2;
  std::chrono::milliseconds timeout{1000};
  SerialSettings serial;           // rtu only
};

// Prints the table to `out`, errors to `err`; returns the process exit code (0, 1 failure, 2 usage).
int run_probe(const ProbeOptions& opts, std::ostream& out, std::ostream& err);

// The decoding table for registers already read (pure; used by run_probe and tests).
void print_decodings(const std::vector<std::uint16_t>& regs, int address, std::ostream& out);

}  // namespace ioc_edge::modbus
