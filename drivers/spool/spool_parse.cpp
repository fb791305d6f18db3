#include "drivers/spool/spool_parse.h"

#include <iconv.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstring>
#include <ctime>
#include <limits>

#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include "core/json_value.h"
#include "core/reading.h"  // invalid_reason: a reading the pipeline would refuse fails the file up front
#include "drivers/shared/json_mapping.h"

namespace ioc_edge::spool {

namespace {

constexpr std::size_t kChunk = 256 * 1024;
constexpr std::size_t kMaxRecordBytes = 1 << 20;  // a longer record is a quote never closed
constexpr std::size_t kMaxJsonBytes = 8 << 20;     // a JSON file is read whole (README: use CSV beyond)
constexpr std::size_t kShownCell = 60;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A cell's text for a message: quoted, cut after kShownCell bytes (on a character boundary).
std::string shown(std::string_view s) {
  if (s.size() <= kShownCell) return "\"" + std::string(s) + "\"";
  std::size_t n = kShownCell;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return "\"" + std::string(s.substr(0, n)) + "...\"";
}

bool digit(char c) { return c >= '0' && c <= '9'; }

// Bytes -> UTF-8. A BOM decides (UTF-8, UTF-16 LE/BE); without one the configured encoding does:
// none means UTF-8, checked cell by cell by the reader (passthrough()).
class Input {
 public:
  Input(int fd, EVP_MD_CTX* hash, std::string encoding) : fd_(fd), hash_(hash), encoding_(std::move(encoding)) {}
  ~Input() {
    if (cd_ != reinterpret_cast<iconv_t>(-1)) iconv_close(cd_);
  }

  // Appends decoded text to `out`; false at the end of the input (nothing more) or on an error
  // (err.problem set).
  bool more(std::string& out, FileError& err) {
    while (!done_) {
      const auto had = raw_.size();
      raw_.resize(had + kChunk);
      ssize_t n;
      do n = ::read(fd_, raw_.data() + had, kChunk);
      while (n < 0 && errno == EINTR);
      if (n < 0) {
        raw_.resize(had);
        err.kind = "io";
        err.problem = std::string("cannot read the file: ") + std::strerror(errno);
        return false;
      }
      raw_.resize(had + static_cast<std::size_t>(n));
      if (n > 0 && hash_) EVP_DigestUpdate(hash_, raw_.data() + had, static_cast<std::size_t>(n));
      const bool eof = n == 0;
      if (!sniffed_) {
        if (raw_.size() < 3 && !eof) continue;
        if (!sniff(err)) return false;
      }
      const auto before = out.size();
      if (!decode(out, eof, err)) return false;
      if (eof) done_ = true;
      if (out.size() > before) return true;
    }
    return false;
  }
  bool passthrough() const { return passthrough_; }
  const std::string& encoding_name() const { return name_; }

 private:
  bool sniff(FileError& err) {
    sniffed_ = true;
    const auto starts = [&](std::string_view bom) { return raw_.compare(0, bom.size(), bom) == 0; };
    std::string from = encoding_;
    if (starts("\xEF\xBB\xBF")) {
      raw_.erase(0, 3);
      from.clear();
    } else if (starts("\xFF\xFE")) {
      raw_.erase(0, 2);
      from = "UTF-16LE";
    } else if (starts("\xFE\xFF")) {
      raw_.erase(0, 2);
      from = "UTF-16BE";
    }
    if (from.empty()) {
      passthrough_ = true;
      name_ = "UTF-8";
      return true;
    }
    name_ = from;
    cd_ = iconv_open("UTF-8", from.c_str());
    if (cd_ == reinterpret_cast<iconv_t>(-1)) {
      err.kind = "encoding";
      err.problem = "this system cannot convert from " + from;
      return false;
    }
    return true;
  }

  bool decode(std::string& out, bool eof, FileError& err) {
    if (passthrough_) {
      out.append(raw_);
      raw_.clear();
      return true;
    }
    const auto before = out.size();
    out.resize(before + raw_.size() * 4 + 64);
    char* in = raw_.data();
    std::size_t in_left = raw_.size();
    char* o = out.data() + before;
    std::size_t o_left = out.size() - before;
    const auto r = iconv(cd_, &in, &in_left, &o, &o_left);
    const int e = errno;
    if (r == static_cast<std::size_t>(-1) && e != EINVAL) {
      out.resize(static_cast<std::size_t>(o - out.data()));
      err.kind = "encoding";
      err.line = lines_ + std::count(out.begin() + static_cast<std::ptrdiff_t>(before), out.end(), '\n');
      err.problem = "bytes that are not " + name_ + " text (is encoding right?)";
      return false;
    }
    raw_.erase(0, raw_.size() - in_left);
    if (eof) {
      if (!raw_.empty()) {
        out.resize(static_cast<std::size_t>(o - out.data()));
        err.kind = "encoding";
        err.problem = "the file ends inside a character (" + name_ + ")";
        return false;
      }
      iconv(cd_, nullptr, nullptr, &o, &o_left);  // a stateful converter (CP1258) holds its last character
    }
    out.resize(static_cast<std::size_t>(o - out.data()));
    lines_ += std::count(out.begin() + static_cast<std::ptrdiff_t>(before), out.end(), '\n');
    return true;
  }

  int fd_;
  EVP_MD_CTX* hash_;
  std::string encoding_, name_;
  iconv_t cd_ = reinterpret_cast<iconv_t>(-1);
  bool sniffed_ = false, passthrough_ = false, done_ = false;
  std::string raw_;
  std::int64_t lines_ = 1;
};

struct Cell {
  std::string text;
  std::int64_t line = 0;
};

// A time cell -> UTC ms, by the configured format and zone; the last answer is kept (export rows
// share their date).
class TimeReader {
 public:
  explicit TimeReader(const Config& cfg) : cfg_(cfg) {}

  std::optional<std::int64_t> read(std::string_view text, std::string& problem) {
    if (!last_text_.empty() && text == last_text_) return last_ms_;
    std::optional<std::int64_t> ms;
    if (cfg_.ts_format == TsFormat::Rfc3339) {
      ms = parse_rfc3339_ms(text, cfg_.offset_minutes);
      if (!ms) problem = shown(text) + " is not an RFC 3339 time such as \"2026-11-30T17:00:00+07:00\" (ts_format)";
    } else {
      ms = pattern(text, problem);
    }
    if (ms) {
      last_text_.assign(text);
      last_ms_ = *ms;
    }
    return ms;
  }

 private:
  std::optional<std::int64_t> pattern(std::string_view text, std::string& problem) {
    TimeSpec spec;
    spec.format = ioc_edge::TsFormat::Pattern;
    spec.pattern = cfg_.ts_pattern;
    spec.offset_minutes = cfg_.offset_minutes;
    const auto ms = parse_time_pattern(std::string(text), spec, problem);  // drivers/shared
    if (!ms) return std::nullopt;
    // Years 1970-2199 only: "30/11/26" read with %Y is the year 26, a mistake, not history.
    constexpr std::int64_t kFrom = 0, kTo = 7258118400000;  // 1970-01-01, 2200-01-01 (UTC)
    if (*ms < kFrom || *ms >= kTo) {
      std::tm utc{};
      const std::time_t secs = static_cast<std::time_t>(*ms / 1000 - (*ms % 1000 < 0 ? 1 : 0));
      ::gmtime_r(&secs, &utc);
      problem = shown(text) + " gives the year " + std::to_string(utc.tm_year + 1900) + " (with ts_format \"" +
                cfg_.ts_pattern + "\"; %Y is a four-digit year, %y two digits)";
      return std::nullopt;
    }
    return ms;
  }

  const Config& cfg_;
  std::string last_text_;
  std::int64_t last_ms_ = 0;
};

}  // namespace

std::string FileError::text() const {
  std::string where;
  if (record > 0) where = "record " + std::to_string(record);
  else if (line > 0) where = "line " + std::to_string(line);
  if (column > 0) where += (where.empty() ? "" : ", ") + std::string("column ") + std::to_string(column);
  if (!header.empty()) where += (where.empty() ? "(" : " (") + ("\"" + header + "\")");
  return where.empty() ? problem : where + ": " + problem;
}

std::optional<Value> parse_number(std::string_view text, char decimal) {
  const char group = decimal == ',' ? '.' : ',';
  std::string_view s = trim(text);
  if (s.empty() || s.size() > 64) return std::nullopt;
  char buf[80];
  std::size_t n = 0;
  std::size_t i = 0;
  if (s[i] == '-' || s[i] == '+') {
    if (s[i] == '-') buf[n++] = '-';
    ++i;
  }
  // Integer part: digits, or groups of three after a first group of one to three.
  std::size_t run = 0, groups = 0, first_run = 0;
  const std::size_t int_start = i;
  for (; i < s.size(); ++i) {
    if (digit(s[i])) {
      buf[n++] = s[i];
      ++run;
    } else if (s[i] == group) {
      if (groups == 0) {
        if (run == 0 || run > 3) return std::nullopt;
        first_run = run;
      } else if (run != 3) {
        return std::nullopt;
      }
      ++groups;
      run = 0;
    } else {
      break;
    }
  }
  (void)first_run;
  if (i == int_start || run == 0) return std::nullopt;
  if (groups > 0 && run != 3) return std::nullopt;
  bool fraction = false;
  if (i < s.size() && s[i] == decimal) {
    fraction = true;
    buf[n++] = '.';
    ++i;
    const std::size_t start = i;
    while (i < s.size() && digit(s[i])) buf[n++] = s[i++];
    if (i == start) return std::nullopt;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    fraction = true;
    buf[n++] = 'e';
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) buf[n++] = s[i++];
    const std::size_t start = i;
    while (i < s.size() && digit(s[i])) buf[n++] = s[i++];
    if (i == start) return std::nullopt;
  }
  if (i != s.size()) return std::nullopt;
  if (!fraction) {
    std::int64_t v = 0;
    const auto r = std::from_chars(buf, buf + n, v);
    if (r.ec == std::errc() && r.ptr == buf + n) return Value{v};
  }
  double d = 0;
  const auto r = std::from_chars(buf, buf + n, d);
  if (r.ec != std::errc() || r.ptr != buf + n || !std::isfinite(d)) return std::nullopt;
  return Value{d};
}

struct FileReader::Impl {
  Impl(const Config& c, int fd, std::int64_t import_time, EVP_MD_CTX* hash)
      : cfg(c), input(fd, hash, c.encoding), import_ms(import_time), times(c) {}

  const Config& cfg;
  Input input;
  std::int64_t import_ms;
  TimeReader times;
  bool started = false;
  bool finished = false;

  // --- CSV ---
  std::string buf;
  std::size_t pos = 0;
  std::int64_t line = 1;  // the line at pos
  char delim = ',';
  char decimal = '.';
  std::vector<Cell> cells;  // the current record (its first `ncells`), reused
  std::size_t ncells = 0;
  std::int64_t rec_line = 0;
  std::vector<std::string> header;
  int ts_col = -1, point_col = -1, value_col = -1, unit_col = -1;
  std::vector<int> point_cols;  // wide layout

  // --- JSON ---
  nlohmann::json doc;
  const nlohmann::json* records = nullptr;
  std::size_t next_record = 0;

  bool fail(FileError& err, std::string kind, std::int64_t at_line, int column, std::string problem) {
    err.kind = std::move(kind);
    err.line = at_line;
    err.column = column;
    if (column > 0 && static_cast<std::size_t>(column) <= header.size()) err.header = header[static_cast<std::size_t>(column - 1)];
    err.problem = std::move(problem);
    return false;
  }

  // Reads more input into buf (dropping what was consumed); false at the end or on an error.
  bool fill(FileError& err) {
    if (pos > 0 && pos >= buf.size() / 2) {
      buf.erase(0, pos);
      pos = 0;
    }
    return input.more(buf, err);
  }

  // One record from pos: 1 complete, 0 at the end of the input, -1 on an error.
  int record(FileError& err) {
    for (;;) {
      const int r = parse_record(err);
      if (r != 2) return r;
      if (buf.size() - pos > kMaxRecordBytes)
        {
        fail(err, "malformed", rec_line, 0, "a record longer than 1 MiB (a quoted field that is never closed?)");
        return -1;
      }
      if (!fill(err)) {
        if (!err.problem.empty()) return -1;
        eof = true;
      }
    }
  }
  bool eof = false;

  Cell& cell() {
    if (ncells == cells.size()) cells.emplace_back();
    auto& c = cells[ncells++];
    c.text.clear();
    return c;
  }

  // 1 complete, 0 nothing left, -1 error, 2 needs more input.
  int parse_record(FileError& err) {
    const std::size_t size = buf.size();
    const char* b = buf.data();
    std::size_t p = pos;
    std::int64_t ln = line;
    ncells = 0;
    rec_line = ln;
    if (p >= size) return eof ? 0 : 2;
    for (;;) {
      Cell& c = cell();
      c.line = ln;
      if (p < size && b[p] == '"') {
        ++p;
        for (;;) {
          const void* q = std::memchr(b + p, '"', size - p);
          if (!q) {
            if (!eof) return 2;
            {
        fail(err, "malformed", c.line, static_cast<int>(ncells),
                        "a quoted field that is never closed (a '\"' is missing)");
        return -1;
      }
          }
          const auto qi = static_cast<std::size_t>(static_cast<const char*>(q) - b);
          c.text.append(b + p, qi - p);
          ln += std::count(b + p, b + qi, '\n');
          p = qi + 1;
          if (p >= size && !eof) return 2;
          if (p < size && b[p] == '"') {
            c.text.push_back('"');
            ++p;
            continue;
          }
          break;
        }
        if (p < size && b[p] != delim && b[p] != '\n' && b[p] != '\r')
          {
        fail(err, "malformed", ln, static_cast<int>(ncells),
                      "text after the closing quote of a quoted field (write a quote inside a field as \"\")");
        return -1;
      }
      } else {
        const std::size_t start = p;
        while (p < size) {
          const char ch = b[p];
          if (ch == delim || ch == '\n' || ch == '\r') break;
          ++p;
        }
        if (p >= size && !eof) return 2;
        c.text.assign(b + start, p - start);
      }
      if (p >= size) break;  // the last record, without a line end
      if (b[p] == delim) {
        ++p;
        continue;
      }
      if (b[p] == '\r') {
        ++p;
        if (p >= size && !eof) return 2;
        if (p < size && b[p] == '\n') ++p;
      } else {
        ++p;
      }
      ++ln;
      break;
    }
    pos = p;
    line = ln;
    if (input.passthrough()) {
      for (std::size_t i = 0; i < ncells; ++i) {
        const auto at = utf8_error_at(cells[i].text);
        if (at == std::string_view::npos) continue;
        const auto& t = cells[i].text;
        {
        fail(err, "encoding", cells[i].line + std::count(t.begin(), t.begin() + static_cast<std::ptrdiff_t>(at), '\n'),
                    static_cast<int>(i + 1),
                    "not valid UTF-8 (save the file as \"CSV UTF-8\", or set encoding = \"windows-1258\" for a "
                    "file in the Vietnamese Windows code page)");
        return -1;
      }
      }
    }
    return 1;
  }

  bool blank() const {
    for (std::size_t i = 0; i < ncells; ++i)
      if (!trim(cells[i].text).empty()) return false;
    return true;
  }

  // The first line: an Excel "sep=;" hint, or the delimiter counted outside quotes.
  bool detect(FileError& err) {
    for (;;) {
      const auto nl = buf.find('\n', pos);
      if (nl != std::string::npos || eof) break;
      if (buf.size() - pos > kMaxRecordBytes) break;
      if (!fill(err)) {
        if (!err.problem.empty()) return false;
        eof = true;
      }
    }
    std::string_view first(buf.data() + pos, std::min(buf.size() - pos, buf.find('\n', pos) - pos));
    if (!first.empty() && first.back() == '\r') first.remove_suffix(1);
    if (first.size() == 5 && first.substr(0, 4) == "sep=" && (first[4] == ',' || first[4] == ';' || first[4] == '\t')) {
      delim = first[4];
      const auto nl = buf.find('\n', pos);
      pos = nl == std::string::npos ? buf.size() : nl + 1;
      ++line;
      return true;
    }
    if (cfg.delimiter != 0) {
      delim = cfg.delimiter;
      return true;
    }
    std::size_t comma = 0, semi = 0, tab = 0;
    bool quoted = false;
    for (const char ch : first) {
      if (ch == '"') quoted = !quoted;
      if (quoted) continue;
      comma += ch == ',';
      semi += ch == ';';
      tab += ch == '\t';
    }
    delim = semi > comma && semi >= tab ? ';' : tab > comma && tab > semi ? '\t' : ',';
    return true;
  }

  bool start_csv(FileError& err) {
    if (!fill(err)) {
      if (!err.problem.empty()) return false;
      eof = true;
    }
    if (!detect(err)) return false;
    if (cfg.delimiter != 0) delim = cfg.delimiter;
    decimal = cfg.decimal == Decimal::Dot ? '.' : cfg.decimal == Decimal::Comma ? ',' : delim == ',' ? '.' : ',';
    for (;;) {  // the header: the first record that is not blank
      const int r = record(err);
      if (r < 0) return false;
      if (r == 0) {
        finished = true;  // no header: an empty file
        return true;
      }
      if (!blank()) break;
    }
    const std::int64_t header_line = rec_line;
    for (std::size_t i = 0; i < ncells; ++i) header.emplace_back(trim(cells[i].text));
    while (!header.empty() && header.back().empty()) header.pop_back();  // Excel's trailing empty columns
    for (std::size_t i = 0; i < header.size(); ++i)
      for (std::size_t j = 0; j < i; ++j)
        if (!header[i].empty() && header[i] == header[j])
          return fail(err, "bad_header", header_line, static_cast<int>(i + 1),
                      "the same header as column " + std::to_string(j + 1) + "; headers must be unique");
    const auto find = [&](const std::string& name, int& out) {
      if (name.empty()) return true;
      for (std::size_t i = 0; i < header.size(); ++i)
        if (header[i] == name) {
          out = static_cast<int>(i);
          return true;
        }
      std::string list;
      for (const auto& h : header)
        if (!h.empty()) list += (list.empty() ? "\"" : ", \"") + h + "\"";
      return fail(err, "missing_column", header_line, 0,
                  "no column \"" + name + "\" in the header (its columns: " + list + "; delimiter '" +
                      (delim == '\t' ? std::string("tab") : std::string(1, delim)) + "')");
    };
    if (!find(cfg.ts_column, ts_col) || !find(cfg.point_column, point_col) || !find(cfg.value_column, value_col) ||
        !find(cfg.unit_column, unit_col))
      return false;
    if (cfg.point_column.empty()) {
      for (std::size_t i = 0; i < header.size(); ++i) {
        if (header[i].empty() || static_cast<int>(i) == ts_col) continue;
        Reading probe;
        probe.point = header[i];
        if (const auto why = invalid_reason(probe); !why.empty())
          return fail(err, "bad_header", header_line, static_cast<int>(i + 1), "cannot be a point name: " + why);
        point_cols.push_back(static_cast<int>(i));
      }
      if (point_cols.empty())
        return fail(err, "missing_column", header_line, 0, "no column to take as a point (only the time column)");
    }
    return true;
  }

  Step csv_row(std::vector<Reading>* out, FileError& err) {
    for (;;) {
      const int r = record(err);
      if (r < 0) return Step::Error;
      if (r == 0) return Step::End;
      if (!blank()) break;
    }
    for (std::size_t i = 0; i < ncells; ++i) {
      if (i < header.size() && !header[i].empty()) continue;
      if (!trim(cells[i].text).empty())
        {
        fail(err, "malformed", cells[i].line, static_cast<int>(i + 1),
                    shown(trim(cells[i].text)) + " stands in a column without a header");
        return Step::Error;
      }
    }
    const auto text = [&](int col) -> std::string_view {
      return col >= 0 && static_cast<std::size_t>(col) < ncells ? trim(cells[static_cast<std::size_t>(col)].text)
                                                                 : std::string_view();
    };
    const auto line_of = [&](int col) {
      return col >= 0 && static_cast<std::size_t>(col) < ncells ? cells[static_cast<std::size_t>(col)].line : rec_line;
    };
    std::int64_t ts = import_ms;
    if (ts_col >= 0) {
      const auto t = text(ts_col);
      if (t.empty()) {
        fail(err, "bad_time", line_of(ts_col), ts_col + 1, "no time in this row");
        return Step::Error;
      }
      std::string problem;
      const auto ms = times.read(t, problem);
      if (!ms) {
        fail(err, "bad_time", line_of(ts_col), ts_col + 1, problem);
        return Step::Error;
      }
      ts = *ms;
    }
    const auto add = [&](std::string point, std::string_view cell, int col) -> bool {
      Reading r;
      r.point = std::move(point);
      r.ts_ms = ts;
      if (cell.empty()) {
        r.quality = Quality::Bad;
        r.error = "empty in the file";
      } else if (auto n = parse_number(cell, decimal)) {
        r.value = std::move(*n);
      } else {
        r.value = std::string(cell);
      }
      if (point_col >= 0) r.unit = std::string(text(unit_col));
      if (r.point.size() > 256 || std::holds_alternative<std::string>(r.value) || !r.unit.empty()) {
        if (const auto why = invalid_reason(r); !why.empty()) return fail(err, "bad_value", line_of(col), col + 1, why);
      }
      if (out) out->push_back(std::move(r));
      return true;
    };
    if (point_col >= 0) {
      const auto point = text(point_col);
      if (point.empty())
        {
        fail(err, "bad_point", line_of(point_col), point_col + 1, "no point name in this row");
        return Step::Error;
      }
      if (!add(std::string(point), text(value_col), value_col)) return Step::Error;
    } else {
      for (const int col : point_cols) {
        const auto cell = text(col);
        if (cell.empty()) continue;  // wide layout: an empty cell is no reading
        if (!add(header[static_cast<std::size_t>(col)], cell, col)) return Step::Error;
      }
    }
    return Step::Row;
  }

  // --- JSON: a top-level array of records, or {"readings": [...]}; each record an object ---
  bool start_json(FileError& err) {
    std::string text;
    for (;;) {
      if (!input.more(text, err)) {
        if (!err.problem.empty()) return false;
        break;
      }
      if (text.size() > kMaxJsonBytes)
        return fail(err, "too_large", 0, 0, "a JSON file larger than 8 MiB (export large files as CSV, which is read as it streams)");
    }
    if (input.passthrough()) {
      if (const auto at = utf8_error_at(text); at != std::string_view::npos)
        return fail(err, "encoding", 1 + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(at), '\n'), 0,
                    "not valid UTF-8");
    }
    if (trim(text).empty()) {
      finished = true;
      return true;
    }
    try {
      doc = nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
      const auto at = std::min<std::size_t>(e.byte > 0 ? e.byte - 1 : 0, text.size());
      const auto nl = text.rfind('\n', at == 0 ? 0 : at - 1);
      const auto ln = 1 + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(at), '\n');
      const auto col = static_cast<int>(at - (nl == std::string::npos || at == 0 ? 0 : nl + 1) + 1);
      std::string what = e.what();
      if (const auto colon = what.rfind(": "); colon != std::string::npos) what = what.substr(colon + 2);
      return fail(err, "malformed", ln, col, "not valid JSON: " + what);
    }
    if (doc.is_array()) records = &doc;
    else if (doc.is_object() && doc.contains("readings") && doc["readings"].is_array()) records = &doc["readings"];
    else return fail(err, "malformed", 0, 0, "expected an array of records [{...}, ...] or {\"readings\": [{...}, ...]}");
    return true;
  }

  bool json_fail(FileError& err, std::string kind, const std::string& key, std::string problem) {
    err.kind = std::move(kind);
    err.record = static_cast<std::int64_t>(next_record);
    err.header = key;
    err.problem = std::move(problem);
    return false;
  }

  Step json_row(std::vector<Reading>* out, FileError& err) {
    if (next_record >= records->size()) return Step::End;
    const auto& rec = (*records)[next_record++];
    if (!rec.is_object()) {
        json_fail(err, "malformed", "", "not an object {\"key\": value, ...}");
        return Step::Error;
      }
    std::int64_t ts = import_ms;
    if (!cfg.ts_column.empty()) {
      const auto it = rec.find(cfg.ts_column);
      if (it == rec.end() || !it->is_string())
        {
        json_fail(err, "bad_time", cfg.ts_column, it == rec.end() ? "missing" : "must be a string");
        return Step::Error;
      }
      std::string problem;
      const auto ms = times.read(it->get_ref<const std::string&>(), problem);
      if (!ms) {
        json_fail(err, "bad_time", cfg.ts_column, problem);
        return Step::Error;
      }
      ts = *ms;
    }
    const auto add = [&](std::string point, const nlohmann::json& v, const std::string& key, std::string unit) {
      Reading r;
      r.point = std::move(point);
      r.ts_ms = ts;
      r.unit = std::move(unit);
      std::string problem;
      if (!json_to_value(v, r.value, problem)) return json_fail(err, "bad_value", key, problem);
      if (v.is_null()) {
        r.quality = Quality::Bad;
        r.error = "empty in the file";
      }
      if (const auto why = invalid_reason(r); !why.empty()) return json_fail(err, "bad_value", key, why);
      if (out) out->push_back(std::move(r));
      return true;
    };
    if (!cfg.point_column.empty()) {
      const auto p = rec.find(cfg.point_column);
      if (p == rec.end() || !p->is_string() || p->get_ref<const std::string&>().empty())
        {
        json_fail(err, "bad_point", cfg.point_column, "missing, empty or not a string");
        return Step::Error;
      }
      const auto v = rec.find(cfg.value_column);
      std::string unit;
      if (!cfg.unit_column.empty()) {
        const auto u = rec.find(cfg.unit_column);
        if (u != rec.end() && !u->is_null()) {
          if (!u->is_string()) {
        json_fail(err, "bad_value", cfg.unit_column, "must be a string");
        return Step::Error;
      }
          unit = u->get<std::string>();
        }
      }
      static const nlohmann::json null_value;
      if (!add(p->get<std::string>(), v == rec.end() ? null_value : *v, cfg.value_column, std::move(unit))) return Step::Error;
    } else {
      for (const auto& [key, v] : rec.items()) {
        if (key == cfg.ts_column || v.is_null()) continue;
        if (!add(key, v, key, {})) return Step::Error;
      }
    }
    return Step::Row;
  }
};

FileReader::FileReader(const Config& cfg, int fd, std::int64_t import_ms, EVP_MD_CTX* hash)
    : impl_(std::make_unique<Impl>(cfg, fd, import_ms, hash)) {}
FileReader::~FileReader() = default;

char FileReader::delimiter() const { return impl_->delim; }

FileReader::Step FileReader::next(std::vector<Reading>* out) {
  auto& m = *impl_;
  if (!error_.problem.empty()) return Step::Error;
  const bool json = m.cfg.format == Format::Json;
  if (!m.started) {
    m.started = true;
    if (!(json ? m.start_json(error_) : m.start_csv(error_))) return Step::Error;
  }
  if (m.finished) return Step::End;
  const auto step = json ? m.json_row(out, error_) : m.csv_row(out, error_);
  if (step == Step::Row) ++rows_;
  if (step == Step::End) m.finished = true;
  return step;
}

}  // namespace ioc_edge::spool
