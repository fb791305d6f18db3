// The MQTT codec (daemon/mqtt_sub/mqtt_codec.h) against packets built by hand from the MQTT 3.1.1
// and MQTT 5 specifications, so a codec bug cannot hide behind a test helper that shares it.
#include <catch2/catch.hpp>

#include <algorithm>
#include <initializer_list>
#include <string>
#include <vector>

#include "mqtt_sub/mqtt_codec.h"

using namespace ioc_edge::mqtt_wire;

namespace {

std::string bytes(std::initializer_list<int> v) {
  std::string s;
  for (const int c : v) s.push_back(static_cast<char>(c));
  return s;
}

struct Decoded {
  std::vector<Packet> packets;
  Decoder::Status last = Decoder::Status::NeedMore;
  std::string error;
};

// Drains every packet the decoder can produce from what it has been fed so far.
void drain(Decoder& d, Decoded& out) {
  for (;;) {
    Packet p;
    out.last = d.next(p);
    if (out.last != Decoder::Status::Ready) break;
    out.packets.push_back(std::move(p));
  }
  if (out.last == Decoder::Status::Error) out.error = d.error();
}

Decoded decode(const std::string& wire, int version = kMqtt5, std::size_t max_packet = 1 << 20) {
  Decoder d(version, max_packet);
  Decoded out;
  d.feed(wire.data(), wire.size());
  drain(d, out);
  return out;
}

// Feeds `wire` in chunks of `chunk` bytes, draining after each one.
Decoded decode_chunked(const std::string& wire, std::size_t chunk, int version = kMqtt5,
                       std::size_t max_packet = 1 << 20, std::size_t* max_buffered = nullptr) {
  Decoder d(version, max_packet);
  Decoded out;
  for (std::size_t i = 0; i < wire.size(); i += chunk) {
    const std::size_t n = std::min(chunk, wire.size() - i);
    d.feed(wire.data() + i, n);
    drain(d, out);
    if (max_buffered) *max_buffered = std::max(*max_buffered, d.buffered());
    if (out.last == Decoder::Status::Error) break;
  }
  return out;
}

Packet decode_one(const std::string& wire, int version = kMqtt5) {
  const auto r = decode(wire, version);
  INFO(r.error);
  REQUIRE(r.last == Decoder::Status::NeedMore);
  REQUIRE(r.packets.size() == 1);
  return r.packets[0];
}

std::string decode_error(const std::string& wire, int version = kMqtt5, std::size_t max_packet = 1 << 20) {
  const auto r = decode(wire, version, max_packet);
  REQUIRE(r.last == Decoder::Status::Error);
  REQUIRE_FALSE(r.error.empty());
  return r.error;
}

// One line per packet, so two decodings of the same stream compare as strings.
std::string summary(const Packet& p) {
  std::string s(to_string(p.type));
  switch (p.type) {
    case PacketType::Connack:
      s += " sp=" + std::to_string(p.connack.session_present) + " r=" + std::to_string(p.connack.reason) +
           " rm=" + std::to_string(p.connack.receive_maximum) + " id=" + p.connack.assigned_client_id;
      break;
    case PacketType::Publish:
      s += " " + p.publish.topic + " q=" + std::to_string(p.publish.qos) + " id=" +
           std::to_string(p.publish.packet_id) + " ct=" + p.publish.content_type + " big=" +
           std::to_string(p.publish.oversized) + " n=" + std::to_string(p.publish.payload_size) + " " +
           p.publish.payload;
      break;
    case PacketType::Suback:
      s += " id=" + std::to_string(p.suback.packet_id);
      for (const int c : p.suback.codes) s += " " + std::to_string(c);
      break;
    case PacketType::Puback: case PacketType::Pubrec: case PacketType::Pubrel: case PacketType::Pubcomp:
    case PacketType::Unsuback:
      s += " id=" + std::to_string(p.ack.packet_id) + " r=" + std::to_string(p.ack.reason);
      break;
    case PacketType::Disconnect:
      s += " r=" + std::to_string(p.disconnect.reason) + " " + p.disconnect.reason_string;
      break;
    default: break;
  }
  return s;
}

// A v5 CONNACK: session present, success, with every property the codec reads and some it skips.
const std::string kConnackV5 =
    bytes({0x20, 0x27, 0x01, 0x00, 0x24,
           0x21, 0x00, 0x0A,                    // Receive Maximum 10
           0x27, 0x00, 0x01, 0x00, 0x00,        // Maximum Packet Size 65536
           0x13, 0x00, 0x3C,                    // Server Keep Alive 60
           0x12, 0x00, 0x03, 'a', 'b', 'c',     // Assigned Client Identifier
           0x1F, 0x00, 0x02, 'o', 'k',          // Reason String
           0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'v',  // User Property (skipped)
           0x24, 0x01,                          // Maximum QoS (skipped)
           0x22, 0x00, 0x0A,                    // Topic Alias Maximum (skipped)
           0x2A, 0x00});                        // Shared Subscription Available (skipped)

// A v5 QoS 1 PUBLISH on "a/b", packet id 5, Content Type and six skipped properties, payload "{}".
const std::string kPublishV5 =
    bytes({0x32, 0x36, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x05, 0x2C,
           0x03, 0x00, 0x10}) + "application/json" +
    bytes({0x01, 0x01,                          // Payload Format Indicator
           0x02, 0x00, 0x00, 0x00, 0x3C,        // Message Expiry Interval
           0x0B, 0x05,                          // Subscription Identifier
           0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'v',  // User Property
           0x08, 0x00, 0x01, 'r',               // Response Topic
           0x09, 0x00, 0x02, 0xAB, 0xCD}) +     // Correlation Data
    "{}";

}  // namespace

// --- Encoding ---------------------------------------------------------------------------------

TEST_CASE("a 3.1.1 CONNECT encodes as the specification lays it out", "[mqtt_codec]") {
  ConnectOptions o;
  o.version = kMqtt311;
  o.client_id = "c1";
  o.keepalive_s = 30;
  o.clean_start = false;
  o.session_expiry_s = 3600;  // MQTT 5 only: must not appear
  o.receive_maximum = 10;
  CHECK(encode_connect(o) ==
        bytes({0x10, 0x0E, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x00, 0x00, 0x1E, 0x00, 0x02, 'c', '1'}));

  o.client_id = "id";
  o.clean_start = true;
  o.keepalive_s = 60;
  o.username = "u";
  o.password = "pw";
  CHECK(encode_connect(o) == bytes({0x10, 0x15, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0xC2, 0x00, 0x3C, 0x00, 0x02,
                                    'i', 'd', 0x00, 0x01, 'u', 0x00, 0x02, 'p', 'w'}));
}

TEST_CASE("an MQTT 5 CONNECT carries session expiry, receive maximum and maximum packet size", "[mqtt_codec]") {
  ConnectOptions o;
  o.version = kMqtt5;
  o.client_id = "c";
  o.keepalive_s = 30;
  o.session_expiry_s = 3600;
  o.receive_maximum = 100;
  o.maximum_packet_size = 1048576;
  o.username = "u";
  CHECK(encode_connect(o) == bytes({0x10, 0x1E, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0x80, 0x00, 0x1E,
                                    0x0D,                          // property length 13
                                    0x11, 0x00, 0x00, 0x0E, 0x10,  // Session Expiry Interval 3600
                                    0x21, 0x00, 0x64,              // Receive Maximum 100
                                    0x27, 0x00, 0x10, 0x00, 0x00,  // Maximum Packet Size 1 MiB
                                    0x00, 0x01, 'c', 0x00, 0x01, 'u'}));

  ConnectOptions bare;
  bare.client_id = "c1";
  bare.clean_start = true;
  CHECK(encode_connect(bare) ==
        bytes({0x10, 0x0F, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0x02, 0x00, 0x1E, 0x00, 0x00, 0x02, 'c', '1'}));
}

TEST_CASE("SUBSCRIBE options are the QoS in 3.1.1 and add retain handling 1 in MQTT 5", "[mqtt_codec]") {
  const std::vector<Subscription> subs{{"a/b", 1}, {"c/#", 0}, {"d", 2}};
  CHECK(encode_subscribe(kMqtt311, 10, subs) ==
        bytes({0x82, 0x12, 0x00, 0x0A, 0x00, 0x03, 'a', '/', 'b', 0x01, 0x00, 0x03, 'c', '/', '#', 0x00, 0x00, 0x01,
               'd', 0x02}));
  CHECK(encode_subscribe(kMqtt5, 10, subs) ==
        bytes({0x82, 0x13, 0x00, 0x0A, 0x00, 0x00, 0x03, 'a', '/', 'b', 0x11, 0x00, 0x03, 'c', '/', '#', 0x10, 0x00,
               0x01, 'd', 0x12}));
  // A QoS outside 0..2 would make the packet malformed; it is clamped.
  CHECK(encode_subscribe(kMqtt311, 1, {{"x", 7}}) == bytes({0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'x', 0x02}));
}

TEST_CASE("acknowledgements, PINGREQ and DISCONNECT are the fixed short packets", "[mqtt_codec]") {
  CHECK(encode_ack(PacketType::Puback, 0x1234) == bytes({0x40, 0x02, 0x12, 0x34}));
  CHECK(encode_ack(PacketType::Pubrec, 0x0001) == bytes({0x50, 0x02, 0x00, 0x01}));
  CHECK(encode_ack(PacketType::Pubrel, 0xFFFF) == bytes({0x62, 0x02, 0xFF, 0xFF}));
  CHECK(encode_ack(PacketType::Pubcomp, 0x0100) == bytes({0x70, 0x02, 0x01, 0x00}));
  CHECK(encode_pingreq() == bytes({0xC0, 0x00}));
  CHECK(encode_disconnect(kMqtt311) == bytes({0xE0, 0x00}));
  CHECK(encode_disconnect(kMqtt5) == bytes({0xE0, 0x00}));
}

namespace {
struct LengthCase {
  std::size_t remaining;
  std::string encoded;
};
// MQTT 5 section 1.5.5, table 1-1: the boundaries of 1, 2, 3 and 4 byte encodings.
const std::vector<LengthCase> kLengths{
    {0, bytes({0x00})},
    {127, bytes({0x7F})},
    {128, bytes({0x80, 0x01})},
    {16383, bytes({0xFF, 0x7F})},
    {16384, bytes({0x80, 0x80, 0x01})},
    {2097151, bytes({0xFF, 0xFF, 0x7F})},
    {2097152, bytes({0x80, 0x80, 0x80, 0x01})},
};
}  // namespace

TEST_CASE("remaining lengths encode at the 1/2/3/4-byte boundaries", "[mqtt_codec]") {
  for (const auto& c : kLengths) {
    if (c.remaining < 5) continue;  // a SUBSCRIBE is at least 5 bytes
    INFO("remaining length " << c.remaining);
    // 3.1.1 SUBSCRIBE: packet id (2) + per filter: length (2) + filter + options (1). A filter holds at
    // most 65535 bytes, so the large lengths use several of 65536 bytes each plus one for the rest.
    std::size_t body = c.remaining - 2;
    std::vector<Subscription> subs;
    while (body > 65538) {  // leaves 3..65538: one filter of at most 65535
      subs.push_back({std::string(65533, 'f'), 0});
      body -= 65536;
    }
    subs.push_back({std::string(body - 3, 'f'), 0});
    const auto wire = encode_subscribe(kMqtt311, 1, subs);
    REQUIRE(wire.size() == 1 + c.encoded.size() + c.remaining);
    CHECK(wire.substr(1, c.encoded.size()) == c.encoded);
  }
}

// --- Decoding ---------------------------------------------------------------------------------

TEST_CASE("remaining lengths decode at the 1/2/3/4-byte boundaries", "[mqtt_codec]") {
  for (const auto& c : kLengths) {
    if (c.remaining < 3) continue;  // topic "t" takes 3 bytes
    INFO("remaining length " << c.remaining);
    const std::string payload(c.remaining - 3, 'p');
    const std::string wire = bytes({0x30}) + c.encoded + bytes({0x00, 0x01, 't'}) + payload + bytes({0xD0, 0x00});
    const auto r = decode_chunked(wire, 65536, kMqtt311, 4 << 20);
    INFO(r.error);
    REQUIRE(r.packets.size() == 2);
    CHECK(r.packets[0].publish.topic == "t");
    CHECK(r.packets[0].publish.payload_size == payload.size());
    CHECK(r.packets[0].publish.payload == payload);
    CHECK(r.packets[1].type == PacketType::Pingresp);
  }
}

TEST_CASE("a remaining length of 5 bytes is an error", "[mqtt_codec]") {
  CHECK_THAT(decode_error(bytes({0x30, 0x80, 0x80, 0x80, 0x80, 0x01})), Catch::Contains("remaining length"));
  // The largest 4-byte value is accepted (the packet is then waited for, not rejected).
  const auto r = decode(bytes({0xD0, 0xFF, 0xFF, 0xFF, 0x7F}), kMqtt5, 0xFFFFFFF);
  CHECK(r.last == Decoder::Status::NeedMore);
}

TEST_CASE("a 3.1.1 CONNACK reports session present and the return code", "[mqtt_codec]") {
  auto p = decode_one(bytes({0x20, 0x02, 0x01, 0x00}), kMqtt311);
  CHECK(p.type == PacketType::Connack);
  CHECK(p.connack.session_present);
  CHECK(p.connack.reason == 0);

  p = decode_one(bytes({0x20, 0x02, 0x00, 0x05}), kMqtt311);
  CHECK_FALSE(p.connack.session_present);
  CHECK(p.connack.reason == 5);
  CHECK(connack_reason(kMqtt311, p.connack.reason) == "not authorized");

  CHECK_THAT(decode_error(bytes({0x20, 0x03, 0x00, 0x00, 0x00}), kMqtt311), Catch::Contains("unexpected bytes"));
  CHECK_THAT(decode_error(bytes({0x20, 0x02, 0x02, 0x00}), kMqtt311), Catch::Contains("reserved"));
}

TEST_CASE("an MQTT 5 CONNACK yields its properties and skips the others", "[mqtt_codec]") {
  const auto p = decode_one(kConnackV5);
  CHECK(p.type == PacketType::Connack);
  CHECK(p.connack.session_present);
  CHECK(p.connack.reason == 0);
  CHECK(p.connack.receive_maximum == 10);
  CHECK(p.connack.maximum_packet_size == 65536);
  CHECK(p.connack.has_server_keepalive);
  CHECK(p.connack.server_keepalive == 60);
  CHECK(p.connack.assigned_client_id == "abc");
  CHECK(p.connack.reason_string == "ok");

  const auto refused = decode_one(bytes({0x20, 0x03, 0x00, 0x87, 0x00}));
  CHECK(refused.connack.reason == 0x87);
  CHECK_FALSE(refused.connack.has_server_keepalive);
  CHECK(connack_reason(kMqtt5, refused.connack.reason) == "not authorized");
}

TEST_CASE("MQTT 5 properties that are unknown, repeated or past their length are errors", "[mqtt_codec]") {
  CHECK_THAT(decode_error(bytes({0x20, 0x05, 0x00, 0x00, 0x02, 0x05, 0x00})), Catch::Contains("unknown property 0x05"));
  CHECK_THAT(decode_error(bytes({0x20, 0x09, 0x00, 0x00, 0x06, 0x21, 0x00, 0x01, 0x21, 0x00, 0x02})),
             Catch::Contains("twice"));
  // Property length 3 but Maximum Packet Size needs 4 bytes after its id.
  CHECK_THAT(decode_error(bytes({0x20, 0x06, 0x00, 0x00, 0x03, 0x27, 0x00, 0x01})),
             Catch::Contains("property 0x27"));
  // Property length larger than the packet.
  CHECK(decode(bytes({0x40, 0x04, 0x00, 0x01, 0x00, 0x05})).last == Decoder::Status::Error);
  // User Property may repeat.
  const auto ok = decode_one(
      bytes({0x40, 0x0E, 0x00, 0x01, 0x00, 0x0A, 0x26, 0x00, 0x00, 0x00, 0x00, 0x26, 0x00, 0x00, 0x00, 0x00}));
  CHECK(ok.type == PacketType::Puback);
}

TEST_CASE("a SUBACK yields one code per subscription, failures included", "[mqtt_codec]") {
  auto p = decode_one(bytes({0x90, 0x04, 0x00, 0x07, 0x01, 0x80}), kMqtt311);
  CHECK(p.type == PacketType::Suback);
  CHECK(p.suback.packet_id == 7);
  CHECK(p.suback.codes == std::vector<int>{1, 0x80});

  p = decode_one(bytes({0x90, 0x0B, 0x00, 0x07, 0x05, 0x1F, 0x00, 0x02, 'n', 'o', 0x02, 0x97, 0xA2}));
  CHECK(p.suback.packet_id == 7);
  CHECK(p.suback.codes == std::vector<int>{2, 0x97, 0xA2});
  CHECK(reason_name(p.suback.codes[1]) == "quota exceeded");

  CHECK_THAT(decode_error(bytes({0x90, 0x02, 0x00, 0x07}), kMqtt311), Catch::Contains("no return codes"));
}

TEST_CASE("PUBLISH decodes at QoS 0, 1 and 2 with its flags", "[mqtt_codec]") {
  auto p = decode_one(bytes({0x30, 0x0A, 0x00, 0x03, 'a', '/', 'b'}) + "hello", kMqtt311);
  CHECK(p.type == PacketType::Publish);
  CHECK(p.publish.topic == "a/b");
  CHECK(p.publish.payload == "hello");
  CHECK(p.publish.payload_size == 5);
  CHECK(p.publish.qos == 0);
  CHECK(p.publish.packet_id == 0);
  CHECK_FALSE(p.publish.dup);
  CHECK_FALSE(p.publish.retain);
  CHECK_FALSE(p.publish.oversized);

  p = decode_one(bytes({0x32, 0x0C, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x2A}) + "hello", kMqtt311);
  CHECK(p.publish.qos == 1);
  CHECK(p.publish.packet_id == 42);
  CHECK(p.publish.payload == "hello");

  p = decode_one(bytes({0x3D, 0x0C, 0x00, 0x03, 'a', '/', 'b', 0x01, 0x00}) + "hello", kMqtt311);
  CHECK(p.publish.qos == 2);
  CHECK(p.publish.dup);
  CHECK(p.publish.retain);
  CHECK(p.publish.packet_id == 256);

  // An empty payload is a valid message.
  p = decode_one(bytes({0x30, 0x05, 0x00, 0x03, 'a', '/', 'b'}), kMqtt311);
  CHECK(p.publish.payload.empty());
}

TEST_CASE("an MQTT 5 PUBLISH keeps the content type and skips other properties", "[mqtt_codec]") {
  const std::string plain = bytes({0x30, 0x08, 0x00, 0x03, 'a', '/', 'b', 0x00}) + "hi";
  Decoder d(kMqtt5, 1 << 20);
  const std::string wire = kPublishV5 + plain;
  d.feed(wire.data(), wire.size());
  Packet p;  // reused, as the subscriber does: a field of one publish must not leak into the next
  REQUIRE(d.next(p) == Decoder::Status::Ready);
  CHECK(p.publish.topic == "a/b");
  CHECK(p.publish.qos == 1);
  CHECK(p.publish.packet_id == 5);
  CHECK(p.publish.content_type == "application/json");
  CHECK(p.publish.payload == "{}");
  REQUIRE(d.next(p) == Decoder::Status::Ready);
  CHECK(p.publish.content_type.empty());
  CHECK(p.publish.packet_id == 0);
  CHECK(p.publish.payload == "hi");
  CHECK(d.next(p) == Decoder::Status::NeedMore);
  CHECK(d.buffered() == 0);
}

TEST_CASE("acknowledgements decode with and without an MQTT 5 reason", "[mqtt_codec]") {
  auto p = decode_one(bytes({0x62, 0x02, 0x00, 0x09}), kMqtt311);
  CHECK(p.type == PacketType::Pubrel);
  CHECK(p.ack.packet_id == 9);
  CHECK(p.ack.reason == 0);

  p = decode_one(bytes({0x62, 0x03, 0x00, 0x09, 0x92}));
  CHECK(p.type == PacketType::Pubrel);
  CHECK(p.ack.reason == 0x92);
  p = decode_one(bytes({0x62, 0x08, 0x00, 0x09, 0x92, 0x04, 0x1F, 0x00, 0x01, 'x'}));
  CHECK(p.ack.reason == 0x92);

  CHECK(decode_one(bytes({0x40, 0x02, 0x00, 0x01})).type == PacketType::Puback);
  CHECK(decode_one(bytes({0x50, 0x02, 0x00, 0x01})).type == PacketType::Pubrec);
  CHECK(decode_one(bytes({0x70, 0x02, 0x00, 0x01})).type == PacketType::Pubcomp);
  // MQTT 5 UNSUBACK: packet id, properties, one reason per filter; the failure is the one reported.
  p = decode_one(bytes({0xB0, 0x06, 0x00, 0x03, 0x00, 0x00, 0x87, 0x11}));
  CHECK(p.type == PacketType::Unsuback);
  CHECK(p.ack.packet_id == 3);
  CHECK(p.ack.reason == 0x87);
  CHECK(decode_one(bytes({0xB0, 0x02, 0x00, 0x03}), kMqtt311).ack.packet_id == 3);

  // 3.1.1 acknowledgements are exactly 2 bytes.
  CHECK_THAT(decode_error(bytes({0x40, 0x03, 0x00, 0x01, 0x00}), kMqtt311), Catch::Contains("unexpected bytes"));
  CHECK(decode(bytes({0x40, 0x01, 0x00})).last == Decoder::Status::Error);
}

TEST_CASE("PINGRESP and DISCONNECT decode; an MQTT 5 DISCONNECT gives its reason string", "[mqtt_codec]") {
  CHECK(decode_one(bytes({0xD0, 0x00}), kMqtt311).type == PacketType::Pingresp);
  CHECK(decode(bytes({0xD0, 0x01, 0x00})).last == Decoder::Status::Error);

  auto p = decode_one(bytes({0xE0, 0x11, 0x8E, 0x0F, 0x1F, 0x00, 0x0C}) + "other client");
  CHECK(p.type == PacketType::Disconnect);
  CHECK(p.disconnect.reason == 0x8E);
  CHECK(p.disconnect.reason_string == "other client");
  CHECK(reason_name(p.disconnect.reason) == "session taken over");

  // Reason only; Session Expiry Interval and Server Reference skipped.
  p = decode_one(bytes({0xE0, 0x01, 0x8B}));
  CHECK(p.disconnect.reason == 0x8B);
  p = decode_one(bytes({0xE0, 0x0B, 0x9C, 0x09, 0x11, 0x00, 0x00, 0x00, 0x00, 0x1C, 0x00, 0x01, 'h'}));
  CHECK(p.disconnect.reason == 0x9C);
  CHECK(p.disconnect.reason_string.empty());

  p = decode_one(bytes({0xE0, 0x00}));
  CHECK(p.disconnect.reason == 0);
  p = decode_one(bytes({0xE0, 0x00}), kMqtt311);
  CHECK(p.type == PacketType::Disconnect);
  CHECK(p.disconnect.reason == 0);
}

TEST_CASE("feeding one byte at a time or many packets at once gives the same packets", "[mqtt_codec]") {
  const std::string stream = kConnackV5 + bytes({0x90, 0x05, 0x00, 0x07, 0x00, 0x01, 0x80}) + kPublishV5 +
                             bytes({0x34, 0x0C, 0x00, 0x03, 'x', '/', 'y', 0x00, 0x03, 0x00}) + "qos2" +
                             bytes({0x62, 0x02, 0x00, 0x03, 0xD0, 0x00}) +
                             bytes({0xE0, 0x11, 0x8E, 0x0F, 0x1F, 0x00, 0x0C}) + "other client";
  const auto whole = decode(stream);
  INFO(whole.error);
  REQUIRE(whole.last == Decoder::Status::NeedMore);
  REQUIRE(whole.packets.size() == 7);
  std::vector<std::string> expected;
  for (const auto& p : whole.packets) expected.push_back(summary(p));
  CHECK(expected[3] == "PUBLISH x/y q=2 id=3 ct= big=0 n=4 qos2");

  for (const int chunk : {1, 2, 3, 5, 7, 64}) {
    INFO("chunk " << chunk);
    const auto r = decode_chunked(stream, static_cast<std::size_t>(chunk));
    REQUIRE(r.last == Decoder::Status::NeedMore);
    std::vector<std::string> got;
    for (const auto& p : r.packets) got.push_back(summary(p));
    CHECK(got == expected);
  }
}

TEST_CASE("many packets through small reads keep the buffer to what is unconsumed", "[mqtt_codec]") {
  std::string stream;
  for (int i = 1; i <= 2000; ++i) {
    const std::string payload = "payload-" + std::to_string(i);
    stream += bytes({0x32, static_cast<int>(9 + payload.size()), 0x00, 0x05, 's', '/', 'a', '/', 'b',
                     (i >> 8) & 0xFF, i & 0xFF}) + payload;
  }
  std::size_t max_buffered = 0;
  const auto r = decode_chunked(stream, 1000, kMqtt311, 1 << 20, &max_buffered);
  REQUIRE(r.packets.size() == 2000);
  CHECK(r.packets[1999].publish.packet_id == 2000);
  CHECK(r.packets[1999].publish.payload == "payload-2000");
  CHECK(max_buffered < 64);  // only the tail of a packet split across reads
}

TEST_CASE("an oversized publish is discarded as it arrives and reported with its header", "[mqtt_codec]") {
  // v5 QoS 1 on "big/t", packet id 0x1234, Content Type "text/plain", 100000-byte payload:
  // remaining length 2+5 + 2 + 1+13 + 100000 = 100023 = B7 8D 06.
  const std::string payload(100000, 'x');
  const std::string big = bytes({0x32, 0xB7, 0x8D, 0x06, 0x00, 0x05, 'b', 'i', 'g', '/', 't', 0x12, 0x34, 0x0D,
                                 0x03, 0x00, 0x0A}) + "text/plain" + payload;
  const std::string after = bytes({0xD0, 0x00, 0x30, 0x0B, 0x00, 0x03, 'a', '/', 'b', 0x00}) + "hello";
  const std::string stream = big + after;

  for (const std::size_t chunk : {std::size_t{1}, std::size_t{7}, std::size_t{4096}, stream.size()}) {
    INFO("chunk " << chunk);
    std::size_t max_buffered = 0;
    const auto r = decode_chunked(stream, chunk, kMqtt5, 1024, &max_buffered);
    INFO(r.error);
    REQUIRE(r.last == Decoder::Status::NeedMore);
    REQUIRE(r.packets.size() == 3);
    const auto& p = r.packets[0].publish;
    CHECK(r.packets[0].type == PacketType::Publish);
    CHECK(p.oversized);
    CHECK(p.topic == "big/t");
    CHECK(p.qos == 1);
    CHECK(p.packet_id == 0x1234);
    CHECK(p.content_type == "text/plain");
    CHECK(p.payload.empty());
    CHECK(p.payload_size == 100000);
    CHECK(r.packets[1].type == PacketType::Pingresp);
    CHECK(r.packets[2].publish.topic == "a/b");
    CHECK(r.packets[2].publish.payload == "hello");
    CHECK_FALSE(r.packets[2].publish.oversized);
    if (chunk < 1024) CHECK(max_buffered < 1024);  // never the whole publish
  }

  // 3.1.1, QoS 0: just over the limit by one byte.
  const std::string small = bytes({0x30, 0x0B, 0x00, 0x01, 't'}) + "12345678" + bytes({0xD0, 0x00});
  const auto r = decode_chunked(small, 3, kMqtt311, 10);
  REQUIRE(r.packets.size() == 2);
  CHECK(r.packets[0].publish.oversized);
  CHECK(r.packets[0].publish.packet_id == 0);
  CHECK(r.packets[0].publish.payload_size == 8);
  CHECK(r.packets[1].type == PacketType::Pingresp);
}

TEST_CASE("an oversized publish whose header alone is huge, or any other oversized packet, is an error",
          "[mqtt_codec]") {
  // Property length 100000 on a 16-byte limit: rejected from the length fields, before the bytes.
  CHECK_THAT(decode_error(bytes({0x30, 0xC0, 0x9A, 0x0C, 0x00, 0x01, 't', 0xA0, 0x8D, 0x06}), kMqtt5, 16),
             Catch::Contains("too large"));
  // A SUBACK over the limit is rejected as soon as its length is known.
  CHECK_THAT(decode_error(bytes({0x90, 0x05}), kMqtt311, 4), Catch::Contains("exceeds the maximum packet size"));
}

TEST_CASE("invalid UTF-8 in a topic is an error and valid multi-byte UTF-8 is not", "[mqtt_codec]") {
  const auto publish = [](const std::string& topic) {
    return bytes({0x30, static_cast<int>(2 + topic.size()), 0x00, static_cast<int>(topic.size())}) + topic;
  };
  for (const std::string& bad : {std::string("\xC0\xAF", 2),           // overlong '/'
                                std::string("\xE0\x80\xAF", 3),       // overlong, 3 bytes
                                std::string("\xED\xA0\x80", 3),       // surrogate U+D800
                                std::string("\xF4\x90\x80\x80", 4),   // above U+10FFFF
                                std::string("a\0b", 3),               // U+0000
                                std::string("\x80", 1),               // lone continuation
                                std::string("a\xE2\x82", 3),          // truncated
                                std::string("\xFF", 1)}) {
    INFO("topic bytes " << bad.size());
    CHECK_THAT(decode_error(publish(bad), kMqtt311), Catch::Contains("UTF-8"));
  }
  CHECK(decode_one(publish("tr\xE1\xBA\xA1m/\xE2\x82\xAC/\xF0\x9D\x84\x9E"), kMqtt311).publish.topic ==
        "tr\xE1\xBA\xA1m/\xE2\x82\xAC/\xF0\x9D\x84\x9E");
  CHECK(decode_one(publish("\xEF\xBF\xBD\xED\x9F\xBF\xF4\x8F\xBF\xBF"), kMqtt311).type == PacketType::Publish);
  CHECK_THAT(decode_error(publish("")), Catch::Contains("empty topic"));
  CHECK_THAT(decode_error(publish("a/+")), Catch::Contains("wildcard"));
}

TEST_CASE("a topic alias from the server is an error since none was allowed", "[mqtt_codec]") {
  CHECK_THAT(decode_error(bytes({0x30, 0x0A, 0x00, 0x03, 'a', '/', 'b', 0x03, 0x23, 0x00, 0x01, 'x'})),
             Catch::Contains("topic alias not allowed"));
}

TEST_CASE("fixed-header flags the specification fixes are checked", "[mqtt_codec]") {
  CHECK_THAT(decode_error(bytes({0x60, 0x02, 0x00, 0x01})), Catch::Contains("PUBREL"));
  CHECK(decode(bytes({0x63, 0x02, 0x00, 0x01})).last == Decoder::Status::Error);
  CHECK_THAT(decode_error(bytes({0x92, 0x03, 0x00, 0x01, 0x00})), Catch::Contains("SUBACK"));
  CHECK(decode(bytes({0x41, 0x02, 0x00, 0x01})).last == Decoder::Status::Error);
  CHECK(decode(bytes({0xD8, 0x00})).last == Decoder::Status::Error);
  // QoS 3, detected from the first byte.
  CHECK_THAT(decode_error(bytes({0x36})), Catch::Contains("QoS 3"));
  CHECK(decode(bytes({0x3F, 0x05, 0x00, 0x03, 'a', '/', 'b'})).last == Decoder::Status::Error);
  // Packet identifier 0 at QoS 1.
  CHECK_THAT(decode_error(bytes({0x32, 0x06, 0x00, 0x01, 't', 0x00, 0x00, 0x00})), Catch::Contains("identifier 0"));
}

TEST_CASE("packets only a client sends are errors naming their type", "[mqtt_codec]") {
  CHECK_THAT(decode_error(bytes({0x10, 0x00})), Catch::Contains("CONNECT"));
  CHECK_THAT(decode_error(bytes({0x82, 0x00})), Catch::Contains("SUBSCRIBE"));
  CHECK_THAT(decode_error(bytes({0xC0, 0x00})), Catch::Contains("PINGREQ"));
  CHECK_THAT(decode_error(bytes({0xF0, 0x00})), Catch::Contains("AUTH"));
  CHECK_THAT(decode_error(bytes({0x00, 0x00})), Catch::Contains("reserved packet type 0"));
}

TEST_CASE("after an error the decoder stays in error and holds nothing", "[mqtt_codec]") {
  Decoder d(kMqtt311, 1 << 20);
  const std::string bad = bytes({0x60, 0x02, 0x00, 0x01});
  d.feed(bad.data(), bad.size());
  Packet p;
  REQUIRE(d.next(p) == Decoder::Status::Error);
  const std::string message = d.error();
  const std::string good = bytes({0xD0, 0x00});
  d.feed(good.data(), good.size());
  CHECK(d.next(p) == Decoder::Status::Error);
  CHECK(d.next(p) == Decoder::Status::Error);
  CHECK(d.error() == message);
  CHECK(d.buffered() == 0);
}

TEST_CASE("an incomplete packet waits for more bytes and counts them as buffered", "[mqtt_codec]") {
  Decoder d(kMqtt311, 1 << 20);
  Packet p;
  CHECK(d.next(p) == Decoder::Status::NeedMore);
  const std::string part = bytes({0x32, 0x0C, 0x00, 0x03, 'a'});
  d.feed(part.data(), part.size());
  CHECK(d.next(p) == Decoder::Status::NeedMore);
  CHECK(d.buffered() == 5);
  const std::string rest = bytes({'/', 'b', 0x00, 0x2A}) + "hello";
  d.feed(rest.data(), rest.size());
  REQUIRE(d.next(p) == Decoder::Status::Ready);
  CHECK(p.publish.packet_id == 42);
  CHECK(d.buffered() == 0);
}

TEST_CASE("packet types and reason codes have names", "[mqtt_codec]") {
  CHECK(to_string(PacketType::Publish) == "PUBLISH");
  CHECK(to_string(PacketType::Pubrel) == "PUBREL");
  CHECK(to_string(PacketType::Connack) == "CONNACK");
  CHECK(connack_reason(kMqtt311, 0) == "accepted");
  CHECK(connack_reason(kMqtt311, 1) == "unacceptable protocol version");
  CHECK(connack_reason(kMqtt311, 2) == "identifier rejected");
  CHECK(connack_reason(kMqtt311, 3) == "server unavailable");
  CHECK(connack_reason(kMqtt311, 4) == "bad user name or password");
  CHECK(connack_reason(kMqtt5, 0x86) == "bad user name or password");
  CHECK(connack_reason(kMqtt5, 0x8A) == "banned");
  CHECK(reason_name(0x80) == "unspecified error");
  CHECK(reason_name(0x83) == "implementation specific error");
  CHECK(reason_name(0x8F) == "topic filter invalid");
  CHECK(reason_name(0x91) == "packet identifier in use");
  CHECK(reason_name(0x9E) == "shared subscriptions not supported");
  CHECK(reason_name(0xA1) == "subscription identifiers not supported");
  CHECK(reason_name(0xA2) == "wildcard subscriptions not supported");
  CHECK(reason_name(0x8B) == "server shutting down");
  CHECK(reason_name(0x8D) == "keep alive timeout");
  CHECK(reason_name(0x89) == "server busy");
  CHECK(reason_name(0x95) == "packet too large");
  CHECK(reason_name(0x7F) == "reason 0x7F");
  CHECK(reason_name(0xFF) == "reason 0xFF");
}

TEST_CASE("random and corrupted input never crashes the decoder and ends in a packet or an error",
          "[mqtt_codec]") {
  // Sanitizers watch this one: a bounds mistake on any path shows up as a report, not a failure.
  const std::string valid = kConnackV5 + kPublishV5 + bytes({0x90, 0x05, 0x00, 0x07, 0x00, 0x01, 0x80, 0xD0, 0x00}) +
                            bytes({0xE0, 0x11, 0x8E, 0x0F, 0x1F, 0x00, 0x0C}) + "other client";
  std::uint32_t seed = 12345;
  const auto rnd = [&seed] {
    seed = seed * 1664525u + 1013904223u;  // fixed LCG: the same cases on every run
    return seed >> 8;
  };
  int errors = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string wire = valid;
    if (round % 2 == 0) {
      for (int flips = 1 + static_cast<int>(rnd() % 4); flips > 0; --flips)
        wire[rnd() % wire.size()] = static_cast<char>(rnd() & 0xFF);
    } else {
      wire.resize(1 + rnd() % 64);
      for (char& c : wire) c = static_cast<char>(rnd() & 0xFF);
    }
    const std::size_t max_packet = 8 + rnd() % 64;  // small, so the oversized path is taken too
    const auto r = decode_chunked(wire, 1 + rnd() % 9, round % 3 == 0 ? kMqtt311 : kMqtt5, max_packet);
    CHECK(r.last != Decoder::Status::Ready);
    if (r.last == Decoder::Status::Error) {
      ++errors;
      CHECK_FALSE(r.error.empty());
    }
  }
  CHECK(errors > 1000);  // corruption is noticed, not silently accepted
}

TEST_CASE("an MQTT 5 PUBLISH keeps its user properties in order and a repeated name twice", "[mqtt_codec]") {
  // PUBLISH QoS 1 "a/b" id 7, properties: user (seq, 12), user (site, x), user (seq, 13).
  const std::string props = bytes({0x26, 0x00, 0x03, 's', 'e', 'q', 0x00, 0x02, '1', '2',  //
                                   0x26, 0x00, 0x04, 's', 'i', 't', 'e', 0x00, 0x01, 'x',   //
                                   0x26, 0x00, 0x03, 's', 'e', 'q', 0x00, 0x02, '1', '3'});
  const std::string body = bytes({0x00, 0x03, 'a', '/', 'b', 0x00, 0x07, static_cast<int>(props.size())}) + props + "ok";
  const std::string wire = bytes({0x32, static_cast<int>(body.size())}) + body;
  const std::string plain = bytes({0x30, 0x08, 0x00, 0x03, 'a', '/', 'b', 0x00}) + "hi";
  Decoder d(kMqtt5, 1 << 20);
  const std::string both = wire + plain;
  d.feed(both.data(), both.size());
  Packet p;
  REQUIRE(d.next(p) == Decoder::Status::Ready);
  REQUIRE(p.publish.user_properties.size() == 3);
  CHECK(p.publish.user_properties[0] == std::pair<std::string, std::string>{"seq", "12"});
  CHECK(p.publish.user_properties[1] == std::pair<std::string, std::string>{"site", "x"});
  CHECK(p.publish.user_properties[2] == std::pair<std::string, std::string>{"seq", "13"});
  CHECK(p.publish.payload == "ok");
  // The next publish (same Packet reused) has none.
  REQUIRE(d.next(p) == Decoder::Status::Ready);
  CHECK(p.publish.user_properties.empty());
}
