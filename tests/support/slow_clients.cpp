// Slow HTTP clients: see slow_clients.h.
#include "support/slow_clients.h"

#include <array>
#include <future>
#include <optional>
#include <string_view>
#include <thread>
#include <vector>

#include <pthread.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

namespace ioc_edge::test {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

namespace {
constexpr std::string_view kRequest =
    "GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow-client\r\nX-Padding: "
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
}  // namespace

struct SlowClients::Impl {
  // One client slot. Its handlers run on the client thread only; `gen` tells the handlers of a
  // connection that has since been closed and reopened to do nothing.
  struct Conn {
    explicit Conn(asio::io_context& io) : socket(io), timer(io) {}
    tcp::socket socket;
    asio::steady_timer timer;
    std::uint64_t gen = 0;
    std::size_t sent = 0;
    bool ever_connected = false;
    std::array<char, 512> rbuf{};
  };

  Impl(int port, int count, std::chrono::milliseconds d, std::chrono::milliseconds r)
      : peer(asio::ip::address_v4::loopback(), static_cast<unsigned short>(port)), drip(d), reconnect_delay(r) {
    for (int i = 0; i < count; ++i) conns.push_back(std::make_unique<Conn>(io));
    asio::post(io, [this] {
      for (auto& c : conns) connect(*c);
    });
    thread = std::thread([this] {
      pthread_setname_np(pthread_self(), "slow-clients");
      io.run();
    });
  }

  void connect(Conn& c) {
    if (stopping) return;
    const auto gen = ++c.gen;
    error_code ignored;
    c.socket.close(ignored);
    c.sent = 0;
    c.socket.async_connect(peer, [this, &c, gen](const error_code& ec) {
      if (stopping || gen != c.gen) return;
      if (ec) {
        ++connect_failures;
        later(c, gen);
        return;
      }
      ++connects;
      ++open;
      if (!c.ever_connected) {
        c.ever_connected = true;
        ++slots_connected;
      }
      read(c, gen);
      arm_drip(c, gen);
    });
  }

  // Reopens the connection after reconnect_delay.
  void later(Conn& c, std::uint64_t gen) {
    c.timer.expires_after(reconnect_delay);
    c.timer.async_wait([this, &c, gen](const error_code& ec) {
      if (ec || stopping || gen != c.gen) return;
      connect(c);
    });
  }

  void read(Conn& c, std::uint64_t gen) {
    c.socket.async_read_some(asio::buffer(c.rbuf), [this, &c, gen](const error_code& ec, std::size_t n) {
      if (stopping || gen != c.gen) return;
      bytes_received += n;
      if (!ec) {
        read(c, gen);
        return;
      }
      // The server closed it: close our end and come back later (a new generation).
      ++closed_by_server;
      --open;
      error_code ignored;
      c.socket.close(ignored);
      ++c.gen;
      later(c, c.gen);
    });
  }

  void arm_drip(Conn& c, std::uint64_t gen) {
    c.timer.expires_after(drip);
    c.timer.async_wait([this, &c, gen](const error_code& ec) {
      if (ec || stopping || gen != c.gen || !c.socket.is_open()) return;
      // One byte, never the last one: the request stays incomplete.
      const std::size_t i = c.sent++ % (kRequest.size() - 1);
      asio::async_write(c.socket, asio::buffer(kRequest.data() + i, 1), [](const error_code&, std::size_t) {});
      arm_drip(c, gen);
    });
  }

  void stop() {
    if (!thread.joinable()) return;
    std::promise<void> done;
    asio::post(io, [this, &done] {
      stopping = true;
      for (auto& c : conns) {
        error_code ignored;
        c->socket.close(ignored);
        c->timer.cancel();
      }
      open = 0;
      done.set_value();
    });
    done.get_future().wait();
    io.stop();
    thread.join();
  }

  asio::io_context io;
  tcp::endpoint peer;
  std::chrono::milliseconds drip, reconnect_delay;
  std::vector<std::unique_ptr<Conn>> conns;
  bool stopping = false;  // client thread only
  std::atomic<std::uint64_t> connects{0}, open{0}, slots_connected{0}, closed_by_server{0}, connect_failures{0},
      bytes_received{0};
  std::thread thread;
};

SlowClients::SlowClients(int port, int count, std::chrono::milliseconds drip, std::chrono::milliseconds reconnect_delay)
    : impl_(std::make_unique<Impl>(port, count, drip, reconnect_delay)) {}

SlowClients::~SlowClients() { stop(); }

void SlowClients::stop() { impl_->stop(); }
std::uint64_t SlowClients::connects() const { return impl_->connects; }
std::uint64_t SlowClients::open() const { return impl_->open; }
std::uint64_t SlowClients::slots_connected() const { return impl_->slots_connected; }
std::uint64_t SlowClients::closed_by_server() const { return impl_->closed_by_server; }
std::uint64_t SlowClients::connect_failures() const { return impl_->connect_failures; }
std::uint64_t SlowClients::bytes_received() const { return impl_->bytes_received; }

}  // namespace ioc_edge::test
