#include "uplink_mqtt/tls_probe.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <memory>

namespace ioc_edge {

namespace {

std::string openssl_errors() {
  std::string out;
  while (const unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    const char* reason = ERR_reason_error_string(e);
    if (!out.empty()) out += "; ";
    out += reason ? reason : buf;
  }
  return out.empty() ? "unknown TLS error" : out;
}

// A TCP connection with a deadline; -1 and `error` on failure.
int connect_tcp(const std::string& host, int port, std::chrono::milliseconds timeout, std::string& error) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const std::string service = std::to_string(port);
  if (const int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &res); rc != 0) {
    error = "cannot resolve " + host + ": " + gai_strerror(rc);
    return -1;
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard(res, freeaddrinfo);
  int fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    error = std::string("socket: ") + std::strerror(errno);
    return -1;
  }
  if (connect(fd, res->ai_addr, res->ai_addrlen) != 0 && errno != EINPROGRESS) {
    error = "cannot connect to " + host + ":" + service + ": " + std::strerror(errno);
    close(fd);
    return -1;
  }
  pollfd p{fd, POLLOUT, 0};
  if (poll(&p, 1, static_cast<int>(timeout.count())) != 1) {
    error = "no answer from " + host + ":" + service + " within " + std::to_string(timeout.count()) + " ms";
    close(fd);
    return -1;
  }
  int soerr = 0;
  socklen_t len = sizeof soerr;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
  if (soerr != 0) {
    error = "cannot connect to " + host + ":" + service + ": " + std::strerror(soerr);
    close(fd);
    return -1;
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  timeval tv{static_cast<time_t>(timeout.count() / 1000), static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  return fd;
}

}  // namespace

std::string explain_tls_failure(const TlsProbe& p) {
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
  if (!ctx) return "cannot set up TLS: " + openssl_errors();
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  if (SSL_CTX_load_verify_locations(ctx.get(), p.ca_file.c_str(), nullptr) != 1)
    return "cannot load ca_file \"" + p.ca_file + "\": " + openssl_errors();
  if (!p.cert_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx.get(), p.cert_file.c_str()) != 1)
      return "cannot load cert_file \"" + p.cert_file + "\": " + openssl_errors();
    if (SSL_CTX_use_PrivateKey_file(ctx.get(), p.key_file.c_str(), SSL_FILETYPE_PEM) != 1)
      return "cannot load key_file \"" + p.key_file + "\": " + openssl_errors();
    if (SSL_CTX_check_private_key(ctx.get()) != 1)
      return "key_file \"" + p.key_file + "\" does not belong to cert_file \"" + p.cert_file + "\"";
  }
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);

  std::string error;
  const int fd = connect_tcp(p.host, p.port, p.timeout, error);
  if (fd < 0) return error;
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(ctx.get()), SSL_free);
  SSL_set_fd(ssl.get(), fd);
  in6_addr a6{};
  in_addr a4{};
  const bool is_ip = inet_pton(AF_INET, p.host.c_str(), &a4) == 1 || inet_pton(AF_INET6, p.host.c_str(), &a6) == 1;
  if (!is_ip)  // SSL_set_tlsext_host_name without its C cast
    SSL_ctrl(ssl.get(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, const_cast<char*>(p.host.c_str()));
  if (p.verify_hostname) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl.get());
    if (is_ip)
      X509_VERIFY_PARAM_set1_ip_asc(param, p.host.c_str());
    else
      X509_VERIFY_PARAM_set1_host(param, p.host.c_str(), 0);
  }
  std::string out;
  if (SSL_connect(ssl.get()) != 1) {
    const long vr = SSL_get_verify_result(ssl.get());
    if (vr == X509_V_ERR_HOSTNAME_MISMATCH || vr == X509_V_ERR_IP_ADDRESS_MISMATCH) {
      out = "the server's certificate is not issued for \"" + p.host + "\" (host name mismatch); check the host in url";
    } else if (vr != X509_V_OK) {
      out = std::string("the server's certificate was rejected: ") + X509_verify_cert_error_string(vr) +
            " (is it signed by the CA in ca_file \"" + p.ca_file + "\"?)";
    } else {
      const std::string why = openssl_errors();
      if (why.find("certificate required") != std::string::npos || why.find("unknown ca") != std::string::npos ||
          why.find("bad certificate") != std::string::npos)
        out = "the IOC broker refused this office's client certificate (" + why + "); check cert_file and key_file";
      else if (why.find("unexpected eof") != std::string::npos)
        out = "the connection was closed during the TLS handshake (a network device or the broker dropped it)";
      else
        out = "TLS handshake failed: " + why;
    }
  } else {
    SSL_shutdown(ssl.get());
  }
  close(fd);
  ERR_clear_error();
  return out;
}

}  // namespace ioc_edge
