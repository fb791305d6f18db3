// PymodbusServer: tests/support/pymodbus_server.py as a child process, the independent Modbus peer.
#include "modbus_peers.h"

#include "support.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include <modbus/modbus.h>

namespace ioc_edge::test {
namespace {

constexpr auto kStartTimeout = std::chrono::milliseconds(20000);  // Python imports are slow under load
constexpr auto kStopGrace = std::chrono::milliseconds(5000);
constexpr int kPortAttempts = 3;

// True once a libmodbus read of unit 1 gets an answer (values or a Modbus exception): the server
// has bound its port and its Modbus stack works, not merely its socket.
bool answers_modbus(int port) {
  modbus_t* ctx = modbus_new_tcp("127.0.0.1", port);
  if (ctx == nullptr) return false;
  modbus_set_response_timeout(ctx, 1, 0);
  bool ok = false;
  if (modbus_connect(ctx) == 0) {
    modbus_set_slave(ctx, 1);
    std::uint16_t value = 0;
    const int rc = modbus_read_registers(ctx, 0, 1, &value);
    ok = rc == 1 || (errno > MODBUS_ENOBASE && errno < MODBUS_ENOBASE + MODBUS_EXCEPTION_MAX);
    modbus_close(ctx);
  }
  modbus_free(ctx);
  return ok;
}

}  // namespace

struct PymodbusServer::Impl {
  std::string dir, registers_file, log_file;
  int port = 0;
  std::unique_ptr<Process> process;

  // Starts the server on `port`; false with `why` if it exits or does not answer in time.
  bool try_start(std::string& why) {
    process = std::make_unique<Process>(
        std::vector<std::string>{"/usr/bin/python3", repo_root() + "/tests/support/pymodbus_server.py",
                                 "--port", std::to_string(port), "--registers", registers_file},
        log_file);
    // The log line proves that it is this server on the port, not whoever else may hold it.
    const std::string serving = "serving units 1 and 2 on 127.0.0.1:" + std::to_string(port) + "\n";
    const bool done = wait_until(
        [&] {
          if (!process->running()) return true;
          return read_log().find(serving) != std::string::npos && answers_modbus(port);
        },
        kStartTimeout, std::chrono::milliseconds(100));
    if (done && process->running()) return true;
    std::string state;
    if (process->running()) {
      process->stop(kStopGrace);
      state = "did not answer a Modbus read within 20 s";
    } else {
      state = "exited with " + std::to_string(process->exit_code().value_or(-1));
    }
    why = "pymodbus on 127.0.0.1:" + std::to_string(port) + " " + state + "; its log (" +
          log_file + "):\n" + read_log();
    return false;
  }

  std::string read_log() const {
    return std::filesystem::exists(log_file) ? read_file(log_file) : std::string();
  }
};

PymodbusServer::PymodbusServer(const std::string& dir, const std::string& registers_json)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.dir = dir;
  m.registers_file = dir + "/pymodbus_registers.json";
  m.log_file = dir + "/pymodbus.log";
  std::filesystem::create_directories(dir);
  write_file(m.registers_file, registers_json);

  // free_tcp_port() can race with another process; only a lost race is worth another port.
  std::string why;
  for (int attempt = 1; attempt <= kPortAttempts; ++attempt) {
    m.port = free_tcp_port();
    if (m.try_start(why)) return;
    if (why.find("address already in use") == std::string::npos) break;
  }
  throw std::runtime_error(why);
}

PymodbusServer::~PymodbusServer() {
  try {
    if (impl_->process) impl_->process->stop(kStopGrace);
  } catch (...) {
    // Process's destructor still kills and reaps it.
  }
}

int PymodbusServer::port() const { return impl_->port; }

std::string PymodbusServer::log() const { return impl_->read_log(); }

}  // namespace ioc_edge::test
