#pragma once
// Pure decoding of Modbus registers into reading values, and the request plan that reads many
// points in few requests. No I/O: unit-tested with known byte patterns.
#include <cstdint>
#include <string>
#include <vector>

#include "core/reading.h"
#include "drivers/modbus/modbus_config.h"

namespace ioc_edge::modbus {

// The raw bytes of `count` registers, most significant byte of the value first, after applying
// `order`: ABCD as sent; CDAB words reversed; BADC bytes swapped in each word; DCBA both. For one
// register (int16, uint16) that is: ABCD and CDAB as sent, BADC and DCBA its two bytes swapped.
std::vector<std::uint8_t> ordered_bytes(const std::uint16_t* regs, int count, Order order);

// The value of `p` from its registers (`regs` points at the point's first register), scaled.
// A string that is not valid UTF-8, or a non-finite float, gives quality bad with `error` set.
struct Decoded {
  Value value;
  Quality quality = Quality::Good;
  std::string error;
};
Decoded decode(const Point& p, const std::uint16_t* regs);
// A coil or discrete input.
Decoded decode_bit(const Point& p, std::uint8_t bit);

// One request: `count` registers (or bits) of `kind` from `start`, and the points it serves.
struct Request {
  RegisterKind kind = RegisterKind::Holding;
  int start = 0;
  int count = 0;
  std::vector<std::size_t> points;  // indexes into the point list
};

// Groups the points (indexes given, all of one schedule) into the fewest requests: points of one
// kind sorted by address join a request while the span stays within `max_registers` (or
// `max_bits`) and the hole between them is at most `max_gap` registers (16 × max_gap bits for
// coils and discrete inputs: the same bytes on the wire).
std::vector<Request> plan(const std::vector<Point>& points, const std::vector<std::size_t>& which, int max_gap,
                          int max_registers, int max_bits);

}  // namespace ioc_edge::modbus
