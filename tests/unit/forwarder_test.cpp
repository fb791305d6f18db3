// The forwarder's invariants (daemon/core/forwarder.h) with a scripted uplink and a real outbox.
#include <catch2/catch.hpp>

#include <future>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "core/forwarder.h"
#include "support/fakes.h"
#include "support/support.h"

using namespace ioc_edge;
using namespace std::chrono_literals;

namespace {

struct Rig {
  test::TempDir dir;
  test::FakeClock clock;
  std::unique_ptr<Outbox> outbox;
  test::FakeUplink uplink;
  std::unique_ptr<Forwarder> fwd;

  explicit Rig(ForwarderOptions o = defaults(), std::int64_t max_age_ms = 30ll * 86400 * 1000) {
    std::string err;
    OutboxOptions oo{dir.file("o.db")};
    oo.sync_full = false;
    oo.max_age_ms = max_age_ms;
    outbox = Outbox::open(oo, clock, err);
    REQUIRE(outbox);
    fwd = std::make_unique<Forwarder>(o, *outbox, uplink, clock, [] { return std::string("{}"); });
  }
  ~Rig() {
    fwd.reset();
    outbox->stop();
  }
  static ForwarderOptions defaults() {
    ForwarderOptions o;
    o.topic_prefix = "ioc/p/s";
    o.header = {"s", "00000000-0000-4000-8000-000000000000", ""};
    o.batch_max_readings = 10;
    o.max_inflight = 3;
    o.backlog_rate = 0;
    o.reconnect_min = 1ms;
    o.reconnect_max = 2ms;
    return o;
  }
  void append(std::size_t n, const std::string& source = "gen") {
    std::vector<NewRecord> recs;
    Reading r;
    r.point = "p";
    r.value = 1.0;
    for (std::size_t i = 0; i < n; ++i) recs.push_back({Priority::Normal, Kind::Data, source, reading_body_json(source, r)});
    std::promise<void> p;
    outbox->append(std::move(recs), [&](const AppendResult&) { p.set_value(); });
    p.get_future().wait();
  }
  // `records` outbox records of `per_record` readings each, as the pipeline stores polls.
  void append_chunks(std::size_t records, std::uint32_t per_record, const std::string& source = "gen") {
    std::vector<NewRecord> recs;
    Reading r;
    r.point = "p";
    r.value = 1.0;
    for (std::size_t i = 0; i < records; ++i) {
      NewRecord rec{Priority::Normal, Kind::Data, source, {}, per_record};
      for (std::uint32_t k = 0; k < per_record; ++k) {
        if (k) rec.body += '\n';
        append_reading_json(rec.body, source, r);
      }
      recs.push_back(std::move(rec));
    }
    std::promise<void> p;
    outbox->append(std::move(recs), [&](const AppendResult&) { p.set_value(); });
    p.get_future().wait();
  }
  std::size_t data_outstanding() { return uplink.outstanding(); }
  static std::set<std::int64_t> seqs(const Message& m) {
    std::set<std::int64_t> out;
    const auto j = nlohmann::json::parse(m.payload);
    for (auto& r : j["readings"]) out.insert(r["seq"].get<std::int64_t>());
    return out;
  }
};

}  // namespace

TEST_CASE("records leave the outbox only after the broker acknowledges them", "[forwarder]") {
  Rig rig;
  rig.append(25);
  rig.fwd->start();
  // Window of 3 messages of at most 10 readings: 10 + 10 + 5.
  REQUIRE(test::wait_until([&] { return rig.data_outstanding() == 3; }, 5s));
  CHECK(rig.outbox->stats().pending == 25);
  auto msgs = rig.uplink.outstanding_messages();
  CHECK(msgs.back().topic == "ioc/p/s/data/gen");
  REQUIRE(rig.uplink.complete_one(PublishOutcome::Delivered));
  REQUIRE(test::wait_until([&] { return rig.outbox->stats().pending == 15; }, 5s));
  while (rig.uplink.complete_one(PublishOutcome::Delivered)) {
  }
  REQUIRE(test::wait_until([&] { rig.outbox->flush(); return rig.outbox->stats().pending == 0; }, 5s));
  CHECK(rig.fwd->stats().readings_sent == 25);
}

TEST_CASE("the in-flight window is never exceeded", "[forwarder]") {
  Rig rig;
  rig.append(200);
  rig.fwd->start();
  std::size_t max_seen = 0;
  for (int i = 0; i < 200 && rig.outbox->stats().pending > 0; ++i) {
    test::wait_until([&] { return rig.data_outstanding() > 0 || rig.outbox->stats().pending == 0; }, 2s);
    max_seen = std::max(max_seen, rig.data_outstanding());
    rig.uplink.complete_one(PublishOutcome::Delivered);
    rig.outbox->flush();
  }
  CHECK(max_seen == 3);
  CHECK(rig.outbox->stats().pending == 0);
}

TEST_CASE("a failed publish reconnects and sends every unacknowledged record again", "[forwarder]") {
  Rig rig;
  rig.append(30);
  rig.fwd->start();
  REQUIRE(test::wait_until([&] { return rig.data_outstanding() == 3; }, 5s));
  std::set<std::int64_t> first_round;
  for (auto& m : rig.uplink.outstanding_messages())
    if (m.topic.find("/data/") != std::string::npos)
      for (auto s : Rig::seqs(m)) first_round.insert(s);
  CHECK(first_round.size() == 30);
  rig.uplink.complete_one(PublishOutcome::Delivered);                 // seqs 1..10 acknowledged
  REQUIRE(test::wait_until([&] { rig.outbox->flush(); return rig.outbox->stats().pending == 20; }, 5s));
  rig.uplink.complete_one(PublishOutcome::RetryLater);                // the link dropped
  // The fake clock drives the reconnect backoff (1-2 ms).
  REQUIRE(test::wait_until([&] { rig.clock.advance(5ms); return rig.uplink.connect_calls >= 2; }, 5s));
  // Stale completions from the old connection are ignored; what is left is sent again.
  rig.uplink.complete_one(PublishOutcome::RetryLater);
  std::set<std::int64_t> resent;
  REQUIRE(test::wait_until([&] {
    for (auto& m : rig.uplink.outstanding_messages())
      if (m.topic.find("/data/") != std::string::npos)
        for (auto s : Rig::seqs(m)) resent.insert(s);
    return resent.size() >= 20;
  }, 5s));
  for (std::int64_t s = 11; s <= 30; ++s) CHECK(resent.count(s) == 1);
}

TEST_CASE("after reconnecting, new records go out before the backlog", "[forwarder]") {
  auto o = Rig::defaults();
  o.max_inflight = 1;
  Rig rig(o);
  rig.append(50);  // the backlog
  rig.uplink.auto_connect = false;
  rig.fwd->start();
  REQUIRE(test::wait_until([&] { return rig.uplink.connect_calls >= 1; }, 5s));
  rig.uplink.events.connected();
  REQUIRE(test::wait_until([&] { return rig.data_outstanding() == 1; }, 5s));
  CHECK(*Rig::seqs(rig.uplink.outstanding_messages().back()).begin() == 1);  // backlog starts at the oldest
  rig.append(5, "live");                                                     // live data arrives
  rig.uplink.complete_one(PublishOutcome::Delivered);
  REQUIRE(test::wait_until([&] { return rig.data_outstanding() == 1; }, 5s));
  const auto next = rig.uplink.outstanding_messages().back();
  CHECK(next.topic == "ioc/p/s/data/live");
  CHECK(*Rig::seqs(next).begin() == 51);
}

TEST_CASE("backlog_rate caps the backlog's bandwidth", "[forwarder]") {
  auto o = Rig::defaults();
  o.backlog_rate = 1;  // one byte per second: one message, then nothing for a long time
  o.batch_max_bytes = 1024;  // the first message may use one batch's worth at once
  o.max_inflight = 10;
  Rig rig(o);
  rig.append(100);
  rig.fwd->start();
  REQUIRE(test::wait_until([&] { return rig.data_outstanding() >= 1; }, 5s));
  // The first burst may be more than one message, the later ones sent while the earlier are
  // acknowledged: take them all until nothing more comes for 300 ms. The fake clock stands still,
  // so the bucket does not refill: without the cap the 100 queued readings would all come (at
  // most 30 rounds here, and `first` would pass 30).
  std::size_t first = 0;
  for (int round = 0; round < 30; ++round) {
    for (auto& m : rig.uplink.outstanding_messages()) {
      CHECK(m.payload.size() <= 1024 + 200);  // batch_max_bytes of readings, plus the batch header
      CHECK(Rig::seqs(m).size() < 10);        // the byte limit, not batch_max_readings, ended it
      first += Rig::seqs(m).size();
    }
    while (rig.uplink.complete_one(PublishOutcome::Delivered)) {
    }
    if (!test::wait_until([&] { return rig.data_outstanding() > 0; }, 300ms)) break;
  }
  CHECK(first > 0);
  CHECK(first < 30);  // one burst's worth, not the 100 queued
  // On a loaded machine a message may still go after the 300 ms of quiet (the bucket's clock is
  // not all the rig's), but never the backlog: at least 70 of the 100 are still waiting.
  rig.outbox->flush();
  CHECK(rig.outbox->stats().pending >= 70);
  rig.clock.advance(std::chrono::hours(1));  // refills to one burst (one batch of bytes)
  CHECK(test::wait_until([&] { return rig.data_outstanding() > 0; }, 5s));
}

TEST_CASE("records of several readings are sent whole, each reading with its own seq", "[forwarder]") {
  Rig rig;  // batches of at most 10 readings, window 3
  rig.append_chunks(6, 4);  // seqs 1..24 in six records of four
  rig.fwd->start();
  REQUIRE(test::wait_until([&] { return rig.data_outstanding() == 3; }, 5s));
  std::multiset<std::int64_t> sent;
  for (auto& m : rig.uplink.outstanding_messages()) {
    const auto seqs = Rig::seqs(m);
    CHECK(seqs.size() == 8);  // two whole records: a third would pass 10 readings
    sent.insert(seqs.begin(), seqs.end());
  }
  while (rig.uplink.complete_one(PublishOutcome::Delivered)) {
  }
  // pending excludes delivered readings at once; their deletes are committed by a later flush.
  REQUIRE(test::wait_until([&] { rig.outbox->flush(); return rig.outbox->stats().removed == 24; }, 5s));
  CHECK(rig.outbox->stats().pending == 0);
  CHECK(sent.size() == 24);
  for (std::int64_t s = 1; s <= 24; ++s) CHECK(sent.count(s) == 1);
  CHECK(rig.fwd->stats().readings_sent == 24);
  CHECK(rig.outbox->stats().removed == 24);
}

TEST_CASE("a gap event from eviction is sent without waiting for new data", "[forwarder][eviction]") {
  Rig rig(Rig::defaults(), 60'000);
  rig.append(5);
  rig.fwd->start();
  // The broker never acknowledges the five; they age past max_age while nothing new arrives, and
  // the outbox evicts them on its age timer.
  REQUIRE(test::wait_until([&] { return rig.data_outstanding() == 1; }, 5s));
  rig.clock.advance(120s);
  std::string gap;
  REQUIRE(test::wait_until([&] {
    rig.outbox->flush();  // wakes the writer, which finds the age check due
    for (auto& m : rig.uplink.outstanding_messages())
      if (m.topic == "ioc/p/s/event/_gateway") gap = m.payload;
    return !gap.empty();
  }, 10s));
  const auto j = nlohmann::json::parse(gap);
  CHECK(j["readings"][0]["seq"] == 6);
  CHECK(j["readings"][0]["point"] == "gap");
  CHECK(j["readings"][0]["value"]["reason"] == "max_age");
  CHECK(j["readings"][0]["value"]["count"] == 5);
}

TEST_CASE("the forwarder thread stamps its progress for the watchdog", "[forwarder][watchdog]") {
  Rig rig;
  CHECK(rig.fwd->stalled_for() == 0ms);  // not running yet
  rig.fwd->start();
  rig.clock.advance(60s);
  // The loop turns at least once a second of real time while running.
  REQUIRE(test::wait_until([&] { return rig.fwd->stalled_for() < 1s; }, 5s));
  rig.fwd->stop(0ms);
  rig.clock.advance(60s);
  CHECK(rig.fwd->stalled_for() == 0ms);
}

TEST_CASE("acknowledgements that arrive while stopping still let their records go", "[forwarder]") {
  Rig rig;
  rig.append(5);
  rig.fwd->start();
  REQUIRE(test::wait_until([&] { return rig.data_outstanding() == 1; }, 5s));
  // The broker's PUBACK lands during the final disconnect, after the drain gave up waiting.
  rig.uplink.on_disconnect = [&] {
    while (rig.uplink.complete_one(PublishOutcome::Delivered)) {
    }
  };
  rig.fwd->stop(0ms);
  rig.outbox->flush();
  CHECK(rig.outbox->stats().pending == 0);  // not sent again after the restart
}

TEST_CASE("the window holds however many sources a read spans", "[forwarder][window]") {
  auto o = Rig::defaults();
  o.max_inflight = 4;
  o.batch_max_readings = 500;
  Rig rig(o);
  for (int i = 0; i < 200; ++i) rig.append(1, "src-" + std::to_string(i % 50));  // 50 sources, interleaved
  rig.fwd->start();
  std::size_t max_seen = 0;
  for (int i = 0; i < 500 && rig.outbox->stats().pending > 0; ++i) {
    test::wait_until([&] { return rig.data_outstanding() > 0 || rig.outbox->stats().pending == 0; }, 2s);
    max_seen = std::max(max_seen, rig.data_outstanding());
    rig.uplink.complete_one(PublishOutcome::Delivered);
    rig.outbox->flush();
  }
  CHECK(max_seen == 4);
  CHECK(rig.outbox->stats().pending == 0);
  CHECK(rig.fwd->stats().readings_sent == 200);
}

TEST_CASE("a refused message is held, named in a rejected event, and not resent until requeued",
          "[forwarder][rejected]") {
  auto o = Rig::defaults();
  o.max_inflight = 1;
  Rig rig(o);
  rig.append(5, "tram-bom-1");
  rig.fwd->start();
  REQUIRE(test::wait_until([&] { return rig.data_outstanding() == 1; }, 5s));
  CHECK(rig.uplink.outstanding_messages().front().topic == "ioc/p/s/data/tram-bom-1");
  const int connects = rig.uplink.connect_calls;
  REQUIRE(rig.uplink.complete_one(PublishOutcome::Rejected, 0x87));
  // The rejected event goes out next; the refused readings stay in the outbox, set aside.
  REQUIRE(test::wait_until([&] { return rig.data_outstanding() == 1; }, 5s));
  const auto ev = rig.uplink.outstanding_messages().front();
  CHECK(ev.topic == "ioc/p/s/event/_gateway");
  const auto v = nlohmann::json::parse(ev.payload)["readings"][0]["value"];
  CHECK(v["event"] == "rejected");
  CHECK(v["reason_code"] == 0x87);
  CHECK(v["topic"] == "ioc/p/s/data/tram-bom-1");
  CHECK(v["ranges"] == nlohmann::json::parse("[[1,5]]"));
  CHECK(v["sources"]["tram-bom-1"] == 5);
  rig.uplink.complete_one(PublishOutcome::Delivered);
  REQUIRE(test::wait_until([&] { rig.outbox->flush(); return rig.outbox->stats().pending == 5; }, 5s));
  CHECK(rig.outbox->stats().held == 5);
  CHECK(rig.uplink.connect_calls == connects);  // no reconnect
  CHECK_FALSE(test::wait_until([&] { return rig.data_outstanding() > 0; }, 300ms));  // no resend
  CHECK(rig.fwd->stats().rejected_readings == 5);
  CHECK_THAT(rig.fwd->stats().last_rejection, Catch::Contains("not authorized (0x87)"));

  // Fixed at the broker; requeue through the daemon: sent again and, acknowledged, removed.
  rig.fwd->rewind(rig.outbox->requeue());
  REQUIRE(test::wait_until([&] { return rig.data_outstanding() == 1; }, 5s));
  CHECK(Rig::seqs(rig.uplink.outstanding_messages().front()) == std::set<std::int64_t>{1, 2, 3, 4, 5});
  rig.uplink.complete_one(PublishOutcome::Delivered);
  REQUIRE(test::wait_until([&] { rig.outbox->flush(); return rig.outbox->stats().pending == 0; }, 5s));
}

TEST_CASE("a refused gateway event is held without breeding another event", "[forwarder][rejected]") {
  auto o = Rig::defaults();
  o.max_inflight = 1;
  Rig rig(o);
  rig.append(2, "gen");
  rig.fwd->start();
  REQUIRE(test::wait_until([&] { return rig.data_outstanding() == 1; }, 5s));
  REQUIRE(rig.uplink.complete_one(PublishOutcome::Rejected, 0x87));  // the data: one rejected event
  REQUIRE(test::wait_until([&] { return rig.data_outstanding() == 1; }, 5s));
  REQUIRE(rig.uplink.complete_one(PublishOutcome::Rejected, 0x87));  // the event itself: held, quietly
  rig.outbox->flush();
  CHECK_FALSE(test::wait_until([&] { return rig.data_outstanding() > 0; }, 300ms));
  CHECK(rig.outbox->stats().held == 3);
  CHECK(rig.outbox->stats().pending == 3);
}

TEST_CASE("live readings committed within batch_wait of the last read share one message per source",
          "[forwarder][batch_wait]") {
  auto o = Rig::defaults();
  o.batch_wait = 1000ms;
  Rig rig(o);
  rig.fwd->start();
  REQUIRE(test::wait_until([&] { return rig.fwd->stats().state == LinkState::Up; }, 5s));
  rig.append(1, "a");  // the first after a quiet spell goes at once
  REQUIRE(test::wait_until([&] { return rig.data_outstanding() == 1; }, 5s));
  REQUIRE(rig.uplink.complete_one(PublishOutcome::Delivered));
  for (int i = 0; i < 3; ++i) rig.append(1, "a");  // three commits, within the wait
  rig.append(1, "b");
  CHECK_FALSE(test::wait_until([&] { return rig.data_outstanding() > 0; }, 300ms));
  rig.clock.advance(1000ms);
  REQUIRE(test::wait_until([&] { return rig.data_outstanding() == 2; }, 5s));
  const auto msgs = rig.uplink.outstanding_messages();
  CHECK(msgs[0].topic == "ioc/p/s/data/a");
  CHECK(Rig::seqs(msgs[0]) == std::set<std::int64_t>{2, 3, 4});
  CHECK(msgs[1].topic == "ioc/p/s/data/b");
  CHECK(Rig::seqs(msgs[1]) == std::set<std::int64_t>{5});
}

TEST_CASE("the window stays one below the broker's Receive Maximum, so the client never queues",
          "[forwarder][window]") {
  auto o = Rig::defaults();
  o.max_inflight = 10;
  o.batch_max_readings = 1;
  Rig rig(o);
  rig.uplink.receive_maximum = 4;
  rig.append(20);
  rig.fwd->start();
  REQUIRE(test::wait_until([&] { return rig.data_outstanding() == 3; }, 5s));
  CHECK_FALSE(test::wait_until([&] { return rig.data_outstanding() > 3; }, 300ms));
  // A broker that allows more than max_inflight changes nothing.
  REQUIRE(rig.uplink.complete_one(PublishOutcome::Delivered));
  REQUIRE(test::wait_until([&] { return rig.data_outstanding() == 3; }, 5s));
}

TEST_CASE("without a Receive Maximum, or with a larger one, max_inflight is the window", "[forwarder][window]") {
  auto o = Rig::defaults();
  o.max_inflight = 5;
  o.batch_max_readings = 1;
  Rig rig(o);
  rig.uplink.receive_maximum = 65535;
  rig.append(20);
  rig.fwd->start();
  REQUIRE(test::wait_until([&] { return rig.data_outstanding() == 5; }, 5s));
  CHECK_FALSE(test::wait_until([&] { return rig.data_outstanding() > 5; }, 300ms));
}

TEST_CASE("a blob goes as its metadata event then its bytes untouched on the blob topic; removed after both",
          "[forwarder][blob]") {
  Rig rig;
  std::string bytes(300 * 1024, '\0');
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i % 251);
  rig.append(2, "cam");
  {
    std::vector<NewRecord> recs(1);
    recs[0].kind = Kind::Blob;
    recs[0].source = "cam";
    recs[0].body = bytes;
    recs[0].meta = blob_meta_json({"snapshot", 1795903799500, "image/jpeg", bytes.size(), sha256_hex(bytes),
                                   "frigate/front/snapshot", {}});
    std::promise<void> p;
    rig.outbox->append(std::move(recs), [&](const AppendResult&) { p.set_value(); });
    p.get_future().wait();
  }
  rig.fwd->start();
  REQUIRE(test::wait_until([&] { return rig.data_outstanding() == 3; }, 5s));
  const auto msgs = rig.uplink.outstanding_messages();
  CHECK(msgs[0].topic == "ioc/p/s/data/cam");
  CHECK(msgs[1].topic == "ioc/p/s/event/cam");
  CHECK(msgs[2].topic == "ioc/p/s/blob/cam");
  CHECK(msgs[2].payload == bytes);
  const auto ev = nlohmann::json::parse(msgs[1].payload);
  REQUIRE(ev["readings"].size() == 1);
  const auto& r = ev["readings"][0];
  CHECK(r["seq"] == 3);
  CHECK(r["point"] == "snapshot");
  CHECK(r["ts"] == "2026-11-28T22:09:59.500Z");
  CHECK(r["value"]["kind"] == "blob");
  CHECK(r["value"]["content_type"] == "image/jpeg");
  CHECK(r["value"]["size"] == bytes.size());
  CHECK(r["value"]["sha256"] == sha256_hex(bytes));
  CHECK(r["value"]["origin"] == "frigate/front/snapshot");
  // The v5 properties on the bytes say the same for receivers that read them.
  std::map<std::string, std::string> props(msgs[2].user_properties.begin(), msgs[2].user_properties.end());
  CHECK(props["seq"] == "3");
  CHECK(props["content_type"] == "image/jpeg");
  // The metadata event acknowledged alone does not remove the blob.
  REQUIRE(rig.uplink.complete_one(PublishOutcome::Delivered));  // the data batch
  REQUIRE(rig.uplink.complete_one(PublishOutcome::Delivered));  // the blob's event
  rig.outbox->flush();
  CHECK_FALSE(test::wait_until([&] { rig.outbox->flush(); return rig.outbox->stats().pending == 0; }, 300ms));
  REQUIRE(rig.uplink.complete_one(PublishOutcome::Delivered));  // the bytes
  REQUIRE(test::wait_until([&] { rig.outbox->flush(); return rig.outbox->stats().pending == 0; }, 5s));
}

TEST_CASE("a requeue that spans records held before and after a reconnect sends all of them again",
          "[forwarder][rejected]") {
  auto o = Rig::defaults();
  o.max_inflight = 1;
  Rig rig(o);
  rig.append(3, "a");  // seqs 1..3: the backlog of the first connection
  rig.fwd->start();
  REQUIRE(test::wait_until([&] { return rig.data_outstanding() == 1; }, 5s));
  REQUIRE(rig.uplink.complete_one(PublishOutcome::Rejected, 0x87));  // 1..3 held, event 4
  REQUIRE(test::wait_until([&] { return rig.data_outstanding() == 1; }, 5s));
  rig.uplink.complete_one(PublishOutcome::Delivered);  // the event
  // The link drops and comes back: live_from moves past everything so far.
  const int connects = rig.uplink.connect_calls;
  rig.uplink.events.down("test: link lost");
  REQUIRE(test::wait_until([&] { rig.clock.advance(5ms); return rig.uplink.connect_calls > connects; }, 5s));
  rig.append(2, "b");  // seqs 5..6, live on the new connection
  REQUIRE(test::wait_until([&] { return rig.data_outstanding() == 1; }, 5s));
  CHECK(Rig::seqs(rig.uplink.outstanding_messages().front()) == std::set<std::int64_t>{5, 6});
  REQUIRE(rig.uplink.complete_one(PublishOutcome::Rejected, 0x87));  // 5..6 held, event 7
  REQUIRE(test::wait_until([&] { return rig.data_outstanding() == 1; }, 5s));
  rig.uplink.complete_one(PublishOutcome::Delivered);
  REQUIRE(test::wait_until([&] { rig.outbox->flush(); return rig.outbox->stats().held == 5; }, 5s));

  rig.fwd->rewind(rig.outbox->requeue());
  std::set<std::int64_t> resent;
  REQUIRE(test::wait_until([&] {
    for (auto& m : rig.uplink.outstanding_messages())
      if (m.topic.find("/data/") != std::string::npos)
        for (auto s : Rig::seqs(m)) resent.insert(s);
    rig.uplink.complete_one(PublishOutcome::Delivered);
    return resent.size() == 5;
  }, 5s));
  CHECK(resent == std::set<std::int64_t>{1, 2, 3, 5, 6});
  REQUIRE(test::wait_until([&] { rig.outbox->flush(); return rig.outbox->stats().pending == 0; }, 5s));
}
