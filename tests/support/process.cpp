// Child processes for tests: posix_spawnp, own process group, output appended to a log file.
#include "support.h"

#include <csignal>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string_view>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace ioc_edge::test {
namespace {

// posix_spawn's attribute and file-action objects, destroyed on every path out.
class SpawnSetup {
 public:
  SpawnSetup() {
    if (int rc = ::posix_spawn_file_actions_init(&actions_); rc != 0) fail("file_actions_init", rc);
    if (int rc = ::posix_spawnattr_init(&attr_); rc != 0) {
      ::posix_spawn_file_actions_destroy(&actions_);
      fail("spawnattr_init", rc);
    }
  }
  ~SpawnSetup() {
    ::posix_spawnattr_destroy(&attr_);
    ::posix_spawn_file_actions_destroy(&actions_);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;

  // stdin from /dev/null, stdout and stderr to log_fd, nothing else inherited; a new process group;
  // default signal mask and dispositions (the test runner or Paho may ignore SIGPIPE, Catch2 may
  // have handlers; a child must not inherit either).
  void configure(int log_fd) {
    check("addopen", ::posix_spawn_file_actions_addopen(&actions_, STDIN_FILENO, "/dev/null",
                                                        O_RDONLY, 0));
    check("adddup2", ::posix_spawn_file_actions_adddup2(&actions_, log_fd, STDOUT_FILENO));
    check("adddup2", ::posix_spawn_file_actions_adddup2(&actions_, log_fd, STDERR_FILENO));
    check("addclosefrom", ::posix_spawn_file_actions_addclosefrom_np(&actions_, 3));

    check("setpgroup", ::posix_spawnattr_setpgroup(&attr_, 0));
    sigset_t none;
    sigemptyset(&none);
    check("setsigmask", ::posix_spawnattr_setsigmask(&attr_, &none));
    sigset_t all;
    sigfillset(&all);
    sigdelset(&all, SIGKILL);
    sigdelset(&all, SIGSTOP);
    check("setsigdefault", ::posix_spawnattr_setsigdefault(&attr_, &all));
    check("setflags", ::posix_spawnattr_setflags(
                          &attr_, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF));
  }

  const posix_spawn_file_actions_t* actions() const { return &actions_; }
  const posix_spawnattr_t* attr() const { return &attr_; }

 private:
  [[noreturn]] static void fail(const char* what, int rc) {
    throw std::runtime_error(std::string("posix_spawn ") + what + ": " + std::strerror(rc));
  }
  static void check(const char* what, int rc) {
    if (rc != 0) fail(what, rc);
  }

  posix_spawn_file_actions_t actions_;
  posix_spawnattr_t attr_;
};

std::vector<std::string> merged_environment(const std::map<std::string, std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view kv(*e);
    std::string key(kv.substr(0, kv.find('=')));
    if (extra.find(key) == extra.end()) env.emplace_back(kv);
  }
  for (const auto& [key, value] : extra) env.push_back(key + "=" + value);
  return env;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

Process::Process(std::vector<std::string> argv, std::string log_file,
                 std::map<std::string, std::string> extra_env)
    : argv_(std::move(argv)), log_file_(std::move(log_file)) {
  if (argv_.empty()) throw std::invalid_argument("Process: empty argv");

  // O_CLOEXEC so that a child spawned concurrently by another thread does not inherit it; the
  // dup2 onto 1 and 2 in our child clears the flag on those.
  const int log_fd =
      ::open(log_file_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    throw std::runtime_error("Process: cannot open log " + log_file_ + ": " + std::strerror(errno));
  }

  std::vector<std::string> env = merged_environment(extra_env);
  std::vector<char*> c_argv = c_strings(argv_);
  std::vector<char*> c_env = c_strings(env);

  int rc = 0;
  try {
    SpawnSetup setup;
    setup.configure(log_fd);
    rc = ::posix_spawnp(&pid_, c_argv[0], setup.actions(), setup.attr(), c_argv.data(),
                        c_env.data());
  } catch (...) {
    ::close(log_fd);
    throw;
  }
  ::close(log_fd);
  if (rc != 0) {
    pid_ = -1;
    throw std::runtime_error("Process: cannot start " + argv_[0] + ": " + std::strerror(rc));
  }
}

Process::~Process() {
  if (pid_ <= 0 || exit_code_) return;
  ::kill(-pid_, SIGKILL);
  reap(0);
}

bool Process::reap(int options) {
  if (exit_code_) return true;
  if (pid_ <= 0) return true;
  int status = 0;
  for (;;) {
    const pid_t r = ::waitpid(pid_, &status, options);
    if (r == pid_) break;
    if (r == 0) return false;  // WNOHANG and still running
    if (errno == EINTR) continue;
    exit_code_ = -1;  // ECHILD: reaped elsewhere; the code is lost
    return true;
  }
  if (WIFEXITED(status)) {
    exit_code_ = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    exit_code_ = 128 + WTERMSIG(status);
  } else {
    exit_code_ = -1;
  }
  return true;
}

bool Process::running() { return !reap(WNOHANG); }

void Process::signal(int sig) {
  // Until reaped, the pid cannot be reused, so the group id still names our child's group.
  if (pid_ > 0 && !exit_code_) ::kill(-pid_, sig);
}

std::optional<int> Process::wait_exit(std::chrono::milliseconds timeout) {
  wait_until([this] { return reap(WNOHANG); }, timeout, std::chrono::milliseconds(5));
  return exit_code_;
}

int Process::stop(std::chrono::milliseconds grace) {
  if (running()) {
    signal(SIGTERM);
    if (!wait_exit(grace)) {
      signal(SIGKILL);
      reap(0);
    }
  }
  return exit_code_.value_or(-1);
}

std::string Process::log() const {
  try {
    return read_file(log_file_);
  } catch (const std::exception&) {
    return {};
  }
}

int run_to_exit(std::vector<std::string> argv, const std::string& log_file,
                std::chrono::milliseconds timeout, std::map<std::string, std::string> extra_env) {
  const std::string name = argv.empty() ? std::string() : argv.front();
  Process p(std::move(argv), log_file, std::move(extra_env));
  if (auto code = p.wait_exit(timeout)) return *code;
  p.signal(SIGKILL);
  p.wait_exit(std::chrono::milliseconds(5000));
  throw std::runtime_error(name + " did not finish within " + std::to_string(timeout.count()) +
                           " ms; its output:\n" + p.log());
}

}  // namespace ioc_edge::test
