#pragma once
// The `http-poll` source's configuration: a URL fetched on a schedule and how its JSON document
// becomes readings. See drivers/http_poll/README.md for every key.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/source.h"
#include "drivers/shared/json_mapping.h"

namespace ioc_edge {
class TableReader;
}

namespace ioc_edge::http_poll {

enum class AuthKind : std::uint8_t { None, Bearer, Basic };

struct Auth {
  AuthKind kind = AuthKind::None;
  std::string token_file;     // bearer: the token, read at every poll, never logged
  std::string user;           // basic
  std::string password_file;  // basic: the password, read at every poll, never logged
};

// Where each reading comes from in the document (JSON pointers, RFC 6901).
struct Mapping {
  std::optional<std::string> records;  // the array of records; none: the document is one record
  std::string point;                   // a fixed point name (when no point_pointer)
  std::string point_pointer;           // in each record: the point's name
  std::optional<std::string> value_pointer;  // in each record: the value; none: the whole record
  TimeSpec ts;                         // ts_pointer in each record; empty: the time of the answer
  std::string unit;                    // a fixed unit
  std::string unit_pointer;            // in each record: the unit
};

struct Config final : DriverConfig {
  std::string url;          // as written
  bool tls = false;         // https://
  std::string host;         // a name, an IPv4 address, or an IPv6 address without brackets
  int port = 80;            // 443 for https:// unless given
  std::string target;       // path and query, "/" at least
  std::chrono::milliseconds every{60000};
  std::chrono::milliseconds timeout{10000};     // the whole exchange: connect, TLS, request, answer
  std::chrono::milliseconds retry_max{300000};  // longest wait between polls of a failing server
  std::vector<std::pair<std::string, std::string>> headers;  // sent with every request, in file order
  Auth auth;
  std::string ca_file;      // https: the CA that signed the server's certificate; empty: the system's
  bool verify_hostname = true;
  std::uint64_t max_body = 16ull << 20;
  Mapping mapping;

  std::chrono::milliseconds poll_interval() const override { return every; }
};

std::unique_ptr<DriverConfig> parse_config(TableReader& section);

}  // namespace ioc_edge::http_poll
