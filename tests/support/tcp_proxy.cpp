// TcpProxy: a loopback TCP forwarder on its own Asio thread, with link faults on demand.
//
// Design note
//   Modes (changed only on the io thread, by cut()/stall()/restore()):
//     forward  bytes flow; new connections get an upstream connection.
//     cut      no connection is open; new ones are accepted and closed at once.
//     stall    nothing moves; every step that would move bytes (connect upstream, read, write) is
//              parked in `parked` and resumed, in order, by restore().
//   Invariants:
//     1. Sessions, `mode` and `parked` are touched only on the io thread; public methods post to it
//        and wait, so a change has taken effect when they return.
//     2. A Session is in `sessions` exactly while it is open; close() is idempotent and removes it.
//     3. Each direction of a session has at most one operation outstanding (read, then write, then
//        read ...), so a buffer is never used by two operations.
//     4. Any error or end of stream on either side closes both sides (MQTT never half-closes).
#include "support.h"

#include <array>
#include <atomic>
#include <future>
#include <set>
#include <stdexcept>
#include <thread>

#include <pthread.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

namespace ioc_edge::test {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

constexpr std::size_t kBufferSize = 64 * 1024;
constexpr auto kCallTimeout = std::chrono::seconds(10);

}  // namespace

struct TcpProxy::Impl {
  enum class Mode { forward, cut, stall };

  struct Session : std::enable_shared_from_this<Session> {
    Session(Impl& proxy_in, tcp::socket client_in)
        : proxy(proxy_in), client(std::move(client_in)), upstream(proxy_in.io) {}

    void start() {
      proxy.when_flowing([self = shared_from_this()] { self->connect(); });
    }

    void connect() {
      if (closed) return;
      upstream.async_connect(proxy.target, [self = shared_from_this()](const error_code& ec) {
        if (ec || self->closed) return self->close();
        error_code ignored;
        self->client.set_option(tcp::no_delay(true), ignored);
        self->upstream.set_option(tcp::no_delay(true), ignored);
        self->read(true);
        self->read(false);
      });
    }

    // `up`: client -> upstream; otherwise upstream -> client.
    void read(bool up) {
      proxy.when_flowing([self = shared_from_this(), up] {
        if (self->closed) return;
        tcp::socket& from = up ? self->client : self->upstream;
        auto& buf = up ? self->up_buf : self->down_buf;
        from.async_read_some(asio::buffer(buf), [self, up](const error_code& ec, std::size_t n) {
          if (ec || self->closed) return self->close();
          if (self->proxy.tap) self->proxy.tap(up, std::string_view(self->buffer(up).data(), n));
          self->proxy.when_flowing([self, up, n] { self->write(up, n); });
        });
      });
    }

    void write(bool up, std::size_t n) {
      if (closed) return;
      tcp::socket& to = up ? upstream : client;
      auto& buf = up ? up_buf : down_buf;
      asio::async_write(to, asio::buffer(buf.data(), n),
                        [self = shared_from_this(), up](const error_code& ec, std::size_t) {
                          if (ec || self->closed) return self->close();
                          self->read(up);
                        });
    }

    std::array<char, kBufferSize>& buffer(bool up) { return up ? up_buf : down_buf; }

    void close() {
      if (closed) return;
      closed = true;
      error_code ignored;
      // shutdown() first: a child process may have inherited a copy of the descriptor, and
      // close() alone would then not end the connection.
      for (tcp::socket* s : {&client, &upstream}) {
        if (s->is_open()) {
          s->shutdown(tcp::socket::shutdown_both, ignored);
          s->close(ignored);
        }
      }
      proxy.open_count.fetch_sub(1);
      proxy.sessions.erase(shared_from_this());
    }

    Impl& proxy;
    tcp::socket client;
    tcp::socket upstream;
    std::array<char, kBufferSize> up_buf{};
    std::array<char, kBufferSize> down_buf{};
    bool closed = false;
  };

  explicit Impl(int target_port)
      : target(asio::ip::address_v4::loopback(), static_cast<unsigned short>(target_port)),
        acceptor(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0)) {
    port = acceptor.local_endpoint().port();
    accept();
    thread = std::thread([this] {
      ::pthread_setname_np(::pthread_self(), "tcp-proxy");
      io.run();
    });
  }

  ~Impl() {
    try {
      call([this] {
        error_code ignored;
        acceptor.close(ignored);
        close_all();
      });
    } catch (...) {
      // The io thread is stuck; stopping it below still ends it.
    }
    io.stop();
    if (thread.joinable()) thread.join();
    sessions.clear();
    parked.clear();
  }

  void accept() {
    acceptor.async_accept([this](const error_code& ec, tcp::socket socket) {
      if (!acceptor.is_open()) return;
      if (!ec) {
        accepted.fetch_add(1);
        if (mode == Mode::cut) {
          error_code ignored;
          socket.shutdown(tcp::socket::shutdown_both, ignored);
          socket.close(ignored);
        } else {
          auto session = std::make_shared<Session>(*this, std::move(socket));
          sessions.insert(session);
          open_count.fetch_add(1);
          session->start();
        }
      }
      accept();
    });
  }

  // Runs fn now, or parks it until restore() if the link is stalled.
  void when_flowing(std::function<void()> fn) {
    if (mode == Mode::stall) {
      parked.push_back(std::move(fn));
    } else {
      fn();
    }
  }

  void close_all() {
    parked.clear();  // drops the parked steps' references to sessions
    auto open = sessions;
    for (const auto& s : open) s->close();
  }

  // Runs fn on the io thread and waits for it (invariant 1).
  void call(std::function<void()> fn) {
    if (std::this_thread::get_id() == thread.get_id()) return fn();
    // Shared, so a late run after a timeout does not touch a dead stack frame.
    auto task = std::make_shared<std::packaged_task<void()>>(std::move(fn));
    auto done = task->get_future();
    asio::post(io, [task] { (*task)(); });
    if (done.wait_for(kCallTimeout) != std::future_status::ready) {
      throw std::runtime_error("TcpProxy: io thread did not respond within 10 s");
    }
    done.get();
  }

  asio::io_context io;  // first member: destroyed last, after everything that uses it
  tcp::endpoint target;
  tcp::acceptor acceptor;
  int port = 0;
  Mode mode = Mode::forward;
  std::set<std::shared_ptr<Session>> sessions;
  std::vector<std::function<void()>> parked;
  std::atomic<int> accepted{0};
  std::atomic<int> open_count{0};
  std::function<void(bool, std::string_view)> tap;  // io thread only
  std::thread thread;
};

TcpProxy::TcpProxy(int target_port) : impl_(std::make_unique<Impl>(target_port)) {}

TcpProxy::~TcpProxy() = default;

int TcpProxy::port() const { return impl_->port; }

void TcpProxy::cut() {
  impl_->call([this] {
    impl_->mode = Impl::Mode::cut;
    impl_->close_all();
  });
}

void TcpProxy::stall() {
  impl_->call([this] { impl_->mode = Impl::Mode::stall; });
}

void TcpProxy::restore() {
  impl_->call([this] {
    impl_->mode = Impl::Mode::forward;
    auto resume = std::move(impl_->parked);
    impl_->parked.clear();
    for (auto& fn : resume) fn();
  });
}

void TcpProxy::set_tap(std::function<void(bool up, std::string_view bytes)> tap) {
  impl_->call([this, &tap] { impl_->tap = std::move(tap); });
}

int TcpProxy::connections_accepted() const { return impl_->accepted.load(); }

int TcpProxy::connections_open() const { return impl_->open_count.load(); }

}  // namespace ioc_edge::test
