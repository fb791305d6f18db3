#include "mqtt_sub/subscriber.h"

#include <atomic>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>

#include "core/backoff.h"

namespace ioc_edge {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace mqtt_wire;

struct Subscriber::Impl : std::enable_shared_from_this<Impl> {
  enum class State { Idle, Connecting, Up, Down, Stopped };

  Impl(SubscriberOptions opts, std::shared_ptr<spdlog::logger> l)
      : o(std::move(opts)), log(std::move(l)), backoff(o.reconnect_min, o.reconnect_max), decoder(o.version, o.max_packet) {}

  SubscriberOptions o;
  std::shared_ptr<spdlog::logger> log;
  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::thread thread;
  tcp::resolver resolver{io};
  std::unique_ptr<asio::ssl::context> ssl_ctx;
  std::unique_ptr<tcp::socket> sock;
  std::unique_ptr<asio::ssl::stream<tcp::socket>> tls;
  asio::steady_timer connect_timer{io}, reconnect_timer{io}, ping_timer{io};
  Backoff backoff;
  Decoder decoder;
  std::array<char, 64 * 1024> rbuf{};
  std::string wpending, wwriting;
  bool writing = false;
  State state = State::Idle;
  std::uint64_t generation = 0;  // connections so far; async completions of an older one are ignored

  struct Pending {
    std::uint64_t token;
    int qos;
    std::uint16_t packet_id;
    bool done;
  };
  std::deque<Pending> pending;  // QoS 1/2 publishes of this connection, in arrival order
  std::uint64_t next_token = 1;
  std::vector<Subscription> subs;
  std::map<std::uint16_t, std::vector<std::string>> suback_wait;  // SUBSCRIBE packet id -> its filters
  std::uint16_t next_packet_id = 1;
  std::chrono::steady_clock::time_point last_rx, last_tx;
  std::chrono::milliseconds retry_delay{0};  // set by retry_later: the next reconnect waits at least this

  MessageHandler on_message;
  StateHandler on_state;

  mutable std::mutex stats_mu;
  SubscriberStats st;

  std::string describe() const {
    return std::string(o.tls ? "mqtts://" : "mqtt://") + (o.host.find(':') != std::string::npos ? "[" + o.host + "]" : o.host) +
           ":" + std::to_string(o.port);
  }

  // --- connection ------------------------------------------------------------------------------

  void connect() {
    if (state == State::Stopped) return;
    state = State::Connecting;
    const auto gen = ++generation;
    decoder = Decoder(o.version, o.max_packet);
    pending.clear();
    suback_wait.clear();
    wpending.clear();
    connect_timer.expires_after(o.connect_timeout);
    connect_timer.async_wait([self = shared_from_this(), gen](const boost::system::error_code& ec) {
      if (ec || gen != self->generation || self->state != State::Connecting) return;
      self->fail("no answer within " + std::to_string(self->o.connect_timeout.count()) + " ms (connect_timeout)");
    });
    resolver.async_resolve(o.host, std::to_string(o.port),
                           [self = shared_from_this(), gen](const boost::system::error_code& ec, tcp::resolver::results_type r) {
                             if (gen != self->generation || self->state != State::Connecting) return;
                             if (ec) return self->fail("cannot resolve " + self->o.host + ": " + ec.message());
                             self->tcp_connect(gen, std::move(r));
                           });
  }

  void tcp_connect(std::uint64_t gen, tcp::resolver::results_type endpoints) {
    if (o.tls) {
      std::string why;
      if (!ssl_ctx && !make_ssl_context(why)) return fail(why);
      tls = std::make_unique<asio::ssl::stream<tcp::socket>>(io, *ssl_ctx);
      SSL_set_tlsext_host_name(tls->native_handle(), o.host.c_str());
      if (o.verify_hostname) tls->set_verify_callback(asio::ssl::host_name_verification(o.host));
    } else {
      sock = std::make_unique<tcp::socket>(io);
    }
    auto& lowest = tls ? tls->next_layer() : *sock;
    asio::async_connect(lowest, endpoints, [self = shared_from_this(), gen](const boost::system::error_code& ec, const tcp::endpoint&) {
      if (gen != self->generation || self->state != State::Connecting) return;
      if (ec) return self->fail(ec.message());
      boost::system::error_code ignored;
      (self->tls ? self->tls->next_layer() : *self->sock).set_option(tcp::no_delay(true), ignored);
      if (!self->tls) return self->send_connect(gen);
      self->tls->async_handshake(asio::ssl::stream_base::client, [self, gen](const boost::system::error_code& ec2) {
        if (gen != self->generation || self->state != State::Connecting) return;
        if (ec2) return self->fail("TLS: " + ec2.message());
        self->send_connect(gen);
      });
    });
  }

  bool make_ssl_context(std::string& why) {
    auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
    boost::system::error_code ec;
    ctx->set_verify_mode(asio::ssl::verify_peer, ec);
    if (o.ca_file.empty())
      ctx->set_default_verify_paths(ec);
    else
      ctx->load_verify_file(o.ca_file, ec);
    if (ec) {
      why = "TLS: cannot load CA " + (o.ca_file.empty() ? std::string("(system)") : o.ca_file) + ": " + ec.message();
      return false;
    }
    if (!o.cert_file.empty()) {
      ctx->use_certificate_chain_file(o.cert_file, ec);
      if (!ec) ctx->use_private_key_file(o.key_file, asio::ssl::context::pem, ec);
      if (ec) {
        why = "TLS: cannot load client certificate " + o.cert_file + " / key: " + ec.message();
        return false;
      }
    }
    ssl_ctx = std::move(ctx);
    return true;
  }

  void send_connect(std::uint64_t gen) {
    ConnectOptions c;
    c.version = o.version;
    c.client_id = o.client_id;
    c.clean_start = false;  // invariant 2
    c.keepalive_s = static_cast<std::uint16_t>(std::min<long long>(65535, o.keepalive.count()));
    c.username = o.username;
    c.password = o.password;
    c.session_expiry_s = o.session_expiry_s;
    c.receive_maximum = o.receive_maximum;
    write(encode_connect(c));
    read(gen);
  }

  void read(std::uint64_t gen) {
    auto handler = [self = shared_from_this(), gen](const boost::system::error_code& ec, std::size_t n) {
      if (gen != self->generation || self->state == State::Stopped || self->state == State::Down) return;
      if (ec) return self->fail(ec == asio::error::eof ? "the broker closed the connection" : ec.message());
      self->last_rx = std::chrono::steady_clock::now();
      self->decoder.feed(self->rbuf.data(), n);
      Packet p;
      for (;;) {
        const auto s = self->decoder.next(p);
        if (s == Decoder::Status::NeedMore) break;
        if (s == Decoder::Status::Error) return self->fail("protocol error: " + self->decoder.error());
        self->handle(p);
        if (gen != self->generation || self->state == State::Stopped || self->state == State::Down) return;
      }
      self->read(gen);
    };
    if (tls)
      tls->async_read_some(asio::buffer(rbuf), std::move(handler));
    else
      sock->async_read_some(asio::buffer(rbuf), std::move(handler));
  }

  void write(std::string bytes) {
    wpending += bytes;
    flush();
  }

  void flush() {
    if (writing || wpending.empty() || (!tls && !sock)) return;
    writing = true;
    wwriting.swap(wpending);
    wpending.clear();
    last_tx = std::chrono::steady_clock::now();
    auto done = [self = shared_from_this(), gen = generation](const boost::system::error_code& ec, std::size_t) {
      if (gen != self->generation) return;
      self->writing = false;
      self->wwriting.clear();
      if (self->state == State::Stopped || self->state == State::Down) return;
      if (ec) return self->fail(ec.message());
      self->flush();
    };
    if (tls)
      asio::async_write(*tls, asio::buffer(wwriting), std::move(done));
    else
      asio::async_write(*sock, asio::buffer(wwriting), std::move(done));
  }

  void close_socket() {
    boost::system::error_code ignored;
    if (tls) {
      tls->next_layer().cancel(ignored);
      tls->next_layer().shutdown(tcp::socket::shutdown_both, ignored);
      tls->next_layer().close(ignored);
    }
    if (sock) {
      sock->cancel(ignored);
      sock->shutdown(tcp::socket::shutdown_both, ignored);
      sock->close(ignored);
    }
    resolver.cancel();
    connect_timer.cancel();
    ping_timer.cancel();
    // The closed streams stay alive until their aborted operations complete: those hold no
    // reference to them, and a new connection makes new ones.
    old_tls.push_back(std::move(tls));
    old_socks.push_back(std::move(sock));
    if (old_tls.size() > 4) old_tls.pop_front();
    if (old_socks.size() > 4) old_socks.pop_front();
    writing = false;
    wwriting.clear();
    wpending.clear();
  }
  std::deque<std::unique_ptr<asio::ssl::stream<tcp::socket>>> old_tls;
  std::deque<std::unique_ptr<tcp::socket>> old_socks;

  void fail(const std::string& why) {
    if (state == State::Stopped || state == State::Down) return;
    const bool was_up = state == State::Up;
    close_socket();
    ++generation;  // completions of this connection are stale from now on
    state = State::Down;
    pending.clear();  // invariant 2: not acknowledged, so delivered again
    {
      std::lock_guard lk(stats_mu);
      st.up = false;
    }
    if (on_state) on_state(false, why);
    (void)was_up;
    const auto wait = std::max(backoff.next(), std::exchange(retry_delay, std::chrono::milliseconds(0)));
    reconnect_timer.expires_after(wait);
    reconnect_timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec || self->state != State::Down) return;
      self->connect();
    });
  }

  // --- packets -------------------------------------------------------------------------------

  void handle(Packet& p) {
    switch (p.type) {
      case PacketType::Connack: return on_connack(p.connack);
      case PacketType::Publish: return on_publish(p.publish);
      case PacketType::Pubrel: write(encode_ack(PacketType::Pubcomp, p.ack.packet_id)); return;
      case PacketType::Suback: return on_suback(p.suback);
      case PacketType::Pingresp: return;
      case PacketType::Disconnect:
        return fail("the broker disconnected us: " + reason_name(p.disconnect.reason) +
                    (p.disconnect.reason_string.empty() ? "" : " (" + p.disconnect.reason_string + ")"));
      default:
        if (state != State::Up) return fail(std::string("unexpected ") + std::string(to_string(p.type)) + " before CONNACK");
        return;  // PUBACK/PUBCOMP/UNSUBACK: we publish nothing, ignore
    }
  }

  void on_connack(const Connack& c) {
    if (state != State::Connecting) return fail("a second CONNACK");
    if (c.reason != 0)
      return fail("the broker refused the connection: " + connack_reason(o.version, c.reason) +
                  (c.reason_string.empty() ? "" : " (" + c.reason_string + ")"));
    connect_timer.cancel();
    state = State::Up;
    backoff.reset();
    {
      std::lock_guard lk(stats_mu);
      st.up = true;
      ++st.connects;
    }
    send_subscribe(subs);
    arm_ping(generation);
    if (on_state)
      on_state(true, c.session_present ? "session resumed" : "new session (nothing was kept for client id \"" + o.client_id + "\")");
  }

  void send_subscribe(const std::vector<Subscription>& list) {
    if (list.empty() || state != State::Up) return;
    // A SUBSCRIBE stays well under any broker's packet limit: 100 filters per packet.
    for (std::size_t i = 0; i < list.size(); i += 100) {
      std::vector<Subscription> part(list.begin() + static_cast<std::ptrdiff_t>(i),
                                     list.begin() + static_cast<std::ptrdiff_t>(std::min(list.size(), i + 100)));
      const auto id = take_packet_id();
      auto& names = suback_wait[id];
      for (const auto& s : part) names.push_back(s.filter);
      write(encode_subscribe(o.version, id, part));
    }
  }

  std::uint16_t take_packet_id() {
    const auto id = next_packet_id++;
    if (next_packet_id == 0) next_packet_id = 1;
    return id;
  }

  void on_suback(const Suback& s) {
    auto it = suback_wait.find(s.packet_id);
    if (it == suback_wait.end()) return;
    for (std::size_t i = 0; i < it->second.size(); ++i) {
      const int code = i < s.codes.size() ? s.codes[i] : 0x80;
      if (code >= 0x80)
        log->error("{}: the broker refused the subscription to \"{}\": {}", describe(), it->second[i],
                   o.version == kMqtt5 ? reason_name(code) : std::string("failure (0x80)"));
    }
    suback_wait.erase(it);
  }

  void on_publish(Publish& m) {
    if (state != State::Up) return fail("PUBLISH before CONNACK");
    std::uint64_t token = 0;
    if (m.qos > 0) {
      token = next_token++;
      pending.push_back({token, m.qos, m.packet_id, false});
    }
    {
      std::lock_guard lk(stats_mu);
      ++st.received;
      if (m.dup) ++st.redelivered;
    }
    if (on_message)
      on_message(std::move(m), token);
    else if (token)
      do_ack(token);
  }

  void do_ack(std::uint64_t token) {
    if (state != State::Up || pending.empty() || token < pending.front().token) return;  // invariant 2
    const auto idx = token - pending.front().token;
    if (idx >= pending.size()) return;
    pending[idx].done = true;
    std::uint64_t sent = 0;
    while (!pending.empty() && pending.front().done) {  // invariant 1
      const auto& f = pending.front();
      wpending += encode_ack(f.qos == 2 ? PacketType::Pubrec : PacketType::Puback, f.packet_id);
      pending.pop_front();
      ++sent;
    }
    if (sent) {
      flush();
      std::lock_guard lk(stats_mu);
      st.acknowledged += sent;
    }
  }

  void arm_ping(std::uint64_t gen) {
    if (o.keepalive.count() == 0) return;
    const auto half = std::chrono::duration_cast<std::chrono::milliseconds>(o.keepalive) / 2;
    ping_timer.expires_after(half);
    ping_timer.async_wait([self = shared_from_this(), gen, half](const boost::system::error_code& ec) {
      if (ec || gen != self->generation || self->state != State::Up) return;
      const auto now = std::chrono::steady_clock::now();
      // The broker answers a PINGREQ at once: silence for 1.5 keepalives is a dead link.
      if (now - self->last_rx > self->o.keepalive * 3 / 2)
        return self->fail("no answer from the broker for " + std::to_string(self->o.keepalive.count() * 3 / 2) +
                          " s (keepalive)");
      if (now - self->last_tx >= half || now - self->last_rx >= half) self->write(encode_pingreq());
      self->arm_ping(gen);
    });
  }

  void shutdown() {
    if (state == State::Stopped) return;
    if (state == State::Up) {
      // A clean DISCONNECT: the broker keeps the session (and what we did not acknowledge).
      boost::system::error_code ignored;
      const auto bye = encode_disconnect(o.version);
      if (tls)
        asio::write(*tls, asio::buffer(bye), ignored);
      else if (sock)
        asio::write(*sock, asio::buffer(bye), ignored);
    }
    state = State::Stopped;
    ++generation;
    close_socket();
    reconnect_timer.cancel();
    pending.clear();
    {
      std::lock_guard lk(stats_mu);
      st.up = false;
    }
    work.reset();
  }
};

Subscriber::Subscriber(SubscriberOptions options, std::shared_ptr<spdlog::logger> log)
    : impl_(std::make_shared<Impl>(std::move(options), std::move(log))) {}

Subscriber::~Subscriber() { stop(); }

void Subscriber::set_handlers(MessageHandler on_message, StateHandler on_state) {
  impl_->on_message = std::move(on_message);
  impl_->on_state = std::move(on_state);
}

void Subscriber::subscribe(std::vector<Subscription> subscriptions) {
  asio::post(impl_->io, [w = std::weak_ptr<Impl>(impl_), subscriptions = std::move(subscriptions)] {
    auto self = w.lock();
    if (!self || self->state == Impl::State::Stopped) return;
    for (const auto& s : subscriptions) self->subs.push_back(s);
    self->send_subscribe(subscriptions);
  });
}

void Subscriber::start() {
  if (impl_->thread.joinable()) return;
  impl_->work.emplace(impl_->io.get_executor());
  impl_->thread = std::thread([self = impl_] {
    const auto name = "mqtt-in:" + std::to_string(self->o.port);
    prctl(PR_SET_NAME, name.substr(0, 15).c_str(), 0, 0, 0);
    self->io.run();
  });
  asio::post(impl_->io, [self = impl_] {
    self->last_rx = self->last_tx = std::chrono::steady_clock::now();
    self->connect();
  });
}

void Subscriber::stop() {
  if (!impl_->thread.joinable()) return;
  asio::post(impl_->io, [self = impl_] { self->shutdown(); });
  // Aborted operations complete and find the state Stopped; then run() has no work left.
  impl_->thread.join();
  impl_->io.restart();
  impl_->io.poll();  // anything posted meanwhile (ack after stop) runs into Stopped and ends
}

void Subscriber::ack(std::uint64_t token) {
  if (token == 0) return;  // QoS 0
  asio::post(impl_->io, [w = std::weak_ptr<Impl>(impl_), token] {
    if (auto self = w.lock()) self->do_ack(token);
  });
}

void Subscriber::retry_later(std::uint64_t token, std::chrono::milliseconds delay) {
  asio::post(impl_->io, [w = std::weak_ptr<Impl>(impl_), token, delay] {
    auto self = w.lock();
    if (!self || self->state != Impl::State::Up || self->pending.empty() || token < self->pending.front().token) return;
    self->retry_delay = delay;
    self->fail("a message could not be stored; the broker will deliver it again in " +
               std::to_string(delay.count() / 1000) + " s");
  });
}

SubscriberStats Subscriber::stats() const {
  std::lock_guard lk(impl_->stats_mu);
  return impl_->st;
}

std::string Subscriber::describe() const { return impl_->describe(); }

}  // namespace ioc_edge
