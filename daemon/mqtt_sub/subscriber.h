#pragma once
// A durable MQTT subscriber that acknowledges a message only when its owner says it is safe.
//
// Design note
// -----------
// Paho sends the acknowledgement of an inbound QoS 1 publish (PUBACK) as soon as its message
// callback returns, and has no manual acknowledgement; blocking the callback until the message is
// committed lets one message through per commit (docs/dependencies.md item 14). This subscriber
// owns its acknowledgements instead: many messages are in flight at once (up to the broker's
// window: MQTT 5 Receive Maximum, Mosquitto's max_inflight_messages for 3.1.1), their owner
// commits them in groups, and each is acknowledged once its commit is done.
//
// Thread: one thread ("mqtt-in:<host:port>") runs this subscriber's own io_context: the socket, the
// timers, the handlers. ack() and retry_later() may be called from any thread.
//
// States: Stopped -> Connecting (resolve, TCP, TLS, CONNECT, CONNACK) -> Up (SUBSCRIBE, publishes
// flow) -> Down (closed; reconnect after a jittered backoff) -> Connecting ...; stop() from any state.
//
// Invariants
//  1. A QoS 1 publish is acknowledged (PUBACK) and a QoS 2 publish received (PUBREC) only after
//     ack(token) was called for it and for every publish that arrived before it on the same
//     connection: acknowledgements go out in arrival order (MQTT 3.1.1 section 4.6).
//  2. The session is persistent (clean start off; MQTT 5 with a session expiry): a publish not
//     acknowledged when the connection or the process ends is delivered again by the broker on
//     the next connection (with DUP set). An ack() for a message of an earlier connection is
//     ignored: that message is on its way again.
//  3. retry_later(token) never acknowledges: it closes the connection and reconnects after the
//     delay, so the broker delivers the message (and those after it) again.
//  4. Every subscription is sent again on every connection (MQTT 5: retained messages only for a
//     new subscription), so a broker that lost the session (restarted without persistence)
//     delivers again from then on.
//  5. A publish larger than max_packet is read and discarded as it arrives (never held whole) and
//     handed to the handler with `oversized` set, so its owner can count it and ack it.
//  6. After stop() returns no handler runs again.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mqtt_sub/mqtt_codec.h"

namespace spdlog {
class logger;
}

namespace ioc_edge {

struct SubscriberOptions {
  std::string host;
  int port = 1883;
  bool tls = false;
  std::string ca_file, cert_file, key_file;  // tls: CA pinned; client certificate optional
  bool verify_hostname = true;
  std::optional<std::string> username, password;
  std::string client_id;
  int version = mqtt_wire::kMqtt5;
  std::chrono::seconds keepalive{30};
  std::uint32_t session_expiry_s = 7 * 24 * 3600;  // MQTT 5
  std::uint16_t receive_maximum = 1000;            // MQTT 5
  std::size_t max_packet = (1u << 20) + 65536;     // larger publishes arrive `oversized`
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds reconnect_min{500}, reconnect_max{30000};
};

struct SubscriberStats {
  std::uint64_t received = 0;     // publishes handed to the handler
  std::uint64_t acknowledged = 0; // PUBACK / PUBREC sent
  std::uint64_t redelivered = 0;  // publishes that arrived with DUP set (sent before, not acknowledged)
  std::uint64_t connects = 0;     // successful connections
  bool up = false;
};

class Subscriber {
 public:
  // Runs on the subscriber thread; must not block. Call ack(token) (or retry_later) exactly once
  // for every publish, from any thread; QoS 0 publishes need no ack (it is a no-op for them).
  using MessageHandler = std::function<void(mqtt_wire::Publish&& message, std::uint64_t token)>;
  // Runs on the subscriber thread at each change: up (CONNACK accepted) or down with the reason
  // ("connection refused", "not authorized", "TLS: certificate verify failed", ...). `detail` when up
  // says whether the broker kept the session.
  using StateHandler = std::function<void(bool up, const std::string& detail)>;

  Subscriber(SubscriberOptions options, std::shared_ptr<spdlog::logger> log);
  ~Subscriber();  // stop()s
  Subscriber(const Subscriber&) = delete;
  Subscriber& operator=(const Subscriber&) = delete;

  // Before start().
  void set_handlers(MessageHandler on_message, StateHandler on_state);
  // Adds topic filters; sent now if connected, and on every connection. Any thread.
  void subscribe(std::vector<mqtt_wire::Subscription> subscriptions);
  void start();
  // Disconnects (the broker keeps the session and what was not acknowledged) and joins the thread.
  void stop();

  void ack(std::uint64_t token);
  void retry_later(std::uint64_t token, std::chrono::milliseconds delay);

  SubscriberStats stats() const;
  // "mqtt://127.0.0.1:1883" / "mqtts://broker.lan:8883", for logs.
  std::string describe() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace ioc_edge
