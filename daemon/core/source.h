#pragma once
// The Source seam (docs/design.md section 2; docs/style.md "The seams"): a driver that produces readings.
//
// A Source is built from its config section and a SourceContext. start() does not block; after
// stop() returns it never calls the sink again. It hands batches of readings to the sink and
// learns, through the callback, when they are durable (committed to the outbox) or refused, so a
// source with a sender (MQTT, HTTP, files) acknowledges only what is stored, and a source without
// one counts what was refused.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "core/clock.h"
#include "core/reading.h"

namespace spdlog {
class logger;
}

namespace ioc_edge {

class TableReader;
class Diagnostics;

enum class SinkStatus { Stored, Refused, Invalid };

struct SinkResult {
  SinkStatus status = SinkStatus::Refused;
  std::string error;            // why not stored
  std::int64_t first_seq = 0;   // seqs given to the batch when stored
  std::int64_t last_seq = 0;
};

// A binary payload of a source (a camera snapshot): stored as one outbox record (one seq) and
// published as two messages under both MQTT versions: its metadata as an event on
// {prefix}/event/{source} (seq, content type, size, sha256, origin, time), then its bytes untouched
// on {prefix}/blob/{source} (MQTT 5 adds the metadata as user properties). docs/schema/README.md.
struct Blob {
  std::string point;         // what it is, e.g. "snapshot"
  std::int64_t ts_ms = 0;    // when it was taken (UTC ms)
  std::string content_type;  // e.g. "image/jpeg"; may be empty
  std::string bytes;
  std::string origin;        // where it came from, e.g. the camera's MQTT topic; may be empty
  std::string source;        // the device's own source name when not the source's (a valid id; in its metadata)
  Priority prio = Priority::Low;  // after telemetry by default: a snapshot must not delay live data
};

// Readings of several groups (the source's own, devices or systems it names) and marks, stored in
// ONE outbox transaction: all of it, or nothing (an invalid reading anywhere refuses the whole batch).
struct Batch {
  struct Group {
    std::string source;            // empty: the source's own name; otherwise as push_as()
    Kind kind = Kind::Data;        // Data or Event
    std::vector<Reading> readings;
  };
  std::vector<Group> groups;
  std::vector<Mark> marks;
};

// Where a source puts its readings. Thread-safe. `done` runs once, on the outbox thread (or at
// once, on the caller's thread, when the batch is rejected before queueing); it must not block.
class Sink {
 public:
  virtual ~Sink() = default;
  virtual void push(std::vector<Reading> readings, std::function<void(const SinkResult&)> done) = 0;
  // An event of the source (e.g. source_down): stored like a reading, published on the event topic.
  virtual void event(Reading event, std::function<void(const SinkResult&)> done) = 0;
  // A binary payload; refused (Invalid) when larger than [uplink] blob_max_bytes.
  virtual void blob(Blob blob, std::function<void(const SinkResult&)> done) = 0;
  // As push() (kind Data) or event() (kind Event), for readings that name another source than
  // the source's own: a source that names its devices per message (an MQTT source's `source_name`
  // from topic levels). They are stored and sent under the source's own name (its topic), so one
  // message carries many devices' readings; each reading's `source` says `source`
  // (docs/schema/README.md). `source` must be a valid id (core/reading.h), else the batch is
  // refused as Invalid. The source's own counters count them.
  virtual void push_as(std::string source, Kind kind, std::vector<Reading> readings,
                       std::function<void(const SinkResult&)> done) = 0;
  // All of `batch` in one transaction (see Batch). SinkResult's seqs span every group.
  virtual void push_batch(Batch batch, std::function<void(const SinkResult&)> done) = 0;
  // The source's marks whose key starts with `prefix`, expired ones left out; nullopt when the
  // store could not be read (a storage fault: decide nothing on it, try again later). Blocks until
  // the outbox's writer thread has answered (milliseconds; longer while a commit runs): call it
  // from start() or a worker thread, not for every message on the io thread.
  virtual std::optional<std::vector<Mark>> marks(std::string_view prefix) = 0;
  // The source's sender waits for the acknowledgement of what was pushed and its window is filling:
  // commit what waits now rather than within [buffer] commit_interval. Does not block.
  virtual void hurry() {}
};

// When the good data readings a source stored were measured (their ts), as runs: readings less
// than kJoinMs apart make one run. The completeness count (daemon/ops/rollup_tracker.h) looks only
// at longer gaps, so a run is all it needs of a busy source. The pipeline adds a committed batch's
// runs on the outbox thread; the main thread takes them about every second. At most kMaxRuns wait
// between takes: more widen the last one (a burst of old data is not read as gaps).
class GoodTimes {
 public:
  struct Run {
    std::int64_t first_ms = 0, last_ms = 0;
  };
  static constexpr std::int64_t kJoinMs = 1500;  // gaps shorter than 1.5 x the shortest expected_every (1 s)
  static constexpr std::size_t kMaxRuns = 256;

  // `ts_ms` sorted in place and joined into runs.
  static std::vector<Run> runs_of(std::vector<std::int64_t>& ts_ms) {
    std::sort(ts_ms.begin(), ts_ms.end());
    std::vector<Run> out;
    for (const auto t : ts_ms) {
      if (!out.empty() && t - out.back().last_ms < kJoinMs)
        out.back().last_ms = t;
      else
        out.push_back({t, t});
    }
    return out;
  }
  void add(const std::vector<Run>& runs) {
    std::lock_guard lk(mu_);
    for (const auto& r : runs) {
      if (runs_.size() < kMaxRuns) {
        runs_.push_back(r);
        continue;
      }
      runs_.back().first_ms = std::min(runs_.back().first_ms, r.first_ms);
      runs_.back().last_ms = std::max(runs_.back().last_ms, r.last_ms);
    }
  }
  std::vector<Run> take() {
    std::lock_guard lk(mu_);
    return std::exchange(runs_, {});
  }

 private:
  std::mutex mu_;
  std::vector<Run> runs_;
};

// Counters every source keeps; shown in the status API.
struct SourceCounters {
  std::atomic<std::uint64_t> produced{0};  // readings handed to the sink
  std::atomic<std::uint64_t> stored{0};    // readings the outbox committed
  std::atomic<std::uint64_t> refused{0};   // readings the outbox refused (full disk, overload)
  std::atomic<std::uint64_t> errors{0};    // read/parse errors at the source
  std::atomic<std::uint64_t> overruns{0};  // polls skipped because the previous one ran past its period
  std::atomic<std::int64_t> last_ok_ms{0}; // when the last batch was stored
  // Of the stored data readings: those with a value (quality good or uncertain) and the bad ones
  // (a device's error, an unreadable field). Events do not count.
  std::atomic<std::uint64_t> good{0};
  std::atomic<std::uint64_t> bad{0};
  std::atomic<std::int64_t> last_good_ms{0};    // when the last good reading was stored (wall clock, ms)
  // No good reading for 3x the source's expected_every (source_stale sent); since when.
  std::atomic<bool> stale{false};
  std::atomic<std::int64_t> stale_since_ms{0};
  GoodTimes good_times;  // when the good readings were measured, for the hourly roll-ups
  std::atomic<bool> down{false};           // the device or peer is not answering (source_down sent)
  std::atomic<std::uint64_t> messages{0};    // messages taken from a sender (MQTT publishes, requests, files)
  std::atomic<std::uint64_t> redelivered{0}; // of those, sent again by the sender (not acknowledged before)

  // Bad input by kind ("malformed_json", "oversized", ...): counted here, shown in the status.
  void count_bad(std::string_view kind) {
    std::lock_guard lk(error_mu_);
    ++bad_[std::string(kind)];
  }
  std::map<std::string, std::uint64_t> bad_input() const {
    std::lock_guard lk(error_mu_);
    return bad_;
  }

  // The last read or parse error at the source and when it happened (wall clock, ms).
  void set_error(std::string error, std::int64_t at_ms) {
    std::lock_guard lk(error_mu_);
    last_error_ = std::move(error);
    last_error_ms_ = at_ms;
  }
  std::pair<std::string, std::int64_t> last_error() const {
    std::lock_guard lk(error_mu_);
    return {last_error_, last_error_ms_};
  }

 private:
  mutable std::mutex error_mu_;
  std::string last_error_;
  std::int64_t last_error_ms_ = 0;
  std::map<std::string, std::uint64_t> bad_;
};

struct SourceContext {
  std::string name;
  std::string site;  // [gateway] site (a default client id, for instance)
  std::shared_ptr<spdlog::logger> log;
  const Clock& clock;
  Sink& sink;
  boost::asio::io_context& io;  // the main thread's io_context, for timers and sockets
  SourceCounters& counters;
};

class Source {
 public:
  virtual ~Source() = default;
  virtual void start() = 0;
  virtual void stop() = 0;
};

// A driver's parsed section. Each driver derives its own config struct from it.
struct DriverConfig {
  virtual ~DriverConfig() = default;
  // How often a source that polls produces data (its shortest schedule); zero for sources that
  // are sent data. The default of `[[source]] expected_every` (the stale-source watch).
  virtual std::chrono::milliseconds poll_interval() const { return {}; }
};

// A parsed source as a driver's cross-source check sees it.
struct ParsedSource {
  std::string_view name;
  const DriverConfig* config;
};

// One line in drivers/builtin.cpp.
struct Driver {
  std::string_view type;
  std::string_view summary;
  // Reads the driver's own keys; reports problems through the reader. Never throws.
  std::unique_ptr<DriverConfig> (*parse)(TableReader& section);
  // The source may keep `config` (shared, not copied: a device may have thousands of points).
  std::unique_ptr<Source> (*create)(SourceContext context, std::shared_ptr<const DriverConfig> config);
  // Optional: checks what only the driver's sources together can get wrong (two devices on one
  // serial line with different settings); reports through `diag`. Never throws.
  void (*check_together)(const std::vector<ParsedSource>& sources, Diagnostics& diag) = nullptr;
};

}  // namespace ioc_edge
