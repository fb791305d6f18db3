#pragma once
// The generator source: `rate` readings per second spread round-robin over `points` points, for
// demos, benchmarks and tests. Runs on the main io_context with a timer; each tick produces the
// readings due since start (so the rate does not drift), capped at one second's worth so a stall
// does not turn into a burst.
#include <memory>

#include <boost/asio/steady_timer.hpp>

#include "core/source.h"
#include "drivers/generator/generator_config.h"

namespace ioc_edge::generator {

std::unique_ptr<Source> create(SourceContext context, std::shared_ptr<const DriverConfig> config);

// The value of point `index` at time `ts_ms`: a slow sine wave around 10 * (index + 1).
double value_at(int index, std::int64_t ts_ms);

class GeneratorSource final : public Source {
 public:
  GeneratorSource(SourceContext context, Config config);
  void start() override;
  void stop() override;

 private:
  void arm();
  void tick();
  void arm_blob();

  SourceContext ctx_;
  Config cfg_;
  boost::asio::steady_timer timer_;
  boost::asio::steady_timer blob_timer_;
  std::chrono::steady_clock::time_point started_;
  std::uint64_t emitted_ = 0;
  std::uint64_t next_point_ = 0;
  std::uint64_t skipped_ = 0;
  std::vector<std::string> names_;
  bool running_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace ioc_edge::generator
