// The status API under abuse and in a hostile environment (daemon/ops/status_server.h): its port
// taken by another process, 1,200 slow clients, no descriptors left. The gateway must keep
// collecting and forwarding through all of it, at a low CPU and memory cost: these tests measure
// the daemon as it ships, so they live in tests/serial/ (run alone, in the normal build).
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <fstream>
#include <thread>

#include "integration/daemon_rig.h"
#include "support/slow_clients.h"

using namespace ioc_edge::test;

namespace {

// CPU time (user + system) the process has used so far.
std::chrono::milliseconds cpu_time(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  std::getline(f, stat);  // one line
  const auto close_paren = stat.rfind(')');
  REQUIRE(close_paren != std::string::npos);
  std::istringstream rest(stat.substr(close_paren + 2));
  std::vector<std::string> fields;  // fields[0] is field 3 (state) of proc(5)
  for (std::string t; rest >> t;) fields.push_back(t);
  REQUIRE(fields.size() > 12);
  const long long ticks = std::stoll(fields[11]) + std::stoll(fields[12]);  // utime + stime
  return std::chrono::milliseconds(ticks * 1000 / ::sysconf(_SC_CLK_TCK));
}

// The share of one core the process used over the next `span` (CPU use is a rate: it can only be
// measured over a fixed span, there is no condition to wait for).
double cpu_percent_over(pid_t pid, std::chrono::milliseconds span) {
  const auto cpu0 = cpu_time(pid);
  const auto t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(span);
  return 100.0 * std::chrono::duration<double>(cpu_time(pid) - cpu0).count() /
         std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Resident set size in KiB.
long rss_kib(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(f, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  FAIL("no VmRSS for pid " << pid);
  return -1;
}

int open_fds(pid_t pid) {
  int n = 0;
  DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
  REQUIRE(d != nullptr);
  while (const dirent* e = ::readdir(d))
    if (e->d_name[0] != '.') ++n;
  ::closedir(d);
  return n;
}

// Raises this process's soft RLIMIT_NOFILE to at least `n` (up to the hard limit); false if the
// hard limit is lower. Children started afterwards inherit it; children already running do not.
bool raise_fd_limit(rlim_t n) {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return false;
  if (rl.rlim_cur >= n) return true;
  if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < n) return false;
  rl.rlim_cur = n;
  return ::setrlimit(RLIMIT_NOFILE, &rl) == 0;
}

// Another program's listener on 127.0.0.1:port (bound and listening, without SO_REUSEADDR),
// until release().
class PortHolder {
 public:
  explicit PortHolder(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const int rc = ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    INFO("binding 127.0.0.1:" << port << ": " << std::strerror(errno));
    REQUIRE(rc == 0);
    REQUIRE(::listen(fd_, 16) == 0);
  }
  ~PortHolder() { release(); }
  PortHolder(const PortHolder&) = delete;
  PortHolder& operator=(const PortHolder&) = delete;
  void release() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + what.size())) ++n;
  return n;
}

std::int64_t stored(const DaemonRig& rig) {
  const auto s = rig.status();
  return s.is_null() ? -1 : s["sources"][0]["stored"].get<std::int64_t>();
}

// Waits until /status answers 200 and returns the source's stored count.
std::int64_t stored_when_answering(const DaemonRig& rig, std::chrono::milliseconds timeout) {
  std::int64_t n = -1;
  const bool ok = wait_until([&] { return (n = stored(rig)) >= 0; }, timeout, std::chrono::milliseconds(100));
  INFO(rig.daemon_log());
  REQUIRE(ok);
  return n;
}

// One generator source at a moderate rate (readings per second), so that the daemon's own CPU use
// stays small next to what a spinning server would add.
constexpr double kRate = 200;
RigOptions moderate_rate() {
  RigOptions o;
  o.sources = "[[source]]\nname = \"tram-bom-1\"\ntype = \"generator\"\nrate = 200\npoints = 4\n";
  // The counts are compared over a few seconds: a 2 s commit wait would blur them.
  o.extra_buffer = "commit_interval = \"100ms\"\n";
  return o;
}

}  // namespace

TEST_CASE("status port taken by another process: the daemon collects and forwards, and listens once the port is free",
          "[serial][status]") {
  DaemonRig rig;
  const int port = rig.status_port();
  PortHolder holder(port);

  // rig.start() waits for /healthz, which cannot answer here: start the daemon by hand.
  Process daemon({ioc_edge_binary(), "run", "-c", rig.config_path()}, rig.tmp().file("daemon.log"));
  const std::string warning = "the status API cannot listen on 127.0.0.1:" + std::to_string(port) +
                              ": Address already in use; retrying every 10 s; the gateway keeps collecting and forwarding";
  REQUIRE(wait_until([&] { return rig.daemon_log().find(warning) != std::string::npos || !daemon.running(); }, 15s));
  INFO(rig.daemon_log());
  REQUIRE(daemon.running());

  // Readings reach the IOC while the port stays taken past at least one retry (10 s at 500/s).
  REQUIRE(wait_until([&] { return rig.collector().distinct_data_seqs() >= 5500 || !daemon.running(); }, 30s));
  REQUIRE(daemon.running());
  CHECK(count(rig.daemon_log(), "cannot listen on") == 1);  // one warning, not one per retry

  holder.release();
  const auto freed = std::chrono::steady_clock::now();
  const bool up = wait_until([&] { return http_get(port, "/healthz", 500ms).status == 200 || !daemon.running(); }, 15s,
                             100ms);
  const auto took = std::chrono::steady_clock::now() - freed;
  INFO(rig.daemon_log());
  REQUIRE(up);
  REQUIRE(daemon.running());
  CHECK(took <= 11s);  // within one retry period
  CHECK_THAT(rig.daemon_log(), Catch::Contains("status API on http://127.0.0.1:" + std::to_string(port) + "/ after"));

  // Everything produced while the status API was down is stored.
  const auto st = rig.status();
  REQUIRE_FALSE(st.is_null());
  CHECK(st["sources"][0]["stored"].get<std::int64_t>() >= 5500);
  CHECK(st["backlog"]["last_seq"].get<std::int64_t>() >= 5500);

  daemon.signal(SIGTERM);
  const auto rc = daemon.wait_exit(30s);
  REQUIRE(rc);
  CHECK(*rc == 0);
}

TEST_CASE("1,200 slow clients: readings keep being stored, the daemon's CPU and memory stay low, /status answers after",
          "[serial][status]") {
  // As many as in the measurement that opened the issue (92% of a core, +13 MB): more than the
  // daemon's descriptor limit below, so a server without a connection limit runs out of them.
  constexpr int kClients = 1200;
  DaemonRig rig(moderate_rate());
  rig.start();
  REQUIRE(raise_fd_limit(kClients + 512));
  const pid_t pid = rig.daemon().pid();
  const int port = rig.status_port();
  // The usual soft limit of a process (`ulimit -n`, systemd's default without LimitNOFILE).
  rlimit rl{};
  REQUIRE(::prlimit(pid, RLIMIT_NOFILE, nullptr, &rl) == 0);
  if (rl.rlim_cur > 1024) {
    rl.rlim_cur = 1024;
    REQUIRE(::prlimit(pid, RLIMIT_NOFILE, &rl, nullptr) == 0);
  }

  // Warm up: the source, the outbox and the uplink have settled.
  REQUIRE(wait_until([&] { return stored(rig) >= 1000; }, 15s, 100ms));
  // The daemon's own CPU use without clients: collecting and forwarding.
  const double idle_pct = cpu_percent_over(pid, 4s);

  const auto stored_before = stored_when_answering(rig, 5s);
  const auto rss_before = rss_kib(pid);
  const auto cpu_before = cpu_time(pid);
  const auto t0 = std::chrono::steady_clock::now();

  SlowClients slow(port, kClients);
  const bool all_connected = wait_until([&] { return slow.slots_connected() >= kClients; }, 30s, 50ms);
  INFO("connected slots " << slow.slots_connected() << ", failures " << slow.connect_failures());
  REQUIRE(all_connected);
  // CPU use is a rate: measure it over a fixed span of the attack, long enough for the server to
  // time out its 64 slow sessions at least once (5 s) while the others keep reconnecting.
  std::this_thread::sleep_for(6s);
  const auto cpu_after = cpu_time(pid);
  const auto rss_after = rss_kib(pid);
  const auto t1 = std::chrono::steady_clock::now();
  const auto server_closed = slow.closed_by_server();
  const auto connects = slow.connects();
  const auto replies = slow.bytes_received();
  slow.stop();

  const auto stored_after = stored_when_answering(rig, 10s);
  const auto t2 = std::chrono::steady_clock::now();

  const double wall_s = std::chrono::duration<double>(t1 - t0).count();
  const double cpu_pct = 100.0 * std::chrono::duration<double>(cpu_after - cpu_before).count() / wall_s;
  const long rss_growth_kib = rss_after - rss_before;
  const double expected = kRate * std::chrono::duration<double>(t2 - t0).count();
  const auto log = rig.daemon_log();
  const std::string figures = "daemon CPU " + std::to_string(cpu_pct) + "% of a core over " + std::to_string(wall_s) +
                              " s (without clients " + std::to_string(idle_pct) + "%); RSS " +
                              std::to_string(rss_before) + " -> " + std::to_string(rss_after) + " KiB; client connects " + std::to_string(connects) + ", closed by the server " +
                              std::to_string(server_closed) + ", reply bytes " + std::to_string(replies) +
                              "; stored " + std::to_string(stored_after - stored_before) + " of ~" +
                              std::to_string(static_cast<long>(expected));
  INFO(figures);
  INFO(log);
  WARN(figures);
  // A server spinning on accept uses a whole core (the server before the limits: 111% here, 96
  // points above idle, and +3 MB in these 6 s); these clients cost the daemon a few points.
  CHECK(cpu_pct < 40.0);
  CHECK(cpu_pct - idle_pct < 15.0);
  CHECK(rss_growth_kib < 2 * 1024);   // 64 sessions at most, about 16 KiB each
  CHECK(server_closed > kClients);    // refused at once (and timed out), not left hanging
  CHECK(stored_after - stored_before >= static_cast<std::int64_t>(0.9 * expected));  // the main loop never stalled
  CHECK(count(log, "new connections are closed at once") == 1);  // rate-limited: one warning a minute
  CHECK(http_get(port, "/healthz", 2s).status == 200);
  CHECK(rig.stop() == 0);
}

TEST_CASE("accept errors (no descriptor left) back off instead of spinning, and the API recovers by itself",
          "[serial][status]") {
  DaemonRig rig(moderate_rate());
  rig.start();
  REQUIRE(raise_fd_limit(512));
  const pid_t pid = rig.daemon().pid();
  const int port = rig.status_port();
  REQUIRE(wait_until([&] { return stored(rig) >= 500; }, 15s, 100ms));
  const double idle_pct = cpu_percent_over(pid, 4s);

  // Leave the daemon room for 8 more descriptors: the ninth connection finds accept() failing with
  // EMFILE, long before the connection limit (64).
  const int fds = open_fds(pid);
  rlimit rl{};
  REQUIRE(::prlimit(pid, RLIMIT_NOFILE, nullptr, &rl) == 0);
  rlimit low = rl;
  low.rlim_cur = static_cast<rlim_t>(fds + 8);
  const int lowered = ::prlimit(pid, RLIMIT_NOFILE, &low, nullptr);
  INFO("prlimit: " << std::strerror(errno));
  REQUIRE(lowered == 0);

  const auto stored_before = stored_when_answering(rig, 5s);
  const auto cpu_before = cpu_time(pid);
  const auto t0 = std::chrono::steady_clock::now();
  SlowClients slow(port, 200);
  const bool full = wait_until([&] { return open_fds(pid) >= fds + 8; }, 15s, 50ms);
  INFO(rig.daemon_log());
  REQUIRE(full);
  // As above: CPU use over a fixed span while accept() keeps failing.
  std::this_thread::sleep_for(5s);
  const auto cpu_after = cpu_time(pid);
  const auto t1 = std::chrono::steady_clock::now();
  slow.stop();

  // The slow sessions time out (5 s) or see their clients go; the queued connections are accepted.
  const auto stored_after = stored_when_answering(rig, 15s);
  const auto t2 = std::chrono::steady_clock::now();
  const double wall_s = std::chrono::duration<double>(t1 - t0).count();
  const double cpu_pct = 100.0 * std::chrono::duration<double>(cpu_after - cpu_before).count() / wall_s;
  const double expected = kRate * std::chrono::duration<double>(t2 - t0).count();
  const auto log = rig.daemon_log();
  const std::string figures = "daemon CPU " + std::to_string(cpu_pct) + "% of a core over " + std::to_string(wall_s) +
                              " s with accept() failing (without clients " + std::to_string(idle_pct) + "%); stored " + std::to_string(stored_after - stored_before) +
                              " of ~" + std::to_string(static_cast<long>(expected));
  INFO(figures);
  INFO(log);
  WARN(figures);
  CHECK(cpu_pct < 40.0);              // spinning on EMFILE: 109% before the backoff
  CHECK(cpu_pct - idle_pct < 15.0);
  CHECK(count(log, "cannot accept connections: Too many open files") == 1);  // one warning, rate-limited
  CHECK_THAT(log, Catch::Contains("the status API accepts connections again"));
  CHECK(stored_after - stored_before >= static_cast<std::int64_t>(0.9 * expected));
  REQUIRE(::prlimit(pid, RLIMIT_NOFILE, &rl, nullptr) == 0);
  CHECK(rig.stop() == 0);
}
