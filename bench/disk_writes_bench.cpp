// Disk writes per reading: the real daemon, one generator source, `[buffer] sync = "full"`, the
// uplink up to a local Mosquitto with mutual TLS (every reading stored, forwarded, acknowledged
// and deleted: a normal day). For each case, after a warm-up, over a window:
//   - bytes the daemon wrote (write_bytes of /proc/PID/io: pages it dirtied, not the file
//     system's journal) per reading stored, and per second;
//   - fsync + fdatasync calls per second (strace -c attached for the window; strace stops the
//     daemon at every system call, which slows it a little);
//   - the acknowledgement latency producers see (status `backlog.commit_latency_ms`, since start)
//     and the commits per second (status `backlog.commits`), where the daemon reports them;
//   - the payload ceiling: MQTT payload bytes per reading, from a subscriber at the broker.
// A case N is N readings/s arriving as min(N, 100) appends/s (one append per generator tick):
//   10   -> rate = 10,   points = 1,  tick = "100ms"  (10 appends/s)
//   1000 -> rate = 1000, points = 10, tick = "10ms"   (100 appends/s)
//
//   build/bench/disk_writes_bench [SECONDS] [CASE...]          default 60 10 1000
//
// Environment:
//   DISK_BENCH_BUFFER  extra lines for [buffer] (separated by newlines or ';'), e.g.
//                      DISK_BENCH_BUFFER='commit_interval = "0ms"'
//   DISK_BENCH_DIR     where the data directory is made (default /var/tmp); must not be tmpfs,
//                      where write_bytes is not counted
//   IOC_EDGE_BINARY    another ioc-edge to measure (e.g. the version before a change)
#include <sys/statfs.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "support/support.h"

using namespace ioc_edge::test;
using namespace std::chrono;

namespace {

constexpr long kTmpfsMagic = 0x01021994;
constexpr long kRamfsMagic = 0x858458f6;

struct Case {
  int rate = 0, points = 0, appends = 0, tick_ms = 0;
};

Case make_case(int rate) {
  Case c;
  c.rate = rate;
  c.appends = std::min(rate, 100);
  c.tick_ms = 1000 / c.appends;
  c.points = std::max(1, rate / c.appends);
  return c;
}

// Throws unless `base` is on a file system where the kernel counts write_bytes (not tmpfs/ramfs).
void check_real_disk(const std::string& base) {
  struct statfs fs {};
  if (::statfs(base.c_str(), &fs) != 0) throw std::runtime_error("statfs " + base + ": " + std::strerror(errno));
  const long type = static_cast<long>(fs.f_type);
  if (type == kTmpfsMagic || type == kRamfsMagic)
    throw std::runtime_error(base + " is on tmpfs/ramfs, where /proc/PID/io write_bytes counts nothing; set DISK_BENCH_DIR to a directory on a real disk");
}

// A fresh directory under `base` on a real disk; removed at the end unless IOC_EDGE_KEEP_TEMP is set.
class DiskDir {
 public:
  explicit DiskDir(const std::string& base) {
    check_real_disk(base);
    std::string pattern = base + "/ioc-edge-disk-bench-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp " + pattern + ": " + std::strerror(errno));
    path_ = pattern;
  }
  ~DiskDir() {
    const char* keep = std::getenv("IOC_EDGE_KEEP_TEMP");
    if (keep && *keep && std::string(keep) != "0") {
      std::fprintf(stderr, "IOC_EDGE_KEEP_TEMP: keeping %s\n", path_.c_str());
      return;
    }
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  DiskDir(const DiskDir&) = delete;
  DiskDir& operator=(const DiskDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::uint64_t write_bytes(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/io");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("write_bytes:", 0) == 0) return std::stoull(line.substr(12));
  throw std::runtime_error("no write_bytes in /proc/" + std::to_string(pid) + "/io (daemon gone?)");
}

// True once every thread of pid is traced by tracer (strace has attached to all of them).
bool traced_by(pid_t pid, pid_t tracer) {
  const std::string task = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = ::opendir(task.c_str());
  if (!d) return false;
  int threads = 0, traced = 0;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    ++threads;
    std::ifstream st(task + "/" + e->d_name + "/status");
    std::string line;
    while (std::getline(st, line))
      if (line.rfind("TracerPid:", 0) == 0 && std::stol(line.substr(10)) == tracer) ++traced;
  }
  ::closedir(d);
  return threads > 0 && traced == threads;
}

// Calls of `name` in an strace -c summary (0 if the syscall does not appear).
std::uint64_t strace_calls(const std::string& summary, const std::string& name) {
  std::istringstream in(summary);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream w(line);
    std::vector<std::string> tok;
    for (std::string t; w >> t;) tok.push_back(t);
    // % time, seconds, usecs/call, calls, [errors], syscall
    if (tok.size() >= 5 && tok.back() == name) return std::stoull(tok[3]);
  }
  return 0;
}

nlohmann::json status(int port) {
  const auto r = http_get(port, "/status", 2000ms);
  if (r.status != 200) throw std::runtime_error("GET /status: " + std::to_string(r.status) + " " + r.body);
  return nlohmann::json::parse(r.body);
}

std::string buffer_extra() {
  const char* env = std::getenv("DISK_BENCH_BUFFER");
  std::string out;
  if (!env) return out;
  std::string line;
  for (const char* p = env;; ++p) {
    if (*p == '\0' || *p == '\n' || *p == ';') {
      const auto b = line.find_first_not_of(" \t");
      if (b != std::string::npos) out += line.substr(b) + "\n";
      line.clear();
      if (*p == '\0') break;
    } else {
      line += *p;
    }
  }
  return out;
}

std::string human_bytes(double b) {
  char buf[64];
  if (b >= 1024.0 * 1024.0)
    std::snprintf(buf, sizeof buf, "%.2f MiB", b / (1024.0 * 1024.0));
  else if (b >= 1024.0)
    std::snprintf(buf, sizeof buf, "%.1f KiB", b / 1024.0);
  else
    std::snprintf(buf, sizeof buf, "%.0f B", b);
  return buf;
}

std::optional<std::uint64_t> commits_of(const nlohmann::json& s) {
  const auto& b = s["backlog"];
  if (b.contains("commits") && b["commits"].is_number()) return b["commits"].get<std::uint64_t>();
  return std::nullopt;
}

int run(const Case& c, int seconds, const Certs& certs, int broker_port, const std::string& base, bool have_strace) {
  DiskDir dir(base);
  const std::string extra = buffer_extra();
  const int status_port = free_tcp_port();
  std::ostringstream cfg;
  cfg << "[gateway]\nsite = \"bench\"\nprovince = \"p\"\ndata_dir = \"" << dir.path() << "/data\"\nlog_level = \"warn\"\n"
      << "[buffer]\nsync = \"full\"\n" << extra
      << "[uplink]\nurl = \"mqtts://127.0.0.1:" << broker_port << "\"\nca_file = \"" << certs.ca << "\"\ncert_file = \""
      << certs.client_cert << "\"\nkey_file = \"" << certs.client_key << "\"\n"
      << "[status]\nlisten = \"127.0.0.1:" << status_port << "\"\n"
      << "[[source]]\nname = \"gen\"\ntype = \"generator\"\nrate = " << c.rate << "\npoints = " << c.points
      << "\ntick = \"" << c.tick_ms << "ms\"\n";
  write_file(dir.path() + "/ioc-edge.toml", cfg.str());

  // The subscriber first, so that it sees every data message of the window.
  Collector collector(broker_port, certs, "#");
  Process daemon({ioc_edge_binary(), "run", "-c", dir.path() + "/ioc-edge.toml"}, dir.path() + "/daemon.log");
  const auto died = [&](const char* when) {
    std::fprintf(stderr, "case %d: the daemon exited %s (code %d):\n%s\n", c.rate, when,
                 daemon.exit_code().value_or(-1), daemon.log().c_str());
    return 1;
  };
  if (!wait_until([&] { return !daemon.running() || http_get(status_port, "/healthz", 500ms).status == 200; }, 20s) ||
      !daemon.running()) {
    if (!daemon.running()) return died("at start");
    std::fprintf(stderr, "case %d: the daemon did not start in 20 s:\n%s\n", c.rate, daemon.log().c_str());
    return 1;
  }
  nlohmann::json s;
  const bool flowing = wait_until([&] {
    if (!daemon.running()) return true;
    s = status(status_port);
    return s["uplink"]["state"] == "up" && s["sources"][0]["stored"].get<std::uint64_t>() > 0 &&
           s["uplink"]["readings_sent"].get<std::uint64_t>() > 0;
  }, 20s, 50ms);
  if (!daemon.running()) return died("before the window");
  if (!flowing) {
    std::fprintf(stderr, "case %d: nothing stored and forwarded in 20 s (uplink %s, stored %s):\n%s\n", c.rate,
                 s["uplink"]["state"].dump().c_str(), s["sources"][0]["stored"].dump().c_str(), daemon.log().c_str());
    return 1;
  }
  // Warm-up: SQLite cache, WAL, the first checkpoints, TLS session.
  wait_until([&] { return !daemon.running(); }, 5s, 100ms);
  if (!daemon.running()) return died("during the warm-up");

  const pid_t pid = daemon.pid();
  std::unique_ptr<Process> strace;
  const std::string strace_out = dir.path() + "/strace.txt";
  std::string strace_note;
  if (have_strace) {
    strace = std::make_unique<Process>(
        std::vector<std::string>{"strace", "-f", "-c", "-e", "trace=fsync,fdatasync", "-o", strace_out, "-p", std::to_string(pid)},
        dir.path() + "/strace.log");
    if (!wait_until([&] { return !strace->running() || traced_by(pid, strace->pid()); }, 10s, 5ms) || !strace->running()) {
      strace_note = "strace could not attach: " + strace->log();
      while (!strace_note.empty() && strace_note.back() == '\n') strace_note.pop_back();
      strace.reset();
    }
  } else {
    strace_note = "strace not installed";
  }

  // The window.
  const auto s0 = status(status_port);
  const auto w0 = write_bytes(pid);
  collector.clear();
  const auto t0 = steady_clock::now();
  wait_until([&] { return !daemon.running(); }, seconds * 1000ms, 200ms);
  if (!daemon.running()) return died("during the window");
  const auto w1 = write_bytes(pid);
  const auto s1 = status(status_port);
  const auto msgs = collector.messages();
  const double wall = duration<double>(steady_clock::now() - t0).count();

  std::optional<std::uint64_t> fsyncs, fdatasyncs;
  if (strace) {
    strace->signal(SIGINT);  // detaches and writes the summary
    if (!strace->wait_exit(10s)) {
      strace_note = "strace did not finish after SIGINT";
      strace->signal(SIGKILL);
      strace->wait_exit(5s);
    } else {
      const auto summary = read_file(strace_out);
      fsyncs = strace_calls(summary, "fsync");
      fdatasyncs = strace_calls(summary, "fdatasync");
    }
  }
  if (!daemon.running()) return died("while strace detached");

  const auto stored0 = s0["sources"][0]["stored"].get<std::uint64_t>();
  const auto stored1 = s1["sources"][0]["stored"].get<std::uint64_t>();
  const double stored = static_cast<double>(stored1 - stored0);
  const double written = static_cast<double>(w1 - w0);
  std::uint64_t payload_bytes = 0, received = 0, data_messages = 0;
  for (const auto& m : msgs) {
    if (m.topic.find("/data/") == std::string::npos) continue;
    ++data_messages;
    payload_bytes += m.payload.size();
    const auto batch = nlohmann::json::parse(m.payload);
    received += batch.at("readings").size();
  }

  daemon.signal(SIGTERM);
  const auto code = daemon.wait_exit(30s);

  // One line per case, then the details.
  std::ostringstream line;
  char buf[256];
  std::snprintf(buf, sizeof buf, "%d readings/s (%d appends/s): ", c.rate, c.appends);
  line << buf;
  if (stored > 0) {
    line << human_bytes(written / stored) << " written per reading (" << human_bytes(written / wall) << "/s), ";
  } else {
    line << "nothing stored in the window, ";
  }
  if (fsyncs) {
    std::snprintf(buf, sizeof buf, "%.1f fsyncs/s", static_cast<double>(*fsyncs + *fdatasyncs) / wall);
    line << buf;
  } else {
    line << "fsyncs: " << strace_note;
  }
  const auto& b1 = s1["backlog"];
  if (b1.contains("commit_latency_ms") && b1["commit_latency_ms"].is_object()) {
    const auto& l = b1["commit_latency_ms"];
    std::snprintf(buf, sizeof buf, ", ack latency p50 %.1f ms p99 %.1f ms max %.1f ms", l.value("p50", 0.0),
                  l.value("p99", 0.0), l.value("max", 0.0));
    line << buf;
  } else {
    line << ", ack latency n/a";
  }
  if (received > 0) {
    std::snprintf(buf, sizeof buf, ", payload %.0f B/reading", static_cast<double>(payload_bytes) / static_cast<double>(received));
    line << buf;
  } else {
    line << ", payload n/a";
  }
  std::snprintf(buf, sizeof buf, ", %.0f readings", stored);
  line << buf;
  std::printf("%s\n", line.str().c_str());

  std::printf("    window %.1f s: stored %.0f readings (%.1f/s), received %llu readings in %llu messages (%.1f/s); "
              "write_bytes %s",
              wall, stored, stored / wall, static_cast<unsigned long long>(received),
              static_cast<unsigned long long>(data_messages), static_cast<double>(received) / wall,
              human_bytes(written).c_str());
  if (fsyncs)
    std::printf("; fsync %llu, fdatasync %llu", static_cast<unsigned long long>(*fsyncs),
                static_cast<unsigned long long>(*fdatasyncs));
  std::printf("\n");
  const auto c0 = commits_of(s0), c1 = commits_of(s1);
  if (c0 && c1) {
    const double commits = static_cast<double>(*c1 - *c0);
    std::printf("    commits: %.0f in the window (%.1f/s, %.1f readings and %s written per commit)\n", commits,
                commits / wall, commits > 0 ? stored / commits : 0.0,
                human_bytes(commits > 0 ? written / commits : 0).c_str());
  } else {
    std::printf("    commits: n/a\n");
  }
  if (b1.contains("commit_latency_ms") && b1["commit_latency_ms"].is_object())
    std::printf("    ack latency since start: %s\n", b1["commit_latency_ms"].dump().c_str());
  std::printf("    backlog at the end %lld readings; outbox file %s\n", b1["readings"].get<long long>(),
              human_bytes(b1["file_bytes"].get<double>()).c_str());
  std::fflush(stdout);

  if (code.value_or(-1) != 0) {
    std::fprintf(stderr, "case %d: the daemon did not stop cleanly (exit %d):\n%s\n", c.rate, code.value_or(-1),
                 daemon.log().c_str());
    return 1;
  }
  if (stored <= 0) {
    std::fprintf(stderr, "case %d: nothing stored in the window:\n%s\n", c.rate, daemon.log().c_str());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const int seconds = argc > 1 ? std::stoi(argv[1]) : 60;
    if (seconds < 1 || seconds > 86400) throw std::runtime_error("SECONDS must be 1 .. 86400");
    std::vector<Case> cases;
    for (int i = 2; i < argc; ++i) {
      const int rate = std::stoi(argv[i]);
      if (rate < 1 || rate > 1000000) throw std::runtime_error(std::string("CASE must be 1 .. 1000000: ") + argv[i]);
      cases.push_back(make_case(rate));
    }
    if (cases.empty()) cases = {make_case(10), make_case(1000)};
    const char* base_env = std::getenv("DISK_BENCH_DIR");
    const std::string base = base_env && *base_env ? base_env : "/var/tmp";
    check_real_disk(base);
    const bool have_strace = std::system("command -v strace >/dev/null 2>&1") == 0;

    TempDir tmp;
    const auto certs = make_certs(tmp.file("certs"));
    Mosquitto broker(certs, tmp.path());
    std::string extra = buffer_extra();
    while (!extra.empty() && extra.back() == '\n') extra.pop_back();
    for (auto& ch : extra)
      if (ch == '\n') ch = ';';
    std::printf("ioc-edge %s, data under %s, [buffer] sync = \"full\"%s%s; %d s windows after a 5 s warm-up\n",
                ioc_edge_binary().c_str(), base.c_str(), extra.empty() ? "" : "; ", extra.c_str(), seconds);
    std::fflush(stdout);
    int rc = 0;
    for (const auto& c : cases) rc |= run(c, seconds, certs, broker.port(), base, have_strace);
    return rc;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "disk_writes_bench: %s\n", e.what());
    return 1;
  }
}
