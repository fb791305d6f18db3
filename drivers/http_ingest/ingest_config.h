#pragma once
// The `http-ingest` source's configuration: where it listens, its limits and the clients that may
// post (each with a bearer token read from a file and the source names it may write). See
// drivers/http_ingest/README.md for every key.
#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/source.h"

namespace ioc_edge {
class TableReader;
}

namespace ioc_edge::http_ingest {

struct Client {
  std::string name;
  std::string token_file;
  // SHA-256 of the token: the token itself is not kept, and comparing digests takes the same time
  // whatever the token's length or content.
  std::array<unsigned char, 32> token_digest{};
  std::vector<std::string> sources;  // patterns: a name, or a prefix ending in '*'
};

struct Config final : DriverConfig {
  std::string listen;  // as written, "0.0.0.0:8780"
  std::string host;
  int port = 0;
  int line = 0, column = 0;  // where `listen` stands, for check_together's messages
  std::uint64_t max_body = 4ull << 20;
  std::size_t max_connections = 64;
  std::size_t max_per_client = 16;
  std::chrono::milliseconds request_timeout{30000};
  std::chrono::milliseconds idempotency_window{std::chrono::hours(24)};
  std::size_t max_readings = 100000;  // per request
  std::string cert_file, key_file;   // both: HTTPS
  std::vector<Client> clients;
};

// True if `source` matches `pattern` ("mot-cua" exactly, or "mot-cua-*": any name starting with
// "mot-cua-").
bool source_allowed(const std::string& pattern, const std::string& source);

std::unique_ptr<DriverConfig> parse_config(TableReader& section);
// Two sources may not listen on one address.
void check_together(const std::vector<ParsedSource>& sources, Diagnostics& diag);

}  // namespace ioc_edge::http_ingest
