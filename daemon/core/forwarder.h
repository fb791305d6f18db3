#pragma once
// The Forwarder moves records from the outbox to the uplink (docs/design.md sections 2 and 3).
//
// Design note
// -----------
// Lives on its own thread ("forwarder"). Uplink callbacks and outbox commits only post events to
// it. States:
//
//     DOWN --backoff elapsed--> CONNECTING --connected--> UP --link lost / publish failed--> DOWN
//                                    |                                                  ^
//                                    +-------------------down---------------------------+
//
// Invariants
//  1. A record is removed from the outbox only after the broker acknowledged the message holding it
//     with a success reason code (< 0x80). A refusal (>= 0x80, MQTT 5 only) sets the message's
//     records aside in the outbox (Outbox::hold) with a `rejected` event naming them; the link
//     stays up and nothing is resent until `ioc-edge outbox requeue` or a restart (no resend storm).
//  2. At most `max_inflight` data messages are unacknowledged at any time, however many sources a
//     read spans: each read is limited to the messages the window has room for (ReadLimits; a
//     blob is two messages). The heartbeat adds at most one more (never two at once), so Paho's
//     buffer is max_inflight + 2. When the broker's CONNACK announces a Receive Maximum of at most
//     max_inflight, the window is one less than it, so Paho never queues a publish.
//  3. On entering UP every record still in the outbox is sendable again (the read cursors restart),
//     so nothing that was in flight when the link dropped is forgotten; duplicates are allowed,
//     losses are not. requeue() rewinds the cursors to the lowest requeued seq in the same way.
//  4. Live first: records committed after the link came up (seq >= live_from) are sent as soon as
//     there is window; older ones (the backlog) drain behind them, capped at `backlog_rate`
//     bytes per second, and their bytes in flight are bounded by time on the link: the delivery
//     rate measured from acknowledgements (bytes acknowledged over the time the link was busy
//     in the last 10 s, measured in intervals of at least 500 ms so that bursts of
//     acknowledgements do not read as a fast link)
//     times (the path's round trip + kBacklogQueueTarget). The round trip (the lowest of the last
//     10 s, the last one known when there is none) is measured only on messages that had the
//     link to themselves (while the backlog keeps the link busy every
//     round trip includes the queue, and a budget built on it would feed on itself). A live
//     message therefore waits behind at most about kBacklogQueueTarget of backlog, while the
//     backlog still fills the link. Backlog messages are cut to a quarter of that budget, so
//     acknowledgements keep coming. Within each class: higher priority first, then oldest first.
//  5. Retry timing lives here: full-jitter exponential backoff between connect attempts.
//  6. Live records are read at most once per `batch_wait` (after a read that found nothing more):
//     the first record after a quiet spell goes at once, those committed in the next `batch_wait`
//     wait for it and share messages. A hundred sensors that each send ten times a second then
//     cost a hundred messages a second, not a thousand. A live read takes records of many
//     sources at once (each message within batch_max_readings / batch_max_bytes, the read within
//     kLiveReadMessages messages' worth of bytes), so the hundred sources do not cut each
//     other's messages short. A read that filled the window goes on
//     as soon as acknowledgements make room; a reconnect or a requeue reads at once.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include "core/backoff.h"
#include "core/envelope.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/outbox.h"
#include "core/uplink.h"

namespace spdlog {
class logger;
}

namespace ioc_edge {

struct ForwarderOptions {
  std::string topic_prefix;                 // "ioc/bac-kan/bk-cho-don"
  BatchHeader header;
  std::size_t batch_max_readings = 500;
  std::size_t batch_max_bytes = 256 * 1024;
  std::size_t max_inflight = 100;
  std::chrono::milliseconds batch_wait{0};  // invariant 6; 0 reads on every commit
  double backlog_rate = 2.0 * 1024 * 1024;  // bytes/s for the backlog; 0 = unlimited
  std::chrono::milliseconds reconnect_min{1000};
  std::chrono::milliseconds reconnect_max{60000};
  std::chrono::milliseconds heartbeat{60000};
};

// How much backlog may queue on the link ahead of a live reading (invariant 4).
inline constexpr std::chrono::milliseconds kBacklogQueueTarget{300};

enum class LinkState { Down, Connecting, Up };
std::string_view to_string(LinkState s);

struct ForwarderStats {
  LinkState state = LinkState::Down;
  std::string last_error;
  std::int64_t state_since_ms = 0;
  // Not up since (wall clock, ms): when the link was lost, or when the forwarder started if it has
  // not been up yet; 0 while up. down_for_ms is how long that is, on the steady clock.
  std::int64_t down_since_ms = 0;
  std::int64_t down_for_ms = 0;
  std::uint64_t messages_sent = 0;     // acknowledged by the broker
  std::uint64_t readings_sent = 0;
  std::uint64_t bytes_sent = 0;
  std::uint64_t publish_failures = 0;
  std::uint64_t rejected_messages = 0;  // refused by the broker (reason code >= 0x80) and held
  std::uint64_t rejected_readings = 0;
  std::string last_rejection;           // "not authorized (0x87) on ioc/…/data/x", empty if none
  double delivery_rate = 0;             // bytes/s measured from acknowledgements (0: not yet known)
  std::size_t backlog_budget = 0;       // bytes of backlog allowed in flight now
  std::uint64_t connects = 0;
  std::uint64_t connect_failures = 0;
  std::size_t inflight = 0;
};

class Forwarder {
 public:
  // `status_payload` builds the retained heartbeat JSON; called on the forwarder thread.
  Forwarder(ForwarderOptions opts, Outbox& outbox, Uplink& uplink, const Clock& clock,
            std::function<std::string()> status_payload);
  ~Forwarder();
  void start();
  // Stops sending, waits up to `drain` for in-flight messages to be acknowledged, then
  // disconnects (publishing "offline"). Unacknowledged records stay in the outbox.
  void stop(std::chrono::milliseconds drain);
  ForwarderStats stats() const;
  // Before start(): counts on from a forwarder this one replaces (a reload that reconnects the
  // uplink), so the totals in the status and the metrics do not fall back to zero.
  void continue_counters(const ForwarderStats& previous);
  // Records made pending again by Outbox::requeue(): send them from `lowest_seq` on (per priority).
  void rewind(const RequeueResult& requeued);
  // How long since the forwarder thread last went round its loop (at least every second while
  // running); large when it is stuck.
  std::chrono::milliseconds stalled_for() const;

 private:
  struct Inflight {
    std::vector<SeqRange> ranges;
    std::size_t readings = 0;
    std::size_t bytes = 0;
    bool live = false;
    std::string topic;
    std::string source;
    Kind kind = Kind::Data;
    std::chrono::steady_clock::time_point sent_at{};
    bool sent_alone = false;  // nothing else was in flight: its round trip is the path's
    int parts = 1;            // messages still to be acknowledged (a blob: its metadata event, its bytes)
  };
  struct Event {
    enum Type { Connected, Down, Published, Wake, Rewind } type;
    std::uint64_t generation = 0;
    std::uint64_t id = 0;
    PublishOutcome outcome = PublishOutcome::Delivered;
    std::string detail;
    int reason_code = 0;
    RequeueResult requeued{};
  };

  void post(Event e);
  void run();
  void handle(Event& e);
  void go_down(const std::string& why);
  void fill_window();
  bool send_class(bool live);
  std::size_t publish_records(std::vector<Record>& records, bool live);
  void on_delivered(Inflight& done);
  void on_rejected(Inflight& done, int reason_code, const std::string& detail);
  std::size_t backlog_budget() const;
  double delivery_rate() const;  // bytes/s, 0 until measured
  void send_heartbeat();
  void set_state(LinkState s);

  ForwarderOptions opts_;
  Outbox& outbox_;
  Uplink& uplink_;
  const Clock& clock_;
  std::function<std::string()> status_payload_;
  std::shared_ptr<spdlog::logger> log_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Event> events_;
  bool stop_requested_ = false;
  std::atomic<bool> data_dirty_{true};
  ProgressStamp progress_;  // the loop's last turn

  // Forwarder-thread state.
  LinkState state_ = LinkState::Down;
  std::uint64_t generation_ = 0;
  std::uint64_t next_id_ = 1;
  std::unordered_map<std::uint64_t, Inflight> inflight_;
  std::size_t inflight_parts_ = 0;  // messages of inflight_ not yet acknowledged (a blob is two)
  std::size_t window_ = 0;          // max_inflight, or less when the broker's Receive Maximum is lower
  std::int64_t live_from_ = 0;
  std::int64_t cursor_[2][kPriorityLevels] = {};  // [backlog=0 / live=1][prio]: highest seq already read
  bool backlog_done_ = false;
  bool live_more_ = false;  // the last live read found records: there may be more behind them
  std::chrono::steady_clock::time_point next_live_read_{};  // invariant 6
  double tokens_ = 0;
  std::chrono::steady_clock::time_point tokens_at_{};
  std::chrono::steady_clock::time_point next_attempt_{};
  std::chrono::steady_clock::time_point next_heartbeat_{};
  std::chrono::steady_clock::time_point down_since_{};
  Backoff backoff_;
  bool draining_ = false;
  bool backlog_waiting_ = false;  // the backlog has records but the rate cap holds them
  bool was_up_before_ = false;    // "restored" in the log only after a real outage, not a slow first connect
  bool heartbeat_inflight_ = false;
  std::size_t message_max_bytes_ = 0;  // batch_max_bytes less the batch header
  // Link model (invariant 4): bytes acknowledged in the current measuring interval of a busy link,
  // the rates of the intervals of the last 10 s, and the path's round trip.
  std::chrono::steady_clock::time_point interval_start_{};
  std::uint64_t interval_bytes_ = 0;
  struct RateSample {
    std::chrono::steady_clock::time_point at;
    std::uint64_t bytes;
    std::chrono::steady_clock::duration busy;
  };
  std::deque<RateSample> rate_samples_;
  // Round trips of messages sent alone, the last 10 s (the last one kept); their lowest.
  std::deque<std::pair<std::chrono::steady_clock::time_point, std::chrono::steady_clock::duration>> rtt_samples_;
  std::chrono::steady_clock::duration path_rtt_{};
  std::size_t backlog_inflight_bytes_ = 0;
  std::chrono::steady_clock::time_point next_debug_{};
  RateLimit rejected_log_{std::chrono::seconds(60)};
  std::chrono::milliseconds drain_for_{0};  // guarded by mu_
  RateLimit retry_log_{std::chrono::seconds(60)};

  mutable std::mutex stats_mu_;
  ForwarderStats stats_;
  std::chrono::steady_clock::time_point stats_down_since_{};  // stats_mu_; meaningful while stats_.down_since_ms != 0
  std::thread thread_;
};

}  // namespace ioc_edge
