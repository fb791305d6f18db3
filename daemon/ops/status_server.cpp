#include "ops/status_server.h"

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "core/log.h"

namespace ioc_edge {

namespace beast = boost::beast;
namespace http = boost::beast::http;
using boost::asio::ip::tcp;

namespace {

// One connection: read one request (bounded size and time), answer, close.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const StatusServer::Handler& handler)
      : stream_(std::move(socket)), handler_(handler) {}

  void start() {
    parser_.header_limit(8 * 1024);
    parser_.body_limit(1024);  // no request of this API has a body
    stream_.expires_after(std::chrono::seconds(10));
    http::async_read(stream_, buffer_, parser_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->on_read(ec);
    });
  }

 private:
  void on_read(beast::error_code ec) {
    if (ec) return;  // closed, timed out or malformed: nothing to answer
    const auto& req = parser_.get();
    HttpReply reply;
    try {
      reply = handler_(std::string(req.method_string()), std::string(req.target()));
    } catch (const std::exception& e) {
      reply = {500, "text/plain", std::string("internal error: ") + e.what() + "\n"};
    }
    res_.version(11);
    res_.result(static_cast<http::status>(reply.status));
    res_.set(http::field::server, "ioc-edge");
    res_.set(http::field::content_type, reply.content_type);
    res_.set(http::field::cache_control, "no-store");
    res_.keep_alive(false);
    res_.body() = std::move(reply.body);
    res_.prepare_payload();
    http::async_write(stream_, res_, [self = shared_from_this()](beast::error_code, std::size_t) {
      beast::error_code ignored;
      self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    });
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  http::request_parser<http::string_body> parser_;
  http::response<http::string_body> res_;
  const StatusServer::Handler& handler_;
};

}  // namespace

StatusServer::StatusServer(boost::asio::io_context& io, Handler handler)
    : io_(io), handler_(std::move(handler)), acceptor_(io), log_(logger("status")) {}

bool StatusServer::listen(const std::string& host, int port, std::string& error) {
  beast::error_code ec;
  const auto addr = boost::asio::ip::make_address(host, ec);
  if (ec) {
    error = "status listen address \"" + host + "\": " + ec.message();
    return false;
  }
  const tcp::endpoint ep(addr, static_cast<unsigned short>(port));
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(boost::asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(boost::asio::socket_base::max_listen_connections, ec);
  if (ec) {
    error = "cannot listen on " + host + ":" + std::to_string(port) + " for the status API: " + ec.message();
    return false;
  }
  port_ = acceptor_.local_endpoint().port();
  log_->info("status API on http://{}:{}/status", addr.is_v6() ? "[" + host + "]" : host, port_);
  accept();
  return true;
}

void StatusServer::accept() {
  acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (ec == boost::asio::error::operation_aborted) return;
    if (!ec) std::make_shared<Session>(std::move(socket), handler_)->start();
    if (acceptor_.is_open()) accept();
  });
}

void StatusServer::stop() {
  beast::error_code ec;
  acceptor_.close(ec);
}

}  // namespace ioc_edge
