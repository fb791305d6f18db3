#include "drivers/generator/generator_source.h"

#include <cmath>

#include <spdlog/spdlog.h>

#include "core/log.h"

namespace ioc_edge::generator {

std::unique_ptr<Source> create(SourceContext context, std::shared_ptr<const DriverConfig> config) {
  return std::make_unique<GeneratorSource>(std::move(context), static_cast<const Config&>(*config));
}

double value_at(int index, std::int64_t ts_ms) {
  constexpr double kPi = 3.14159265358979323846;
  const double phase = 2 * kPi * static_cast<double>(ts_ms % 60000) / 60000.0 + index;
  return std::round((10.0 * (index + 1) + 2.5 * std::sin(phase)) * 1000.0) / 1000.0;
}

GeneratorSource::GeneratorSource(SourceContext context, Config config)
    : ctx_(std::move(context)), cfg_(std::move(config)), timer_(ctx_.io), blob_timer_(ctx_.io) {
  names_.reserve(static_cast<std::size_t>(cfg_.points));
  for (int i = 0; i < cfg_.points; ++i) names_.push_back(cfg_.point_prefix + std::to_string(i));
}

void GeneratorSource::start() {
  running_ = true;
  started_ = ctx_.clock.steady();
  ctx_.log->info("generating {} readings/s over {} points", cfg_.rate, cfg_.points);
  arm();
  if (cfg_.blob_size > 0) arm_blob();
}

void GeneratorSource::arm_blob() {
  blob_timer_.expires_after(cfg_.blob_every);
  blob_timer_.async_wait([this, alive = alive_](const boost::system::error_code& ec) {
    if (ec || !*alive || !running_) return;
    Blob b{"snapshot", ctx_.clock.now_ms(), "application/octet-stream", blob_bytes(cfg_.blob_size)};
    ctx_.sink.blob(std::move(b), [log = ctx_.log](const SinkResult& res) {
      if (res.status != SinkStatus::Stored) log->warn("snapshot not stored: {}", res.error);
    });
    arm_blob();
  });
}

void GeneratorSource::stop() {
  running_ = false;
  *alive_ = false;
  timer_.cancel();
  blob_timer_.cancel();
}

void GeneratorSource::arm() {
  timer_.expires_after(cfg_.tick);
  timer_.async_wait([this, alive = alive_](const boost::system::error_code& ec) {
    if (ec || !*alive || !running_) return;
    tick();
    arm();
  });
}

void GeneratorSource::tick() {
  const double elapsed = std::chrono::duration<double>(ctx_.clock.steady() - started_).count();
  const auto due_total = static_cast<std::uint64_t>(elapsed * cfg_.rate);
  std::uint64_t due = due_total - emitted_ - skipped_;
  const auto cap = static_cast<std::uint64_t>(std::max(1.0, cfg_.rate));
  if (due > cap) {  // we fell behind (stalled loop): skip rather than burst
    skipped_ += due - cap;
    due = cap;
  }
  if (due == 0) return;
  const auto now = ctx_.clock.now_ms();
  std::vector<Reading> batch;
  batch.reserve(due);
  for (std::uint64_t i = 0; i < due; ++i) {
    const auto idx = static_cast<int>(next_point_++ % names_.size());
    Reading r;
    r.point = names_[static_cast<std::size_t>(idx)];
    r.ts_ms = now;
    r.value = value_at(idx, now);
    r.unit = cfg_.unit;
    batch.push_back(std::move(r));
  }
  emitted_ += due;
  ctx_.sink.push(std::move(batch), [log = ctx_.log, alive = alive_](const SinkResult& res) {
    if (res.status == SinkStatus::Stored) return;
    static RateLimit limit(std::chrono::seconds(30));
    std::uint64_t suppressed = 0;
    if (limit.allow(suppressed))
      log->warn("readings not stored: {} ({} similar suppressed)", res.error, suppressed);
  });
}

}  // namespace ioc_edge::generator
