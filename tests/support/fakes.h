#pragma once
// Fakes for unit tests of pure logic: a clock the test drives, an uplink with scripted outcomes,
// a sink that captures what a source produces.
#include <atomic>
#include <deque>
#include <map>
#include <mutex>
#include <vector>

#include "core/clock.h"
#include "core/source.h"
#include "core/uplink.h"

namespace ioc_edge::test {

class FakeClock final : public Clock {
 public:
  std::int64_t now_ms() const override { return wall_ms_.load(); }
  std::chrono::steady_clock::time_point steady() const override {
    return std::chrono::steady_clock::time_point(std::chrono::milliseconds(steady_ms_.load()));
  }
  bool synchronized() const override { return synced_.load(); }
  void advance(std::chrono::milliseconds d) {
    wall_ms_ += d.count();
    steady_ms_ += d.count();
  }
  std::atomic<std::int64_t> wall_ms_{1'764'000'000'000};  // 2025-11-24
  std::atomic<std::int64_t> steady_ms_{1'000'000};
  std::atomic<bool> synced_{true};
};

// Records every publish; the test decides when and how each one completes.
class FakeUplink final : public Uplink {
 public:
  struct Sent {
    Message message;
    PublishDone done;
  };
  void set_events(Events e) override { events = std::move(e); }
  void connect() override {
    ++connect_calls;
    if (auto_connect) events.connected();
  }
  void publish(Message m, PublishDone done) override {
    if (auto_ack_status && m.topic.size() >= 7 && m.topic.compare(m.topic.size() - 7, 7, "/status") == 0) {
      ++heartbeats;
      done(PublishOutcome::Delivered, 0, "");
      return;
    }
    std::lock_guard lk(mu);
    sent.push_back({std::move(m), std::move(done)});
  }
  void disconnect(int) override {
    ++disconnects;
    if (on_disconnect) on_disconnect();  // e.g. acknowledgements that arrive while disconnecting
  }
  std::string describe() const override { return "fake://ioc"; }
  std::size_t broker_window() const override { return receive_maximum; }

  // Completes the oldest outstanding publish; false if none.
  bool complete_one(PublishOutcome o, int reason_code = 0) {
    Sent s;
    {
      std::lock_guard lk(mu);
      if (sent.empty()) return false;
      s = std::move(sent.front());
      sent.pop_front();
    }
    // A refusal carries its reason code; the forwarder words it (as the MQTT uplink does).
    s.done(o, reason_code, o == PublishOutcome::RetryLater ? "scripted failure" : "");
    return true;
  }
  std::size_t outstanding() {
    std::lock_guard lk(mu);
    return sent.size();
  }
  std::vector<Message> outstanding_messages() {
    std::lock_guard lk(mu);
    std::vector<Message> out;
    for (auto& s : sent) out.push_back(s.message);
    return out;
  }

  Events events;
  std::function<void()> on_disconnect;
  std::size_t receive_maximum = 0;  // what the fake broker's CONNACK announces (0: none)
  bool auto_connect = true;
  bool auto_ack_status = true;  // heartbeats complete at once; data waits for the test
  std::atomic<int> heartbeats{0};
  std::atomic<int> connect_calls{0};
  std::atomic<int> disconnects{0};
  std::mutex mu;
  std::deque<Sent> sent;
};

class CapturingSink final : public Sink {
 public:
  void push(std::vector<Reading> batch, std::function<void(const SinkResult&)> done) override {
    {
      std::lock_guard lk(mu);
      for (auto& r : batch) readings.push_back(std::move(r));
    }
    if (done) done({SinkStatus::Stored, {}, 0, 0});
  }
  void event(Reading e, std::function<void(const SinkResult&)> done) override {
    {
      std::lock_guard lk(mu);
      events.push_back(std::move(e));
    }
    if (done) done({SinkStatus::Stored, {}, 0, 0});
  }
  void blob(Blob b, std::function<void(const SinkResult&)> done) override {
    {
      std::lock_guard lk(mu);
      blobs.push_back(std::move(b));
    }
    if (done) done({SinkStatus::Stored, {}, 0, 0});
  }
  void push_as(std::string source, Kind kind, std::vector<Reading> batch,
               std::function<void(const SinkResult&)> done) override {
    {
      std::lock_guard lk(mu);
      for (auto& r : batch) {
        sources.push_back(source);
        (kind == Kind::Event ? events : readings).push_back(std::move(r));
      }
    }
    if (done) done({SinkStatus::Stored, {}, 0, 0});
  }
  void push_batch(Batch batch, std::function<void(const SinkResult&)> done) override {
    {
      std::lock_guard lk(mu);
      for (auto& g : batch.groups)
        for (auto& r : g.readings) {
          sources.push_back(g.source);
          (g.kind == Kind::Event ? events : readings).push_back(std::move(r));
        }
      for (auto& m : batch.marks) kept[m.key] = std::move(m);
    }
    if (done) done({SinkStatus::Stored, {}, 0, 0});
  }
  std::optional<std::vector<Mark>> marks(std::string_view prefix) override {
    std::lock_guard lk(mu);
    std::vector<Mark> out;
    for (const auto& [key, m] : kept)
      if (key.compare(0, prefix.size(), prefix) == 0) out.push_back(m);
    return out;
  }
  std::size_t count() {
    std::lock_guard lk(mu);
    return readings.size();
  }
  std::map<std::string, Mark> kept;  // push_batch: the marks, by key
  std::vector<std::string> sources;  // push_as: the source of each reading or event, in order
  std::mutex mu;
  std::vector<Reading> readings;
  std::vector<Reading> events;
  std::vector<Blob> blobs;
};

}  // namespace ioc_edge::test
