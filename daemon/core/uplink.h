#pragma once
// The Uplink seam: the connection to the IOC (docs/design.md section 2).
//
// An Uplink connects when asked, publishes a message when asked and reports outcomes through
// callbacks. It never sleeps, never retries and never touches the outbox: the Forwarder owns the
// loop, the window and the backoff. Callbacks may run on any thread (the MQTT client's own); they
// must only hand the news over (post, notify), never block.
#include <cstddef>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace ioc_edge {

struct Message {
  std::string topic;
  std::string payload;
  bool retained = false;
  std::vector<std::pair<std::string, std::string>> user_properties;  // MQTT v5 only (blob metadata)
};

enum class PublishOutcome {
  Delivered,   // the broker acknowledged it (PUBACK): the records may leave the outbox
  RetryLater,  // not acknowledged (link lost, client busy, timeout): send again later
  Rejected,    // the broker refused it (MQTT 5 PUBACK reason code >= 0x80: not authorized, too
               // large, ...); sending it again as it is would be refused again
};

class Uplink {
 public:
  struct Events {
    std::function<void()> connected;                  // the session is up; publish may be called
    std::function<void(const std::string& why)> down;  // a connect attempt failed or the link dropped
  };
  // `reason_code` is the MQTT 5 PUBACK reason code when the broker refused (>= 0x80), else 0;
  // `detail` says what happened in words.
  using PublishDone = std::function<void(PublishOutcome, int reason_code, const std::string& detail)>;

  virtual ~Uplink() = default;
  // Set once, before the first connect().
  virtual void set_events(Events events) = 0;
  // Starts one connection attempt; reports connected() or down(). Does not block.
  virtual void connect() = 0;
  // Publishes (QoS 1). Only after connected(); `done` runs exactly once.
  virtual void publish(Message message, PublishDone done) = 0;
  // Announces a clean shutdown (the status topic says offline) and disconnects; blocks at most
  // `timeout_ms`.
  virtual void disconnect(int timeout_ms) = 0;
  // For logs: "mqtts://ioc.example.gov.vn:8883".
  virtual std::string describe() const = 0;
  // How many QoS 1 messages the broker accepts unacknowledged on this connection (the MQTT 5
  // Receive Maximum of its CONNACK); 0 when it set no limit. Read after connected().
  virtual std::size_t broker_window() const { return 0; }
};

}  // namespace ioc_edge
