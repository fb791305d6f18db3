#pragma once
// MQTT 3.1.1 and 5 packets as a subscriber needs them: what it sends (CONNECT, SUBSCRIBE, the
// acknowledgements of inbound publishes, PINGREQ, DISCONNECT) and what it reads (CONNACK, SUBACK,
// PUBLISH, PUBREL, PINGRESP, DISCONNECT). Pure functions and an incremental decoder; no I/O, no
// threads. References: MQTT 3.1.1 (OASIS 2014) section 3, MQTT 5.0 (OASIS 2019) sections 2-3.
//
// Why our own codec: Paho acknowledges an inbound QoS 1 publish as soon as its callback returns, and
// offers no manual acknowledgement (docs/dependencies.md); a subscriber that must acknowledge only
// what it has committed, many messages per commit, has to own the acknowledgements.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ioc_edge::mqtt_wire {

enum class PacketType : std::uint8_t {
  Connect = 1, Connack = 2, Publish = 3, Puback = 4, Pubrec = 5, Pubrel = 6, Pubcomp = 7, Subscribe = 8,
  Suback = 9, Unsubscribe = 10, Unsuback = 11, Pingreq = 12, Pingresp = 13, Disconnect = 14, Auth = 15
};

// Protocol levels as CONNECT carries them.
inline constexpr int kMqtt311 = 4;
inline constexpr int kMqtt5 = 5;

// --- Encoding ---------------------------------------------------------------------------------

struct ConnectOptions {
  int version = kMqtt5;               // kMqtt311 or kMqtt5
  std::string client_id;
  bool clean_start = false;           // false: resume the session the broker keeps for client_id
  std::uint16_t keepalive_s = 30;
  std::optional<std::string> username;
  std::optional<std::string> password;
  // MQTT 5 only:
  std::uint32_t session_expiry_s = 0;  // how long the broker keeps the session after we disconnect
  std::uint16_t receive_maximum = 0;   // unacknowledged QoS 1/2 publishes the broker may send; 0: omit
  std::uint32_t maximum_packet_size = 0;  // 0: omit (no limit)
};
std::string encode_connect(const ConnectOptions& o);

struct Subscription {
  std::string filter;
  int qos = 1;  // 0..2
};
// MQTT 5: each subscription with Retain Handling 1 (retained messages only when the subscription is
// new), so resubscribing after a reconnect does not deliver every retained message again.
std::string encode_subscribe(int version, std::uint16_t packet_id, const std::vector<Subscription>& subs);

// PUBACK, PUBREC, PUBREL or PUBCOMP for packet_id, reason "success" (2-byte body in both versions).
std::string encode_ack(PacketType type, std::uint16_t packet_id);
std::string encode_pingreq();
// A normal disconnect (MQTT 5: reason 0x00; with session_expiry_s set it keeps the session).
std::string encode_disconnect(int version);

// --- Decoding ---------------------------------------------------------------------------------

struct Connack {
  bool session_present = false;
  int reason = 0;                       // 3.1.1 return code or MQTT 5 reason code; 0 = accepted
  // MQTT 5 properties (0 / empty when absent):
  std::uint16_t receive_maximum = 0;
  std::uint32_t maximum_packet_size = 0;
  std::uint16_t server_keepalive = 0;
  bool has_server_keepalive = false;
  std::string assigned_client_id;
  std::string reason_string;
};

struct Publish {
  std::string topic;
  std::string payload;
  int qos = 0;
  bool retain = false;
  bool dup = false;
  std::uint16_t packet_id = 0;          // QoS 1 and 2 only
  std::string content_type;             // MQTT 5 property, if any
  // MQTT 5, in order (names may repeat); the first 256 of them.
  std::vector<std::pair<std::string, std::string>> user_properties;
  // A publish larger than the decoder's max_packet: its bytes were read and discarded, never held
  // whole; topic, qos and packet_id are known (so it can be acknowledged), payload is empty.
  bool oversized = false;
  std::uint64_t payload_size = 0;       // the payload's size in bytes (also when oversized)
};

struct Suback {
  std::uint16_t packet_id = 0;
  std::vector<int> codes;               // per subscription: granted QoS 0..2, or >= 0x80 a failure
};

struct Ack {                            // PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK
  std::uint16_t packet_id = 0;
  int reason = 0;
};

struct Disconnect {                     // from the server (MQTT 5 only)
  int reason = 0;
  std::string reason_string;
};

struct Packet {
  PacketType type = PacketType::Pingresp;
  Connack connack;
  Publish publish;
  Suback suback;
  Ack ack;
  Disconnect disconnect;
};

// Turns the byte stream from the broker into packets. feed() what was read, then call next()
// until it says NeedMore. Memory: at most one packet of max_packet bytes is held, plus what was fed
// and not yet consumed.
class Decoder {
 public:
  enum class Status { Ready, NeedMore, Error };

  Decoder(int version, std::size_t max_packet);

  void feed(const char* data, std::size_t n);
  // Ready: `out` holds the next packet. Error: error() says what was wrong with the stream (the
  // connection must be closed); the decoder stays in error.
  Status next(Packet& out);
  const std::string& error() const { return error_; }
  // Bytes fed and not yet consumed (for tests).
  std::size_t buffered() const;

 private:
  int version_;
  std::size_t max_packet_;
  std::string buf_;
  std::size_t pos_ = 0;
  // Discarding the rest of an oversized publish.
  std::uint64_t skip_ = 0;
  Publish skipped_;
  std::string error_;
};

std::string_view to_string(PacketType t);
// "not authorized" for a 3.1.1 CONNACK return code or an MQTT 5 reason code, by version.
std::string connack_reason(int version, int code);
// MQTT 5 reason codes in words ("quota exceeded"), for SUBACK failures and DISCONNECT.
std::string reason_name(int code);

}  // namespace ioc_edge::mqtt_wire
