#pragma once
// A real HTTP/1.1 server on 127.0.0.1 for tests of HTTP clients (the http-poll source): Boost.Beast
// on its own thread ("http-server"), plain or TLS, answering each request with what the test's
// handler returns. Connections are closed after each answer.
//
// Thread-safety: every method may be called from any thread; the handler runs on the server's
// thread. stop() and start() keep the port, so a client sees "connection refused" in between and
// the same server again afterwards.
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace ioc_edge::test {

struct HttpServerRequest {
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;  // field names lower-cased
};

struct HttpServerReply {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::chrono::milliseconds delay{0};  // wait this long before answering (a slow server)
  std::string raw;                     // when set: these bytes instead of an HTTP answer (garbage)
};

class HttpServer {
 public:
  using Handler = std::function<HttpServerReply(const HttpServerRequest&)>;

  // Plain HTTP; with cert_file and key_file (PEM), HTTPS. Listens at once on a free port.
  explicit HttpServer(Handler handler, std::string cert_file = {}, std::string key_file = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const;
  std::string url(const std::string& target = "/") const;  // http[s]://127.0.0.1:PORT/target
  void set_handler(Handler handler);
  // Requests received so far (complete ones, in arrival order).
  std::vector<HttpServerRequest> requests() const;
  std::size_t request_count() const;
  // Closes the listener and every open connection (clients get "connection refused").
  void stop();
  // Listens again on the same port.
  void start();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace ioc_edge::test
