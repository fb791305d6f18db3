#pragma once
// The MQTT Uplink (Paho MQTT C++ async client): mqtt:// or mqtts:// with mutual TLS.
//
// - MQTT 5 by default: only MQTT 5 lets a broker say that it refused a publish (PUBACK reason code
//   >= 0x80, e.g. 0x87 not authorized by its ACL, 0x95 packet too large); an MQTT 3.1.1 broker
//   answers a refused publish with an ordinary PUBACK and drops it (docs/dependencies.md). 3.1.1
//   stays available for brokers without MQTT 5. Clean start, Session Expiry Interval 0 set
//   explicitly: the outbox is the session, nothing is kept at the broker between connections.
// - TLS 1.2 or newer, the CA file pinned, the server host name verified (Paho leaves that off
//   unless asked: docs/dependencies.md), client certificate and key for mutual TLS, OpenSSL
//   security level 2 (Paho sets level 1, which accepts 1024-bit RSA keys).
// - No Paho persistence: the outbox is the only queue. A fresh client is made for every connect
//   attempt, so no state survives a long outage inside Paho (docs/dependencies.md: reconnect bugs).
// - Last will: `{prefix}/status` retained, saying offline; disconnect() publishes the same before
//   leaving cleanly.
// Threads: connect()/publish()/disconnect() are called by the forwarder thread; Paho's callbacks
// run on Paho's threads and only call the Events and PublishDone callbacks.
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "core/uplink.h"
#include "uplink_mqtt/tls_probe.h"

namespace mqtt {
class async_client;
}
namespace spdlog {
class logger;
}

namespace ioc_edge {

struct MqttUplinkOptions {
  std::string url;  // mqtt://host:port or mqtts://host:port
  std::string client_id;
  std::string ca_file, cert_file, key_file;
  std::string username, password;
  bool verify_hostname = true;
  int keepalive_s = 30;
  int connect_timeout_s = 10;
  int mqtt_version = 5;          // 5, or 4 for MQTT 3.1.1
  int max_inflight = 100;        // MQTT in-flight window
  int max_buffered = 102;        // Paho's queue of unfinished publishes: the window + heartbeat + offline
  std::string will_topic;        // {prefix}/status
  std::string will_payload;      // {"state":"offline",...}
};

class MqttUplink final : public Uplink {
 public:
  explicit MqttUplink(MqttUplinkOptions opts);
  ~MqttUplink() override;

  void set_events(Events events) override;
  void connect() override;
  void publish(Message message, PublishDone done) override;
  void disconnect(int timeout_ms) override;
  std::string describe() const override { return opts_.url; }
  std::size_t broker_window() const override { return broker_window_.load(); }

 private:
  class Listener;
  void fail_all_pending(const std::string& why);
  void finish(std::uintptr_t id, PublishOutcome o, int reason_code, const std::string& detail);

  MqttUplinkOptions opts_;
  std::string paho_uri_;
  std::shared_ptr<spdlog::logger> log_;
  Events events_;
  std::unique_ptr<Listener> connect_listener_;
  std::unique_ptr<Listener> publish_listener_;
  std::unique_ptr<mqtt::async_client> client_;
  std::atomic<std::uint64_t> attempt_{0};
  std::atomic<std::size_t> broker_window_{0};  // the last CONNACK's Receive Maximum, 0: none

  std::mutex mu_;
  std::map<std::uintptr_t, PublishDone> pending_;
  std::uintptr_t next_id_ = 1;
  TlsProbe probe_;
};

}  // namespace ioc_edge
