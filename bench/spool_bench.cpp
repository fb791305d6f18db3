// The `spool` source: a generated Excel-style CSV (UTF-8 BOM, ';', decimal commas, dd/mm/yyyy,
// Vietnamese headers, CRLF; long layout, one reading per row) of SIZE_MB dropped into the real
// daemon's spool directory, imported into the outbox with sync = "full" (the uplink unreachable,
// so everything stays in the outbox). Measured: rows/s from the drop (a rename into the directory)
// to the file's arrival in done/, and the daemon's peak resident memory (sampled from /proc every
// few ms). Next to it, the ceiling from the same run on the same file, in this process: the parser
// alone (spool_parse.h's FileReader: decode, split, check and build every reading, plus sha256 —
// what the import does twice, once to validate and once to store).
//
//   build/bench/spool_bench [SIZE_MB] [BATCH_MAX_READINGS]        default 100 5000
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include <openssl/evp.h>

#include "drivers/spool/spool_parse.h"
#include "support/support.h"

using namespace ioc_edge;
using namespace ioc_edge::test;
using namespace std::chrono;

namespace {

// Writes about `bytes` of CSV; returns the number of data rows.
std::int64_t generate(const std::string& path, std::int64_t bytes) {
  std::ofstream out(path, std::ios::binary);
  out << "\xEF\xBB\xBF" << "Ngày;Chỉ tiêu;Giá trị;Đơn vị;;\r\n";
  std::int64_t rows = 0, written = 0;
  char line[160];
  while (written < bytes) {
    const int day = 1 + static_cast<int>(rows % 28), month = 1 + static_cast<int>((rows / 28) % 12);
    const int n = std::snprintf(line, sizeof line, "%02d/%02d/2026;Chỉ tiêu %lld;%lld,%02lld;tỷ đồng;;\r\n", day, month,
                                static_cast<long long>(rows % 997), static_cast<long long>(rows % 100000),
                                static_cast<long long>(rows % 100));
    out.write(line, n);
    written += n;
    ++rows;
  }
  return rows;
}

spool::Config parser_config() {
  spool::Config c;
  c.ts_column = "Ngày";
  c.ts_format = spool::TsFormat::Pattern;
  c.ts_pattern = "%d/%m/%Y";
  c.point_column = "Chỉ tiêu";
  c.value_column = "Giá trị";
  c.unit_column = "Đơn vị";
  return c;
}

// The parser alone: one pass building every reading and hashing every byte, in rows/s.
double parser_alone(const std::string& path, std::int64_t rows_expected) {
  const auto cfg = parser_config();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  EVP_DigestInit_ex(md, EVP_sha256(), nullptr);
  const auto t0 = steady_clock::now();
  spool::FileReader reader(cfg, fd, 0, md);
  std::vector<Reading> batch;
  batch.reserve(600);
  spool::FileReader::Step step;
  while ((step = reader.next(&batch)) == spool::FileReader::Step::Row)
    if (batch.size() >= 500) batch.clear();
  const double s = duration<double>(steady_clock::now() - t0).count();
  EVP_MD_CTX_free(md);
  ::close(fd);
  if (step != spool::FileReader::Step::End || reader.rows() != rows_expected) {
    std::fprintf(stderr, "parser: %s after %lld rows\n", reader.error().text().c_str(), static_cast<long long>(reader.rows()));
    return 0;
  }
  return static_cast<double>(reader.rows()) / s;
}

std::string config(const TempDir& dir, int status_port, int batch) {
  std::ostringstream c;
  c << "[gateway]\nsite = \"bench\"\nprovince = \"p\"\ndata_dir = \"" << dir.file("data") << "\"\nlog_level = \"info\"\n"
    << "[buffer]\nmax_size = \"8GiB\"\nsync = \"full\"\n[uplink]\nurl = \"mqtt://127.0.0.1:9\"\nreconnect_max = \"60s\"\n"
    << "[status]\nlisten = \"127.0.0.1:" << status_port << "\"\n"
    << "[[source]]\nname = \"chi-tieu-ktxh\"\ntype = \"spool\"\ndir = \"" << dir.file("spool") << "\"\n"
    << "ts_column = \"Ngày\"\nts_format = \"%d/%m/%Y\"\npoint_column = \"Chỉ tiêu\"\nvalue_column = \"Giá trị\"\n"
    << "unit_column = \"Đơn vị\"\nbatch_max_readings = " << batch << "\n";
  return c.str();
}

nlohmann::json source_status(int status_port) {
  auto r = http_get(status_port, "/status", 2000ms);
  if (r.status != 200) return nlohmann::json();
  return nlohmann::json::parse(r.body)["sources"][0];
}

}  // namespace

int main(int argc, char** argv) {
  const int size_mb = argc > 1 ? std::stoi(argv[1]) : 100;
  const int batch = argc > 2 ? std::stoi(argv[2]) : 5000;
  TempDir dir;
  const std::string file = dir.file("chi-tieu.csv");
  const auto rows = generate(file, std::int64_t{size_mb} << 20);
  std::printf("file: %d MiB, %lld rows (long layout: UTF-8 BOM, ';', decimal commas, dd/mm/yyyy, CRLF)\n", size_mb,
              static_cast<long long>(rows));

  const double ceiling = parser_alone(file, rows);

  ::mkdir(dir.file("spool").c_str(), 0750);
  const int status_port = free_tcp_port();
  write_file(dir.file("ioc-edge.toml"), config(dir, status_port, batch));
  Process daemon({ioc_edge_binary(), "run", "-c", dir.file("ioc-edge.toml")}, dir.file("daemon.log"));
  if (!wait_until([&] { return !source_status(status_port).is_null(); }, 20s)) {
    std::fprintf(stderr, "daemon did not start:\n%s\n", daemon.log().c_str());
    return 1;
  }
  const auto u0 = process_usage(daemon.pid());
  long peak = u0.rss_kib;
  const auto t0 = steady_clock::now();
  if (::rename(file.c_str(), dir.file("spool/chi-tieu.csv").c_str()) != 0) return 1;
  int samples = 0;
  const bool done = wait_until([&] {
    peak = std::max(peak, process_usage(daemon.pid()).rss_kib);
    ++samples;
    return ::access(dir.file("spool/done/chi-tieu.csv").c_str(), F_OK) == 0;
  }, 600s, 5ms);
  const double s = duration<double>(steady_clock::now() - t0).count();
  const auto u1 = process_usage(daemon.pid());
  const auto st = source_status(status_port);
  daemon.signal(SIGTERM);
  daemon.wait_exit(60s);
  if (!done || st.is_null() || st["stored"].get<std::int64_t>() != rows) {
    std::fprintf(stderr, "import did not finish (stored %s of %lld); status %s; log:\n%s\n",
                 st.is_null() ? "?" : std::to_string(st["stored"].get<std::int64_t>()).c_str(), static_cast<long long>(rows),
                 st.dump().c_str(), daemon.log().c_str());
    return 1;
  }
  const double rate = static_cast<double>(rows) / s;
  std::printf("  parser alone (decode, split, check, build readings, sha256), one pass: %10.0f rows/s\n", ceiling);
  std::printf("  ioc-edge spool source, drop to done/ (2 passes, into the outbox, sync=full, batch %d): %10.0f rows/s "
              "(%.2f of the ceiling) in %.1f s, CPU %.0f%% of one core, resident %.1f MiB before, peak %.1f MiB "
              "(%d samples)\n",
              batch, rate, ceiling > 0 ? rate / ceiling : 0.0, s, 100.0 * (u1.cpu_s - u0.cpu_s) / s, u0.rss_kib / 1024.0,
              peak / 1024.0, samples);
  std::printf("  target: >= 100000 rows/s under 30 MiB resident: %s\n", rate >= 100000 && peak < 30 * 1024 ? "met" : "NOT met");
  return 0;
}
