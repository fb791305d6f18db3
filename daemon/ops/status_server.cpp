#include "ops/status_server.h"

#include <algorithm>
#include <array>
#include <unordered_set>
#include <utility>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "core/log.h"

namespace ioc_edge {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

class Session;

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

}  // namespace

struct StatusServer::Impl : std::enable_shared_from_this<StatusServer::Impl> {
  Impl(asio::io_context& ctx, Handler h, StatusServerLimits l)
      : io(ctx),
        handler(std::move(h)),
        limits(l),
        acceptor(ctx),
        accept_timer(ctx),
        bind_timer(ctx),
        log(logger("status")) {
    const std::string body = "busy: " + std::to_string(limits.max_connections) +
                             " connections are open, the limit of the status API; try again shortly\n";
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
    return "http://" + (endpoint.address().is_v6() ? "[" + host_text + "]" : host_text) + ":" + std::to_string(port) + "/status";
  }

  asio::io_context& io;
  Handler handler;
  StatusServerLimits limits;
  tcp::acceptor acceptor;
  asio::steady_timer accept_timer;
  asio::steady_timer bind_timer;
  std::shared_ptr<spdlog::logger> log;

  tcp::endpoint endpoint;
  std::string host_text;     // as configured
  std::string address_text;  // "127.0.0.1:8787", "[::1]:8787"
  std::string busy_reply;
  int port = 0;
  bool listening = false;
  bool stopped = false;

  // Bind retry (invariant 1).
  std::string bind_error;
  std::chrono::steady_clock::time_point bind_failing_since;
  RateLimit bind_log{std::chrono::seconds(60)};

  // Accept errors (invariant 2) and the connection limit.
  std::chrono::milliseconds accept_backoff{0};
  Episode accept_failing;
  std::uint64_t accept_errors_at_start = 0;
  Episode busy;
  std::uint64_t refused_at_start = 0;

  StatusServerStats stats;
  std::unordered_set<Session*> sessions;  // open now; a session removes itself when destroyed
};

namespace {

// One connection: read one request (bounded size and time), answer, close. Owned by the handlers
// of its pending operations; holds the server's Impl so that its destructor can always unregister.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<StatusServer::Impl> server)
      : stream_(std::move(socket)),
        buffer_(server->limits.header_limit + server->limits.body_limit + 4096),
        server_(std::move(server)) {
    server_->sessions.insert(this);
  }
  ~Session() { server_->sessions.erase(this); }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void start() {
    parser_.header_limit(static_cast<std::uint32_t>(server_->limits.header_limit));
    parser_.body_limit(server_->limits.body_limit);
    // One deadline for the whole request, however slowly its bytes arrive.
    stream_.expires_after(server_->limits.request_timeout);
    http::async_read(stream_, buffer_, parser_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->on_read(ec);
    });
  }

  // From StatusServer::stop(): pending operations end with operation_aborted.
  void close() { stream_.close(); }

 private:
  void on_read(beast::error_code ec) {
    if (server_->stopped) return;
    if (ec) {
      if (ec == beast::error::timeout) {
        ++server_->stats.timed_out;
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
      return;  // otherwise closed by the peer or by stop(): nothing to answer
    }
    const auto& req = parser_.get();
    HttpReply reply;
    try {
      reply = server_->handler(std::string(req.method_string()), std::string(req.target()));
    } catch (const std::exception& e) {
      reply = {500, "text/plain", std::string("internal error: ") + e.what() + "\n"};
    }
    write(static_cast<http::status>(reply.status), std::move(reply.content_type), std::move(reply.body), false);
  }

  void error_reply(http::status status, std::string body) {
    ++server_->stats.rejected;
    write(status, "text/plain", std::move(body), true);
  }

  void write(http::status status, std::string content_type, std::string body, bool linger) {
    res_.version(11);
    res_.result(status);
    res_.set(http::field::server, "ioc-edge");
    res_.set(http::field::content_type, content_type);
    res_.set(http::field::cache_control, "no-store");
    res_.keep_alive(false);
    res_.body() = std::move(body);
    res_.prepare_payload();
    stream_.expires_after(server_->limits.write_timeout);
    http::async_write(stream_, res_, [self = shared_from_this(), linger](beast::error_code ec, std::size_t) {
      if (ec) return;
      beast::error_code ignored;
      self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
      if (linger && !self->server_->stopped) {
        self->stream_.expires_after(kLingerTime);
        self->discard();
      }
    });
  }

  // Reads and drops what the client still sends until it closes, kLingerTime or kLingerBytes.
  void discard() {
    stream_.async_read_some(asio::buffer(scratch_), [self = shared_from_this()](beast::error_code ec, std::size_t n) {
      self->discarded_ += n;
      if (ec || self->discarded_ >= kLingerBytes || self->server_->stopped) return;
      self->discard();
    });
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;  // bounded: a request never needs more than its two limits
  http::request_parser<http::string_body> parser_;
  http::response<http::string_body> res_;
  std::array<char, 1024> scratch_{};
  std::size_t discarded_ = 0;
  std::shared_ptr<StatusServer::Impl> server_;
};

}  // namespace

bool StatusServer::Impl::listen(const std::string& host, int port_number, std::string& error) {
  beast::error_code ec;
  const auto addr = asio::ip::make_address(host, ec);
  if (ec) {
    error = "status listen address \"" + host + "\": " + ec.message();
    return false;
  }
  endpoint = tcp::endpoint(addr, static_cast<unsigned short>(port_number));
  host_text = host;
  address_text = (addr.is_v6() ? "[" + host + "]" : host) + ":" + std::to_string(port_number);
  if (try_bind(ec)) {
    log->info("status API on {}", url());
    accept();
    return true;
  }
  ++stats.bind_failures;
  bind_error = ec.message();
  bind_failing_since = std::chrono::steady_clock::now();
  std::uint64_t suppressed = 0;
  bind_log.allow(suppressed);
  log->warn("the status API cannot listen on {}: {}; retrying every {}; the gateway keeps collecting and forwarding",
            address_text, bind_error, seconds_text(limits.bind_retry));
  arm_bind_retry();
  return true;
}

bool StatusServer::Impl::try_bind(beast::error_code& ec) {
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
  listening = true;
  return true;
}

void StatusServer::Impl::arm_bind_retry() {
  bind_timer.expires_after(limits.bind_retry);
  bind_timer.async_wait([self = shared_from_this()](const beast::error_code& ec) {
    if (ec == asio::error::operation_aborted || self->stopped) return;
    self->on_bind_retry();
  });
}

void StatusServer::Impl::on_bind_retry() {
  beast::error_code ec;
  if (try_bind(ec)) {
    const auto waited = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - bind_failing_since);
    log->info("status API on {} after {} s: {} was unusable ({})", url(), waited.count(), address_text, bind_error);
    accept();
    return;
  }
  ++stats.bind_failures;
  std::uint64_t suppressed = 0;
  if (ec.message() != bind_error && bind_log.allow(suppressed)) {
    bind_error = ec.message();
    log->warn("the status API still cannot listen on {}, now: {}; retrying every {}", address_text, bind_error,
              seconds_text(limits.bind_retry));
  }
  arm_bind_retry();
}

void StatusServer::Impl::accept() {
  acceptor.async_accept([self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
    self->on_accept(ec, std::move(socket));
  });
}

void StatusServer::Impl::on_accept(beast::error_code ec, tcp::socket socket) {
  if (ec == asio::error::operation_aborted || stopped || !acceptor.is_open()) return;
  if (ec) {
    // EMFILE, ENFILE, ENOBUFS, ENOMEM...: the connection stays in the listen queue and accepting
    // again at once would fail again at once, so wait (invariant 2).
    ++stats.accept_errors;
    accept_backoff = accept_backoff.count() == 0 ? limits.accept_backoff_min
                                                 : std::min(accept_backoff * 2, limits.accept_backoff_max);
    if (accept_failing.begin()) {
      accept_errors_at_start = stats.accept_errors;
      log->warn("the status API cannot accept connections: {}; retrying after {}, backing off to {}{}", ec.message(),
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
    log->info("the status API accepts connections again after {} failed attempts",
              stats.accept_errors - accept_errors_at_start + 1);
  if (sessions.size() >= limits.max_connections) {
    refuse_busy(socket);
  } else {
    if (busy.end())
      log->info("the status API is below its limit of {} connections again; {} were closed at once meanwhile",
                limits.max_connections, stats.refused_busy - refused_at_start + 1);
    ++stats.accepted;
    std::make_shared<Session>(std::move(socket), shared_from_this())->start();
  }
  accept();
}

void StatusServer::Impl::refuse_busy(tcp::socket& socket) {
  ++stats.refused_busy;
  if (busy.begin()) {
    refused_at_start = stats.refused_busy;
    log->warn("the status API has {} connections open, its limit: new connections are closed at once until some "
              "finish (each may take up to {}){}",
              limits.max_connections, seconds_text(limits.request_timeout + limits.write_timeout),
              busy.suppressed ? " (" + std::to_string(busy.suppressed) + " such episodes not logged)" : std::string());
  }
  // A best-effort answer, so that `ioc-edge status` says "busy" rather than "connection reset":
  // one non-blocking send into an empty socket buffer, never a wait.
  beast::error_code ignored;
  socket.non_blocking(true, ignored);
  socket.send(asio::buffer(busy_reply), 0, ignored);
  socket.shutdown(tcp::socket::shutdown_both, ignored);
  socket.close(ignored);
}

void StatusServer::Impl::stop() {
  if (stopped) return;
  stopped = true;
  listening = false;
  beast::error_code ignored;
  acceptor.close(ignored);
  accept_timer.cancel();
  bind_timer.cancel();
  // close() only cancels: the sessions go away when their handlers have run (or been destroyed).
  for (Session* s : std::vector<Session*>(sessions.begin(), sessions.end())) s->close();
}

StatusServer::StatusServer(asio::io_context& io, Handler handler, StatusServerLimits limits)
    : impl_(std::make_shared<Impl>(io, std::move(handler), limits)) {}

StatusServer::~StatusServer() { stop(); }

bool StatusServer::listen(const std::string& host, int port, std::string& error) {
  return impl_->listen(host, port, error);
}

void StatusServer::stop() { impl_->stop(); }

int StatusServer::port() const { return impl_->port; }

bool StatusServer::listening() const { return impl_->listening; }

StatusServerStats StatusServer::stats() const {
  auto s = impl_->stats;
  s.listening = impl_->listening;
  s.open = impl_->sessions.size();
  return s;
}

}  // namespace ioc_edge
