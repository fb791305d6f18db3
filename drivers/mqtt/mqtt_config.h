#pragma once
// The `mqtt` source's configuration: a connection to the office's MQTT broker, the topics it takes
// and how their payloads become readings, events or blobs. See drivers/mqtt/README.md for every key.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/reading.h"
#include "core/source.h"
#include "drivers/shared/json_mapping.h"

namespace ioc_edge {
class TableReader;
}

namespace ioc_edge::mqtt {

enum class Format : std::uint8_t { Json, Value, Binary };
std::string_view to_string(Format f);

// Timestamps in payloads: ts_pointer, ts_format, timezone (drivers/shared/json_mapping.h).
using ioc_edge::TimeSpec;
using ioc_edge::TsFormat;

// An explicit mapping: one JSON pointer -> one point.
struct Field {
  std::string point;
  std::string pointer;           // RFC 6901, e.g. "/ENERGY/Power"
  std::string unit;
  int line = 0, column = 0;      // where it was written, for messages
};

struct Config final : DriverConfig {
  // --- The connection (sources with the same url, client_id and user share one) ---
  std::string url;               // as written
  int url_line = 0, url_column = 0;  // where, for messages about several sources (check_together)
  bool tls = false;              // mqtts://
  std::string host;
  int port = 1883;               // 8883 for mqtts:// unless given
  std::string ca_file, cert_file, key_file;  // mqtts:// only; cert and key together or neither
  bool verify_hostname = true;
  std::string username;
  std::string password_file;     // read at start; never logged
  std::string client_id;         // empty: "ioc-edge-{site}" ([gateway] site)
  int mqtt_version = 5;          // 5 or 4 ("3.1.1")
  std::chrono::seconds keepalive{30};
  std::chrono::seconds session_expiry{std::chrono::hours(24 * 7)};  // MQTT 5: how long the broker keeps
                                                                     // our session while we are away
  int receive_maximum = 1000;    // MQTT 5: unacknowledged messages the broker may send at once
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds reconnect_min{500}, reconnect_max{30000};

  // --- What this source takes ---
  std::vector<std::string> topics;   // topic filters (+ and #)
  std::vector<std::pair<int, int>> topic_positions;  // line, column of each of `topics`, for messages
  int qos = 1;                   // subscription QoS 0..2
  Format format = Format::Json;
  bool event = false;            // kind = "event": each JSON document goes out whole as an event
  std::string source_name;       // template with {N} / {-N} topic levels; empty: this source's name
  std::string point;             // template: the point of a value/binary/event message; default "{-1}"
  std::uint64_t max_payload = 1 << 20;
  std::vector<Field> fields;     // json: explicit mapping; empty: flatten every leaf
  TimeSpec ts;
  std::string unit;              // value format: the unit of every value
  std::string content_type = "application/octet-stream";  // binary format
  Priority blob_priority = Priority::Low;
};

std::unique_ptr<DriverConfig> parse_config(TableReader& section);

// One broker connection: url (normalised: scheme, host, port), client id and user. Sources with the
// same key share a connection.
std::string connection_key(const Config& cfg);

// Sources that share a connection must agree on everything about it (TLS files, keepalive,
// mqtt_version, ...): reports each difference through `diag`.
void check_together(const std::vector<ParsedSource>& sources, Diagnostics& diag);

}  // namespace ioc_edge::mqtt
