#pragma once
// Small text helpers shared by the health rules and the renderers (daemon/ops/).
#include <cstdint>
#include <string>

namespace ioc_edge {

// "45 s", "17 min", "3 h 5 min", "2 d 4 h": how long, for people.
std::string human_duration(std::int64_t ms);
// "512 B", "1.5 KiB", "230.4 MiB", "1.9 GiB".
std::string human_bytes(std::uint64_t bytes);
// "1,234,567".
std::string with_thousands(std::uint64_t n);

}  // namespace ioc_edge
