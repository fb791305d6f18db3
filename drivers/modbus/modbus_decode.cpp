#include "drivers/modbus/modbus_decode.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>

namespace ioc_edge::modbus {

std::vector<std::uint8_t> ordered_bytes(const std::uint16_t* regs, int count, Order order) {
  const bool swap_words = order == Order::CDAB || order == Order::DCBA;
  const bool swap_bytes = order == Order::BADC || order == Order::DCBA;
  std::vector<std::uint8_t> out;
  out.reserve(static_cast<std::size_t>(count) * 2);
  for (int i = 0; i < count; ++i) {
    const std::uint16_t r = regs[swap_words ? count - 1 - i : i];
    const auto hi = static_cast<std::uint8_t>(r >> 8), lo = static_cast<std::uint8_t>(r & 0xFF);
    out.push_back(swap_bytes ? lo : hi);
    out.push_back(swap_bytes ? hi : lo);
  }
  return out;
}

namespace {

std::uint64_t be_uint(const std::vector<std::uint8_t>& b) {
  std::uint64_t v = 0;
  for (auto x : b) v = (v << 8) | x;
  return v;
}

Value scaled(const Point& p, std::int64_t raw) {
  if (p.scale == 1.0 && p.offset == 0.0) return raw;
  return static_cast<double>(raw) * p.scale + p.offset;
}

Value scaled_u(const Point& p, std::uint64_t raw) {
  if (p.scale == 1.0 && p.offset == 0.0 && raw <= static_cast<std::uint64_t>(INT64_MAX))
    return static_cast<std::int64_t>(raw);
  return static_cast<double>(raw) * p.scale + p.offset;
}

}  // namespace

Decoded decode(const Point& p, const std::uint16_t* regs) {
  Decoded d;
  switch (p.type) {
    case DataType::Bool:
      d.value = ((regs[0] >> p.bit) & 1) != 0;
      break;
    case DataType::Int16:
      d.value = scaled(p, static_cast<std::int16_t>(static_cast<std::uint16_t>(be_uint(ordered_bytes(regs, 1, p.order)))));
      break;
    case DataType::Uint16:
      d.value = scaled(p, static_cast<std::int64_t>(be_uint(ordered_bytes(regs, 1, p.order))));
      break;
    case DataType::Int32:
      d.value = scaled(p, static_cast<std::int32_t>(static_cast<std::uint32_t>(be_uint(ordered_bytes(regs, 2, p.order)))));
      break;
    case DataType::Uint32:
      d.value = scaled(p, static_cast<std::int64_t>(be_uint(ordered_bytes(regs, 2, p.order))));
      break;
    case DataType::Int64:
      d.value = scaled(p, static_cast<std::int64_t>(be_uint(ordered_bytes(regs, 4, p.order))));
      break;
    case DataType::Uint64:
      d.value = scaled_u(p, be_uint(ordered_bytes(regs, 4, p.order)));
      break;
    case DataType::Float32: {
      const auto f = std::bit_cast<float>(static_cast<std::uint32_t>(be_uint(ordered_bytes(regs, 2, p.order))));
      // Widen through the shortest decimal form so 229.8f is 229.8, not 229.8000030517578.
      char buf[32];
      const auto res = std::to_chars(buf, buf + sizeof buf, f);
      double wide = static_cast<double>(f);
      std::from_chars(buf, res.ptr, wide);
      d.value = wide * p.scale + p.offset;
      break;
    }
    case DataType::Float64: {
      const auto f = std::bit_cast<double>(be_uint(ordered_bytes(regs, 4, p.order)));
      d.value = f * p.scale + p.offset;
      break;
    }
    case DataType::String: {
      const auto bytes = ordered_bytes(regs, p.length, p.order == Order::BADC || p.order == Order::DCBA ? Order::BADC : Order::ABCD);
      std::string s(bytes.begin(), bytes.end());
      while (!s.empty() && (s.back() == '\0' || s.back() == ' ')) s.pop_back();
      if (const auto nul = s.find('\0'); nul != std::string::npos) s.resize(nul);
      if (!valid_utf8(s)) {
        d.quality = Quality::Bad;
        d.error = "string is not valid UTF-8";
        return d;
      }
      d.value = std::move(s);
      break;
    }
  }
  if (const auto* v = std::get_if<double>(&d.value); v && !std::isfinite(*v)) {
    d.value = std::monostate{};
    d.quality = Quality::Bad;
    d.error = "not a finite number (NaN or infinity)";
  }
  return d;
}

Decoded decode_bit(const Point&, std::uint8_t bit) { return {Value(bit != 0), Quality::Good, {}}; }

std::vector<Request> plan(const std::vector<Point>& points, const std::vector<std::size_t>& which, int max_gap,
                          int max_registers, int max_bits) {
  std::vector<std::size_t> order(which);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    if (points[a].kind != points[b].kind) return points[a].kind < points[b].kind;
    return points[a].address < points[b].address;
  });
  std::vector<Request> out;
  for (const auto i : order) {
    const auto& p = points[i];
    const int first = p.address, end = p.address + width(p);  // [first, end)
    const bool bits = p.kind == RegisterKind::Coil || p.kind == RegisterKind::Discrete;
    const int limit = bits ? max_bits : max_registers;
    const int gap = bits ? max_gap * 16 : max_gap;  // the same bytes on the wire
    if (!out.empty()) {
      auto& r = out.back();
      const int r_end = r.start + r.count;
      if (r.kind == p.kind && first - r_end <= gap && std::max(r_end, end) - r.start <= limit) {
        r.count = std::max(r_end, end) - r.start;
        r.points.push_back(i);
        continue;
      }
    }
    out.push_back({p.kind, first, end - first, {i}});
  }
  return out;
}

}  // namespace ioc_edge::modbus
