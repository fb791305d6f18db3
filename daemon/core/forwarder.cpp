#include "core/forwarder.h"

#include <algorithm>
#include <optional>
#include <limits>

#include "core/gateway_events.h"
#include "core/log.h"

namespace ioc_edge {

namespace {

constexpr auto kLinkModelWindow = std::chrono::seconds(10);
constexpr std::size_t kInitialBacklogBudget = 64 * 1024;  // before the first acknowledgement is measured
constexpr std::size_t kMinBacklogMessage = 16 * 1024;
// A live read may make several full messages (of many sources): it holds at most this many
// messages' worth of records in memory.
constexpr std::size_t kLiveReadMessages = 4;
constexpr auto kRateInterval = std::chrono::milliseconds(500);
constexpr auto kMinRateInterval = std::chrono::milliseconds(20);

}  // namespace

std::string_view to_string(LinkState s) {
  switch (s) {
    case LinkState::Down: return "down";
    case LinkState::Connecting: return "connecting";
    case LinkState::Up: return "up";
  }
  return "down";
}

Forwarder::Forwarder(ForwarderOptions opts, Outbox& outbox, Uplink& uplink, const Clock& clock,
                     std::function<std::string()> status_payload)
    : opts_(std::move(opts)),
      outbox_(outbox),
      uplink_(uplink),
      clock_(clock),
      status_payload_(std::move(status_payload)),
      log_(logger("forwarder")),
      backoff_(opts_.reconnect_min, opts_.reconnect_max) {
  opts_.max_inflight = std::max<std::size_t>(1, opts_.max_inflight);
  window_ = opts_.max_inflight;
  opts_.batch_max_readings = std::max<std::size_t>(1, opts_.batch_max_readings);
  const auto overhead = batch_overhead(opts_.header);
  message_max_bytes_ = opts_.batch_max_bytes > overhead + 64 ? opts_.batch_max_bytes - overhead : 64;
}

Forwarder::~Forwarder() { stop(std::chrono::milliseconds(0)); }

void Forwarder::start() {
  uplink_.set_events({
      [this] { post({Event::Connected}); },
      [this](const std::string& why) { post({Event::Down, 0, 0, {}, why}); },
  });
  outbox_.set_on_commit([this] {
    data_dirty_ = true;
    post({Event::Wake});
  });
  down_since_ = clock_.steady();
  progress_.mark(clock_);
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "forwarder");
    run();
  });
}

void Forwarder::stop(std::chrono::milliseconds drain) {
  if (!thread_.joinable()) return;
  outbox_.set_on_commit(nullptr);
  {
    std::lock_guard lk(mu_);
    stop_requested_ = true;
    drain_for_ = drain;
  }
  cv_.notify_one();
  thread_.join();
}

std::chrono::milliseconds Forwarder::stalled_for() const { return progress_.stalled_for(clock_); }

ForwarderStats Forwarder::stats() const {
  std::lock_guard lk(stats_mu_);
  auto s = stats_;
  if (s.down_since_ms != 0)
    s.down_for_ms = std::max<std::int64_t>(
        0, std::chrono::duration_cast<std::chrono::milliseconds>(clock_.steady() - stats_down_since_).count());
  return s;
}

void Forwarder::continue_counters(const ForwarderStats& previous) {
  std::lock_guard lk(stats_mu_);
  stats_.messages_sent = previous.messages_sent;
  stats_.readings_sent = previous.readings_sent;
  stats_.bytes_sent = previous.bytes_sent;
  stats_.publish_failures = previous.publish_failures;
  stats_.rejected_messages = previous.rejected_messages;
  stats_.rejected_readings = previous.rejected_readings;
  stats_.last_rejection = previous.last_rejection;
  stats_.connects = previous.connects;
  stats_.connect_failures = previous.connect_failures;
}

void Forwarder::rewind(const RequeueResult& requeued) {
  Event e{Event::Rewind, 0, 0, {}, {}, 0, requeued};
  post(std::move(e));
}

void Forwarder::post(Event e) {
  {
    std::lock_guard lk(mu_);
    events_.push_back(std::move(e));
  }
  cv_.notify_one();
}

void Forwarder::set_state(LinkState s) {
  state_ = s;
  std::lock_guard lk(stats_mu_);
  stats_.state = s;
  stats_.state_since_ms = clock_.now_ms();
  if (s == LinkState::Up) {
    stats_.down_since_ms = 0;
  } else if (stats_.down_since_ms == 0) {  // down and connecting alternate while it is lost
    stats_.down_since_ms = stats_.state_since_ms;
    stats_down_since_ = clock_.steady();
  }
  stats_.inflight = inflight_.size();
}

void Forwarder::run() {
  using namespace std::chrono;
  next_attempt_ = clock_.steady();
  steady_clock::time_point drain_deadline{};
  for (;;) {
    std::deque<Event> events;
    bool stop = false;
    {
      std::unique_lock lk(mu_);
      auto deadline = clock_.steady() + seconds(1);
      if (state_ == LinkState::Down && !draining_) deadline = std::min(deadline, next_attempt_);
      if (state_ == LinkState::Up && !draining_) {
        deadline = std::min(deadline, next_heartbeat_);
        if (data_dirty_) deadline = std::min(deadline, next_live_read_);
        if (backlog_waiting_) deadline = std::min(deadline, clock_.steady() + milliseconds(20));
      }
      // Relative wait: the injected clock need not be std::chrono::steady_clock.
      const auto wait = std::clamp(duration_cast<milliseconds>(deadline - clock_.steady()), milliseconds(0),
                                   milliseconds(1000));
      cv_.wait_for(lk, wait, [&] { return !events_.empty() || stop_requested_ != draining_; });
      events.swap(events_);
      stop = stop_requested_;
    }
    progress_.mark(clock_);
    for (auto& e : events) handle(e);

    const auto now = clock_.steady();
    if (stop && !draining_) {
      draining_ = true;
      drain_deadline = now + drain_for_;
      if (!inflight_.empty())
        log_->info("stopping: waiting up to {} ms for {} in-flight messages", drain_for_.count(), inflight_.size());
    }
    if (draining_) {
      if (inflight_.empty() || state_ != LinkState::Up || now >= drain_deadline) break;
      continue;
    }
    if (state_ == LinkState::Down && now >= next_attempt_) {
      set_state(LinkState::Connecting);
      {
        std::lock_guard lk(stats_mu_);
        ++stats_.connects;
      }
      uplink_.connect();
    }
    if (state_ == LinkState::Up) {
      fill_window();
      if (now >= next_heartbeat_) send_heartbeat();
    }
  }
  if (!inflight_.empty())
    log_->info("{} messages were still unacknowledged; their records stay in the outbox", inflight_.size());
  uplink_.disconnect(2000);
  // Acknowledgements that arrived while disconnecting still let their records go (fewer resends).
  std::deque<Event> late;
  {
    std::lock_guard lk(mu_);
    late.swap(events_);
  }
  for (auto& e : late)
    if (e.type == Event::Published && e.outcome == PublishOutcome::Delivered) handle(e);
  set_state(LinkState::Down);
  progress_.clear();
}

void Forwarder::handle(Event& e) {
  switch (e.type) {
    case Event::Wake:
      break;
    case Event::Rewind:
      // Held records are pending again: read them once more, from wherever they lie (invariant 3).
      // They may lie on both sides of live_from (held before and after the last reconnect): each
      // class reads again from the lowest of them it covers.
      for (int p = 0; p < kPriorityLevels; ++p) {
        const auto low = e.requeued.lowest_seq[p];
        if (low == 0) continue;
        if (low < live_from_) {
          cursor_[0][p] = std::min(cursor_[0][p], low - 1);
          backlog_done_ = false;
        }
        cursor_[1][p] = std::min(cursor_[1][p], std::max(low, live_from_) - 1);
      }
      next_live_read_ = {};
      data_dirty_ = true;
      break;
    case Event::Connected: {
      if (state_ != LinkState::Connecting) break;
      const auto st = outbox_.stats();
      const auto down_s = std::chrono::duration_cast<std::chrono::seconds>(clock_.steady() - down_since_).count();
      if (was_up_before_)
        log_->warn("uplink to {} restored after {} s; {} readings queued", uplink_.describe(), down_s, st.pending);
      else
        log_->info("uplink connected to {}; {} readings queued", uplink_.describe(), st.pending);
      backoff_.reset();
      was_up_before_ = true;
      // Paho holds a publish beyond the broker's Receive Maximum until its sending thread next
      // wakes, up to a second later (docs/dependencies.md item 14b): stay inside it, with room for the
      // heartbeat.
      if (const auto broker = uplink_.broker_window(); broker > 0 && broker <= opts_.max_inflight) {
        window_ = std::max<std::size_t>(1, broker - 1);
        log_->info("the IOC broker takes {} unacknowledged messages at once: sending at most {} (max_inflight = {})",
                   broker, window_, opts_.max_inflight);
      } else {
        window_ = opts_.max_inflight;
      }
      live_from_ = st.last_seq + 1;
      outbox_.apply_removes();  // before the reads below: what was delivered is not read again
      for (int p = 0; p < kPriorityLevels; ++p) {
        cursor_[0][p] = 0;
        cursor_[1][p] = live_from_ - 1;
      }
      backlog_done_ = false;
      heartbeat_inflight_ = false;
      backlog_inflight_bytes_ = 0;
      interval_start_ = clock_.steady();
      interval_bytes_ = 0;
      rate_samples_.clear();  // a new connection may take another path
      rtt_samples_.clear();
      path_rtt_ = {};
      tokens_ = static_cast<double>(opts_.batch_max_bytes);  // the backlog may start with one batch at once
      tokens_at_ = clock_.steady();
      next_heartbeat_ = clock_.steady();
      live_more_ = false;
      next_live_read_ = {};
      data_dirty_ = true;
      set_state(LinkState::Up);
      std::lock_guard lk(stats_mu_);
      stats_.last_error.clear();
      break;
    }
    case Event::Down:
      if (state_ == LinkState::Down) break;
      go_down(e.detail);
      break;
    case Event::Published: {
      if (e.id == 0) {  // heartbeat
        if (e.generation == generation_) heartbeat_inflight_ = false;
        break;
      }
      auto it = inflight_.find(e.id);
      if (it == inflight_.end()) {  // from before a reconnect: only an acknowledgement matters
        break;
      }
      if (e.outcome == PublishOutcome::Delivered && it->second.parts > 1) {  // the other half is on its way
        --it->second.parts;
        --inflight_parts_;
        break;
      }
      Inflight done = std::move(it->second);
      inflight_parts_ -= static_cast<std::size_t>(done.parts);
      inflight_.erase(it);
      if (!done.live) backlog_inflight_bytes_ -= std::min(backlog_inflight_bytes_, done.bytes);
      if (e.outcome == PublishOutcome::Delivered) {
        on_delivered(done);
        break;
      }
      if (e.outcome == PublishOutcome::Rejected) {  // the broker answered: the link is fine
        on_rejected(done, e.reason_code, e.detail);
        break;
      }
      {
        std::lock_guard lk(stats_mu_);
        ++stats_.publish_failures;
      }
      if (e.generation != generation_ || state_ != LinkState::Up) break;
      // Reconnect: every record not acknowledged becomes sendable again (invariant 3).
      go_down("publish failed: " + e.detail);
      break;
    }
  }
}

void Forwarder::on_delivered(Inflight& done) {
  const auto now = clock_.steady();
  outbox_.remove(std::move(done.ranges));
  // The delivery rate: bytes acknowledged over kRateInterval of a busy link (idle time does
  // not count: sending onto an idle link restarts the interval). Per acknowledgement samples would
  // read a burst (a token bucket's allowance, PUBACKs arriving together) as a fast link.
  // A fast link measures sooner: four budgets' worth of bytes outweigh any burst.
  // A message sent before the interval began counts only for the share of its time in flight that
  // falls inside it: a large one (a blob) acknowledged just after a sample must not read as bytes
  // delivered in an instant.
  if (done.sent_at >= interval_start_ || now <= done.sent_at) {
    interval_bytes_ += done.bytes;
  } else {
    const double share = std::chrono::duration<double>(now - interval_start_).count() /
                         std::chrono::duration<double>(now - done.sent_at).count();
    interval_bytes_ += static_cast<std::uint64_t>(static_cast<double>(done.bytes) * share);
  }
  const auto busy = now - interval_start_;
  if (busy >= kRateInterval || (busy >= kMinRateInterval && interval_bytes_ >= 4 * backlog_budget())) {
    rate_samples_.push_back({now, interval_bytes_, now - interval_start_});
    interval_start_ = now;
    interval_bytes_ = 0;
  }
  while (!rate_samples_.empty() && now - rate_samples_.front().at > kLinkModelWindow) rate_samples_.pop_front();
  // The round trip of the path itself, measured only on messages that had the link to themselves:
  // while the backlog keeps the link busy every round trip includes the queue, and a budget built
  // on that would grow by itself.
  // The lowest of the last 10 s; the last one known while none was sent alone.
  if (done.sent_alone) rtt_samples_.emplace_back(now, now - done.sent_at);
  while (rtt_samples_.size() > 1 && now - rtt_samples_.front().first > kLinkModelWindow) rtt_samples_.pop_front();
  if (!rtt_samples_.empty()) {
    path_rtt_ = rtt_samples_.front().second;
    for (const auto& [t, d] : rtt_samples_) path_rtt_ = std::min(path_rtt_, d);
  }
  std::lock_guard lk(stats_mu_);
  ++stats_.messages_sent;
  stats_.readings_sent += done.readings;
  stats_.bytes_sent += done.bytes;
  stats_.inflight = inflight_.size();
}

void Forwarder::on_rejected(Inflight& done, int reason_code, const std::string& detail) {
  const std::string reason = detail.empty() ? mqtt_reason_text(reason_code) : detail;
  std::optional<Envelope> event;
  // The gateway's own events are held without a new event: a refused event must not breed events.
  if (done.source != kGatewaySource)
    event = rejected_event({done.topic, reason_code, reason, done.ranges, done.readings, done.source}, clock_.now_ms());
  std::uint64_t suppressed = 0;
  if (rejected_log_.allow(suppressed))
    log_->error("the IOC broker refused {} readings on {}: {} (reason code 0x{:02x}); they are kept in the outbox, "
                "set aside and not resent; fix the broker's ACL or limits, then run `ioc-edge outbox requeue` "
                "({} similar messages suppressed)",
                done.readings, done.topic, reason, reason_code, suppressed);
  {
    std::lock_guard lk(stats_mu_);
    ++stats_.rejected_messages;
    stats_.rejected_readings += done.readings;
    char code[8];
    std::snprintf(code, sizeof code, "0x%02x", reason_code);
    stats_.last_rejection = reason + " (" + code + ") on " + done.topic;
    stats_.inflight = inflight_.size();
  }
  // If setting them aside fails (a full disk), they are pending again behind the read cursors:
  // read them again.
  outbox_.hold(std::move(done.ranges), done.topic, reason, std::move(event), [this](const RequeueResult& back) {
    Event e{Event::Rewind};
    e.requeued = back;
    post(std::move(e));
  });
}

double Forwarder::delivery_rate() const {
  std::uint64_t bytes = 0;
  std::chrono::steady_clock::duration busy{};
  for (const auto& s : rate_samples_) {
    bytes += s.bytes;
    busy += s.busy;
  }
  const double seconds = std::chrono::duration<double>(busy).count();
  return seconds > 0 ? static_cast<double>(bytes) / seconds : 0;
}

std::size_t Forwarder::backlog_budget() const {
  if (rate_samples_.empty()) return kInitialBacklogBudget;
  const double rate = delivery_rate();
  const double seconds = std::chrono::duration<double>(path_rtt_ + kBacklogQueueTarget).count();
  return std::max<std::size_t>(kMinBacklogMessage, static_cast<std::size_t>(rate * seconds));
}

void Forwarder::go_down(const std::string& why) {
  const bool was_up = state_ == LinkState::Up;
  if (was_up) down_since_ = clock_.steady();
  ++generation_;
  inflight_.clear();
  inflight_parts_ = 0;
  backlog_inflight_bytes_ = 0;
  heartbeat_inflight_ = false;
  backlog_waiting_ = false;
  set_state(LinkState::Down);
  const auto wait = backoff_.next();
  next_attempt_ = clock_.steady() + wait;
  {
    std::lock_guard lk(stats_mu_);
    stats_.last_error = why;
    if (!was_up) ++stats_.connect_failures;
  }
  if (was_up) {
    log_->warn("uplink to {} down: {}; buffering, reconnecting in {} ms", uplink_.describe(), why, wait.count());
  } else {
    std::uint64_t suppressed = 0;
    if (retry_log_.allow(suppressed))
      log_->warn("cannot connect to {}: {}; buffering, retrying in {} ms ({} similar messages suppressed)",
                 uplink_.describe(), why, wait.count(), suppressed);
  }
}

void Forwarder::fill_window() {
  for (int guard = 0; guard < 10000 && inflight_parts_ < window_; ++guard) {
    if (send_class(true)) continue;
    if (send_class(false)) continue;
    break;
  }
  const double rate = delivery_rate();
  if (log_->should_log(spdlog::level::debug) && clock_.steady() >= next_debug_) {
    next_debug_ = clock_.steady() + std::chrono::seconds(1);
    log_->debug("link: {} messages in flight, backlog {} bytes of {} allowed; delivery rate {:.0f} B/s, path round "
                "trip {} ms",
                inflight_.size(), backlog_inflight_bytes_, backlog_budget(), rate,
                std::chrono::duration_cast<std::chrono::milliseconds>(path_rtt_).count());
  }
  std::lock_guard lk(stats_mu_);
  stats_.inflight = inflight_.size();
  stats_.delivery_rate = rate;
  stats_.backlog_budget = backlog_budget();
}

// One read of the live (or backlog) class, highest priority first; true if something was sent.
bool Forwarder::send_class(bool live) {
  const int cls = live ? 1 : 0;
  if (!live) {
    backlog_waiting_ = false;
    if (backlog_done_) return false;
    if (opts_.backlog_rate > 0) {
      const auto now = clock_.steady();
      const double dt = std::chrono::duration<double>(now - tokens_at_).count();
      tokens_at_ = now;
      const double burst = std::max(opts_.backlog_rate, static_cast<double>(opts_.batch_max_bytes));
      tokens_ = std::min(burst, tokens_ + dt * opts_.backlog_rate);
      if (tokens_ <= 0) {
        backlog_waiting_ = true;
        return false;
      }
    }
    // Invariant 4: the backlog's bytes on the link stay within its time budget; an acknowledgement
    // wakes this loop again. One message may always go when none is in flight.
    if (backlog_inflight_bytes_ > 0 && backlog_inflight_bytes_ >= backlog_budget()) return false;
  } else {
    if (!data_dirty_.load()) return false;
    // Invariant 6: once per batch_wait (run() wakes us then), or at once while the last read left
    // records behind and half the window is free.
    const bool more_now = live_more_ && inflight_parts_ <= window_ / 2;
    if (clock_.steady() < next_live_read_ && !more_now) return false;
    data_dirty_ = false;
    live_more_ = false;
  }
  const auto st = outbox_.stats();
  bool read_failed = false, sent = false;
  for (int p = kPriorityLevels - 1; p >= 0; --p) {
    if (st.pending_by_prio[p] == 0) continue;
    const std::int64_t before = live ? std::numeric_limits<std::int64_t>::max() : live_from_;
    if (cursor_[cls][p] + 1 >= before) continue;
    if (inflight_parts_ >= window_) {  // the window is full: an acknowledgement wakes us
      if (!live) return false;
      live_more_ = true;
      break;
    }
    bool ok = true, more = false;
    ReadLimits limits{opts_.batch_max_readings, message_max_bytes_, window_ - inflight_parts_};
    if (live)  // many sources' messages at once (invariant 6)
      limits.max_total_bytes = kLiveReadMessages * message_max_bytes_;
    else  // the whole read within the backlog's share of the link (invariant 4)
      limits.max_bytes = std::min(limits.max_bytes, std::max(kMinBacklogMessage, backlog_budget() / 4));
    auto records = outbox_.read(static_cast<Priority>(p), cursor_[cls][p], before, limits, &ok, &more);
    if (!ok) {  // the outbox logged why; an empty answer must not end the backlog or hide live data
      read_failed = true;
      continue;
    }
    if (records.empty()) continue;
    cursor_[cls][p] = records.back().last_seq;
    const std::size_t bytes = publish_records(records, live);
    if (!live) {
      if (opts_.backlog_rate > 0) tokens_ -= static_cast<double>(bytes);
      return true;
    }
    sent = true;
    if (more) live_more_ = true;
  }
  if (live) {
    if (sent) next_live_read_ = clock_.steady() + opts_.batch_wait;
    if (live_more_ || read_failed) data_dirty_ = true;  // read again (a failed read: on the next wake)
    return sent && live_more_;
  }
  if (!read_failed) backlog_done_ = true;
  return false;
}

std::size_t Forwarder::publish_records(std::vector<Record>& records, bool live) {
  // One message per (kind, source) of batched records, records in seq order within each; one per
  // blob. The read made sure these fit the window (invariant 2).
  std::vector<std::vector<const Record*>> groups;
  for (const auto& r : records) {
    auto it = kind_info(r.kind).batched ? std::find_if(groups.begin(), groups.end(),
                                                       [&](const auto& g) {
                                                         return g.front()->kind == r.kind &&
                                                                g.front()->source == r.source;
                                                       })
                                        : groups.end();
    if (it == groups.end())
      groups.push_back({&r});
    else
      it->push_back(&r);
  }
  std::size_t total = 0;
  const auto now_ms = clock_.now_ms();
  const auto now = clock_.steady();
  if (inflight_.empty()) {  // an idle link is not a slow one: measure from here
    interval_start_ = now;
    interval_bytes_ = 0;
  }
  for (const auto& g : groups) {
    Message m = build_message(opts_.topic_prefix, opts_.header, now_ms, g);
    // A blob goes as two messages, its metadata event first (MQTT 3.1.1 has no user properties);
    // its record leaves the outbox once both are acknowledged.
    std::optional<Message> blob_event;
    if (g.front()->kind == Kind::Blob) blob_event = build_blob_event(opts_.topic_prefix, opts_.header, now_ms, *g.front());
    const std::uint64_t id = next_id_++;
    Inflight& f = inflight_[id];
    f.ranges = seq_ranges(g);
    for (const auto* r : g) f.readings += r->count();
    f.bytes = m.payload.size() + (blob_event ? blob_event->payload.size() : 0);
    f.parts = blob_event ? 2 : 1;
    inflight_parts_ += static_cast<std::size_t>(f.parts);
    f.live = live;
    f.topic = m.topic;
    f.source = g.front()->source;
    f.kind = g.front()->kind;
    f.sent_at = now;
    f.sent_alone = inflight_.size() == 1 && !heartbeat_inflight_;
    if (!live) backlog_inflight_bytes_ += f.bytes;
    total += f.bytes;
    if (blob_event)
      uplink_.publish(std::move(*blob_event),
                      [this, gen = generation_, id](PublishOutcome o, int code, const std::string& detail) {
                        Event e{Event::Published, gen, id, o, detail, code};
                        post(std::move(e));
                      });
    uplink_.publish(std::move(m), [this, gen = generation_, id](PublishOutcome o, int code, const std::string& detail) {
      Event e{Event::Published, gen, id, o, detail, code};
      post(std::move(e));
    });
  }
  return total;
}

void Forwarder::send_heartbeat() {
  next_heartbeat_ = clock_.steady() + opts_.heartbeat;
  if (heartbeat_inflight_) return;  // never two at once (invariant 2): the link is slow enough already
  heartbeat_inflight_ = true;
  Message m{opts_.topic_prefix + "/status", status_payload_(), true, {}};
  uplink_.publish(std::move(m), [this, gen = generation_](PublishOutcome o, int code, const std::string& detail) {
    Event e{Event::Published, gen, 0, o, detail, code};
    post(std::move(e));
  });
}

}  // namespace ioc_edge
