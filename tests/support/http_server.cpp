// A real HTTP/1.1 server (Boost.Beast) for tests, plain or TLS, on its own Asio thread.
#include "http_server.h"

#include <pthread.h>

#include <future>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

namespace ioc_edge::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  std::optional<asio::ssl::context> ssl;
  std::optional<tcp::acceptor> acceptor;
  int port = 0;
  std::thread thread;

  mutable std::mutex mu;
  Handler handler;
  std::vector<HttpServerRequest> log;

  // Open connections (io thread only), so stop() can close them.
  std::vector<std::pair<std::weak_ptr<void>, std::function<void()>>> closers;

  template <class Stream>
  struct Session : std::enable_shared_from_this<Session<Stream>> {
    template <class... Args>
    explicit Session(std::shared_ptr<Impl> s, Args&&... args) : server(std::move(s)), stream(std::forward<Args>(args)...), timer(server->io) {}
    std::shared_ptr<Impl> server;
    Stream stream;
    beast::flat_buffer buf;
    http::request<http::string_body> req;
    http::response<http::string_body> res;
    std::string raw;
    asio::steady_timer timer;

    beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream); }
    void close() {
      boost::system::error_code ignored;
      timer.cancel();
      lowest().socket().close(ignored);
    }

    void read() {
      http::async_read(stream, buf, req, [self = this->shared_from_this()](const boost::system::error_code& ec, std::size_t) {
        if (ec) return self->close();
        self->answer();
      });
    }

    void answer() {
      HttpServerRequest r;
      r.method = std::string(req.method_string());
      r.target = std::string(req.target());
      for (const auto& f : req) {
        std::string name(f.name_string());
        for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        r.headers[name] = std::string(f.value());
      }
      Handler h;
      {
        std::lock_guard lk(server->mu);
        server->log.push_back(r);
        h = server->handler;
      }
      HttpServerReply reply = h ? h(r) : HttpServerReply{404, {}, "no handler", {}, {}};
      if (!reply.raw.empty()) {
        raw = std::move(reply.raw);
      } else {
        res.version(11);
        res.result(static_cast<unsigned>(reply.status));
        res.set(http::field::connection, "close");
        for (const auto& [k, v] : reply.headers) res.set(k, v);
        res.body() = std::move(reply.body);
        res.prepare_payload();
      }
      timer.expires_after(reply.delay);
      timer.async_wait([self = this->shared_from_this()](const boost::system::error_code& ec) {
        if (ec) return;
        if (!self->raw.empty()) {
          asio::async_write(self->stream, asio::buffer(self->raw),
                            [self](const boost::system::error_code&, std::size_t) { self->close(); });
          return;
        }
        http::async_write(self->stream, self->res, [self](const boost::system::error_code&, std::size_t) { self->close(); });
      });
    }
  };

  void listen() {
    acceptor.emplace(io);
    tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port));
    acceptor->open(ep.protocol());
    acceptor->set_option(asio::socket_base::reuse_address(true));
    acceptor->bind(ep);
    acceptor->listen();
    port = acceptor->local_endpoint().port();
    accept();
  }

  void accept() {
    acceptor->async_accept([self = shared_from_this()](const boost::system::error_code& ec, tcp::socket sock) {
      if (ec) return;  // closed by stop()
      if (self->ssl) {
        auto s = std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(self, std::move(sock), *self->ssl);
        self->track(s);
        s->stream.async_handshake(asio::ssl::stream_base::server, [s](const boost::system::error_code& e) {
          if (e) return s->close();  // e.g. the client refused our certificate
          s->read();
        });
      } else {
        auto s = std::make_shared<Session<beast::tcp_stream>>(self, std::move(sock));
        self->track(s);
        s->read();
      }
      self->accept();
    });
  }

  template <class S>
  void track(const std::shared_ptr<S>& s) {
    std::erase_if(closers, [](const auto& c) { return c.first.expired(); });
    std::weak_ptr<S> w = s;
    closers.emplace_back(std::weak_ptr<void>(s), [w] {
      if (auto p = w.lock()) p->close();
    });
  }

  // Runs `fn` on the server's thread and waits for it (10 s at most).
  void on_thread(std::function<void()> fn) {
    std::promise<void> done;
    auto f = done.get_future();
    asio::post(io, [&] {
      try {
        fn();
        done.set_value();
      } catch (...) {
        done.set_exception(std::current_exception());
      }
    });
    if (f.wait_for(std::chrono::seconds(10)) != std::future_status::ready) throw std::runtime_error("HttpServer: its thread is stuck");
    f.get();
  }
};

HttpServer::HttpServer(Handler handler, std::string cert_file, std::string key_file) : impl_(std::make_shared<Impl>()) {
  impl_->handler = std::move(handler);
  if (!cert_file.empty()) {
    impl_->ssl.emplace(asio::ssl::context::tls_server);
    impl_->ssl->use_certificate_chain_file(cert_file);
    impl_->ssl->use_private_key_file(key_file, asio::ssl::context::pem);
  }
  impl_->listen();
  impl_->thread = std::thread([impl = impl_] {
    pthread_setname_np(pthread_self(), "http-server");
    impl->io.run();
  });
}

HttpServer::~HttpServer() {
  try {
    stop();
  } catch (...) {
  }
  impl_->work.reset();
  impl_->io.stop();
  impl_->thread.join();
  // Every operation was cancelled by stop(): run their handlers here, so none is left in the queue
  // holding the server (a reference cycle through the io_context would leak it).
  impl_->io.restart();
  impl_->io.poll();
}

int HttpServer::port() const { return impl_->port; }

std::string HttpServer::url(const std::string& target) const {
  return std::string(impl_->ssl ? "https" : "http") + "://127.0.0.1:" + std::to_string(impl_->port) + target;
}

void HttpServer::set_handler(Handler handler) {
  std::lock_guard lk(impl_->mu);
  impl_->handler = std::move(handler);
}

std::vector<HttpServerRequest> HttpServer::requests() const {
  std::lock_guard lk(impl_->mu);
  return impl_->log;
}

std::size_t HttpServer::request_count() const {
  std::lock_guard lk(impl_->mu);
  return impl_->log.size();
}

void HttpServer::stop() {
  impl_->on_thread([impl = impl_.get()] {
    if (!impl->acceptor) return;
    boost::system::error_code ignored;
    impl->acceptor->close(ignored);
    impl->acceptor.reset();
    for (auto& c : impl->closers) c.second();
    impl->closers.clear();
  });
}

void HttpServer::start() {
  impl_->on_thread([impl = impl_.get()] {
    if (!impl->acceptor) impl->listen();
  });
}

}  // namespace ioc_edge::test
