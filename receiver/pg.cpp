#include "receiver/pg.h"

#include <libpq-fe.h>

#include <algorithm>
#include <cstdlib>

#include "core/log.h"

namespace ioc_receiver::pg {

namespace {

std::string trimmed(const char* message) {
  std::string s = message ? message : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// The server's notices (NOTICE, WARNING) go to the "database" logger, one line each, instead of
// libpq's default of printing them on stderr: NOTICE at debug level, anything else as a warning.
void on_notice(void*, const char* message) {
  const std::string text = trimmed(message);
  if (text.rfind("NOTICE:", 0) == 0 || text.rfind("DEBUG", 0) == 0 || text.rfind("LOG:", 0) == 0)
    ioc_edge::logger("database")->debug("{}", text);
  else
    ioc_edge::logger("database")->warn("{}", text);
}

}  // namespace

Result::~Result() {
  if (r_) PQclear(r_);
}

Result& Result::operator=(Result&& o) noexcept {
  if (this != &o) {
    if (r_) PQclear(r_);
    r_ = o.r_;
    o.r_ = nullptr;
  }
  return *this;
}

int Result::rows() const { return r_ ? PQntuples(r_) : 0; }
int Result::columns() const { return r_ ? PQnfields(r_) : 0; }
bool Result::is_null(int row, int column) const { return PQgetisnull(r_, row, column) != 0; }
std::string_view Result::text(int row, int column) const {
  return {PQgetvalue(r_, row, column), static_cast<std::size_t>(PQgetlength(r_, row, column))};
}
long long Result::integer(int row, int column) const {
  const char* v = PQgetvalue(r_, row, column);  // NULL for a cell outside the result
  return v ? std::strtoll(v, nullptr, 10) : 0;
}
long long Result::affected() const {
  const char* n = r_ ? PQcmdTuples(r_) : "";
  return *n ? std::strtoll(n, nullptr, 10) : 0;
}

Connection::Connection(const std::string& conninfo) {
  // The string is expanded in place of "dbname", after the default timeout: its own
  // connect_timeout, if any, wins.
  const char* keywords[] = {"connect_timeout", "dbname", nullptr};
  const char* values[] = {"10", conninfo.c_str(), nullptr};
  c_ = PQconnectdbParams(keywords, values, /*expand_dbname=*/1);
  if (!c_ || PQstatus(c_) != CONNECTION_OK) {
    const std::string message = c_ ? trimmed(PQerrorMessage(c_)) : "out of memory";
    if (c_) PQfinish(c_);
    c_ = nullptr;
    throw Error("cannot connect to the database: " + message, "", true);
  }
  PQsetNoticeProcessor(c_, on_notice, nullptr);
}

Connection::~Connection() {
  if (c_) PQfinish(c_);
}

void Connection::fail(const std::string& what, pg_result* r) {
  std::string state;
  std::string message;
  if (r) {
    if (const char* s = PQresultErrorField(r, PG_DIAG_SQLSTATE)) state = s;
    message = trimmed(PQresultErrorMessage(r));
    // Not an error from the server, but not what the call expects either (an empty statement,
    // a COPY through exec()): say which.
    if (message.empty()) message = std::string("unexpected result ") + PQresStatus(PQresultStatus(r));
    PQclear(r);
  }
  if (message.empty()) message = trimmed(PQerrorMessage(c_));
  throw Error(what + ": " + message, state, PQstatus(c_) == CONNECTION_BAD);
}

Result Connection::exec(const std::string& sql) {
  PGresult* r = PQexec(c_, sql.c_str());
  const auto status = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) fail("database", r);
  return Result(r);
}

Result Connection::exec(const std::string& sql, const Params& params) { return exec(sql, params, {}); }

Result Connection::exec(const std::string& sql, const Params& params, const std::vector<bool>& binary) {
  std::vector<const char*> values;
  std::vector<int> lengths, formats;
  values.reserve(params.size());
  for (std::size_t i = 0; i < params.size(); ++i) {
    const auto& p = params[i];
    values.push_back(p ? p->data() : nullptr);
    const bool raw = i < binary.size() && binary[i];
    lengths.push_back(p && raw ? static_cast<int>(p->size()) : 0);
    formats.push_back(raw ? 1 : 0);
  }
  PGresult* r = PQexecParams(c_, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                             lengths.data(), formats.data(), 0);
  const auto status = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) fail("database", r);
  return Result(r);
}

void Connection::copy_in(const std::string& copy_sql, std::string_view data) {
  PGresult* r = PQexec(c_, copy_sql.c_str());
  if (!r || PQresultStatus(r) != PGRES_COPY_IN) fail("database (COPY)", r);
  PQclear(r);
  constexpr std::size_t kChunk = 1 << 20;  // PQputCopyData takes an int length
  for (std::size_t at = 0; at < data.size(); at += kChunk) {
    const auto n = std::min(kChunk, data.size() - at);
    if (PQputCopyData(c_, data.data() + at, static_cast<int>(n)) != 1) fail("database (COPY data)", nullptr);
  }
  if (PQputCopyEnd(c_, nullptr) != 1) fail("database (COPY data)", nullptr);
  r = PQgetResult(c_);
  if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) fail("database (COPY)", r);
  PQclear(r);
  while ((r = PQgetResult(c_)) != nullptr) PQclear(r);
}

std::optional<std::string> conninfo_problem(const std::string& conninfo) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &error);
  if (options) {
    PQconninfoFree(options);
    return std::nullopt;
  }
  std::string message = error ? trimmed(error) : "out of memory";
  if (error) PQfreemem(error);
  return message;
}

std::string copy_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace ioc_receiver::pg
