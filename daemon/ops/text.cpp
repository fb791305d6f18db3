#include "ops/text.h"

#include <cstdio>

namespace ioc_edge {

std::string human_duration(std::int64_t ms) {
  if (ms < 0) ms = 0;
  if (ms < 1000) return std::to_string(ms) + " ms";
  const std::int64_t s = ms / 1000;
  if (s < 60) return std::to_string(s) + " s";
  const std::int64_t min = s / 60;
  if (min < 60) return std::to_string(min) + " min";
  const std::int64_t h = min / 60;
  if (h < 48) return std::to_string(h) + " h" + (min % 60 ? " " + std::to_string(min % 60) + " min" : "");
  const std::int64_t d = h / 24;
  return std::to_string(d) + " d" + (h % 24 ? " " + std::to_string(h % 24) + " h" : "");
}

std::string human_bytes(std::uint64_t bytes) {
  static const char* const kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  double v = static_cast<double>(bytes) / 1024.0;
  int u = 0;
  while (v >= 1024.0 && u < 3) {
    v /= 1024.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %s", v, kUnits[u]);
  return buf;
}

std::string with_thousands(std::uint64_t n) {
  std::string digits = std::to_string(n), out;
  out.reserve(digits.size() + digits.size() / 3);
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

}  // namespace ioc_edge
