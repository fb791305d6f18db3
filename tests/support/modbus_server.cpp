// ModbusTcpServer and ModbusRtuServer: libmodbus 3.1.6 servers for the tests, each on its own thread.
//
// Design note
//   ModbusTcpServer has two states:
//     listening  a listening socket and the "modbus-tcp" thread exist; the thread owns every
//                accepted connection and one modbus_t, used only as a framer (modbus_set_socket()
//                before each modbus_receive()/modbus_reply() on a connection; never connected).
//     stopped    neither exists; a connect to the port is refused.
//   stop() wakes the thread (eventfd), joins it (the thread closes the connections on its way
//   out), then closes the listening socket; start() binds the same port again and starts a new
//   thread. Both run under control_mu, so they never interleave.
//   Invariants:
//     1. Connections and the framer modbus_t are touched only by the server thread.
//     2. The tables are touched only under Tables::mu (setters on the caller's thread,
//        modbus_reply() on the server thread).
//     3. Every descriptor given to libmodbus is below FD_SETSIZE (libmodbus uses select()): a
//        connection that would get a larger one is closed at once.
//     4. Nothing blocks the loop for long: a partial frame waits at most the byte timeout (100 ms),
//        a reply to a client that does not read at most kSendTimeout, libmodbus's "sleep then
//        flush" after an ILLEGAL_DATA_VALUE at most the response timeout (1 ms here).
//   Fault switches (only_unit, exception, silent) are atomics read once per request.
//
//   ModbusRtuServer: socat is a child Process; the "modbus-rtu" thread owns the connected RTU
//   modbus_t and polls it together with a wake eventfd. libmodbus 3.1.6's RTU server, after a
//   request for another unit, treats the next frame as that unit's answer and ignores it (a real
//   multi-drop bus); nobody else answers on a PTY, so we let that window pass at once (one more
//   modbus_receive() bounded by the 1 ms response timeout) instead of losing the next request.
//
// Capacity, measured on the project's 2-core machine (clients in the same process, libmodbus,
// loopback, reads of 100 holding registers, -O2): one server thread sustains ~83k requests/s with
// 100 connections reading flat out (~86k with 10, ~45k with one synchronous client); 100
// connections paced at one read per second each see at most ~0.8 ms per read. The benchmark's
// 100 devices x 100 registers per second is ~0.1% of that.
#include "modbus_peers.h"

#include "support.h"

#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <thread>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include <modbus/modbus.h>

namespace ioc_edge::test {
namespace {

constexpr auto kListenRetry = std::chrono::milliseconds(5000);
constexpr auto kStartTimeout = std::chrono::milliseconds(10000);
constexpr int kBacklog = 256;
constexpr timeval kSendTimeout{2, 0};
constexpr std::uint32_t kByteTimeoutUs = 100000;
// libmodbus sleeps this long before flushing after some exception replies (and, for RTU, waits
// this long for another unit's answer); a server has no use for a longer one.
constexpr std::uint32_t kServerResponseTimeoutUs = 1000;

std::string errno_text(int err) {
  return err >= MODBUS_ENOBASE ? modbus_strerror(err) : std::strerror(err);
}

std::runtime_error modbus_error(const std::string& what) {
  return std::runtime_error(what + ": " + errno_text(errno));
}

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

int make_eventfd() {
  const int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) throw modbus_error("eventfd");
  return fd;
}

void signal_eventfd(int fd) {
  const std::uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = ::write(fd, &one, sizeof one);
}

void drain_eventfd(int fd) {
  std::uint64_t value = 0;
  [[maybe_unused]] const ssize_t n = ::read(fd, &value, sizeof value);
}

void name_this_thread(const char* name) { ::pthread_setname_np(::pthread_self(), name); }

// The four tables of a server behind one mutex (invariant 2).
class Tables {
 public:
  Tables()
      : map_(modbus_mapping_new(kModbusTableSize, kModbusTableSize, kModbusTableSize,
                                kModbusTableSize)) {
    if (map_ == nullptr) throw modbus_error("modbus_mapping_new");
  }
  ~Tables() { modbus_mapping_free(map_); }
  Tables(const Tables&) = delete;
  Tables& operator=(const Tables&) = delete;

  void set_holding(int address, const std::vector<std::uint16_t>& values) {
    set(map_->tab_registers, "holding", address, values);
  }
  void set_input(int address, const std::vector<std::uint16_t>& values) {
    set(map_->tab_input_registers, "input", address, values);
  }
  void set_coils(int address, const std::vector<bool>& values) {
    set(map_->tab_bits, "coils", address, values);
  }
  void set_discrete(int address, const std::vector<bool>& values) {
    set(map_->tab_input_bits, "discrete", address, values);
  }

  // modbus_reply() under the lock; its result (-1 if sending failed).
  int reply(modbus_t* ctx, const std::uint8_t* req, int req_length) {
    std::lock_guard lock(mu_);
    return modbus_reply(ctx, req, req_length, map_);
  }

 private:
  template <typename T, typename V>
  void set(T* table, const char* name, int address, const std::vector<V>& values) {
    if (address < 0 || values.size() > static_cast<std::size_t>(kModbusTableSize) ||
        address > kModbusTableSize - static_cast<int>(values.size())) {
      throw std::out_of_range(std::string("Modbus test server: ") + name + " " +
                              std::to_string(address) + " + " + std::to_string(values.size()) +
                              " values do not fit in 0.." + std::to_string(kModbusTableSize - 1));
    }
    std::lock_guard lock(mu_);
    for (std::size_t i = 0; i < values.size(); ++i) {
      table[static_cast<std::size_t>(address) + i] = static_cast<T>(values[i]);
    }
  }

  std::mutex mu_;
  modbus_mapping_t* map_;
};

// A non-blocking listening socket on 127.0.0.1:port (0: the kernel picks), or -1 with `why`.
int listen_on(int port, std::string& why) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    why = std::string("socket: ") + std::strerror(errno);
    return -1;
  }
  const int on = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    why = "bind 127.0.0.1:" + std::to_string(port) + ": " + std::strerror(errno);
    ::close(fd);
    return -1;
  }
  if (::listen(fd, kBacklog) != 0) {
    why = std::string("listen: ") + std::strerror(errno);
    ::close(fd);
    return -1;
  }
  return fd;
}

int bound_port(int fd) {
  sockaddr_in addr{};
  socklen_t len = sizeof addr;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw modbus_error("getsockname");
  }
  return ntohs(addr.sin_port);
}

}  // namespace

// --- TCP ----------------------------------------------------------------------------------------

struct ModbusTcpServer::Impl {
  Tables tables;
  std::atomic<int> only_unit{-1};
  std::atomic<int> exception_code{0};
  std::atomic<bool> silent{false};
  std::atomic<std::uint64_t> requests{0};
  std::array<std::atomic<std::uint64_t>, 256> by_function{};
  std::atomic<std::uint64_t> connections{0};

  std::mutex control_mu;  // serialises start() and stop()
  int port = 0;
  int listen_fd = -1;
  int wake_fd = -1;
  std::thread thread;

  Impl() : wake_fd(make_eventfd()) {}
  ~Impl() {
    stop();  // also when the constructor throws after starting the thread
    close_fd(wake_fd);
  }

  void start_thread(int fd) {
    listen_fd = fd;
    drain_eventfd(wake_fd);
    thread = std::thread([this, fd] { run(fd); });
  }

  void stop() {
    std::lock_guard lock(control_mu);
    if (!thread.joinable()) return;
    signal_eventfd(wake_fd);
    thread.join();
    close_fd(listen_fd);
  }

  void run(int lfd);
  void accept_all(int lfd, std::vector<int>& clients);
  bool serve_one(modbus_t* ctx, int fd);
};

void ModbusTcpServer::Impl::run(int lfd) {
  name_this_thread("modbus-tcp");
  // A framer only: each connection's socket is lent to it with modbus_set_socket() (invariant 1).
  modbus_t* ctx = modbus_new_tcp("127.0.0.1", port);
  if (ctx == nullptr) std::abort();  // only fails on out-of-memory
  modbus_set_byte_timeout(ctx, 0, kByteTimeoutUs);
  modbus_set_response_timeout(ctx, 0, kServerResponseTimeoutUs);

  std::vector<int> clients;
  std::vector<pollfd> fds;
  for (;;) {
    fds.clear();
    fds.push_back({wake_fd, POLLIN, 0});
    fds.push_back({lfd, POLLIN, 0});
    for (const int c : clients) fds.push_back({c, POLLIN, 0});
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      break;  // cannot happen with valid descriptors; the thread ends, stop() still works
    }
    if (fds[0].revents != 0) break;
    std::vector<int> keep;
    keep.reserve(clients.size());
    for (std::size_t i = 2; i < fds.size(); ++i) {
      const int fd = fds[i].fd;
      if (fds[i].revents == 0 || serve_one(ctx, fd)) {
        keep.push_back(fd);
      } else {
        ::close(fd);
      }
    }
    clients.swap(keep);
    if ((fds[1].revents & POLLIN) != 0) accept_all(lfd, clients);
  }
  modbus_set_socket(ctx, -1);  // modbus_free() does not close it, but make sure
  modbus_free(ctx);
  for (const int c : clients) ::close(c);
}

void ModbusTcpServer::Impl::accept_all(int lfd, std::vector<int>& clients) {
  for (;;) {
    const int fd = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN, or a connection reset before we took it
    if (fd >= FD_SETSIZE) {  // invariant 3
      ::close(fd);
      continue;
    }
    const int on = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &kSendTimeout, sizeof kSendTimeout);
    connections.fetch_add(1, std::memory_order_relaxed);
    clients.push_back(fd);
  }
}

// Reads and answers one request on fd; false if the connection should be closed (the peer closed
// it, sent what libmodbus cannot parse, stalled inside a frame, or does not take our reply).
bool ModbusTcpServer::Impl::serve_one(modbus_t* ctx, int fd) {
  std::uint8_t query[MODBUS_TCP_MAX_ADU_LENGTH];
  modbus_set_socket(ctx, fd);
  const int len = modbus_receive(ctx, query);
  if (len < 0) return false;
  if (len == 0) return true;
  // TCP: 7-byte MBAP header, unit id at [6], function code at [7] (len >= 8 once received).
  requests.fetch_add(1, std::memory_order_relaxed);
  by_function[query[7]].fetch_add(1, std::memory_order_relaxed);
  if (silent.load()) return true;
  const int unit = only_unit.load();
  if (unit >= 0 && query[6] != unit) return true;
  const int code = exception_code.load();
  const int rc = code != 0 ? modbus_reply_exception(ctx, query, static_cast<unsigned>(code))
                           : tables.reply(ctx, query, len);
  return rc >= 0;
}

ModbusTcpServer::ModbusTcpServer() : impl_(std::make_unique<Impl>()) {
  std::string why;
  const int fd = listen_on(0, why);
  if (fd < 0) throw std::runtime_error("ModbusTcpServer: " + why);
  impl_->port = bound_port(fd);
  {
    std::lock_guard lock(impl_->control_mu);
    impl_->start_thread(fd);
  }
  // The readiness probe connects before the server thread accepts it: wait for the accept too,
  // so that connections() counts it from the first call on (tests compare differences).
  if (!wait_until([&] { return tcp_port_open(impl_->port); }, kStartTimeout) ||
      !wait_until([&] { return impl_->connections.load() >= 1; }, kStartTimeout)) {
    throw std::runtime_error("ModbusTcpServer: 127.0.0.1:" + std::to_string(impl_->port) +
                             " does not accept connections");
  }
}

ModbusTcpServer::~ModbusTcpServer() = default;

int ModbusTcpServer::port() const { return impl_->port; }

void ModbusTcpServer::set_holding(int address, std::vector<std::uint16_t> values) {
  impl_->tables.set_holding(address, values);
}
void ModbusTcpServer::set_input(int address, std::vector<std::uint16_t> values) {
  impl_->tables.set_input(address, values);
}
void ModbusTcpServer::set_coils(int address, std::vector<bool> values) {
  impl_->tables.set_coils(address, values);
}
void ModbusTcpServer::set_discrete(int address, std::vector<bool> values) {
  impl_->tables.set_discrete(address, values);
}

void ModbusTcpServer::only_unit(int unit_id) {
  if (unit_id < -1 || unit_id > 255) {
    throw std::invalid_argument("ModbusTcpServer::only_unit: " + std::to_string(unit_id) +
                                " is not -1 or 0..255");
  }
  impl_->only_unit.store(unit_id);
}

void ModbusTcpServer::fail_with_exception(int code) {
  if (code < 0 || code >= MODBUS_EXCEPTION_MAX) {
    throw std::invalid_argument("ModbusTcpServer::fail_with_exception: " + std::to_string(code) +
                                " is not 0..." + std::to_string(MODBUS_EXCEPTION_MAX - 1));
  }
  impl_->exception_code.store(code);
}

void ModbusTcpServer::set_silent(bool silent) { impl_->silent.store(silent); }

void ModbusTcpServer::stop() { impl_->stop(); }

void ModbusTcpServer::start() {
  std::lock_guard lock(impl_->control_mu);
  if (impl_->thread.joinable()) return;
  // Our own closed connections sit in TIME_WAIT (SO_REUSEADDR covers them); retry for the rare
  // case that someone else took the port meanwhile and lets it go again.
  int fd = -1;
  std::string why;
  wait_until([&] { return (fd = listen_on(impl_->port, why)) >= 0; }, kListenRetry,
             std::chrono::milliseconds(50));
  if (fd < 0) throw std::runtime_error("ModbusTcpServer::start: for 5 s: " + why);
  impl_->start_thread(fd);
}

std::uint64_t ModbusTcpServer::requests() const { return impl_->requests.load(); }

std::vector<std::uint64_t> ModbusTcpServer::requests_by_function() const {
  std::vector<std::uint64_t> out;
  out.reserve(impl_->by_function.size());
  for (const auto& n : impl_->by_function) out.push_back(n.load());
  return out;
}

std::uint64_t ModbusTcpServer::connections() const { return impl_->connections.load(); }

// --- RTU ----------------------------------------------------------------------------------------

struct ModbusRtuServer::Impl {
  std::string dir, server_path, client_path;
  Tables tables;
  std::atomic<std::uint64_t> requests{0};
  std::unique_ptr<Process> socat;
  modbus_t* ctx = nullptr;
  int wake_fd = -1;
  std::thread thread;

  explicit Impl(const std::string& d)
      : dir(d), server_path(d + "/ttySERVER"), client_path(d + "/ttyCLIENT"),
        wake_fd(make_eventfd()) {}

  ~Impl() {
    if (thread.joinable()) {
      signal_eventfd(wake_fd);
      thread.join();
    }
    if (ctx != nullptr) {
      modbus_close(ctx);
      modbus_free(ctx);
    }
    socat.reset();  // SIGKILL to socat's group and reap
    close_fd(wake_fd);
  }

  std::string socat_log() const { return socat ? socat->log() : std::string(); }

  void run();
};

void ModbusRtuServer::Impl::run() {
  name_this_thread("modbus-rtu");
  const int fd = modbus_get_socket(ctx);
  std::uint8_t query[MODBUS_RTU_MAX_ADU_LENGTH];
  for (;;) {
    pollfd fds[2] = {{wake_fd, POLLIN, 0}, {fd, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[0].revents != 0) return;
    // socat (the PTY master) is gone: nothing will ever arrive again, and reads would fail at
    // once forever (EIO), so stop rather than spin.
    if ((fds[1].revents & (POLLHUP | POLLERR | POLLNVAL)) != 0) return;
    const int len = modbus_receive(ctx, query);
    if (len < 0) {
      modbus_flush(ctx);  // bad CRC or a partial frame: drop it, as a device would
      continue;
    }
    if (len == 0) {
      // For another unit: let the window for its answer pass now (see the design note).
      modbus_receive(ctx, query);
      continue;
    }
    requests.fetch_add(1, std::memory_order_relaxed);
    tables.reply(ctx, query, len);  // a reply lost on a serial line is the client's timeout
  }
}

ModbusRtuServer::ModbusRtuServer(const std::string& dir, int unit_id, int baud)
    : impl_(std::make_unique<Impl>(dir)) {
  Impl& m = *impl_;
  std::filesystem::create_directories(dir);
  std::filesystem::remove(m.server_path);  // stale links from an earlier run
  std::filesystem::remove(m.client_path);
  m.socat = std::make_unique<Process>(
      std::vector<std::string>{"socat", "-d", "-d", "pty,raw,echo=0,link=" + m.server_path,
                               "pty,raw,echo=0,link=" + m.client_path},
      dir + "/socat.log");
  const bool up = wait_until(
      [&] {
        if (!m.socat->running()) return true;
        return std::filesystem::exists(m.server_path) && std::filesystem::exists(m.client_path) &&
               m.socat->log().find("starting data transfer loop") != std::string::npos;
      },
      kStartTimeout);
  if (!up || !m.socat->running()) {
    throw std::runtime_error("ModbusRtuServer: socat " +
                             std::string(up ? "exited" : "did not open the PTYs within 10 s") +
                             "; its log:\n" + m.socat_log());
  }

  m.ctx = modbus_new_rtu(m.server_path.c_str(), baud, 'N', 8, 1);
  if (m.ctx == nullptr) throw modbus_error("ModbusRtuServer: modbus_new_rtu " + m.server_path);
  if (modbus_set_slave(m.ctx, unit_id) != 0) {
    throw modbus_error("ModbusRtuServer: unit id " + std::to_string(unit_id));
  }
  modbus_set_byte_timeout(m.ctx, 0, kByteTimeoutUs);
  modbus_set_response_timeout(m.ctx, 0, kServerResponseTimeoutUs);
  if (modbus_connect(m.ctx) != 0) {
    const std::string why = errno_text(errno);
    throw std::runtime_error("ModbusRtuServer: cannot open " + m.server_path + ": " + why +
                             "; socat's log:\n" + m.socat_log());
  }
  m.thread = std::thread([&m] { m.run(); });
}

ModbusRtuServer::~ModbusRtuServer() = default;

std::string ModbusRtuServer::client_path() const { return impl_->client_path; }

void ModbusRtuServer::set_holding(int address, std::vector<std::uint16_t> values) {
  impl_->tables.set_holding(address, values);
}
void ModbusRtuServer::set_input(int address, std::vector<std::uint16_t> values) {
  impl_->tables.set_input(address, values);
}
void ModbusRtuServer::set_coils(int address, std::vector<bool> values) {
  impl_->tables.set_coils(address, values);
}
void ModbusRtuServer::set_discrete(int address, std::vector<bool> values) {
  impl_->tables.set_discrete(address, values);
}

std::uint64_t ModbusRtuServer::requests() const { return impl_->requests.load(); }

}  // namespace ioc_edge::test
