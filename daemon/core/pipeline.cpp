#include "core/pipeline.h"

#include "core/gateway_events.h"

#include <algorithm>
#include <chrono>
#include <cmath>

namespace ioc_edge {

namespace {

constexpr std::size_t kMaxNameBytes = 256;
constexpr std::size_t kMaxValueBytes = 256 * 1024;

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

void SourcePipeline::tally(const std::vector<Reading>& readings, Tally& t, std::vector<std::int64_t>& good_ts) {
  for (const auto& r : readings) {
    if (r.quality == Quality::Bad) {
      ++t.bad;
      continue;
    }
    ++t.good;
    // Consecutive readings of one poll share their ts: one entry for them.
    if (good_ts.empty() || good_ts.back() != r.ts_ms) good_ts.push_back(r.ts_ms);
  }
}

std::string invalid_reason(const Reading& r) {
  if (r.point.empty()) return "empty point name";
  if (r.point.size() > kMaxNameBytes) return "point name longer than 256 bytes";
  if (!valid_utf8(r.point)) return "point name is not valid UTF-8";
  if (!valid_utf8(r.unit)) return "unit of point \"" + r.point + "\" is not valid UTF-8";
  if (!valid_utf8(r.error)) return "error text of point \"" + r.point + "\" is not valid UTF-8";
  if (const auto* s = std::get_if<std::string>(&r.value)) {
    if (s->size() > kMaxValueBytes) return "value of point \"" + r.point + "\" is larger than 256 KiB";
    if (!valid_utf8(*s)) return "value of point \"" + r.point + "\" is not valid UTF-8";
  }
  if (const auto* j = std::get_if<JsonText>(&r.value); j && j->text.size() > kMaxValueBytes)
    return "value of point \"" + r.point + "\" is larger than 256 KiB";
  return {};
}

SourcePipeline::SourcePipeline(Outbox& outbox, std::string source, Priority prio, SourceCounters& counters,
                               PipelineLimits limits, const Clock& clock)
    : outbox_(outbox),
      clock_(clock),
      source_(std::move(source)),
      prio_(prio),
      counters_(counters),
      limits_{std::max<std::size_t>(1, limits.chunk_readings), std::max<std::size_t>(64, limits.chunk_bytes),
              std::max<std::size_t>(1, limits.blob_bytes)},
      log_(logger("pipeline")) {}

void SourcePipeline::push(std::vector<Reading> readings, std::function<void(const SinkResult&)> done) {
  store(source_, std::move(readings), Kind::Data, prio_, std::move(done));
}

void SourcePipeline::event(Reading e, std::function<void(const SinkResult&)> done) {
  std::vector<Reading> one;
  one.push_back(std::move(e));
  store(source_, std::move(one), Kind::Event, Priority::High, std::move(done));
}

void SourcePipeline::push_as(std::string source, Kind kind, std::vector<Reading> readings,
                             std::function<void(const SinkResult&)> done) {
  if (!valid_id(source)) {
    refuse_invalid(readings.size(), "source name \"" + source + "\" " + std::string(id_rule()), done);
    return;
  }
  // Stored under this source's own name (its topic), each reading naming `source`: one message
  // carries the readings of many devices.
  if (kind == Kind::Event)
    store(source_, std::move(readings), Kind::Event, Priority::High, std::move(done), source);
  else
    store(source_, std::move(readings), Kind::Data, prio_, std::move(done), source);
}

void SourcePipeline::blob(Blob b, std::function<void(const SinkResult&)> done) {
  std::string why;
  if (!b.source.empty() && !valid_id(b.source))
    why = "source name \"" + b.source + "\" " + std::string(id_rule());
  else if (b.point.empty() || b.point.size() > kMaxNameBytes || !valid_utf8(b.point))
    why = "blob point name must be 1-256 bytes of UTF-8";
  else if (!valid_utf8(b.origin) || b.origin.size() > 65535)
    why = "origin of blob \"" + b.point + "\" must be at most 65535 bytes of UTF-8";
  else if (!valid_utf8(b.content_type) || b.content_type.size() > kMaxNameBytes)
    why = "content type of blob \"" + b.point + "\" must be at most 256 bytes of UTF-8";
  else if (b.bytes.size() > limits_.blob_bytes)
    why = "blob \"" + b.point + "\" is " + std::to_string(b.bytes.size()) + " bytes, larger than [uplink] blob_max_bytes (" +
          std::to_string(limits_.blob_bytes) + ")";
  if (!why.empty()) {
    refuse_invalid(1, why, done);
    return;
  }
  std::vector<NewRecord> one(1);
  auto& e = one.front();
  e.prio = b.prio;
  e.kind = Kind::Blob;
  e.source = source_;
  e.count = 1;
  e.meta = blob_meta_json({b.point, b.ts_ms, b.content_type, b.bytes.size(), sha256_hex(b.bytes), b.origin,
                           b.source == source_ ? std::string_view{} : std::string_view(b.source)});
  e.body = std::move(b.bytes);
  append(std::move(one), 1, std::move(done));
}

void SourcePipeline::refuse_invalid(std::size_t readings, const std::string& why,
                                    const std::function<void(const SinkResult&)>& done) {
  ++counters_.errors;
  counters_.set_error("rejected a batch of " + std::to_string(readings) + " readings: " + why, wall_ms());
  std::uint64_t suppressed = 0;
  if (invalid_log_.allow(suppressed))
    log_->warn("source \"{}\": rejected a batch of {} readings: {} ({} similar suppressed)", source_, readings, why,
               suppressed);
  if (done) done({SinkStatus::Invalid, why, 0, 0});
}

void SourcePipeline::store(const std::string& source, std::vector<Reading> readings, Kind kind, Priority prio,
                           std::function<void(const SinkResult&)> done, std::string_view reading_source) {
  std::vector<NewRecord> records;
  std::string why;
  if (!frame(source, readings, kind, prio, reading_source, records, why)) {
    refuse_invalid(readings.size(), why, done);
    return;
  }
  Tally t;
  if (kind == Kind::Data) {
    std::vector<std::int64_t> good_ts;
    tally(readings, t, good_ts);
    t.good_runs = GoodTimes::runs_of(good_ts);
  }
  append(std::move(records), readings.size(), std::move(done), {}, std::move(t));
}

bool SourcePipeline::frame(const std::string& source, std::vector<Reading>& readings, Kind kind, Priority prio,
                           std::string_view reading_source, std::vector<NewRecord>& records, std::string& why) {
  const bool unsynced = !clock_.synchronized();
  const auto first_record = records.size();
  for (auto& r : readings) {
    r.clock_unsynchronized = unsynced;
    if (why = invalid_reason(r); !why.empty()) return false;
    if (const auto* d = std::get_if<double>(&r.value); d && !std::isfinite(*d)) {
      r.value = std::monostate{};
      r.quality = Quality::Bad;
      if (r.error.empty()) r.error = "not a finite number";
    }
    if (records.size() == first_record || records.back().count >= limits_.chunk_readings) {
      records.push_back({prio, kind, source, {}, 0, {}});
      records.back().body.reserve(std::min(limits_.chunk_readings, readings.size()) *
                                (96 + std::max(source.size(), reading_source.size()) + r.point.size()));
    }
    auto& rec = records.back();
    const auto mark = rec.body.size();
    frame_reading(rec, r, reading_source);
    if (record_message_bytes(kind, rec.body.size(), rec.count) <= limits_.chunk_bytes) continue;
    // This reading takes the record past what one message may hold: it starts the next one...
    NewRecord next{prio, kind, source, rec.body.substr(mark == 0 ? 0 : mark + 1), 1, {}};
    rec.body.resize(mark);  // (and the newline before it goes too)
    --rec.count;
    // ...unless it is too large on its own: then no message could ever carry it.
    const auto alone = record_message_bytes(kind, next.body.size(), 1);
    if (alone > limits_.chunk_bytes) {
      why = "reading of point \"" + r.point + "\" takes " + std::to_string(alone) +
            " bytes, more than one message may hold ([uplink] batch_max_bytes less the batch header: " +
            std::to_string(limits_.chunk_bytes) + ")";
      return false;
    }
    if (rec.count == 0)
      rec = std::move(next);
    else
      records.push_back(std::move(next));
  }
  return true;
}

void SourcePipeline::push_batch(Batch batch, std::function<void(const SinkResult&)> done) {
  std::size_t n = 0;
  for (const auto& g : batch.groups) n += g.readings.size();
  std::vector<NewRecord> records;
  std::string why;
  for (auto& g : batch.groups) {
    if (g.kind != Kind::Data && g.kind != Kind::Event) {
      why = "a batch may hold data and events only";
    } else if (!g.source.empty() && !valid_id(g.source)) {
      why = "source name \"" + g.source + "\" " + std::string(id_rule());
    } else {
      const std::string_view reading_source = g.source == source_ ? std::string_view{} : std::string_view(g.source);
      const auto prio = g.kind == Kind::Event ? Priority::High : prio_;
      if (frame(source_, g.readings, g.kind, prio, reading_source, records, why)) continue;
    }
    refuse_invalid(n, why, done);
    return;
  }
  Tally t;
  {
    std::vector<std::int64_t> good_ts;
    for (const auto& g : batch.groups)
      if (g.kind == Kind::Data) tally(g.readings, t, good_ts);
    t.good_runs = GoodTimes::runs_of(good_ts);
  }
  for (auto& m : batch.marks) {
    if (m.key.empty() || m.key.size() > kMaxMarkKeyBytes || m.value.size() > kMaxMarkValueBytes) {
      refuse_invalid(n, "a mark must have a key of 1-256 bytes and a value of at most 64 KiB", done);
      return;
    }
    m.key = mark_prefix() + m.key;
  }
  append(std::move(records), n, std::move(done), std::move(batch.marks), std::move(t));
}

std::optional<std::vector<Mark>> SourcePipeline::marks(std::string_view prefix) {
  const auto own = mark_prefix();
  bool ok = false;
  auto out = outbox_.marks(own + std::string(prefix), &ok);
  if (!ok) return std::nullopt;
  for (auto& m : out) m.key.erase(0, own.size());
  return out;
}

void SourcePipeline::append(std::vector<NewRecord> records, std::size_t n, std::function<void(const SinkResult&)> done,
                            std::vector<Mark> marks, Tally t) {
  counters_.produced += n;
  outbox_.append(std::move(records), [this, n, t = std::move(t), done = std::move(done)](const AppendResult& res) {
    SinkResult out;
    if (res.status == AppendStatus::Committed) {
      const auto now = wall_ms();
      counters_.stored += n;
      counters_.last_ok_ms = now;
      counters_.good += t.good;
      counters_.bad += t.bad;
      if (t.good > 0) {
        counters_.last_good_ms = now;
        counters_.good_times.add(t.good_runs);
      }
      out = {SinkStatus::Stored, {}, res.first_seq, res.last_seq};
      report_refused();  // storage takes data again: tell the IOC what it could not take
    } else {
      counters_.refused += n;
      if (res.status != AppendStatus::Stopped) note_refused(n, res.error);
      out = {SinkStatus::Refused, res.error, 0, 0};
    }
    if (done) done(out);
  }, std::move(marks));
}

void SourcePipeline::note_refused(std::size_t n, const std::string& reason) {
  const auto now = wall_ms();
  std::lock_guard lk(refused_mu_);
  if (unreported_ == 0) {
    refused_from_ms_ = now;
    refused_reason_ = reason;
  }
  unreported_ += n;
  refused_to_ms_ = now;
}

void SourcePipeline::report_refused() {
  std::uint64_t n;
  std::int64_t from, to;
  std::string reason;
  {
    std::lock_guard lk(refused_mu_);
    if (unreported_ == 0) return;
    n = std::exchange(unreported_, 0);
    from = refused_from_ms_;
    to = refused_to_ms_;
    reason = std::move(refused_reason_);
  }
  std::vector<NewRecord> one;
  one.push_back(refused_event(source_, n, from, to, reason, wall_ms()));
  log_->warn("source \"{}\": {} readings made between {} and {} were refused by the buffer ({}); the IOC is told",
             source_, n, format_rfc3339_ms(from), format_rfc3339_ms(to), reason);
  outbox_.append(std::move(one), [this, n, from, to, reason](const AppendResult& res) {
    if (res.status == AppendStatus::Committed || res.status == AppendStatus::Stopped) return;
    std::lock_guard lk(refused_mu_);  // refused again: keep counting, report with the next
    if (unreported_ == 0) refused_reason_ = reason;
    unreported_ += n;
    refused_from_ms_ = unreported_ == n ? from : std::min(refused_from_ms_, from);
    refused_to_ms_ = std::max(refused_to_ms_, to);
  });
}

}  // namespace ioc_edge
