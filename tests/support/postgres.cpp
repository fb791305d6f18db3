#include "support/postgres.h"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <stdexcept>

namespace ioc_edge::test {

namespace {

const std::string kBin = "/usr/lib/postgresql/15/bin/";

std::string quote_sql_literal(const std::string& s) {
  std::string out = "'";
  for (const char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

}  // namespace

Postgres::Postgres(bool durable) {
  if (!std::filesystem::exists(kBin + "initdb"))
    throw std::runtime_error("PostgreSQL 15 is not installed (" + kBin + "initdb): scripts/install-deps.sh installs postgresql-15");
  data_ = tmp_.file("pgdata");
  const std::string log = tmp_.file("server.log");
  write_file(log, "");
  if (::mkdir(data_.c_str(), 0700) != 0) throw std::runtime_error("cannot create " + data_);
  if (::geteuid() == 0) {
    const passwd* pw = ::getpwnam("postgres");
    if (!pw) throw std::runtime_error("the tests run as root and there is no user \"postgres\" to run PostgreSQL as");
    owner_ = "postgres";
    // The owner must reach its directory through the temporary one.
    ::chmod(tmp_.path().c_str(), 0711);
    if (::chown(data_.c_str(), pw->pw_uid, pw->pw_gid) != 0 || ::chown(log.c_str(), pw->pw_uid, pw->pw_gid) != 0)
      throw std::runtime_error("cannot give " + data_ + " to user postgres");
  }
  port_ = free_tcp_port();
  const auto step_log = tmp_.file("steps.log");
  if (run_to_exit(as_owner({kBin + "initdb", "-D", data_, "-U", "ioc", "-A", "trust", "-E", "UTF8", "--no-locale",
                            "--no-sync"}),
                  step_log, std::chrono::seconds(60)) != 0)
    throw std::runtime_error("initdb failed:\n" + read_file(step_log));
  // Only a Unix socket, in the data directory; no TCP port is opened.
  const std::string options = "-c listen_addresses='' -c unix_socket_directories='" + data_ + "' -p " +
                              std::to_string(port_) + (durable ? "" : " -c fsync=off -c synchronous_commit=off");
  if (run_to_exit(as_owner({kBin + "pg_ctl", "-D", data_, "-l", log, "-o", options, "-w", "-t", "60", "start"}),
                  step_log, std::chrono::seconds(70)) != 0) {
    running_ = true;  // it may be up after all, too late for pg_ctl's wait: stop it before the directory goes
    stop();
    throw std::runtime_error("the PostgreSQL server did not start:\n" + read_file(step_log) + read_file(log));
  }
  running_ = true;
  try {
    psql("CREATE DATABASE ioc", "postgres");
  } catch (...) {
    stop();  // a throwing constructor runs no destructor: no server may outlive its directory
    throw;
  }
}

Postgres::~Postgres() {
  try {
    stop();
  } catch (...) {
  }
}

void Postgres::stop() {
  if (!running_) return;
  running_ = false;
  run_to_exit(as_owner({kBin + "pg_ctl", "-D", data_, "-m", "immediate", "-w", "-t", "30", "stop"}),
              tmp_.file("steps.log"), std::chrono::seconds(40));
}

std::vector<std::string> Postgres::as_owner(const std::vector<std::string>& argv) const {
  if (owner_.empty()) return argv;
  // From a directory the owner may enter (the test's own may be closed to it).
  std::vector<std::string> out{"runuser", "-u", owner_, "--", "env", "-C", tmp_.path()};
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

std::string Postgres::conninfo(const std::string& database) const {
  return "host=" + data_ + " port=" + std::to_string(port_) + " user=ioc dbname=" + database;
}

std::string Postgres::psql(const std::string& sql, const std::string& database) const {
  static int n = 0;
  const auto out = tmp_.file("psql-" + std::to_string(++n) + ".out");
  const int rc = run_to_exit({kBin + "psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", conninfo(database),
                              "-c", sql, "-o", out},
                             tmp_.file("psql.log"), std::chrono::seconds(60));
  if (rc != 0) throw std::runtime_error("psql " + quote_sql_literal(sql) + " failed:\n" + read_file(tmp_.file("psql.log")));
  auto text = read_file(out);
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

}  // namespace ioc_edge::test
