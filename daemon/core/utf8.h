#pragma once
// UTF-8 well-formedness (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF). Header-only
// so that the libraries below core (the MQTT subscriber) share the one definition.
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace ioc_edge {

// The offset of the first byte that makes `s` ill-formed UTF-8, or npos when it is well-formed.
inline std::size_t utf8_error_at(std::string_view s) {
  const auto* b = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  std::size_t i = 0;
  while (i < n) {
    const unsigned char c = b[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    int more;
    std::uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      more = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      more = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      more = 3;
      cp = c & 0x07;
    } else {
      return i;
    }
    if (n - i <= static_cast<std::size_t>(more)) return i;
    for (int k = 1; k <= more; ++k) {
      if ((b[i + k] & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (b[i + k] & 0x3F);
    }
    static constexpr std::uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[more] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += static_cast<std::size_t>(more) + 1;
  }
  return std::string_view::npos;
}

inline bool valid_utf8(std::string_view s) { return utf8_error_at(s) == std::string_view::npos; }

}  // namespace ioc_edge
