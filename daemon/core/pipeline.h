#pragma once
// The pipeline between one source and the outbox (DESIGN.md section 2): validates each reading,
// serializes it, stores a batch as few outbox records as the uplink's batch limits allow (one per
// poll, typically; a record never holds more than `chunk_readings` readings and goes past
// `chunk_bytes` only when a single reading does), and reports back to the source.
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/log.h"
#include "core/outbox.h"
#include "core/source.h"

namespace ioc_edge {

struct PipelineLimits {
  std::size_t chunk_readings = 500;     // the uplink's batch_max_readings
  std::size_t chunk_bytes = 256 * 1024; // the uplink's batch_max_bytes
};

class SourcePipeline final : public Sink {
 public:
  SourcePipeline(Outbox& outbox, std::string source, Priority prio, SourceCounters& counters, PipelineLimits limits);

  void push(std::vector<Reading> readings, std::function<void(const SinkResult&)> done) override;
  void event(Reading e, std::function<void(const SinkResult&)> done) override;

 private:
  void store(std::vector<Reading> readings, Kind kind, Priority prio, std::function<void(const SinkResult&)> done);

  Outbox& outbox_;
  std::string source_;
  Priority prio_;
  SourceCounters& counters_;
  PipelineLimits limits_;
  std::shared_ptr<spdlog::logger> log_;
  RateLimit invalid_log_{std::chrono::seconds(60)};
};

// Why a reading cannot be stored as it is, or empty if it can (names and values bounded, UTF-8).
std::string invalid_reason(const Reading& r);

}  // namespace ioc_edge
