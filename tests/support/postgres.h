#pragma once
// A throwaway PostgreSQL 15 cluster for tests: initdb and pg_ctl in a temporary directory, as an
// unprivileged user (PostgreSQL refuses to run as root: when the tests run as root, as in CI, the
// cluster runs as the "postgres" user that Debian's postgresql-15 package creates). It listens
// only on a Unix socket in its own directory, with trust authentication for the superuser "ioc".
// The destructor stops it (immediate shutdown) and removes everything.
#include <string>
#include <vector>

#include "support/support.h"

namespace ioc_edge::test {

class Postgres {
 public:
  // Throws std::runtime_error with initdb's or the server's log when the cluster does not start
  // within 60 s. `durable`: fsync and synchronous commits on, as in production (benchmarks);
  // otherwise both are off (tests: faster, and nothing there survives a power loss anyway).
  explicit Postgres(bool durable = false);
  ~Postgres();
  Postgres(const Postgres&) = delete;
  Postgres& operator=(const Postgres&) = delete;

  // A libpq connection string for `database` (the cluster has "postgres" and "ioc").
  std::string conninfo(const std::string& database = "ioc") const;
  // Runs one SQL statement through psql (tests' own checks), returning its unaligned output.
  std::string psql(const std::string& sql, const std::string& database = "ioc") const;
  const std::string& dir() const { return data_; }
  // Stops the server at once (pg_ctl -m immediate: no checkpoint, as after a crash).
  void stop();

 private:
  std::vector<std::string> as_owner(const std::vector<std::string>& argv) const;  // run as the owner
  TempDir tmp_;
  std::string data_;  // data directory, also the socket directory
  std::string owner_;  // "" when the tests run unprivileged: the cluster runs as them
  int port_ = 0;
  bool running_ = false;
};

}  // namespace ioc_edge::test
