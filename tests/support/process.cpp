// Child processes for tests: fork + execve, own process group, output appended to a log file.
#include "support.h"

#include <algorithm>
#include <csignal>
#include <fstream>
#include <iterator>
#include <sstream>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string_view>

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace ioc_edge::test {
namespace {

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

// The executable execve() should run: argv0 itself if it has a slash, else the first executable
// match on PATH (the child's PATH if extra_env sets one). Resolved before fork(), because the
// child may only make async-signal-safe calls.
std::string resolve_program(const std::string& argv0, const std::map<std::string, std::string>& extra) {
  if (argv0.find('/') != std::string::npos) return argv0;
  std::string path;
  if (auto it = extra.find("PATH"); it != extra.end()) {
    path = it->second;
  } else if (const char* p = std::getenv("PATH"); p != nullptr) {
    path = p;
  } else {
    path = "/usr/local/bin:/usr/bin:/bin";
  }
  std::size_t begin = 0;
  for (;;) {
    const std::size_t end = path.find(':', begin);
    std::string dir = path.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
    if (dir.empty()) dir = ".";
    const std::string candidate = dir + "/" + argv0;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    if (end == std::string::npos) break;
    begin = end + 1;
  }
  throw std::runtime_error("Process: cannot start " + argv0 + ": not found on PATH");
}

// Reports errno to the parent through the error pipe and ends the child.
[[noreturn]] void child_fail(int error_fd, int err) {
  [[maybe_unused]] const ssize_t n = ::write(error_fd, &err, sizeof err);
  ::_exit(127);
}

// In the child between fork() and execve(): async-signal-safe calls only, no allocation.
[[noreturn]] void exec_child(const char* program, char* const* argv, char* const* envp, int log_fd,
                             int error_fd, pid_t parent) {
  auto fail = [error_fd](int err) { child_fail(error_fd, err); };
  // Own process group, so signal() and the destructor reach everything the child starts.
  if (::setpgid(0, 0) != 0) fail(errno);
  // Dies with the test: a crashed or killed test binary must not leave brokers and daemons behind.
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail(errno);
  if (::getppid() != parent) ::_exit(127);  // the parent died before prctl took effect

  // Default dispositions and an empty mask: a test runner or Paho (SIGPIPE) may ignore signals,
  // and ignored signals survive execve.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  ::sigemptyset(&dfl.sa_mask);
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) ::sigaction(sig, &dfl, nullptr);  // EINVAL for some: fine
  }
  sigset_t none;
  ::sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);

  const int null_fd = ::open("/dev/null", O_RDONLY);
  if (null_fd < 0) fail(errno);
  if (::dup2(null_fd, STDIN_FILENO) < 0) fail(errno);
  if (::dup2(log_fd, STDOUT_FILENO) < 0) fail(errno);
  if (::dup2(log_fd, STDERR_FILENO) < 0) fail(errno);
  // Inherit nothing else (sockets of the test's brokers, proxies, clients). error_fd is O_CLOEXEC
  // and must stay open until execve.
  const unsigned lo = 3;
  const auto err = static_cast<unsigned>(error_fd);
  if ((err > lo && ::close_range(lo, err - 1, 0) != 0) || ::close_range(err + 1, ~0U, 0) != 0) {
    for (int fd = 3; fd < 65536; ++fd) {
      if (fd != error_fd) ::close(fd);
    }
  }
  ::execve(program, argv, envp);
  child_fail(error_fd, errno);
}

}  // namespace

Process::Process(std::vector<std::string> argv, std::string log_file,
                 std::map<std::string, std::string> extra_env)
    : argv_(std::move(argv)), log_file_(std::move(log_file)) {
  if (argv_.empty()) throw std::invalid_argument("Process: empty argv");
  const std::string program = resolve_program(argv_[0], extra_env);
  std::vector<std::string> env = merged_environment(extra_env);
  std::vector<char*> c_argv = c_strings(argv_);
  std::vector<char*> c_env = c_strings(env);

  // O_CLOEXEC on both so that a child started concurrently by another thread inherits neither;
  // dup2() onto 1 and 2 in our child clears the flag on those copies.
  const int log_fd = ::open(log_file_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    throw std::runtime_error("Process: cannot open log " + log_file_ + ": " + std::strerror(errno));
  }
  int error_pipe[2];
  if (::pipe2(error_pipe, O_CLOEXEC) != 0) {
    const int err = errno;
    ::close(log_fd);
    throw std::runtime_error(std::string("Process: pipe2: ") + std::strerror(err));
  }

  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    exec_child(program.c_str(), c_argv.data(), c_env.data(), log_fd, error_pipe[1], parent);
  }
  const int fork_errno = errno;
  ::close(log_fd);
  ::close(error_pipe[1]);
  if (pid < 0) {
    ::close(error_pipe[0]);
    throw std::runtime_error("Process: fork: " + std::string(std::strerror(fork_errno)));
  }

  // Reads 0 bytes once execve succeeded (the pipe is close-on-exec), or the child's errno.
  int child_errno = 0;
  ssize_t n;
  do {
    n = ::read(error_pipe[0], &child_errno, sizeof child_errno);
  } while (n < 0 && errno == EINTR);
  ::close(error_pipe[0]);
  if (n > 0) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    throw std::runtime_error("Process: cannot start " + argv_[0] + " (" + program +
                             "): " + std::strerror(child_errno));
  }
  pid_ = pid;
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

ProcessUsage process_usage(pid_t pid) {
  ProcessUsage u;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  if (s.rfind(')') == std::string::npos) return u;
  std::istringstream rest(s.substr(s.rfind(')') + 2));
  std::string field;
  long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stol(field);
    if (i == 15) stime = std::stol(field);
  }
  u.cpu_s = static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmRSS:", 0) == 0) u.rss_kib = std::stol(line.substr(6));
  return u;
}

UsageWindow watch_usage(pid_t pid, std::chrono::milliseconds window) {
  using namespace std::chrono;
  const auto u0 = process_usage(pid);
  const auto t0 = steady_clock::now();
  UsageWindow w;
  wait_until([&] {
    w.peak_rss_kib = std::max(w.peak_rss_kib, process_usage(pid).rss_kib);
    return false;
  }, window, 500ms);
  const auto u1 = process_usage(pid);
  w.wall_s = duration<double>(steady_clock::now() - t0).count();
  w.cpu_percent = 100.0 * (u1.cpu_s - u0.cpu_s) / w.wall_s;
  w.rss_kib = u1.rss_kib;
  w.peak_rss_kib = std::max(w.peak_rss_kib, u1.rss_kib);
  return w;
}

}  // namespace ioc_edge::test
