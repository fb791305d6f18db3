#pragma once
// A thin RAII layer over libpq, PostgreSQL's C client: one connection, statements with text
// parameters, results read by row and column, COPY FROM STDIN. Every failure is a pg::Error that
// carries PostgreSQL's own message and its SQLSTATE, so a caller can tell a lost server from a
// bad statement. Not thread-safe: one connection per thread.
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

struct pg_conn;
struct pg_result;

namespace ioc_receiver::pg {

class Error : public std::runtime_error {
 public:
  Error(const std::string& message, std::string sqlstate, bool connection_lost = false)
      : std::runtime_error(message), sqlstate_(std::move(sqlstate)), connection_lost_(connection_lost) {}
  // Five characters from the server ("23505" unique violation, "23514" check violation); empty
  // when libpq itself failed (the connection could not be made or was lost).
  const std::string& sqlstate() const { return sqlstate_; }
  // The connection is gone (could not be made, or broke): a new Connection is needed.
  bool connection_lost() const { return connection_lost_; }

 private:
  std::string sqlstate_;
  bool connection_lost_;
};

class Result {
 public:
  explicit Result(pg_result* r) : r_(r) {}
  ~Result();
  Result(Result&& o) noexcept : r_(o.r_) { o.r_ = nullptr; }
  Result& operator=(Result&& o) noexcept;
  Result(const Result&) = delete;
  Result& operator=(const Result&) = delete;

  int rows() const;
  int columns() const;
  bool is_null(int row, int column) const;
  std::string_view text(int row, int column) const;  // "" for NULL
  long long integer(int row, int column) const;       // the column's text as a number (0 for NULL)
  // Rows touched by INSERT/UPDATE/DELETE.
  long long affected() const;

 private:
  pg_result* r_;
};

using Params = std::vector<std::optional<std::string>>;  // nullopt is SQL NULL

class Connection {
 public:
  // `conninfo`: a libpq connection string, "postgresql://user@host/db?..." or "host=... dbname=...".
  // Gives up connecting after 10 s unless it sets its own connect_timeout.
  explicit Connection(const std::string& conninfo);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // One or more statements without parameters (the last one's result).
  Result exec(const std::string& sql);
  // One statement, $1..$n bound as text.
  Result exec(const std::string& sql, const Params& params);
  // As above, but the parameters whose `binary` flag is set are sent as raw bytes (bytea), not text.
  Result exec(const std::string& sql, const Params& params, const std::vector<bool>& binary);
  // `copy_sql` is "COPY table (columns) FROM STDIN"; `data` the rows in COPY's text format.
  void copy_in(const std::string& copy_sql, std::string_view data);

 private:
  [[noreturn]] void fail(const std::string& what, pg_result* r);
  pg_conn* c_ = nullptr;
};

// What is wrong with a libpq connection string (libpq's own words), or nullopt when it parses.
// Nothing is contacted.
std::optional<std::string> conninfo_problem(const std::string& conninfo);

// `text` escaped for COPY's text format (backslash, tab, newline, carriage return).
std::string copy_escape(std::string_view text);

}  // namespace ioc_receiver::pg
