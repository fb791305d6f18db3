#pragma once
// The local status API (Boost.Beast, HTTP/1.1, one request per connection): GET /healthz and
// GET /status. Lives on the main thread's io_context; the handler runs there too.
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace spdlog {
class logger;
}

namespace ioc_edge {

struct HttpReply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

class StatusServer {
 public:
  using Handler = std::function<HttpReply(const std::string& method, const std::string& target)>;
  StatusServer(boost::asio::io_context& io, Handler handler);
  // Binds and starts accepting; false (and `error`) if the address cannot be used.
  bool listen(const std::string& host, int port, std::string& error);
  void stop();
  int port() const { return port_; }

 private:
  void accept();
  boost::asio::io_context& io_;
  Handler handler_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::shared_ptr<spdlog::logger> log_;
  int port_ = 0;
};

}  // namespace ioc_edge
