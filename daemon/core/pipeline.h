#pragma once
// The pipeline between one source and the outbox (docs/design.md section 2): validates each reading,
// serializes it, stores a batch as few outbox records as the uplink's batch limits allow (one per
// poll, typically; a record never holds more than `chunk_readings` readings nor makes a message
// larger than `chunk_bytes`), and reports back to the source. A reading that alone would make a
// message larger than the uplink allows is refused with the batch it came in, as invalid input is:
// no message may exceed what the broker takes (a broker refuses it, and it would wait forever).
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <mutex>

#include "core/log.h"
#include "core/outbox.h"
#include "core/source.h"

namespace ioc_edge {

struct PipelineLimits {
  std::size_t chunk_readings = 500;     // the uplink's batch_max_readings
  std::size_t chunk_bytes = 256 * 1024; // a message's room for readings: batch_max_bytes less the batch header
  std::size_t blob_bytes = 4 << 20;     // the uplink's blob_max_bytes
};

// Data readings by quality: bad ones, and the others (good or uncertain: a value arrived), with
// when the good ones were measured (SourceCounters::good_times).
struct QualityTally {
  std::uint64_t good = 0, bad = 0;
  std::vector<GoodTimes::Run> good_runs;
};

class SourcePipeline final : public Sink {
 public:
  SourcePipeline(Outbox& outbox, std::string source, Priority prio, SourceCounters& counters, PipelineLimits limits,
                 const Clock& clock);

  void push(std::vector<Reading> readings, std::function<void(const SinkResult&)> done) override;
  void event(Reading e, std::function<void(const SinkResult&)> done) override;
  void blob(Blob b, std::function<void(const SinkResult&)> done) override;
  void push_as(std::string source, Kind kind, std::vector<Reading> readings,
               std::function<void(const SinkResult&)> done) override;
  void push_batch(Batch batch, std::function<void(const SinkResult&)> done) override;
  std::optional<std::vector<Mark>> marks(std::string_view prefix) override;
  void hurry() override { outbox_.commit_soon(); }

 private:
  void store(const std::string& source, std::vector<Reading> readings, Kind kind, Priority prio,
             std::function<void(const SinkResult&)> done, std::string_view reading_source = {});
  // Frames `readings` into records appended to `records`; false and `why` if one is invalid.
  bool frame(const std::string& source, std::vector<Reading>& readings, Kind kind, Priority prio,
             std::string_view reading_source, std::vector<NewRecord>& records, std::string& why);
  // A source's marks live under "{source}/" in the outbox: no source sees another's.
  std::string mark_prefix() const { return source_ + "/"; }
  void refuse_invalid(std::size_t readings, const std::string& why, const std::function<void(const SinkResult&)>& done);
  using Tally = QualityTally;
  static void tally(const std::vector<Reading>& readings, Tally& t, std::vector<std::int64_t>& good_ts);
  void append(std::vector<NewRecord> records, std::size_t n, std::function<void(const SinkResult&)> done,
              std::vector<Mark> marks = {}, Tally t = {});

  void note_refused(std::size_t n, const std::string& reason);
  void report_refused();

  Outbox& outbox_;
  const Clock& clock_;
  std::string source_;
  Priority prio_;
  SourceCounters& counters_;
  PipelineLimits limits_;
  std::shared_ptr<spdlog::logger> log_;
  RateLimit invalid_log_{std::chrono::seconds(60)};
  // Readings the outbox refused and the IOC has not heard of yet (guarded by refused_mu_).
  std::mutex refused_mu_;
  std::uint64_t unreported_ = 0;
  std::int64_t refused_from_ms_ = 0, refused_to_ms_ = 0;
  std::string refused_reason_;
};


}  // namespace ioc_edge
