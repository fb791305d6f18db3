// Test certificates and a real Mosquitto broker with mutual TLS.
#include "support.h"

#include <csignal>
#include <filesystem>
#include <sstream>
#include <stdexcept>
#include <string_view>

namespace ioc_edge::test {
namespace {

constexpr auto kStartTimeout = std::chrono::milliseconds(10000);
constexpr auto kStopGrace = std::chrono::milliseconds(10000);
constexpr int kPortAttempts = 3;

// Mosquitto logs "mosquitto version 2.0.11 running" once its listeners are open (log_type
// information); the log file is appended to across restarts, so we count these lines.
std::size_t count_running_lines(const std::string& log) {
  std::size_t n = 0;
  std::size_t begin = 0;
  while (begin < log.size()) {
    std::size_t end = log.find('\n', begin);
    if (end == std::string::npos) break;  // an incomplete last line is not counted yet
    const std::string_view line(log.data() + begin, end - begin);
    if (line.find("mosquitto version ") != std::string_view::npos && line.ends_with(" running")) ++n;
    begin = end + 1;
  }
  return n;
}

}  // namespace

Certs make_certs(const std::string& dir) {
  std::filesystem::create_directories(dir);
  const std::string log = dir + "/make-certs.log";
  const int code =
      run_to_exit({"bash", repo_root() + "/scripts/make-certs.sh", dir}, log,
                  std::chrono::milliseconds(60000));
  if (code != 0) {
    throw std::runtime_error("scripts/make-certs.sh " + dir + " exited with " +
                             std::to_string(code) + ":\n" + read_file(log));
  }
  Certs c;
  c.dir = dir;
  c.ca = dir + "/ca.pem";
  c.client_cert = dir + "/client.pem";
  c.client_key = dir + "/client.key";
  c.server_cert = dir + "/server.pem";
  c.server_key = dir + "/server.key";
  c.other_ca = dir + "/other-ca.pem";
  c.other_server_cert = dir + "/other-server.pem";
  c.other_server_key = dir + "/other-server.key";
  c.wronghost_server_cert = dir + "/wronghost-server.pem";
  c.wronghost_server_key = dir + "/wronghost-server.key";
  c.weakkey_server_cert = dir + "/weakkey-server.pem";
  c.weakkey_server_key = dir + "/weakkey-server.key";
  c.office_a_cert = dir + "/office-a.pem";
  c.office_a_key = dir + "/office-a.key";
  c.office_b_cert = dir + "/office-b.pem";
  c.office_b_key = dir + "/office-b.key";
  c.receiver_cert = dir + "/receiver.pem";
  c.receiver_key = dir + "/receiver.key";
  for (const std::string* f : {&c.ca, &c.client_cert, &c.client_key, &c.server_cert,
                               &c.server_key, &c.other_ca, &c.other_server_cert,
                               &c.other_server_key, &c.wronghost_server_cert,
                               &c.wronghost_server_key, &c.weakkey_server_cert, &c.weakkey_server_key,
                               &c.office_a_cert, &c.office_a_key, &c.office_b_cert, &c.office_b_key,
                               &c.receiver_cert, &c.receiver_key}) {
    if (!std::filesystem::exists(*f)) {
      throw std::runtime_error("scripts/make-certs.sh did not write " + *f);
    }
  }
  return c;
}

Mosquitto::Mosquitto(const Certs& certs, const std::string& workdir, Options opts)
    : certs_(certs),
      workdir_(workdir),
      config_file_(workdir + "/mosquitto.conf"),
      log_file_(workdir + "/mosquitto.log"),
      opts_(std::move(opts)) {
  if (opts_.server_cert.empty()) opts_.server_cert = certs_.server_cert;
  if (opts_.server_key.empty()) opts_.server_key = certs_.server_key;
  std::filesystem::create_directories(workdir_);

  // free_tcp_port() can race with another process; only a lost race is worth another port.
  std::string why;
  for (int attempt = 1; attempt <= kPortAttempts; ++attempt) {
    port_ = free_tcp_port();
    if (try_start(why)) return;
    if (why.find("Address already in use") == std::string::npos) break;
  }
  throw std::runtime_error(why);
}

Mosquitto::~Mosquitto() {
  try {
    stop();
  } catch (...) {
    // Process's destructor still kills and reaps it.
  }
}

void Mosquitto::write_config() {
  std::ostringstream c;
  c << "# Written by tests/support/mosquitto.cpp\n"
    << "per_listener_settings false\n"
    << "user root\n"
    << "persistence false\n"
    << "allow_anonymous true\n"
    << "max_queued_messages 100000\n"
    // No message_size_limit: 0 (no limit) is the default, and 2.0 logs a deprecation note for it.
    << "log_dest stderr\n"
    << "log_type error\n"
    << "log_type warning\n"
    << "log_type notice\n"
    << "log_type information\n"
    << "log_timestamp true\n"
    << "log_timestamp_format %Y-%m-%dT%H:%M:%S\n"
    << "\n"
    << "listener " << port_ << " 127.0.0.1\n"
    << "cafile " << certs_.ca << "\n"
    << "certfile " << opts_.server_cert << "\n"
    << "keyfile " << opts_.server_key << "\n"
    << "tls_version tlsv1.2\n"
    << opts_.extra_config << "\n";
  if (opts_.require_client_cert) {
    c << "require_certificate true\n"
      << "use_identity_as_username true\n";
  } else {
    // use_identity_as_username would refuse every client without a certificate.
    c << "require_certificate false\n";
  }
  write_file(config_file_, c.str());
}

bool Mosquitto::try_start(std::string& why) {
  write_config();
  const std::size_t runs_before = count_running_lines(log());
  process_ = std::make_unique<Process>(std::vector<std::string>{"mosquitto", "-c", config_file_},
                                       log_file_);
  // "running" in the log proves it is this broker that listens, not whoever else may hold the port.
  const bool up = wait_until(
      [&] {
        if (!process_->running()) return true;
        return count_running_lines(log()) > runs_before && tcp_port_open(port_);
      },
      kStartTimeout);
  if (up && process_->running()) return true;

  std::string state;
  if (process_->running()) {
    process_->stop(kStopGrace);
    state = "did not open its port within 10 s";
  } else {
    state = "exited with " + std::to_string(process_->exit_code().value_or(-1));
  }
  why = "mosquitto on 127.0.0.1:" + std::to_string(port_) + " " + state + "; its log (" +
        log_file_ + "):\n" + log();
  return false;
}

void Mosquitto::start() {
  if (running()) return;
  std::string why;
  if (!try_start(why)) throw std::runtime_error(why);
}

void Mosquitto::stop() {
  if (process_ && process_->running()) process_->stop(kStopGrace);
}

void Mosquitto::kill() {
  if (process_ && process_->running()) {
    process_->signal(SIGKILL);
    process_->wait_exit(kStopGrace);
  }
}

void Mosquitto::reload() {
  write_config();
  if (!process_ || !process_->running()) return;
  const auto count = [&] {
    const auto text = log();
    std::size_t n = 0;
    for (auto at = text.find("Reloading config."); at != std::string::npos; at = text.find("Reloading config.", at + 1)) ++n;
    return n;
  };
  const auto before = count();
  process_->signal(SIGHUP);
  // The broker reloads on its own loop; only after it logged so does the new ACL apply.
  if (!wait_until([&] { return count() > before; }, kStartTimeout))
    throw std::runtime_error("mosquitto did not reload its configuration within 10 s:\n" + log());
}

bool Mosquitto::running() { return process_ && process_->running(); }

std::string Mosquitto::log() const {
  try {
    return read_file(log_file_);
  } catch (const std::exception&) {
    return {};
  }
}

}  // namespace ioc_edge::test
