#pragma once
// Reading one export file into readings: bytes -> UTF-8 (BOM, UTF-16, iconv), CSV records (RFC 4180
// with Excel's habits) or JSON records, and each record -> readings by the source's layout. Pure:
// it reads a file descriptor it is given and touches nothing else, so it is tested without a
// daemon and benchmarked alone (bench/spool_bench.cpp, "parser alone").
//
// Rows are counted the same way on every pass (records with at least one non-empty cell, after the
// header), so "rows n" of an interrupted import names the same rows after a restart.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/reading.h"
#include "drivers/spool/spool_config.h"

typedef struct evp_md_ctx_st EVP_MD_CTX;

namespace ioc_edge::spool {

// What is wrong with a file, and where: "line 12, column 3 (Giá trị): "abc" is not a time ...".
struct FileError {
  std::string kind;     // for the status API's bad-input counts: "encoding", "malformed", "bad_time", ...
  std::int64_t line = 0;    // 1-based; 0 when the problem has no line (a JSON record: see record)
  int column = 0;           // 1-based field number; 0 when the problem is the whole line or file
  std::string header;       // the column's header, when known
  std::int64_t record = 0;  // JSON: 1-based index of the record
  std::string problem;
  std::string text() const;
};

// A number as an export writes it: "1234", "-12,5", "1.234.567,89" (with decimal ','), "1,234.5"
// and "1.5e3" (with '.'). The other mark than `decimal` may group digits in threes. nullopt: text.
std::optional<Value> parse_number(std::string_view text, char decimal);

// Reads the rows of one file, in order, once. Not thread-safe; owned by one pass.
class FileReader {
 public:
  // `fd` is read from its current offset to its end and not closed. `import_ms` stamps readings
  // when the source has no ts_column. `hash`, when given, is fed every byte read.
  FileReader(const Config& cfg, int fd, std::int64_t import_ms, EVP_MD_CTX* hash = nullptr);
  ~FileReader();
  FileReader(const FileReader&) = delete;
  FileReader& operator=(const FileReader&) = delete;

  enum class Step { Row, End, Error };
  // The next row: its readings appended to `out` (when `out` is null the row is only checked).
  // Row, End (every row read), or Error (error() says what; nothing more can be read).
  Step next(std::vector<Reading>* out);
  // Rows returned so far.
  std::int64_t rows() const { return rows_; }
  const FileError& error() const { return error_; }
  // The CSV delimiter in use (after detection), for logs.
  char delimiter() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::int64_t rows_ = 0;
  FileError error_;
};

}  // namespace ioc_edge::spool
