#pragma once
// Small SQLite helpers shared by the files that hold SQL: the outbox (outbox_sql.h) and the
// hourly roll-ups (ops/rollup_store.cpp). Header-only.
#include <sqlite3.h>

#include <cstdint>
#include <string>

namespace ioc_edge::sqlite {

// A prepared statement that finalizes itself (SQLITE_PREPARE_PERSISTENT: reused many times).
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) {
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s_, nullptr) != SQLITE_OK) s_ = nullptr;
  }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  explicit operator bool() const { return s_ != nullptr; }
  sqlite3_stmt* get() const { return s_; }
  Stmt& bind(int i, std::int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  // SQLITE_STATIC: the string must outlive the step; temporaries are refused at compile time.
  Stmt& bind(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    return *this;
  }
  Stmt& bind(int i, std::string&& v) = delete;
  Stmt& bind_blob(int i, const std::string& v) {
    sqlite3_bind_blob(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    return *this;
  }
  Stmt& bind_blob(int i, std::string&& v) = delete;
  Stmt& bind_null(int i) {
    sqlite3_bind_null(s_, i);
    return *this;
  }
  int step() { return s_ ? sqlite3_step(s_) : SQLITE_MISUSE; }
  // Runs to the end; true on SQLITE_DONE. Ready to be bound again.
  bool run() {
    const bool ok = step() == SQLITE_DONE;
    reset();
    return ok;
  }
  void reset() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  std::int64_t i64(int col) const { return sqlite3_column_int64(s_, col); }
  // TEXT and BLOB values alike, byte for byte (schema-2 bodies are TEXT, schema-3 ones BLOBs).
  std::string bytes(int col) const {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(s_, col));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(s_, col))) : std::string();
  }
  std::string text(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, col));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(s_, col))) : std::string();
  }

 private:
  sqlite3_stmt* s_ = nullptr;
};

inline bool is_corrupt(int rc) {
  rc &= 0xFF;
  return rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB;
}

inline bool exec(sqlite3* db, const char* sql) { return sqlite3_exec(db, sql, nullptr, nullptr, nullptr) == SQLITE_OK; }

}  // namespace ioc_edge::sqlite
