#include "http/http_server.h"

#include <algorithm>
#include <array>
#include <map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "core/log.h"

namespace ioc_edge {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace ssl = boost::asio::ssl;
using asio::ip::tcp;
using namespace std::chrono_literals;

std::string_view HttpRequest::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (beast::iequals(k, beast::string_view(name.data(), name.size()))) return v;
  return {};
}

namespace {

// After an error reply, the rest of the request is read and discarded for this long (and at most
// this much) before the socket is closed, so that closing with unread data (an RST) does not destroy
// the reply before the client has read it.
constexpr auto kLingerTime = 1s;
constexpr std::size_t kLingerBytes = 64 * 1024;

std::string seconds_text(std::chrono::milliseconds d) {
  return d.count() % 1000 == 0 ? std::to_string(d.count() / 1000) + " s" : std::to_string(d.count()) + " ms";
}

// A degraded state that is entered and left (accept errors, connection limit reached): a warning
// when it starts, at most one per minute, and an info line when it ends if its warning was logged.
struct Episode {
  bool active = false;
  bool warned = false;
  std::uint64_t suppressed = 0;
  RateLimit limit{std::chrono::seconds(60)};

  // True if the caller should log the start now.
  bool begin() {
    if (active) return false;
    active = true;
    warned = limit.allow(suppressed);
    return warned;
  }
  // True if the caller should log the end now.
  bool end() {
    if (!active) return false;
    active = false;
    return std::exchange(warned, false);
  }
};

class SessionBase {
 public:
  virtual ~SessionBase() = default;
  virtual void close() = 0;
};

}  // namespace

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  Impl(asio::io_context& ctx, Handler h, HttpLimits l, Early e)
      : io(ctx),
        handler(std::move(h)),
        early(std::move(e)),
        limits(std::move(l)),
        acceptor(ctx),
        accept_timer(ctx),
        bind_timer(ctx),
        log(logger("http")) {
    const std::string body = "busy: " + std::to_string(limits.max_connections) + " connections are open (at most " +
                             std::to_string(limits.max_per_client) +
                             " from one address), the limit of this server; try again shortly\n";
    busy_reply = "HTTP/1.1 503 Service Unavailable\r\nServer: ioc-edge\r\nContent-Type: text/plain\r\n"
                 "Cache-Control: no-store\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: " +
                 std::to_string(body.size()) + "\r\n\r\n" + body;
  }

  bool listen(const std::string& host, int port_number, std::string& error);
  bool try_bind(beast::error_code& ec);
  void arm_bind_retry();
  void on_bind_retry();
  void accept();
  void on_accept(beast::error_code ec, tcp::socket socket);
  void refuse_busy(tcp::socket& socket);
  void stop();
  std::string url() const {
    return std::string(tls ? "https" : "http") + "://" + address_text + limits.url_path;
  }

  asio::io_context& io;
  Handler handler;
  Early early;
  HttpLimits limits;
  std::unique_ptr<ssl::context> tls;
  tcp::acceptor acceptor;
  asio::steady_timer accept_timer;
  asio::steady_timer bind_timer;
  std::shared_ptr<spdlog::logger> log;

  tcp::endpoint endpoint;
  std::string address_text;  // "127.0.0.1:8787", "[::1]:8787"
  std::string busy_reply;
  int port = 0;
  bool listening = false;
  bool stopped = false;

  // Bind retry (invariant 1).
  std::string bind_error;
  std::chrono::steady_clock::time_point bind_failing_since;
  RateLimit bind_log{std::chrono::seconds(60)};

  // Accept errors (invariant 2) and the connection limits.
  std::chrono::milliseconds accept_backoff{0};
  Episode accept_failing;
  std::uint64_t accept_errors_at_start = 0;
  Episode busy;
  std::uint64_t refused_at_start = 0;

  HttpStats stats;
  std::unordered_set<SessionBase*> sessions;  // open now; a session removes itself when destroyed
  std::map<std::string, std::size_t> per_client;  // open connections by peer address
};

namespace {

using Impl = HttpServer::Impl;

template <class Stream>
beast::tcp_stream& tcp_layer(Stream& s) {
  return beast::get_lowest_layer(s);
}

// One connection: requests read one at a time (bounded size and time), each answered once.
// Owned by the handlers of its pending operations; holds the server's Impl so that its destructor
// can always unregister.
template <class Stream>
class Session : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
 public:
  template <class... Args>
  Session(std::shared_ptr<Impl> server, std::string client, Args&&... stream_args)
      : stream_(std::forward<Args>(stream_args)...),
        buffer_(server->limits.header_limit + server->limits.body_limit + 4096),
        handler_timer_(server->io),
        client_(std::move(client)),
        server_(std::move(server)) {
    server_->sessions.insert(this);
    ++server_->per_client[client_];
  }
  ~Session() override {
    server_->sessions.erase(this);
    if (auto it = server_->per_client.find(client_); it != server_->per_client.end() && --it->second == 0)
      server_->per_client.erase(it);
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void start() {
    tcp_layer(stream_).expires_after(server_->limits.request_timeout);
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      read_header();
    } else {
      stream_.async_handshake(ssl::stream_base::server, [self = this->shared_from_this()](beast::error_code ec) {
        if (self->server_->stopped) return;
        if (ec) {
          ++(ec == beast::error::timeout ? self->server_->stats.timed_out : self->server_->stats.rejected);
          return;  // nothing to answer in: the client does not speak TLS with us
        }
        self->read_header();
      });
    }
  }

  // From HttpServer::stop(): pending operations end with operation_aborted.
  void close() override {
    handler_timer_.cancel();
    tcp_layer(stream_).close();
  }

 private:
  // Invariant 4: each request has an id; a reply for an older id, or a second one, is dropped.
  void read_header() {
    ++request_id_;
    replied_ = false;
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(server_->limits.header_limit));
    parser_->body_limit(server_->limits.body_limit);
    // One deadline for the whole request, however slowly its bytes arrive (and idle time before it).
    tcp_layer(stream_).expires_after(server_->limits.request_timeout);
    http::async_read_header(stream_, buffer_, *parser_, [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
      self->on_header(ec);
    });
  }

  bool read_error(beast::error_code ec) {
    if (!ec) return false;
    if (ec == beast::error::timeout) {
      if (request_started_ || buffer_.size() > 0) ++server_->stats.timed_out;
    } else if (ec == http::error::body_limit) {
      error_reply(http::status::payload_too_large,
                  "request body larger than " + std::to_string(server_->limits.body_limit) + " bytes\n");
    } else if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
      error_reply(http::status::request_header_fields_too_large,
                  "request headers larger than " + std::to_string(server_->limits.header_limit) + " bytes\n");
    } else if (ec.category() == http::make_error_code(http::error::bad_method).category() &&
               ec != http::error::end_of_stream && ec != http::error::partial_message) {
      error_reply(http::status::bad_request, "malformed request: " + ec.message() + "\n");
    }
    return true;  // otherwise closed by the peer or by stop(): nothing to answer
  }

  void on_header(beast::error_code ec) {
    if (server_->stopped) return;
    if (read_error(ec)) return;
    request_started_ = true;
    const auto& h = parser_->get();
    request_ = {};
    request_.method = std::string(h.method_string());
    request_.target = std::string(h.target());
    for (const auto& f : h) request_.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    request_.client = client_;
    if (server_->early) {
      std::optional<HttpReply> early;
      try {
        early = server_->early(request_);
      } catch (const std::exception& e) {
        early = HttpReply{500, "text/plain", std::string("internal error: ") + e.what() + "\n"};
      }
      if (early) {  // the body is not read: the connection closes after the reply (with a linger)
        ++server_->stats.rejected;
        write(std::move(*early), false, true);
        return;
      }
    }
    http::async_read(stream_, buffer_, *parser_, [self = this->shared_from_this()](beast::error_code ec2, std::size_t) {
      self->on_body(ec2);
    });
  }

  void on_body(beast::error_code ec) {
    if (server_->stopped) return;
    if (read_error(ec)) return;
    keep_alive_ = server_->limits.keep_alive && parser_->get().keep_alive();
    request_.body = std::move(parser_->get().body());
    ++server_->stats.requests;
    tcp_layer(stream_).expires_never();  // the handler's own deadline runs now
    handler_timer_.expires_after(server_->limits.handler_timeout);
    handler_timer_.async_wait([self = this->shared_from_this(), id = request_id_](const beast::error_code& tec) {
      if (tec == asio::error::operation_aborted || self->server_->stopped || id != self->request_id_ || self->replied_)
        return;
      ++self->server_->stats.timed_out;
      self->keep_alive_ = false;
      self->send(HttpReply{503, "text/plain",
                           "no answer within " + seconds_text(self->server_->limits.handler_timeout) +
                               "; the request may still be stored: retry it with the same Idempotency-Key\n",
                           {{"Retry-After", "5"}}},
                 false);
    });
    auto weak = this->weak_from_this();
    auto& io = server_->io;
    HttpServer::Respond respond = [weak, &io, id = request_id_](HttpReply reply) {
      asio::post(io, [weak, id, reply = std::move(reply)]() mutable {
        if (auto self = weak.lock(); self && !self->server_->stopped && id == self->request_id_ && !self->replied_)
          self->send(std::move(reply), self->keep_alive_);
      });
    };
    try {
      server_->handler(std::move(request_), std::move(respond));
    } catch (const std::exception& e) {
      if (!replied_) send(HttpReply{500, "text/plain", std::string("internal error: ") + e.what() + "\n"}, false);
    }
  }

  void send(HttpReply reply, bool keep) {
    replied_ = true;
    handler_timer_.cancel();
    write(std::move(reply), keep, false);
  }

  void error_reply(http::status status, std::string body) {
    ++server_->stats.rejected;
    write(HttpReply{static_cast<int>(status), "text/plain", std::move(body)}, false, true);
  }

  void write(HttpReply reply, bool keep, bool linger) {
    replied_ = true;
    res_ = {};
    res_.version(11);
    res_.result(static_cast<http::status>(reply.status));
    res_.set(http::field::server, "ioc-edge");
    res_.set(http::field::content_type, reply.content_type);
    res_.set(http::field::cache_control, "no-store");
    for (const auto& [k, v] : reply.headers) res_.set(k, v);
    res_.keep_alive(keep);
    res_.body() = std::move(reply.body);
    res_.prepare_payload();
    tcp_layer(stream_).expires_after(server_->limits.write_timeout);
    http::async_write(stream_, res_, [self = this->shared_from_this(), keep, linger](beast::error_code ec, std::size_t) {
      if (ec || self->server_->stopped) return;
      if (keep) {
        self->request_started_ = false;
        self->read_header();
        return;
      }
      beast::error_code ignored;
      tcp_layer(self->stream_).socket().shutdown(tcp::socket::shutdown_send, ignored);
      if (linger) {
        tcp_layer(self->stream_).expires_after(kLingerTime);
        self->discard();
      }
    });
  }

  // Reads and drops what the client still sends until it closes, kLingerTime or kLingerBytes.
  void discard() {
    stream_.async_read_some(asio::buffer(scratch_), [self = this->shared_from_this()](beast::error_code ec, std::size_t n) {
      self->discarded_ += n;
      if (ec || self->discarded_ >= kLingerBytes || self->server_->stopped) return;
      self->discard();
    });
  }

  Stream stream_;
  beast::flat_buffer buffer_;  // bounded: a request never needs more than its two limits
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> res_;
  HttpRequest request_;
  asio::steady_timer handler_timer_;
  std::uint64_t request_id_ = 0;
  bool replied_ = false;
  bool keep_alive_ = false;
  bool request_started_ = true;  // the first request counts from the connection's start
  std::array<char, 1024> scratch_{};
  std::size_t discarded_ = 0;
  std::string client_;
  std::shared_ptr<Impl> server_;
};

}  // namespace

bool HttpServer::Impl::listen(const std::string& host, int port_number, std::string& error) {
  beast::error_code ec;
  const auto addr = asio::ip::make_address(host, ec);
  if (ec) {
    error = limits.name + ": listen address \"" + host + "\": " + ec.message();
    return false;
  }
  if (!limits.cert_file.empty() || !limits.key_file.empty()) {
    tls = std::make_unique<ssl::context>(ssl::context::tls_server);
    tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                     ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
    tls->use_certificate_chain_file(limits.cert_file, ec);
    if (ec) {
      error = limits.name + ": cannot load the certificate " + limits.cert_file + ": " + ec.message();
      return false;
    }
    tls->use_private_key_file(limits.key_file, ssl::context::pem, ec);
    if (ec) {
      error = limits.name + ": cannot load the private key " + limits.key_file + ": " + ec.message();
      return false;
    }
  }
  endpoint = tcp::endpoint(addr, static_cast<unsigned short>(port_number));
  address_text = (addr.is_v6() ? "[" + host + "]" : host) + ":" + std::to_string(port_number);
  if (try_bind(ec)) {
    log->info("{} on {}", limits.name, url());
    accept();
    return true;
  }
  ++stats.bind_failures;
  bind_error = ec.message();
  bind_failing_since = std::chrono::steady_clock::now();
  std::uint64_t suppressed = 0;
  bind_log.allow(suppressed);
  log->warn("{} cannot listen on {}: {}; retrying every {}; the gateway keeps collecting and forwarding", limits.name,
            address_text, bind_error, seconds_text(limits.bind_retry));
  arm_bind_retry();
  return true;
}

bool HttpServer::Impl::try_bind(beast::error_code& ec) {
  acceptor.open(endpoint.protocol(), ec);
  // SO_REUSEADDR only lets us bind past our own connections in TIME_WAIT after a restart; on Linux
  // it does not let two sockets listen on one address.
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  tcp::endpoint local;
  if (!ec) local = acceptor.local_endpoint(ec);
  if (ec) {
    beast::error_code ignored;
    acceptor.close(ignored);
    return false;
  }
  port = local.port();
  const auto host = endpoint.address().to_string();
  address_text = (endpoint.address().is_v6() ? "[" + host + "]" : host) + ":" + std::to_string(port);
  listening = true;
  return true;
}

void HttpServer::Impl::arm_bind_retry() {
  bind_timer.expires_after(limits.bind_retry);
  bind_timer.async_wait([self = shared_from_this()](const beast::error_code& ec) {
    if (ec == asio::error::operation_aborted || self->stopped) return;
    self->on_bind_retry();
  });
}

void HttpServer::Impl::on_bind_retry() {
  beast::error_code ec;
  if (try_bind(ec)) {
    const auto waited = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - bind_failing_since);
    log->info("{} on {} after {} s: the address was unusable ({})", limits.name, url(), waited.count(), bind_error);
    accept();
    return;
  }
  ++stats.bind_failures;
  std::uint64_t suppressed = 0;
  if (ec.message() != bind_error && bind_log.allow(suppressed)) {
    bind_error = ec.message();
    log->warn("{} still cannot listen on {}, now: {}; retrying every {}", limits.name, address_text, bind_error,
              seconds_text(limits.bind_retry));
  }
  arm_bind_retry();
}

void HttpServer::Impl::accept() {
  acceptor.async_accept([self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
    self->on_accept(ec, std::move(socket));
  });
}

void HttpServer::Impl::on_accept(beast::error_code ec, tcp::socket socket) {
  if (ec == asio::error::operation_aborted || stopped || !acceptor.is_open()) return;
  if (ec) {
    // EMFILE, ENFILE, ENOBUFS, ENOMEM...: the connection stays in the listen queue and accepting
    // again at once would fail again at once, so wait (invariant 2).
    ++stats.accept_errors;
    accept_backoff = accept_backoff.count() == 0 ? limits.accept_backoff_min
                                                 : std::min(accept_backoff * 2, limits.accept_backoff_max);
    if (accept_failing.begin()) {
      accept_errors_at_start = stats.accept_errors;
      log->warn("{} cannot accept connections: {}; retrying after {}, backing off to {}{}", limits.name, ec.message(),
                seconds_text(accept_backoff), seconds_text(limits.accept_backoff_max),
                accept_failing.suppressed ? " (" + std::to_string(accept_failing.suppressed) + " such episodes not logged)"
                                          : std::string());
    }
    accept_timer.expires_after(accept_backoff);
    accept_timer.async_wait([self = shared_from_this()](const beast::error_code& tec) {
      if (tec == asio::error::operation_aborted || self->stopped) return;
      self->accept();
    });
    return;
  }
  accept_backoff = 0ms;
  if (accept_failing.end())
    log->info("{} accepts connections again after {} failed attempts", limits.name,
              stats.accept_errors - accept_errors_at_start + 1);
  beast::error_code peer_ec;
  const auto peer = socket.remote_endpoint(peer_ec);
  std::string client = peer_ec ? std::string("unknown") : peer.address().to_string();
  const auto from_client = per_client.count(client) ? per_client[client] : 0;
  if (sessions.size() >= limits.max_connections || from_client >= limits.max_per_client) {
    refuse_busy(socket);
  } else {
    if (busy.end())
      log->info("{} is below its connection limits again; {} connections were closed at once meanwhile", limits.name,
                stats.refused_busy - refused_at_start + 1);
    ++stats.accepted;
    if (tls)
      std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(shared_from_this(), std::move(client),
                                                                       std::move(socket), *tls)
          ->start();
    else
      std::make_shared<Session<beast::tcp_stream>>(shared_from_this(), std::move(client), std::move(socket))->start();
  }
  accept();
}

void HttpServer::Impl::refuse_busy(tcp::socket& socket) {
  ++stats.refused_busy;
  if (busy.begin()) {
    refused_at_start = stats.refused_busy;
    log->warn("{} has {} connections open (at most {}, {} from one address): new connections are closed at once "
              "until some finish (each may take up to {}){}",
              limits.name, sessions.size(), limits.max_connections, limits.max_per_client,
              seconds_text(limits.request_timeout + limits.write_timeout),
              busy.suppressed ? " (" + std::to_string(busy.suppressed) + " such episodes not logged)" : std::string());
  }
  // A best-effort answer, so that the client says "busy" rather than "connection reset": one
  // non-blocking send into an empty socket buffer, never a wait (not readable through TLS, but a
  // TLS client then sees the connection closed, which is the same answer).
  beast::error_code ignored;
  socket.non_blocking(true, ignored);
  if (!tls) socket.send(asio::buffer(busy_reply), 0, ignored);
  socket.shutdown(tcp::socket::shutdown_both, ignored);
  socket.close(ignored);
}

void HttpServer::Impl::stop() {
  if (stopped) return;
  stopped = true;
  listening = false;
  beast::error_code ignored;
  acceptor.close(ignored);
  accept_timer.cancel();
  bind_timer.cancel();
  // close() only cancels: the sessions go away when their handlers have run (or been destroyed).
  for (SessionBase* s : std::vector<SessionBase*>(sessions.begin(), sessions.end())) s->close();
}

HttpServer::HttpServer(asio::io_context& io, Handler handler, HttpLimits limits, Early early)
    : impl_(std::make_shared<Impl>(io, std::move(handler), std::move(limits), std::move(early))) {}

HttpServer::Handler HttpServer::immediate(std::function<HttpReply(const HttpRequest&)> fn) {
  return [fn = std::move(fn)](HttpRequest request, Respond respond) { respond(fn(request)); };
}

HttpServer::~HttpServer() { stop(); }

bool HttpServer::listen(const std::string& host, int port, std::string& error) {
  return impl_->listen(host, port, error);
}

void HttpServer::stop() { impl_->stop(); }

int HttpServer::port() const { return impl_->port; }

bool HttpServer::listening() const { return impl_->listening; }

HttpStats HttpServer::stats() const {
  auto s = impl_->stats;
  s.listening = impl_->listening;
  s.open = impl_->sessions.size();
  return s;
}

}  // namespace ioc_edge
