// Test support for ioc-edge: real peers and small helpers for the Catch2 suites.
//
// What lives here, and on which thread:
//   - wait_until, TempDir, files, ports, paths: plain helpers, called from the test thread.
//   - Process: a child in its own process group, its stdout+stderr appended to a log file.
//   - make_certs / Mosquitto: a throwaway PKI (scripts/make-certs.sh) and a real broker with
//     mutual TLS on 127.0.0.1.
//   - TcpProxy: a forwarder with its own Asio thread, to cut or stall a link on demand.
//   - Collector: the IOC stand-in's consumer, a Paho client whose callbacks run on Paho's thread;
//     its accessors are thread-safe.
//   - http_get / http_request: a bounded Beast client for the status server and HTTP ingest.
//
// None of these classes is copyable; none of them sleeps to synchronise (wait_until polls). Every
// wait is bounded: helpers that cannot finish in time throw std::runtime_error with the peer's log,
// so a failing test says why.
//
// Build: the one translation unit that implements repo_root() and ioc_edge_binary() needs the
// compile definitions IOC_EDGE_SOURCE_DIR and IOC_EDGE_BINARY (string literals).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <sys/types.h>

#include <nlohmann/json.hpp>

namespace ioc_edge::test {

// --- Small helpers ------------------------------------------------------------------------------

// Polls pred every `poll` until it returns true or `timeout` has passed; pred is evaluated once
// more at the deadline. Returns pred's last value. Exceptions from pred propagate.
bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout,
                std::chrono::milliseconds poll = std::chrono::milliseconds(20));

// A fresh directory from mkdtemp under $TMPDIR (or /tmp), removed recursively by the destructor.
// Set IOC_EDGE_KEEP_TEMP=1 in the environment to keep it for a post-mortem (its path goes to
// stderr).
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path() + "/" + name, for brevity in tests.
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A TCP port that was free on 127.0.0.1 a moment ago (bind to port 0, read it back, close).
// Another process may take it before you do; Mosquitto below retries with a new port.
int free_tcp_port();

// True if a TCP connection to 127.0.0.1:port succeeds within `timeout`.
bool tcp_port_open(int port, std::chrono::milliseconds timeout = std::chrono::milliseconds(500));

// Whole-file helpers; both throw std::runtime_error on I/O errors.
std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& text);
// Overwrites `pages` pages of `page_size` bytes from page `first` (1-based) with the same
// pseudo-random bytes every run: a damaged stretch of a database file. Throws on I/O errors.
void write_garbage_pages(const std::string& path, std::int64_t first, int pages, std::int64_t page_size);

// The source tree (compile definition IOC_EDGE_SOURCE_DIR).
std::string repo_root();
// The ioc-edge executable under test (compile definition IOC_EDGE_BINARY, or the environment
// variable of the same name).
std::string ioc_edge_binary();
// The manual page built from docs/ioc-edge.8.scd (ioc-edge.8 in the build tree).
std::string ioc_edge_man_page();
// The ioc-receiver executable (compile definition IOC_RECEIVER_BINARY); throws in a build without it.
std::string ioc_receiver_binary();

// --- Child processes ----------------------------------------------------------------------------

// A child started with fork + execve (argv[0] is looked up on PATH unless it has a slash) in its own
// process group, stdin from /dev/null, stdout and stderr appended (O_APPEND) to log_file, no other
// descriptors inherited, signal dispositions and mask reset to defaults. The environment is the
// test's, with extra_env added or overriding. Throws std::runtime_error if the program cannot be
// started (not found, not executable, ...).
//
// The child gets SIGKILL if the test process dies (PR_SET_PDEATHSIG), so a crashed or timed-out
// test leaves no broker or daemon behind. Linux ties that to the creating *thread*: create a
// Process on a thread that outlives it (the test's main thread), never on a short-lived helper.
//
// Not thread-safe: use one Process from one thread.
class Process {
 public:
  Process(std::vector<std::string> argv, std::string log_file,
          std::map<std::string, std::string> extra_env = {});
  // If still running: SIGKILL to the whole process group, then reap.
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  // Reaps with WNOHANG; false once the child has exited.
  bool running();
  // Sends sig to the child's process group (the child and anything it started). No-op once the
  // child has been reaped.
  void signal(int sig);
  // The exit code, or 128 + signal number if killed by a signal; nullopt if still running after
  // `timeout`. Once known it is remembered, so calling again returns the same value.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);
  // The exit code if the child has exited and been reaped (see running()/wait_exit()).
  std::optional<int> exit_code() const { return exit_code_; }
  // SIGTERM, wait up to `grace`, then SIGKILL; returns the exit code as wait_exit does.
  int stop(std::chrono::milliseconds grace = std::chrono::milliseconds(10000));
  // Contents of log_file ("" if it does not exist).
  std::string log() const;
  const std::string& log_file() const { return log_file_; }

 private:
  bool reap(int options);

  std::vector<std::string> argv_;
  std::string log_file_;
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
};

// CPU seconds (user + system) a process has used and its resident memory, from /proc (benchmarks).
struct ProcessUsage {
  double cpu_s = 0;
  long rss_kib = 0;
};
ProcessUsage process_usage(pid_t pid);

// Watches `pid` for `window` (sampling every 500 ms): the CPU it used as a share of one core, its
// resident memory at the end and at its peak. For benchmarks.
struct UsageWindow {
  double wall_s = 0;
  double cpu_percent = 0;  // of one core
  long rss_kib = 0;
  long peak_rss_kib = 0;
};
UsageWindow watch_usage(pid_t pid, std::chrono::milliseconds window);

// Runs argv to completion (as Process does, output appended to log_file) and returns its exit code;
// throws if it does not finish within `timeout` (the child is killed).
int run_to_exit(std::vector<std::string> argv, const std::string& log_file,
                std::chrono::milliseconds timeout = std::chrono::milliseconds(30000),
                std::map<std::string, std::string> extra_env = {});

// --- Certificates and the broker ----------------------------------------------------------------

// Paths of the files scripts/make-certs.sh writes (see that script for what each one is).
struct Certs {
  std::string dir, ca, client_cert, client_key, server_cert, server_key, other_ca,
      other_server_cert, other_server_key, wronghost_server_cert, wronghost_server_key, weakkey_server_cert,
      weakkey_server_key;
  // Identities of receiver/broker/acl: two offices (CN = site id) and an ioc-receiver.
  std::string office_a_cert, office_a_key, office_b_cert, office_b_key, receiver_cert, receiver_key;
};

// Runs scripts/make-certs.sh DIR (DIR is created); throws with the script's output on failure.
Certs make_certs(const std::string& dir);

// A real mosquitto with mutual TLS (TLS 1.2+) on 127.0.0.1:port(). Clients must present a
// certificate from certs.ca unless Options::require_client_cert is false; its CN becomes the MQTT
// user name. No persistence: a stop() loses everything the broker held, like a crash.
//
// Config, log and the broker's stderr live in workdir (mosquitto.conf, mosquitto.log). The port
// stays the same across stop()/start(), so clients can reconnect to it.
// Mosquitto::Options (outside the class only because GCC rejects a nested struct with default
// member initialisers as a default argument of the enclosing class's constructor).
struct MosquittoOptions {
  std::string server_cert, server_key;  // default: certs.server_cert / certs.server_key
  bool require_client_cert = true;
  std::string extra_config;  // lines appended to mosquitto.conf (acl_file, message_size_limit, ...)
};

class Mosquitto {
 public:
  using Options = MosquittoOptions;

  // Starts the broker and waits (10 s) until its port accepts TCP; throws with the broker's log
  // if it exits or does not open the port.
  Mosquitto(const Certs& certs, const std::string& workdir, Options opts = {});
  ~Mosquitto();
  Mosquitto(const Mosquitto&) = delete;
  Mosquitto& operator=(const Mosquitto&) = delete;

  int port() const { return port_; }
  // SIGTERM and wait (SIGKILL after 10 s). No-op if not running.
  void stop();
  // SIGKILL and reap: a broker crash.
  void kill();
  // SIGHUP: the broker reloads its configuration and ACL file, keeping its clients connected;
  // returns once it logged the reload (throws after 10 s).
  void reload();
  // Replaces Options::extra_config from the next start() or reload().
  void set_extra_config(std::string lines) { opts_.extra_config = std::move(lines); }
  // Starts it again on the same port; throws as the constructor does. No-op if running.
  void start();
  bool running();
  std::string log() const;
  const std::string& config_file() const { return config_file_; }

 private:
  void write_config();
  bool try_start(std::string& why);

  Certs certs_;
  std::string workdir_, config_file_, log_file_;
  Options opts_;
  int port_ = 0;
  std::unique_ptr<Process> process_;
};

// --- Link faults --------------------------------------------------------------------------------

// Forwards 127.0.0.1:port() -> 127.0.0.1:target_port, each accepted connection to a new upstream
// connection. Runs its own Asio thread ("tcp-proxy"); every method is callable from any thread and
// returns once the change has taken effect.
class TcpProxy {
 public:
  explicit TcpProxy(int target_port);
  ~TcpProxy();
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  int port() const;
  // A link outage: closes every open connection at once (both sides see the close), and from now on
  // accepts new connections and closes them immediately.
  void cut();
  // A silent link: open connections stay open but no byte moves in either direction, new
  // connections are accepted and left hanging. Only keepalives can notice. Bytes already in flight
  // are kept and delivered after restore(), as TCP would after a long retransmission.
  void stall();
  // Forwards again (after cut() or stall()).
  void restore();
  // Sees every chunk of bytes that passes, in order, on the proxy's thread before it is forwarded:
  // `up` is client -> target. For protocol-level counting on plain (not TLS) connections.
  void set_tap(std::function<void(bool up, std::string_view bytes)> tap);
  // Connections accepted so far, including those closed at once by cut().
  int connections_accepted() const;
  // Connections currently open (accepted and not yet closed).
  int connections_open() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// --- A shaped office link ----------------------------------------------------------------------

// A network namespace "the office" joined to this one by a veth pair, each end shaped by a token
// bucket (tc tbf) to `rate_kbit` in its sending direction: a slow office link (ADSL, 4G) on one
// machine. The host end is host_ip(), the office end office_ip() (a /30 of 10.77.0.0/16 chosen by
// pid). Needs root and iproute2; throws with the command's output when a step fails. The
// destructor deletes the namespace and the pair.
class OfficeLink {
 public:
  explicit OfficeLink(int rate_kbit, const std::string& log_file);
  ~OfficeLink();
  OfficeLink(const OfficeLink&) = delete;
  OfficeLink& operator=(const OfficeLink&) = delete;

  const std::string& ns() const { return ns_; }
  const std::string& host_ip() const { return host_ip_; }
  const std::string& office_ip() const { return office_ip_; }
  // The link down (the office end's interface down: nothing passes) or up again.
  void set_up(bool up);
  // argv prefixed to run a program inside the office namespace.
  std::vector<std::string> in_office(std::vector<std::string> argv) const;

 private:
  void run(std::vector<std::string> argv);
  std::string log_file_, ns_, host_if_, office_if_, host_ip_, office_ip_;
};

// --- The IOC stand-in ---------------------------------------------------------------------------

// The IOC's consumer: a Paho async client (MQTT v5, clean start, no persistence) with mutual TLS
// (certs.ca pinned, host name verified, client.pem/client.key), subscribed with QoS 1 to
// topic_filter. Connects directly to the broker at 127.0.0.1:broker_port; the constructor returns
// once the subscription is acknowledged (throws after 10 s). If the broker goes away it reconnects
// by itself and subscribes again; messages published meanwhile are lost to it (clean start).
//
// Messages are stored by Paho's callback thread; every accessor is thread-safe and returns a copy.
class Collector {
 public:
  struct Message {
    std::string topic;
    std::string payload;
    bool retained = false;
    std::vector<std::pair<std::string, std::string>> user_properties;  // MQTT v5
    std::chrono::system_clock::time_point received_at;                 // when the callback ran
  };

  Collector(int broker_port, const Certs& certs, const std::string& topic_filter = "#");
  ~Collector();
  Collector(const Collector&) = delete;
  Collector& operator=(const Collector&) = delete;

  std::vector<Message> messages() const;
  std::size_t message_count() const;

  // Every "seq" of every reading in every message whose topic contains "/data/" (a JSON batch:
  // {"schema": ..., "readings": [{"seq": N, ...}, ...]}). Throws std::runtime_error naming the
  // topic if such a payload is not a batch. Parsing is incremental: each message is parsed once.
  std::set<std::int64_t> data_seqs() const;
  // The same, without copying the set: how many distinct seqs, and how many readings in total
  // (duplicates included).
  std::size_t distinct_data_seqs() const;
  std::size_t data_readings() const;

  // Parsed payloads of the messages whose topic contains topic_substring, in arrival order. An
  // empty payload (a cleared retained message) is a JSON null; a payload that is not JSON throws.
  std::vector<nlohmann::json> json_on(const std::string& topic_substring) const;

  // Clears everything received so far (messages and the data counters).
  void clear();

  bool connected() const;
  // Successful connections so far (1 after the constructor; more after reconnects).
  int connects() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// --- HTTP ---------------------------------------------------------------------------------------

// status 0 means no HTTP response: the connection was refused, or the exchange failed or timed out;
// body then holds the reason.
struct HttpResponse {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // field names lower-cased
};

// One HTTP/1.1 request to 127.0.0.1:port (Boost.Beast), bounded by `timeout` end to end.
HttpResponse http_request(int port, const std::string& method, const std::string& target,
                          const std::string& body = {},
                          const std::map<std::string, std::string>& headers = {},
                          std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));
HttpResponse http_get(int port, const std::string& target,
                      std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));

// One kept-alive HTTP/1.1 connection to `address`:port (127.0.0.1 or ::1), for many requests in
// turn. Each request is bounded by `timeout`; after an error (status 0) the connection is closed
// and the next request reconnects. Blocking; one thread at a time.
class HttpConnection {
 public:
  explicit HttpConnection(int port, std::string address = "127.0.0.1");
  ~HttpConnection();
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;
  HttpResponse request(const std::string& method, const std::string& target, const std::string& body = {},
                       const std::map<std::string, std::string>& headers = {},
                       std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));
  std::uint64_t connects() const { return connects_; }  // connections opened so far

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::uint64_t connects_ = 0;
};

}  // namespace ioc_edge::test
