#include "uplink_mqtt/mqtt_uplink.h"

#include <mqtt/async_client.h>

#include "core/gateway_events.h"
#include "core/log.h"
#include "uplink_mqtt/tls_probe.h"

namespace ioc_edge {

class MqttUplink::Listener final : public mqtt::iaction_listener {
 public:
  using Fn = std::function<void(const mqtt::token&, bool ok)>;
  explicit Listener(Fn fn) : fn_(std::move(fn)) {}
  void on_success(const mqtt::token& t) override { fn_(t, true); }
  void on_failure(const mqtt::token& t) override { fn_(t, false); }

 private:
  Fn fn_;
};

namespace {

std::string paho_uri(const std::string& url) {
  if (url.rfind("mqtts://", 0) == 0) return "ssl://" + url.substr(8);
  if (url.rfind("mqtt://", 0) == 0) return "tcp://" + url.substr(7);
  return url;
}

std::string describe_rc(int rc) {
  switch (rc) {
    case MQTTASYNC_FAILURE: return "TCP/TLS connect failure";
    case MQTTASYNC_DISCONNECTED: return "disconnected";
    case MQTTASYNC_MAX_MESSAGES_INFLIGHT: return "too many messages in flight";
    case MQTTASYNC_BAD_UTF8_STRING: return "bad UTF-8 string";
    case MQTTASYNC_NULL_PARAMETER: return "null parameter";
    case MQTTASYNC_BAD_STRUCTURE: return "bad structure";
    case MQTTASYNC_BAD_QOS: return "bad QoS";
    case MQTTASYNC_NO_MORE_MSGIDS: return "no more message ids";
    case MQTTASYNC_OPERATION_INCOMPLETE: return "operation incomplete";
    case MQTTASYNC_MAX_BUFFERED_MESSAGES: return "client buffer full";
    case MQTTASYNC_SSL_NOT_SUPPORTED: return "TLS not supported by the MQTT library";
    case MQTTASYNC_BAD_PROTOCOL: return "bad protocol";
    case 1: return "the broker refused: unacceptable protocol version (a broker without MQTT 5? set [uplink] mqtt_version = \"3.1.1\")";
    case 2: return "the broker refused: client id rejected";
    case 3: return "the broker refused: server unavailable";
    case 4: return "the broker refused: bad user name or password";
    case 5: return "the broker refused: not authorized";
    default: return "error " + std::to_string(rc);
  }
}

// The broker's refusal code of a failed MQTT 5 operation, or 0 if the failure is not a refusal.
// Only an answer of the broker counts: Paho C reports a failed publish or connect with return code
// 0 and the PUBACK/CONNACK reason code; a lost link or a destroyed client fails the pending
// operations with other return codes, and under MQTT 3.1.1 Paho C++ sets the reason code to
// MQTTPP_V3_CODE (255) on every failure, which is no answer at all (docs/dependencies.md).
int v5_refusal(const mqtt::token& t) {
  const int reason = static_cast<int>(t.get_reason_code());
  if (t.get_return_code() != MQTTASYNC_SUCCESS || reason < 0x80 || reason == static_cast<int>(mqtt::MQTTPP_V3_CODE))
    return 0;
  return reason;
}

// MQTT 5 CONNACK reason codes (>= 0x80) in words.
std::string describe_connack(int reason) {
  switch (reason) {
    case 0x84: return "the broker refused: unsupported protocol version (set [uplink] mqtt_version = \"3.1.1\")";
    case 0x85: return "the broker refused: client identifier not valid";
    case 0x86: return "the broker refused: bad user name or password";
    case 0x87: return "the broker refused: not authorized";
    case 0x88: return "the broker refused: server unavailable";
    case 0x89: return "the broker refused: server busy";
    case 0x8A: return "the broker refused: banned";
    case 0x95: return "the broker refused: packet too large";
    case 0x9F: return "the broker refused: connection rate exceeded";
    default: return "the broker refused the connection: reason code " + std::to_string(reason);
  }
}

}  // namespace

MqttUplink::MqttUplink(MqttUplinkOptions opts)
    : opts_(std::move(opts)), paho_uri_(paho_uri(opts_.url)), log_(logger("uplink")) {
  {
    // host and port for the TLS probe, from "ssl://host:port" or "ssl://[v6]:port"
    const auto hostport = paho_uri_.substr(paho_uri_.find("://") + 3);
    const auto colon = hostport.rfind(':');
    const bool has_port = colon != std::string::npos && hostport.find(']', colon) == std::string::npos;
    probe_.host = has_port ? hostport.substr(0, colon) : hostport;
    if (probe_.host.size() > 2 && probe_.host.front() == '[') probe_.host = probe_.host.substr(1, probe_.host.size() - 2);
    probe_.port = has_port ? std::stoi(hostport.substr(colon + 1)) : 8883;
    probe_.ca_file = opts_.ca_file;
    probe_.cert_file = opts_.cert_file;
    probe_.key_file = opts_.key_file;
    probe_.verify_hostname = opts_.verify_hostname;
    probe_.timeout = std::chrono::seconds(opts_.connect_timeout_s);
  }
  connect_listener_ = std::make_unique<Listener>([this](const mqtt::token& t, bool ok) {
    if (reinterpret_cast<std::uintptr_t>(t.get_user_context()) != attempt_.load()) return;  // stale attempt
    if (ok) {
      std::size_t window = 0;
      try {
        const auto response = t.get_connect_response();
        const auto& props = response.get_properties();
        if (props.contains(mqtt::property::RECEIVE_MAXIMUM))
          window = mqtt::get<std::uint16_t>(props, mqtt::property::RECEIVE_MAXIMUM, 0);
      } catch (const std::exception&) {  // no response to read (MQTT 3.1.1): no limit announced
      }
      broker_window_ = window;
      if (events_.connected) events_.connected();
      return;
    }
    // Paho C reports a refused MQTT 5 connect with the CONNACK reason code as the return code.
    const int rc = t.get_return_code();
    std::string why = opts_.mqtt_version == 5 && rc >= 0x80 ? describe_connack(rc) : describe_rc(rc);
    if (t.get_return_code() == MQTTASYNC_FAILURE && paho_uri_.rfind("ssl://", 0) == 0) {
      // Paho says only "TCP/TLS connect failure": find out which, with one probe of our own.
      if (auto explained = explain_tls_failure(probe_); !explained.empty()) why = explained;
    }
    if (events_.down) events_.down(why);
  });
  publish_listener_ = std::make_unique<Listener>([this](const mqtt::token& t, bool ok) {
    const auto id = reinterpret_cast<std::uintptr_t>(t.get_user_context());
    const int reason = ok ? 0 : v5_refusal(t);
    if (ok)  // Paho reports reason codes below 0x80 as success, 0x10 "no matching subscribers" included
      finish(id, PublishOutcome::Delivered, 0, {});
    else if (reason)  // MQTT 5: the broker answered and refused this message
      finish(id, PublishOutcome::Rejected, reason, mqtt_reason_text(reason));
    else  // the link dropped, the client was destroyed, ...: not an answer of the broker
      finish(id, PublishOutcome::RetryLater, 0, describe_rc(t.get_return_code()));
  });
}

MqttUplink::~MqttUplink() {
  attempt_ = 0;
  client_.reset();
  fail_all_pending("uplink closed");
}

void MqttUplink::set_events(Events events) { events_ = std::move(events); }

void MqttUplink::fail_all_pending(const std::string& why) {
  std::map<std::uintptr_t, PublishDone> pending;
  {
    std::lock_guard lk(mu_);
    pending.swap(pending_);
  }
  for (auto& [id, done] : pending)
    if (done) done(PublishOutcome::RetryLater, 0, why);
}

void MqttUplink::finish(std::uintptr_t id, PublishOutcome o, int reason_code, const std::string& detail) {
  PublishDone done;
  {
    std::lock_guard lk(mu_);
    auto it = pending_.find(id);
    if (it == pending_.end()) return;  // already failed by a reconnect
    done = std::move(it->second);
    pending_.erase(it);
  }
  if (done) done(o, reason_code, detail);
}

void MqttUplink::connect() {
  const std::uint64_t attempt = ++attempt_;
  // A fresh client for every attempt (see the header). Destroying the old one stops its threads.
  client_.reset();
  fail_all_pending("reconnecting");
  try {
    const int version = opts_.mqtt_version == 5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1;
    mqtt::create_options copts(version, opts_.max_buffered);
    client_ = std::make_unique<mqtt::async_client>(paho_uri_, opts_.client_id, copts, nullptr);
    client_->set_connection_lost_handler([this, attempt](const std::string& cause) {
      if (attempt != attempt_.load()) return;
      fail_all_pending("connection lost");
      if (events_.down) events_.down(cause.empty() ? "connection lost" : "connection lost: " + cause);
    });

    mqtt::connect_options co;
    co.set_mqtt_version(version);  // before clean start: it resets the flag
    if (version == MQTTVERSION_5) {
      co.set_clean_start(true);
      // Explicitly 0 (docs/dependencies.md): no session outlives the connection; the outbox resends.
      co.set_properties(mqtt::properties{{mqtt::property::SESSION_EXPIRY_INTERVAL, 0}});
    } else {
      co.set_clean_session(true);
    }
    co.set_keep_alive_interval(opts_.keepalive_s);
    co.set_connect_timeout(opts_.connect_timeout_s);
    co.set_automatic_reconnect(false);
    co.set_max_inflight(opts_.max_inflight);
    co.set_will(mqtt::will_options(opts_.will_topic, opts_.will_payload, 1, true));
    if (!opts_.username.empty()) co.set_user_name(opts_.username);
    if (!opts_.password.empty()) co.set_password(opts_.password);
    if (paho_uri_.rfind("ssl://", 0) == 0) {
      mqtt::ssl_options ssl;
      ssl.set_trust_store(opts_.ca_file);
      if (!opts_.cert_file.empty()) ssl.set_key_store(opts_.cert_file);
      if (!opts_.key_file.empty()) ssl.set_private_key(opts_.key_file);
      ssl.set_enable_server_cert_auth(true);
      ssl.set_verify(opts_.verify_hostname);
      // Paho ignores sslVersion with OpenSSL >= 1.1; OpenSSL 3 (Debian 12) refuses TLS < 1.2 at its
      // default security level, so TLS 1.2+ holds. No error handler: it dangles in Paho C++ 1.2.0.
      ssl.set_ssl_version(MQTT_SSL_VERSION_TLS_1_2);
      // Paho C 1.3.12 lowers OpenSSL to security level 1 (1024-bit RSA, SHA-1 signatures accepted);
      // the cipher list is applied after that and restores Debian's level 2.
      ssl.set_enabled_cipher_suites("DEFAULT:@SECLEVEL=2");
      co.set_ssl(std::move(ssl));
    }
    client_->connect(co, reinterpret_cast<void*>(static_cast<std::uintptr_t>(attempt)), *connect_listener_);
  } catch (const mqtt::exception& e) {
    if (events_.down) events_.down(std::string("cannot start a connection: ") + e.what());
  }
}

void MqttUplink::publish(Message message, PublishDone done) {
  std::uintptr_t id;
  {
    std::lock_guard lk(mu_);
    id = next_id_++;
    pending_.emplace(id, std::move(done));
  }
  if (!client_) {
    finish(id, PublishOutcome::RetryLater, 0, "not connected");
    return;
  }
  try {
    mqtt::properties props;
    if (opts_.mqtt_version == 5)
      for (auto& [k, v] : message.user_properties)
        props.add(mqtt::property(mqtt::property::USER_PROPERTY, k, v));
    auto msg = std::make_shared<mqtt::message>(std::move(message.topic), std::move(message.payload), 1,
                                               message.retained, props);
    client_->publish(msg, reinterpret_cast<void*>(id), *publish_listener_);
  } catch (const mqtt::exception& e) {
    finish(id, PublishOutcome::RetryLater, 0, e.what());
  }
}

void MqttUplink::disconnect(int timeout_ms) {
  if (!client_) return;
  try {
    if (client_->is_connected()) {
      auto tok = client_->publish(mqtt::make_message(opts_.will_topic, opts_.will_payload, 1, true));
      tok->wait_for(std::chrono::milliseconds(timeout_ms));
      client_->disconnect(timeout_ms)->wait_for(std::chrono::milliseconds(timeout_ms));
    }
  } catch (const mqtt::exception& e) {
    log_->debug("disconnect: {}", e.what());
  }
  attempt_ = 0;
  client_.reset();
  fail_all_pending("disconnected");
}

}  // namespace ioc_edge
