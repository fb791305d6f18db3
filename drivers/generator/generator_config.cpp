#include "drivers/generator/generator_config.h"

#include "settings/table_reader.h"

namespace ioc_edge::generator {

std::unique_ptr<DriverConfig> parse_config(TableReader& r) {
  auto c = std::make_unique<Config>();
  c->rate = r.number_or("rate", c->rate, 0.001, 10'000'000);
  c->points = static_cast<int>(r.integer_or("points", c->points, 1, 100000));
  c->point_prefix = r.string_or("point_prefix", c->point_prefix);
  if (c->point_prefix.empty()) r.error_at_key("point_prefix", "must not be empty");
  c->unit = r.string_or("unit", c->unit);
  c->tick = r.duration_or("tick", c->tick, std::chrono::milliseconds(1));
  c->blob_size = r.size_or("blob_size", c->blob_size);
  if (c->blob_size > 64ull << 20) r.error_at_key("blob_size", "must be at most 64MiB");
  c->blob_every = r.duration_or("blob_every", c->blob_every, std::chrono::milliseconds(100));
  return c;
}

std::string blob_bytes(std::uint64_t size) {
  std::string out(size, '\0');
  for (std::uint64_t i = 0; i < size; ++i) out[i] = static_cast<char>((i * 131 + 7) & 0xFF);
  return out;
}

}  // namespace ioc_edge::generator
