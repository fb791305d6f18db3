#pragma once
// Explains a failed TLS connection in words a district IT officer can act on.
//
// Paho reports every TLS failure as "TCP/TLS connect failure" (and its error-string callback is
// unsafe in 1.2.0, docs/dependencies.md), so after a failed mqtts:// attempt the uplink makes one
// connection of its own with OpenSSL, configured as Paho was (CA pinned, host name checked, TLS 1.2
// or newer, client certificate), and reports what OpenSSL says: unknown CA, host name mismatch,
// client certificate refused, connection refused, timeout. Blocking; called off the hot path.
#include <chrono>
#include <string>

namespace ioc_edge {

struct TlsProbe {
  std::string host;
  int port = 0;
  std::string ca_file, cert_file, key_file;
  bool verify_hostname = true;
  std::chrono::milliseconds timeout{3000};
};

// Empty if the handshake succeeds; otherwise one sentence naming the cause.
std::string explain_tls_failure(const TlsProbe& probe);

}  // namespace ioc_edge
