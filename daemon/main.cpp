// ioc-edge: argv -> settings -> Gateway -> run. Exit codes (docs/design.md section 6): 0 ok,
// 1 runtime failure, 2 bad usage, 78 invalid configuration (EX_CONFIG); `status` has its own
// (ops/status_client.h: 0 healthy, 1 not healthy, 2 unreachable).
#include <malloc.h>

#include <iostream>

#include <CLI/CLI.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "core/log.h"
#include "drivers/builtin.h"
#include "drivers/modbus/modbus_probe.h"
#include "settings/table_reader.h"
#include "gateway.h"
#include "ops/outbox_tool.h"
#include "ops/status_client.h"
#include "ops/report.h"
#include "settings/settings.h"

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
constexpr int kExitConfig = 78;

// Loads the file or prints every problem; nullopt means exit 78.
std::optional<ioc_edge::Settings> load(const std::string& file) {
  auto res = ioc_edge::load_settings(file, ioc_edge::builtin_drivers());
  if (!res.settings) {
    std::cerr << res.diagnostics.report();
  }
  return std::move(res.settings);
}

namespace http = boost::beast::http;

// One request to the running daemon's status API; throws on connection errors.
http::response<http::string_body> ask_daemon(const std::string& address, http::verb verb, const std::string& target) {
  namespace beast = boost::beast;
  const auto colon = address.rfind(':');
  if (colon == std::string::npos) throw std::invalid_argument("--address must be HOST:PORT");
  std::string host = address.substr(0, colon);
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  const std::string port = address.substr(colon + 1);
  boost::asio::io_context io;
  boost::asio::ip::tcp::resolver resolver(io);
  beast::tcp_stream stream(io);
  stream.expires_after(std::chrono::seconds(10));
  stream.connect(resolver.resolve(host, port));
  http::request<http::empty_body> req{verb, target, 11};
  req.set(http::field::host, host);
  http::write(stream, req);
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::read(stream, buf, res);
  return res;
}

// Makes the readings the IOC broker refused pending again, through the running daemon (it is the
// only writer of the outbox).
int cmd_requeue(const std::string& address) {
  try {
    const auto res = ask_daemon(address, http::verb::post, "/outbox/requeue");
    if (res.result() != http::status::ok) {
      std::cerr << "ioc-edge outbox requeue: the daemon answered " << res.result_int() << ": " << res.body();
      return kExitFailure;
    }
    const auto j = nlohmann::json::parse(res.body());
    std::cout << j["requeued"].get<std::int64_t>() << " readings the IOC broker had refused are pending again\n";
    return kExitOk;
  } catch (const std::exception& e) {
    std::cerr << "ioc-edge outbox requeue: cannot reach the daemon at " << address << ": " << e.what()
              << " (is it running? is [status] listen set?)\n";
    return kExitFailure;
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ioc-edge: collects field and office data, buffers it durably and forwards it to the provincial IOC"};
  app.require_subcommand(1);
  std::string config = "/etc/ioc-edge/ioc-edge.toml";

  auto* run = app.add_subcommand("run", "run the gateway in the foreground (systemd Type=notify)");
  run->add_option("-c,--config", config, "configuration file")->capture_default_str();

  std::string check_file;
  auto* check = app.add_subcommand("check-config", "validate a configuration file; exit 0 if valid, 78 if not");
  check->add_option("file", check_file, "configuration file")->required();

  std::string address;
  bool raw = false;
  auto* status = app.add_subcommand(
      "status",
      "show the running daemon's status (from its status API); exit 0 healthy, 1 not healthy (the problems are "
      "printed), 2 the daemon cannot be reached");
  status->add_option("-c,--config", config, "read [status] listen from this file")->capture_default_str();
  status->add_option("-a,--address", address, "HOST:PORT of the status API (overrides the file)");
  status->add_flag("--json", raw, "print the raw JSON (GET /status); the same exit codes");

  auto* version = app.add_subcommand("version", "print the version");

  auto* outbox = app.add_subcommand("outbox", "the durable buffer");
  outbox->require_subcommand(1);
  auto* requeue = outbox->add_subcommand(
      "requeue", "make the readings the IOC broker refused pending again (through the running daemon)");
  requeue->add_option("-c,--config", config, "read [status] listen from this file")->capture_default_str();
  requeue->add_option("-a,--address", address, "HOST:PORT of the status API (overrides the file)");
  ioc_edge::OutboxToolOptions tool;
  auto* ostats = outbox->add_subcommand("stats", "what waits in the buffer, by priority and source (read-only)");
  auto* peek = outbox->add_subcommand("peek", "show the first waiting records and their readings (read-only)");
  auto* oexport = outbox->add_subcommand(
      "export", "write every waiting reading as JSON lines, the messages the IOC would get (read-only; for a hand-over)");
  for (auto* c : {ostats, peek, oexport}) {
    c->add_option("-c,--config", config, "read [gateway] data_dir (and, for export, the site) from this file")
        ->capture_default_str();
    c->add_option("--db", tool.db_path, "the outbox file itself (default: DATA_DIR/outbox.db), e.g. a copy");
  }
  ostats->add_flag("--json", tool.json, "print JSON");
  ostats->add_flag("--count", tool.count,
                   "print only the number of readings waiting, refused ones included (for scripts)");
  for (auto* c : {peek, oexport}) {
    c->add_option("--source", tool.source, "only this source's records");
    c->add_option("--after-seq", tool.after_seq, "only records whose seqs lie above this one");
  }
  peek->add_option("-n,--limit", tool.limit, "records to show")->capture_default_str();
  peek->add_option("--readings", tool.readings, "readings to show per record")->capture_default_str();
  oexport->add_option("-o,--output", tool.output, "file to create (never overwritten); default: standard output");

  ioc_edge::ReportArgs report_args;
  auto* report = app.add_subcommand(
      "report", "the data-update report from the hourly roll-ups (reads them only; fine while the daemon runs)");
  report->add_option("--from", report_args.from, "first day, YYYY-MM-DD")->required();
  report->add_option("--to", report_args.to, "last day, YYYY-MM-DD (included)")->required();
  report->add_option("--format", report_args.format, "text, csv, json or html")
      ->capture_default_str()
      ->check(CLI::IsMember({"text", "csv", "json", "html"}));
  report->add_option("--utc-offset", report_args.utc_offset,
                     "the days' UTC offset, e.g. +07:00 (default: [report] utc_offset, +07:00)");
  report->add_option("-c,--config", config, "read data_dir, site and [report] from this file")->capture_default_str();

  auto* modbus = app.add_subcommand("modbus", "Modbus tools");
  ioc_edge::modbus::ProbeOptions probe_opts;
  std::string probe_timeout = "1s", parity = "none";
  auto* probe = modbus->add_subcommand(
      "probe", "read registers once and print them decoded as every type in every byte order");
  probe->add_option("url", probe_opts.url, "tcp://HOST[:PORT] or rtu:///dev/ttyUSB0")->required();
  probe->add_option("--unit", probe_opts.unit_id, "unit id (slave id)")->capture_default_str()->check(CLI::Range(0, 255));
  probe->add_option("--register", probe_opts.reg, "coil, discrete, holding or input")
      ->capture_default_str()
      ->check(CLI::IsMember({"coil", "discrete", "holding", "input"}));
  probe->add_option("--address", probe_opts.address, "zero-based protocol address")->capture_default_str()->check(CLI::Range(0, 65535));
  probe->add_option("--count", probe_opts.count, "how many registers (or bits)")->capture_default_str();
  probe->add_option("--timeout", probe_timeout, "response timeout, e.g. 500ms")->capture_default_str();
  probe->add_option("--baud", probe_opts.serial.baud, "rtu: baud rate")->capture_default_str();
  probe->add_option("--parity", parity, "rtu: none, even or odd")->capture_default_str()->check(CLI::IsMember({"none", "even", "odd"}));
  probe->add_option("--data-bits", probe_opts.serial.data_bits, "rtu: 7 or 8")->capture_default_str();
  probe->add_option("--stop-bits", probe_opts.serial.stop_bits, "rtu: 1 or 2")->capture_default_str();
  modbus->require_subcommand(1);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }

  if (*version) {
    std::cout << "ioc-edge " << IOC_EDGE_VERSION << "\n";
    return kExitOk;
  }
  if (*probe) {
    const auto t = ioc_edge::parse_duration(probe_timeout);
    if (!t) {
      std::cerr << "ioc-edge modbus probe: --timeout \"" << probe_timeout << "\" is not a duration like 500ms or 2s\n";
      return kExitUsage;
    }
    probe_opts.timeout = *t;
    probe_opts.serial.parity = parity == "even" ? 'E' : parity == "odd" ? 'O' : 'N';
    return ioc_edge::modbus::run_probe(probe_opts, std::cout, std::cerr);
  }
  if (*check) {
    auto s = load(check_file);
    if (!s) return kExitConfig;
    std::cout << check_file << ": ok (site " << s->gateway.site << ", " << s->sources.size() << " sources, uplink "
              << s->uplink.url << ")\n";
    return kExitOk;
  }
  if (*ostats || *peek || *oexport) {
    std::optional<ioc_edge::Settings> s;
    if (*oexport || tool.db_path.empty()) {
      s = load(config);
      if (!s) return kExitConfig;
    }
    if (tool.db_path.empty()) tool.db_path = s->gateway.data_dir + "/outbox.db";
    if (*ostats) return ioc_edge::outbox_stats(tool, std::cout, std::cerr);
    if (*peek) return ioc_edge::outbox_peek(tool, std::cout, std::cerr);
    return ioc_edge::outbox_export(tool, *s, std::cout, std::cerr);
  }
  if (*report) {
    auto s = load(config);
    if (!s) return kExitConfig;
    return ioc_edge::run_report(*s, report_args, std::cout, std::cerr);
  }
  if (*status || *requeue) {
    if (address.empty()) {
      auto res = ioc_edge::load_settings(config, ioc_edge::builtin_drivers());
      if (res.settings && !res.settings->status.listen.empty())
        address = res.settings->status.listen;
      else
        address = "127.0.0.1:8787";
    }
    return *requeue ? cmd_requeue(address) : ioc_edge::run_status_command(address, raw, std::cout, std::cerr);
  }
  if (*run) {
    // Each polling thread would get its own malloc arena that keeps freed memory resident; two
    // arenas are plenty for a daemon that mostly waits.
    mallopt(M_ARENA_MAX, 2);
    auto s = load(config);
    if (!s) return kExitConfig;
    ioc_edge::set_log_level(s->gateway.log_level);
    ioc_edge::SystemClock clock;
    ioc_edge::Gateway gw(std::move(*s), clock, ioc_edge::builtin_drivers());
    return gw.run();
  }
  return kExitUsage;
}
