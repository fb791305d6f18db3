#include "mqtt_sub/mqtt_codec.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>

#include "core/utf8.h"

namespace ioc_edge::mqtt_wire {

namespace {

// Largest value a variable byte integer holds (4 bytes of 7 bits).
constexpr std::uint32_t kMaxVarint = 268'435'455;
// An oversized publish's variable header (topic, packet id, properties) is held whole so it can be
// parsed like any other; this much beyond max_packet is allowed before the stream counts as abusive.
constexpr std::size_t kOversizedHeaderSlack = 64 * 1024;

// --- Encoding helpers -------------------------------------------------------------------------

void put_u8(std::string& s, std::uint8_t v) { s.push_back(static_cast<char>(v)); }

void put_u16(std::string& s, std::uint16_t v) {
  s.push_back(static_cast<char>(v >> 8));
  s.push_back(static_cast<char>(v & 0xFF));
}

void put_u32(std::string& s, std::uint32_t v) {
  put_u16(s, static_cast<std::uint16_t>(v >> 16));
  put_u16(s, static_cast<std::uint16_t>(v & 0xFFFF));
}

void put_varint(std::string& s, std::uint32_t v) {
  v = std::min(v, kMaxVarint);
  do {
    std::uint8_t b = v & 0x7F;
    v >>= 7;
    if (v > 0) b |= 0x80;
    put_u8(s, b);
  } while (v > 0);
}

// The wire format cannot carry more than 65535 bytes; the encoder has no error channel, so a longer
// string is cut to keep the packet well-formed (callers validate lengths from configuration).
void put_string(std::string& s, std::string_view v) {
  const auto n = std::min<std::size_t>(v.size(), 0xFFFF);
  put_u16(s, static_cast<std::uint16_t>(n));
  s.append(v.data(), n);
}

std::size_t string_size(std::string_view v) { return 2 + std::min<std::size_t>(v.size(), 0xFFFF); }

std::size_t varint_size(std::uint32_t v) { return v < 128 ? 1 : v < 16'384 ? 2 : v < 2'097'152 ? 3 : 4; }

std::string fixed_header(std::uint8_t first, std::size_t remaining, std::size_t reserve_body) {
  std::string s;
  s.reserve(1 + 4 + reserve_body);
  put_u8(s, first);
  put_varint(s, static_cast<std::uint32_t>(std::min<std::size_t>(remaining, kMaxVarint)));
  return s;
}

// --- Decoding helpers -------------------------------------------------------------------------

// RFC 3629 UTF-8, plus MQTT's ban on U+0000 (MQTT 5 section 1.5.4).
bool valid_mqtt_string(std::string_view s) { return s.find('\0') == std::string_view::npos && valid_utf8(s); }

// Reads big-endian fields from a packet body. `avail` bytes are present, `limit` bytes belong to the
// packet: running past `limit` is a malformed packet, past only `avail` means more bytes must come.
class Reader {
 public:
  enum class Fail { None, Short, Malformed };

  Reader(const unsigned char* p, std::size_t avail, std::size_t limit)
      : p_(p), avail_(std::min(avail, limit)), limit_(limit) {}

  std::size_t pos() const { return pos_; }
  std::size_t left() const { return limit_ - pos_; }
  Fail fail() const { return fail_; }
  const std::string& error() const { return error_; }
  const unsigned char* here() const { return p_ + pos_; }

  bool u8(std::uint8_t& v, const char* what) {
    if (!need(1, what)) return false;
    v = p_[pos_++];
    return true;
  }
  bool u16(std::uint16_t& v, const char* what) {
    if (!need(2, what)) return false;
    v = static_cast<std::uint16_t>(p_[pos_] << 8 | p_[pos_ + 1]);
    pos_ += 2;
    return true;
  }
  bool u32(std::uint32_t& v, const char* what) {
    if (!need(4, what)) return false;
    v = std::uint32_t{p_[pos_]} << 24 | std::uint32_t{p_[pos_ + 1]} << 16 | std::uint32_t{p_[pos_ + 2]} << 8 |
        std::uint32_t{p_[pos_ + 3]};
    pos_ += 4;
    return true;
  }
  bool varint(std::uint32_t& v, const char* what) {
    v = 0;
    for (int i = 0; i < 4; ++i) {
      std::uint8_t b = 0;
      if (!u8(b, what)) return false;
      v |= std::uint32_t{b & 0x7Fu} << (7 * i);
      if ((b & 0x80) == 0) return true;
    }
    return malformed(std::string(what) + " is a variable byte integer longer than 4 bytes");
  }
  bool bytes(std::size_t n, std::string_view& v, const char* what) {
    if (!need(n, what)) return false;
    v = {reinterpret_cast<const char*>(p_ + pos_), n};
    pos_ += n;
    return true;
  }
  // Two-byte length, then that many bytes (UTF-8 string or binary data; the caller validates).
  bool prefixed(std::string_view& v, const char* what) {
    std::uint16_t n = 0;
    return u16(n, what) && bytes(n, v, what);
  }
  // Moves past n bytes that need not be present yet (sizing a header before it has arrived).
  bool seek(std::size_t n, const char* what) {
    if (fail_ != Fail::None) return false;
    if (n > limit_ - pos_) return malformed(std::string("packet ends inside ") + what);
    pos_ += n;
    return true;
  }
  bool malformed(std::string msg) {
    fail_ = Fail::Malformed;
    error_ = std::move(msg);
    return false;
  }

 private:
  bool need(std::size_t n, const char* what) {
    if (fail_ != Fail::None) return false;
    if (n > limit_ - pos_) return malformed(std::string("packet ends inside ") + what);
    if (pos_ + n > avail_) {
      fail_ = Fail::Short;
      return false;
    }
    return true;
  }

  const unsigned char* p_;
  std::size_t avail_;
  std::size_t limit_;
  std::size_t pos_ = 0;
  Fail fail_ = Fail::None;
  std::string error_;
};

std::string hex2(int v) {
  char b[16];
  std::snprintf(b, sizeof b, "0x%02X", static_cast<unsigned>(v));
  return b;
}

constexpr std::size_t kMaxUserProperties = 256;

// The properties a subscriber acts on; strings point into the decoder's buffer.
struct Properties {
  std::uint16_t receive_maximum = 0;
  std::uint32_t maximum_packet_size = 0;
  std::uint16_t server_keepalive = 0;
  bool has_server_keepalive = false;
  bool has_topic_alias = false;
  std::string_view assigned_client_id;
  std::string_view reason_string;
  std::string_view content_type;
  // MQTT 5 user properties (0x26), in order; only collected when the caller asks (PUBLISH).
  std::vector<std::pair<std::string, std::string>>* user_properties = nullptr;
};

enum class PropType { Byte, TwoByte, FourByte, Varint, Utf8, Binary, Pair, Unknown };

// MQTT 5 section 2.2.2.2.
PropType prop_type(std::uint8_t id) {
  switch (id) {
    case 0x01: case 0x17: case 0x19: case 0x24: case 0x25: case 0x28: case 0x29: case 0x2A:
      return PropType::Byte;
    case 0x13: case 0x21: case 0x22: case 0x23:
      return PropType::TwoByte;
    case 0x02: case 0x11: case 0x18: case 0x27:
      return PropType::FourByte;
    case 0x0B:
      return PropType::Varint;
    case 0x03: case 0x08: case 0x12: case 0x15: case 0x1A: case 0x1C: case 0x1F:
      return PropType::Utf8;
    case 0x09: case 0x16:
      return PropType::Binary;
    case 0x26:
      return PropType::Pair;
    default:
      return PropType::Unknown;
  }
}

// Reads the property length and the properties it covers. On failure `err` says why.
bool read_properties(Reader& r, Properties& out, std::string& err) {
  std::uint32_t len = 0;
  std::string_view region;
  if (!r.varint(len, "the property length") || !r.bytes(len, region, "the properties")) {
    err = r.error();
    return false;
  }
  Reader pr(reinterpret_cast<const unsigned char*>(region.data()), region.size(), region.size());
  std::uint64_t seen = 0;  // every property id is below 64
  while (pr.left() > 0) {
    std::uint8_t id = 0;
    pr.u8(id, "a property identifier");
    const PropType type = prop_type(id);
    if (type == PropType::Unknown) {
      err = "unknown property " + hex2(id);
      return false;
    }
    // User Property and Subscription Identifier may repeat; anything else twice is a protocol error.
    if (id != 0x26 && id != 0x0B) {
      if (seen & (std::uint64_t{1} << id)) {
        err = "property " + hex2(id) + " appears twice";
        return false;
      }
      seen |= std::uint64_t{1} << id;
    }
    const char* what = "a property";
    std::uint8_t b = 0;
    std::uint16_t u16 = 0;
    std::uint32_t u32 = 0;
    std::string_view s, s2;
    bool ok = true;
    switch (type) {
      case PropType::Byte: ok = pr.u8(b, what); break;
      case PropType::TwoByte: ok = pr.u16(u16, what); break;
      case PropType::FourByte: ok = pr.u32(u32, what); break;
      case PropType::Varint: ok = pr.varint(u32, what); break;
      case PropType::Binary: ok = pr.prefixed(s, what); break;
      case PropType::Utf8:
        ok = pr.prefixed(s, what);
        if (ok && !valid_mqtt_string(s)) {
          err = "property " + hex2(id) + " is not valid UTF-8";
          return false;
        }
        break;
      case PropType::Pair:
        ok = pr.prefixed(s, what) && pr.prefixed(s2, what);
        if (ok && (!valid_mqtt_string(s) || !valid_mqtt_string(s2))) {
          err = "property " + hex2(id) + " is not valid UTF-8";
          return false;
        }
        break;
      case PropType::Unknown: break;
    }
    if (!ok) {
      err = "property " + hex2(id) + " runs past the property length";
      return false;
    }
    switch (id) {
      case 0x03: out.content_type = s; break;
      case 0x12: out.assigned_client_id = s; break;
      case 0x13: out.server_keepalive = u16; out.has_server_keepalive = true; break;
      case 0x1F: out.reason_string = s; break;
      case 0x21: out.receive_maximum = u16; break;
      case 0x23: out.has_topic_alias = true; break;
      case 0x27: out.maximum_packet_size = u32; break;
      case 0x26:
        // At most kMaxUserProperties are kept: a packet of empty pairs must not become a
        // gigabyte of strings. The rest are read past.
        if (out.user_properties && out.user_properties->size() < kMaxUserProperties)
          out.user_properties->emplace_back(std::string(s), std::string(s2));
        break;
      default: break;
    }
  }
  return true;
}

bool at_end(const Reader& r, std::string& err) {
  if (r.left() == 0) return true;
  err = std::to_string(r.left()) + " unexpected bytes at the end of the packet";
  return false;
}

// The fixed-header flags MQTT prescribes for packets a server sends; -1 where they vary (PUBLISH).
int required_flags(PacketType t) {
  switch (t) {
    case PacketType::Publish: return -1;
    case PacketType::Pubrel: return 0x2;
    default: return 0;
  }
}

bool from_server(PacketType t) {
  switch (t) {
    case PacketType::Connack: case PacketType::Publish: case PacketType::Puback: case PacketType::Pubrec:
    case PacketType::Pubrel: case PacketType::Pubcomp: case PacketType::Suback: case PacketType::Unsuback:
    case PacketType::Pingresp: case PacketType::Disconnect:
      return true;
    default:
      return false;
  }
}

// Topic, packet id and (MQTT 5) properties; leaves `r` at the payload.
bool read_publish_header(Reader& r, bool v5, std::uint8_t flags, Publish& pub, std::string& err) {
  pub.qos = (flags >> 1) & 0x3;
  pub.dup = (flags & 0x8) != 0;
  pub.retain = (flags & 0x1) != 0;
  std::string_view topic;
  if (!r.prefixed(topic, "the topic")) {
    err = r.error();
    return false;
  }
  // An empty topic is only legal with a topic alias, which we never allow.
  if (topic.empty()) {
    err = "empty topic name";
    return false;
  }
  if (!valid_mqtt_string(topic)) {
    err = "topic is not valid UTF-8";
    return false;
  }
  if (topic.find_first_of("+#") != std::string_view::npos) {
    err = "topic name contains a wildcard";
    return false;
  }
  pub.topic.assign(topic);
  pub.packet_id = 0;
  if (pub.qos > 0) {
    if (!r.u16(pub.packet_id, "the packet identifier")) {
      err = r.error();
      return false;
    }
    if (pub.packet_id == 0) {
      err = "packet identifier 0";
      return false;
    }
  }
  pub.content_type.clear();
  pub.user_properties.clear();
  if (v5) {
    Properties props;
    props.user_properties = &pub.user_properties;
    if (!read_properties(r, props, err)) return false;
    if (props.has_topic_alias) {
      err = "topic alias not allowed (CONNECT allowed none)";
      return false;
    }
    pub.content_type.assign(props.content_type);
  }
  return true;
}

bool read_connack(Reader& r, bool v5, Connack& c, std::string& err) {
  c = Connack{};
  std::uint8_t ack_flags = 0, reason = 0;
  if (!r.u8(ack_flags, "the acknowledge flags") || !r.u8(reason, "the reason code")) {
    err = r.error();
    return false;
  }
  if (ack_flags & 0xFE) {
    err = "reserved acknowledge flag bits set: " + hex2(ack_flags);
    return false;
  }
  c.session_present = (ack_flags & 0x1) != 0;
  c.reason = reason;
  // Some servers end an MQTT 5 CONNACK without the property length; nothing is lost by accepting it.
  if (v5 && r.left() > 0) {
    Properties props;
    if (!read_properties(r, props, err)) return false;
    c.receive_maximum = props.receive_maximum;
    c.maximum_packet_size = props.maximum_packet_size;
    c.server_keepalive = props.server_keepalive;
    c.has_server_keepalive = props.has_server_keepalive;
    c.assigned_client_id.assign(props.assigned_client_id);
    c.reason_string.assign(props.reason_string);
  }
  return at_end(r, err);
}

bool read_suback(Reader& r, bool v5, Suback& s, std::string& err) {
  s.codes.clear();
  if (!r.u16(s.packet_id, "the packet identifier")) {
    err = r.error();
    return false;
  }
  if (v5) {
    Properties props;
    if (!read_properties(r, props, err)) return false;
  }
  if (r.left() == 0) {
    err = "no return codes";
    return false;
  }
  std::string_view codes;
  r.bytes(r.left(), codes, "the return codes");
  s.codes.reserve(codes.size());
  for (const char c : codes) s.codes.push_back(static_cast<unsigned char>(c));
  return true;
}

// PUBACK, PUBREC, PUBREL, PUBCOMP: MQTT 5 may omit the reason (success) and the properties.
bool read_ack(Reader& r, bool v5, Ack& a, std::string& err) {
  a = Ack{};
  if (!r.u16(a.packet_id, "the packet identifier")) {
    err = r.error();
    return false;
  }
  if (v5 && r.left() > 0) {
    std::uint8_t reason = 0;
    r.u8(reason, "the reason code");
    a.reason = reason;
    if (r.left() > 0) {
      Properties props;
      if (!read_properties(r, props, err)) return false;
    }
  }
  return at_end(r, err);
}

// MQTT 5 UNSUBACK carries properties and one reason per filter, like SUBACK; the first failure (or
// success) stands for them all in an Ack.
bool read_unsuback(Reader& r, bool v5, Ack& a, std::string& err) {
  a = Ack{};
  if (!r.u16(a.packet_id, "the packet identifier")) {
    err = r.error();
    return false;
  }
  if (!v5) return at_end(r, err);
  Properties props;
  if (!read_properties(r, props, err)) return false;
  std::string_view codes;
  r.bytes(r.left(), codes, "the reason codes");
  for (const char c : codes)
    if (a.reason < 0x80) a.reason = static_cast<unsigned char>(c);
  return true;
}

bool read_disconnect(Reader& r, bool v5, Disconnect& d, std::string& err) {
  d = Disconnect{};
  if (!v5) return at_end(r, err);  // 3.1.1 servers must not send it; treat as a plain close
  if (r.left() == 0) return true;
  std::uint8_t reason = 0;
  r.u8(reason, "the reason code");
  d.reason = reason;
  if (r.left() > 0) {
    Properties props;
    if (!read_properties(r, props, err)) return false;
    d.reason_string.assign(props.reason_string);
  }
  return at_end(r, err);
}

}  // namespace

// --- Encoding ---------------------------------------------------------------------------------

std::string encode_connect(const ConnectOptions& o) {
  const bool v5 = o.version == kMqtt5;
  std::string props;
  if (v5) {
    if (o.session_expiry_s > 0) {
      put_u8(props, 0x11);
      put_u32(props, o.session_expiry_s);
    }
    if (o.receive_maximum > 0) {
      put_u8(props, 0x21);
      put_u16(props, o.receive_maximum);
    }
    if (o.maximum_packet_size > 0) {
      put_u8(props, 0x27);
      put_u32(props, o.maximum_packet_size);
    }
  }
  std::uint8_t flags = 0;
  if (o.clean_start) flags |= 0x02;
  if (o.password) flags |= 0x40;
  if (o.username) flags |= 0x80;

  std::size_t remaining = string_size("MQTT") + 1 + 1 + 2 + string_size(o.client_id);
  if (v5) remaining += varint_size(static_cast<std::uint32_t>(props.size())) + props.size();
  if (o.username) remaining += string_size(*o.username);
  if (o.password) remaining += string_size(*o.password);

  std::string s = fixed_header(0x10, remaining, remaining);
  put_string(s, "MQTT");
  put_u8(s, static_cast<std::uint8_t>(o.version));
  put_u8(s, flags);
  put_u16(s, o.keepalive_s);
  if (v5) {
    put_varint(s, static_cast<std::uint32_t>(props.size()));
    s += props;
  }
  put_string(s, o.client_id);
  if (o.username) put_string(s, *o.username);
  if (o.password) put_string(s, *o.password);
  return s;
}

std::string encode_subscribe(int version, std::uint16_t packet_id, const std::vector<Subscription>& subs) {
  const bool v5 = version == kMqtt5;
  std::size_t remaining = 2 + (v5 ? 1 : 0);
  for (const auto& sub : subs) remaining += string_size(sub.filter) + 1;
  std::string s = fixed_header(0x82, remaining, remaining);
  put_u16(s, packet_id);
  if (v5) put_u8(s, 0);  // no properties
  for (const auto& sub : subs) {
    put_string(s, sub.filter);
    auto options = static_cast<std::uint8_t>(std::clamp(sub.qos, 0, 2));
    if (v5) options |= 1 << 4;  // Retain Handling 1; No Local and Retain As Published stay 0
    put_u8(s, options);
  }
  return s;
}

std::string encode_ack(PacketType type, std::uint16_t packet_id) {
  std::string s;
  s.reserve(4);
  put_u8(s, static_cast<std::uint8_t>(static_cast<unsigned>(type) << 4 | (type == PacketType::Pubrel ? 0x2 : 0)));
  put_u8(s, 2);
  put_u16(s, packet_id);
  return s;
}

std::string encode_pingreq() { return std::string("\xC0\x00", 2); }

std::string encode_disconnect(int /*version*/) {
  // MQTT 5 lets a DISCONNECT with reason 0x00 and no properties omit both, so one form serves both.
  return std::string("\xE0\x00", 2);
}

// --- Decoder ----------------------------------------------------------------------------------
//
// While an oversized publish is being discarded, skipped_.oversized is true and skip_ counts the
// bytes still to drop; next() hands skipped_ out once skip_ reaches 0. Whenever skip_ > 0 the
// buffer is empty, so feed() drops those bytes before they are ever copied.

Decoder::Decoder(int version, std::size_t max_packet) : version_(version), max_packet_(max_packet) {}

std::size_t Decoder::buffered() const { return buf_.size() - pos_; }

void Decoder::feed(const char* data, std::size_t n) {
  if (!error_.empty() || n == 0) return;  // the stream is dead; holding more would only cost memory
  if (skip_ > 0 && pos_ == buf_.size()) {
    const auto k = static_cast<std::size_t>(std::min<std::uint64_t>(skip_, n));
    skip_ -= k;
    data += k;
    n -= k;
    if (n == 0) return;
  }
  // Dropping consumed bytes only once they are half the buffer keeps compaction amortised O(1).
  if (pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  } else if (pos_ > 0 && pos_ >= buf_.size() / 2) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  buf_.append(data, n);
}

Decoder::Status Decoder::next(Packet& out) {
  if (!error_.empty()) return Status::Error;
  const bool v5 = version_ == kMqtt5;
  auto fail = [this](std::string msg) {
    error_ = std::move(msg);
    buf_.clear();
    buf_.shrink_to_fit();
    pos_ = 0;
    return Status::Error;
  };
  // Drops what is buffered of an oversized publish; true once all of it is gone.
  auto drain = [this] {
    const auto k = static_cast<std::size_t>(std::min<std::uint64_t>(skip_, buf_.size() - pos_));
    pos_ += k;
    skip_ -= k;
    if (pos_ == buf_.size()) {
      buf_.clear();
      pos_ = 0;
    }
    return skip_ == 0;
  };
  auto deliver_skipped = [this, &out] {
    out.type = PacketType::Publish;
    out.publish = std::move(skipped_);
    skipped_ = Publish{};
    return Status::Ready;
  };

  if (skipped_.oversized) return drain() ? deliver_skipped() : Status::NeedMore;

  const auto* p = reinterpret_cast<const unsigned char*>(buf_.data()) + pos_;
  const std::size_t avail = buf_.size() - pos_;
  if (avail == 0) return Status::NeedMore;

  const auto type = static_cast<PacketType>(p[0] >> 4);
  const std::uint8_t flags = p[0] & 0x0F;
  if ((p[0] >> 4) == 0) return fail("reserved packet type 0");
  if (!from_server(type)) return fail("unexpected " + std::string(to_string(type)) + " packet from the server");
  const int want = required_flags(type);
  if (want >= 0 && flags != want)
    return fail("invalid fixed header flags " + hex2(flags) + " for " + std::string(to_string(type)));
  if (type == PacketType::Publish && ((flags >> 1) & 0x3) == 3) return fail("PUBLISH with QoS 3");

  std::uint32_t remaining = 0;
  std::size_t header = 1;
  for (int i = 0;; ++i) {
    if (header >= avail) return Status::NeedMore;
    const std::uint8_t b = p[header++];
    remaining |= std::uint32_t{b & 0x7Fu} << (7 * i);
    if ((b & 0x80) == 0) break;
    if (i == 3) return fail("remaining length longer than 4 bytes");
  }

  const unsigned char* body = p + header;
  const std::size_t body_avail = avail - header;

  if (remaining > max_packet_) {
    if (type != PacketType::Publish)
      return fail(std::string(to_string(type)) + " of " + std::to_string(remaining) +
                  " bytes exceeds the maximum packet size " + std::to_string(max_packet_));
    // Size the variable header first, from its length fields alone, so it is held only once whole.
    Reader sizer(body, body_avail, remaining);
    std::uint16_t topic_len = 0;
    std::uint32_t props_len = 0;
    const bool sized = sizer.u16(topic_len, "the topic") && sizer.seek(topic_len, "the topic") &&
                       (((flags >> 1) & 0x3) == 0 || sizer.seek(2, "the packet identifier")) &&
                       (!v5 || (sizer.varint(props_len, "the property length") &&
                                sizer.seek(props_len, "the properties")));
    if (!sized) {
      if (sizer.fail() == Reader::Fail::Short) return Status::NeedMore;
      return fail("invalid PUBLISH: " + sizer.error());
    }
    const std::size_t needed = sizer.pos();
    const std::size_t limit = max_packet_ > std::numeric_limits<std::size_t>::max() - kOversizedHeaderSlack
                                  ? std::numeric_limits<std::size_t>::max()
                                  : max_packet_ + kOversizedHeaderSlack;
    if (needed > limit)
      return fail("PUBLISH variable header of " + std::to_string(needed) + " bytes is too large");
    if (body_avail < needed) return Status::NeedMore;

    Reader r(body, needed, remaining);
    std::string err;
    if (!read_publish_header(r, v5, flags, skipped_, err)) {
      skipped_ = Publish{};
      return fail("invalid PUBLISH: " + err);
    }
    skipped_.payload.clear();
    skipped_.payload_size = remaining - needed;
    skipped_.oversized = true;
    skip_ = remaining - needed;
    pos_ += header + needed;
    return drain() ? deliver_skipped() : Status::NeedMore;
  }

  if (body_avail < remaining) return Status::NeedMore;

  Reader r(body, remaining, remaining);
  std::string err;
  bool ok = true;
  out.type = type;
  switch (type) {
    case PacketType::Connack: ok = read_connack(r, v5, out.connack, err); break;
    case PacketType::Publish: {
      Publish& pub = out.publish;
      ok = read_publish_header(r, v5, flags, pub, err);
      if (ok) {
        pub.payload.assign(reinterpret_cast<const char*>(r.here()), r.left());
        pub.payload_size = r.left();
        pub.oversized = false;
      }
      break;
    }
    case PacketType::Puback:
    case PacketType::Pubrec:
    case PacketType::Pubrel:
    case PacketType::Pubcomp: ok = read_ack(r, v5, out.ack, err); break;
    case PacketType::Unsuback: ok = read_unsuback(r, v5, out.ack, err); break;
    case PacketType::Suback: ok = read_suback(r, v5, out.suback, err); break;
    case PacketType::Pingresp: ok = at_end(r, err); break;
    case PacketType::Disconnect: ok = read_disconnect(r, v5, out.disconnect, err); break;
    default: break;  // from_server() has turned everything else away
  }
  if (!ok) return fail("invalid " + std::string(to_string(type)) + ": " + err);
  pos_ += header + remaining;
  if (pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  }
  return Status::Ready;
}

// --- Names ------------------------------------------------------------------------------------

std::string_view to_string(PacketType t) {
  switch (t) {
    case PacketType::Connect: return "CONNECT";
    case PacketType::Connack: return "CONNACK";
    case PacketType::Publish: return "PUBLISH";
    case PacketType::Puback: return "PUBACK";
    case PacketType::Pubrec: return "PUBREC";
    case PacketType::Pubrel: return "PUBREL";
    case PacketType::Pubcomp: return "PUBCOMP";
    case PacketType::Subscribe: return "SUBSCRIBE";
    case PacketType::Suback: return "SUBACK";
    case PacketType::Unsubscribe: return "UNSUBSCRIBE";
    case PacketType::Unsuback: return "UNSUBACK";
    case PacketType::Pingreq: return "PINGREQ";
    case PacketType::Pingresp: return "PINGRESP";
    case PacketType::Disconnect: return "DISCONNECT";
    case PacketType::Auth: return "AUTH";
  }
  return "reserved";
}

std::string connack_reason(int version, int code) {
  if (code == 0) return "accepted";
  if (version == kMqtt5) return reason_name(code);
  switch (code) {
    case 1: return "unacceptable protocol version";
    case 2: return "identifier rejected";
    case 3: return "server unavailable";
    case 4: return "bad user name or password";
    case 5: return "not authorized";
    default: return "return code " + std::to_string(code);
  }
}

std::string reason_name(int code) {
  switch (code) {
    case 0x00: return "success";
    case 0x01: return "granted QoS 1";
    case 0x02: return "granted QoS 2";
    case 0x04: return "disconnect with will message";
    case 0x10: return "no matching subscribers";
    case 0x11: return "no subscription existed";
    case 0x18: return "continue authentication";
    case 0x19: return "re-authenticate";
    case 0x80: return "unspecified error";
    case 0x81: return "malformed packet";
    case 0x82: return "protocol error";
    case 0x83: return "implementation specific error";
    case 0x84: return "unsupported protocol version";
    case 0x85: return "client identifier not valid";
    case 0x86: return "bad user name or password";
    case 0x87: return "not authorized";
    case 0x88: return "server unavailable";
    case 0x89: return "server busy";
    case 0x8A: return "banned";
    case 0x8B: return "server shutting down";
    case 0x8C: return "bad authentication method";
    case 0x8D: return "keep alive timeout";
    case 0x8E: return "session taken over";
    case 0x8F: return "topic filter invalid";
    case 0x90: return "topic name invalid";
    case 0x91: return "packet identifier in use";
    case 0x92: return "packet identifier not found";
    case 0x93: return "receive maximum exceeded";
    case 0x94: return "topic alias invalid";
    case 0x95: return "packet too large";
    case 0x96: return "message rate too high";
    case 0x97: return "quota exceeded";
    case 0x98: return "administrative action";
    case 0x99: return "payload format invalid";
    case 0x9A: return "retain not supported";
    case 0x9B: return "QoS not supported";
    case 0x9C: return "use another server";
    case 0x9D: return "server moved";
    case 0x9E: return "shared subscriptions not supported";
    case 0x9F: return "connection rate exceeded";
    case 0xA0: return "maximum connect time";
    case 0xA1: return "subscription identifiers not supported";
    case 0xA2: return "wildcard subscriptions not supported";
    default: return "reason " + hex2(code);
  }
}

}  // namespace ioc_edge::mqtt_wire
