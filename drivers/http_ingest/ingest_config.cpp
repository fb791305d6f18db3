#include "drivers/http_ingest/ingest_config.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "settings/table_reader.h"

namespace ioc_edge::http_ingest {

namespace {

constexpr std::size_t kMinTokenBytes = 16;
constexpr std::size_t kMaxTokenBytes = 4096;
constexpr std::uint64_t kMaxBodyLimit = 256ull << 20;


// "ADDRESS:PORT" (settings/table_reader.h: parse_listen_address); the address is checked when the
// server binds it.
void parse_listen(TableReader& r, Config& c) {
  const auto v = r.string("listen", true);
  if (!v) return;
  c.listen = *v;
  std::tie(c.line, c.column) = r.position("listen");
  bool port_out_of_range = false;
  const auto a = parse_listen_address(*v, &port_out_of_range);
  if (!a) {
    r.error_at_key("listen", port_out_of_range ? std::string("port must be 1..65535")
                                               : in_quotes(*v) + " is not ADDRESS:PORT like \"0.0.0.0:8780\", "
                                                              "\"127.0.0.1:8780\" or \"[::]:8780\"");
    return;
  }
  c.host = a->host;
  c.port = a->port;
}

// Reads the token: one line, no spaces, at least 16 bytes; a file other users can read is refused.
void read_token(TableReader& r, Client& client) {
  const auto path = r.string("token_file", true);
  if (!path) return;
  client.token_file = *path;
  if (!r.diagnostics().check_files) return;
  struct stat st {};
  if (::stat(path->c_str(), &st) != 0) {
    r.error_at_key("token_file", "cannot read " + in_quotes(*path) + ": " + std::strerror(errno));
    return;
  }
  if ((st.st_mode & S_IROTH) != 0) {
    r.error_at_key("token_file", in_quotes(*path) + " is readable by every user of this machine; make it readable by "
                                                 "ioc-edge only (chown root:ioc-edge; chmod 0640)");
    return;
  }
  std::ifstream f(*path, std::ios::binary);
  std::stringstream buf;
  buf << f.rdbuf();
  if (!f) {
    r.error_at_key("token_file", "cannot read " + in_quotes(*path) + ": " + std::strerror(errno));
    return;
  }
  std::string token = buf.str();
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' ' || token.back() == '\t'))
    token.pop_back();
  bool printable = true;
  for (const char ch : token) printable = printable && ch > ' ' && ch < 0x7F;
  if (token.size() < kMinTokenBytes || token.size() > kMaxTokenBytes || !printable) {
    // The token is never quoted in a message: only its size.
    r.error_at_key("token_file", in_quotes(*path) + " must hold one token of " + std::to_string(kMinTokenBytes) + "-" +
                                     std::to_string(kMaxTokenBytes) +
                                     " printable characters without spaces (it holds " + std::to_string(token.size()) +
                                     " bytes); make one with: openssl rand -hex 24");
    return;
  }
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), client.token_digest.data());
  OPENSSL_cleanse(token.data(), token.size());
}

void parse_clients(TableReader& r, Config& c, const std::string& source_name) {
  if (!r.raw().get("client")) {
    r.known("client");
    r.error_here("no [[source.client]]: name at least one client, with its token_file and the sources it may "
                 "write (nobody could post otherwise)");
    return;
  }
  const auto* list = r.array("client");
  if (!list) return;
  Diagnostics& diag = r.diagnostics();
  std::set<std::string> names;
  std::map<std::array<unsigned char, 32>, std::string> digests;
  int index = 0;
  for (const auto& node : *list) {
    ++index;
    if (!node.is_table()) {
      diag.error(node.source(), r.context() + "client " + std::to_string(index) +
                                    ": expected a table ([[source.client]]), got " + std::string(type_name(node.type())));
      continue;
    }
    TableReader cr(*node.as_table(), diag, r.context() + "client " + std::to_string(index) + ": ");
    Client client;
    if (auto name = cr.string("name", true)) {
      if (!valid_id(*name))
        cr.error_at_key("name", in_quotes(*name) + " " + std::string(id_rule()));
      else if (!names.insert(*name).second)
        cr.error_at_key("name", "client " + in_quotes(*name) + " is named twice");
      client.name = *name;
    }
    read_token(cr, client);
    if (const auto* sources = cr.array("sources")) {
      for (const auto& s : *sources) {
        const auto pattern = s.value<std::string>();
        const std::string base = pattern && !pattern->empty() && pattern->back() == '*'
                                     ? pattern->substr(0, pattern->size() - 1)
                                     : pattern.value_or("");
        // A prefix may end in '-', '_' or '.', which a whole name may not.
        const bool ok = pattern && (pattern->back() == '*' ? (base.empty() || valid_id(base + "x")) : valid_id(*pattern));
        if (!ok) {
          diag.error(s.source(), cr.context() + "sources: " + (pattern ? in_quotes(*pattern) : std::string("an item")) +
                                     " is not a source name or a prefix ending in '*' (like \"mot-cua-*\")");
          continue;
        }
        client.sources.push_back(*pattern);
      }
      if (sources->empty()) cr.error_at_key("sources", "must list at least one source name, e.g. [\"" + source_name + "\"]");
    } else if (!node.as_table()->get("sources")) {
      cr.known("sources");
      cr.error_here("missing required key 'sources' (the source names this client may write, e.g. [\"" + source_name +
                    "\", \"" + source_name + "-*\"])");
    }
    cr.finish();
    if (client.token_digest != std::array<unsigned char, 32>{}) {
      if (auto [it, fresh] = digests.emplace(client.token_digest, client.name); !fresh)
        cr.error_at_key("token_file", "client " + in_quotes(client.name) + " has the same token as client " +
                                          in_quotes(it->second) + ": give each client its own, so that each is known");
    }
    c.clients.push_back(std::move(client));
  }
}

}  // namespace

bool source_allowed(const std::string& pattern, const std::string& source) {
  if (!pattern.empty() && pattern.back() == '*')
    return source.size() >= pattern.size() - 1 && source.compare(0, pattern.size() - 1, pattern, 0, pattern.size() - 1) == 0;
  return pattern == source;
}

std::unique_ptr<DriverConfig> parse_config(TableReader& r) {
  auto c = std::make_unique<Config>();
  parse_listen(r, *c);
  c->max_body = r.size_or("max_body", c->max_body, 1024);
  if (c->max_body > kMaxBodyLimit) {
    r.error_at_key("max_body", "must be at most 256MiB");
    c->max_body = kMaxBodyLimit;
  }
  c->max_connections = static_cast<std::size_t>(r.integer_or("max_connections", 64, 1, 4096));
  c->max_per_client = static_cast<std::size_t>(r.integer_or("max_connections_per_address", 16, 1, 4096));
  c->request_timeout = r.duration_or("request_timeout", c->request_timeout, std::chrono::seconds(1));
  c->idempotency_window = r.duration_or("idempotency_window", c->idempotency_window, std::chrono::minutes(1));
  c->max_readings = static_cast<std::size_t>(r.integer_or("max_readings", 100000, 1, 10000000));
  c->cert_file = r.file_path("cert_file").value_or("");
  c->key_file = r.file_path("key_file").value_or("");
  if (c->cert_file.empty() != c->key_file.empty())
    r.error_here("cert_file and key_file go together (the server certificate and its key, for https)");
  std::string name;
  if (const auto* n = r.raw().get("name"); n && n->is_string()) name = *n->value<std::string>();
  parse_clients(r, *c, name);
  return c;
}

void check_together(const std::vector<ParsedSource>& sources, Diagnostics& diag) {
  std::map<std::string, std::string_view> ports;  // port -> the first source on it
  for (const auto& src : sources) {
    const auto& c = static_cast<const Config&>(*src.config);
    if (c.port == 0) continue;  // a bad listen, already reported
    // Two sources on one port collide whatever their addresses (0.0.0.0 covers them all).
    auto [it, fresh] = ports.emplace(std::to_string(c.port), src.name);
    if (!fresh)
      diag.error(c.line, c.column,
                 "source \"" + std::string(src.name) + "\": port " + std::to_string(c.port) +
                     " is already the listen port of source \"" + std::string(it->second) +
                     "\"; give each http-ingest source its own port (one source may take many systems' readings: "
                     "give each system a [[source.client]])");
  }
}

}  // namespace ioc_edge::http_ingest
