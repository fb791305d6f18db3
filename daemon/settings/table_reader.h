#pragma once
// Reading one TOML table into typed values, collecting every problem as FILE:LINE:COL: message.
//
// Each component declares its keys by reading them through a TableReader (one place, with their
// defaults and ranges); finish() then reports every key nobody read as unknown, with a
// did-you-mean. Problems never throw: they are collected so check-config can list them all.
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <toml++/toml.h>

namespace ioc_edge {

// `text` in double quotes, as settings messages show a value: "\"tram-bom-1\"". (Not std::quoted,
// which streams with escapes.)
std::string in_quotes(std::string_view text);

struct Diagnostic {
  int line = 0;
  int column = 0;
  std::string message;
};

class Diagnostics {
 public:
  explicit Diagnostics(std::string file) : file_(std::move(file)) {}
  // When false, paths (certificates, secrets) are not opened: for checking documentation examples
  // on a machine that does not have the files.
  bool check_files = true;
  void error(int line, int column, std::string message);
  void error(const toml::source_region& where, std::string message);
  bool ok() const { return list_.empty(); }
  const std::vector<Diagnostic>& list() const { return list_; }
  const std::string& file() const { return file_; }
  // One "FILE:LINE:COL: message" per line, in file order.
  std::string format() const;
  // format() and a last line "N problem(s) in FILE": what check-config and run print.
  std::string report() const { return format() + std::to_string(list_.size()) + " problem(s) in " + file_ + "\n"; }

 private:
  std::string file_;
  std::vector<Diagnostic> list_;
};

// A settings file parsed as TOML, or nullopt with the problem in `diag`: unreadable, not UTF-8, or
// a syntax error at its line and column. Every program of the project reads its file this way.
std::optional<toml::table> read_toml_file(const std::string& path, Diagnostics& diag);
std::optional<toml::table> read_toml_text(std::string_view text, const std::string& name, Diagnostics& diag);

// "30s", "500ms", "1h30m", "7d" -> milliseconds. Returns nullopt on anything else.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);
// "2GiB", "512MB", "100KiB", "4096B", "4096" -> bytes.
std::optional<std::uint64_t> parse_size(std::string_view text);
// "+07:00", "-03:30", "+0700", "+07", "Z", "UTC" -> minutes east of UTC (at most 14 hours).
std::optional<int> parse_offset_minutes(std::string_view text);
// "ADDRESS:PORT" for a server to listen on: an IPv4 address ("0.0.0.0:8780"), a bracketed IPv6
// address ("[::1]:8787") or localhost (127.0.0.1); port 1..65535. One rule for every server the
// project runs (the status API, http-ingest, ioc-receiver's status). nullopt when malformed, with
// `port_out_of_range` set when only the port is wrong.
struct ListenAddress {
  std::string host;  // without brackets; "localhost" becomes "127.0.0.1"
  int port = 0;
};
std::optional<ListenAddress> parse_listen_address(std::string_view text, bool* port_out_of_range = nullptr);
// The closest of `candidates` to `word`, if close enough to be a likely typo.
std::optional<std::string> did_you_mean(std::string_view word, const std::vector<std::string>& candidates);

class TableReader {
 public:
  // `context` prefixes every message: "[uplink] " or "source \"tram-bom-1\": ".
  TableReader(const toml::table& table, Diagnostics& diag, std::string context);

  std::optional<std::string> string(std::string_view key, bool required = false);
  std::string string_or(std::string_view key, std::string fallback);
  // A string that must be valid UTF-8 and non-empty when present.
  std::optional<std::int64_t> integer(std::string_view key, std::int64_t min, std::int64_t max, bool required = false);
  std::int64_t integer_or(std::string_view key, std::int64_t fallback, std::int64_t min, std::int64_t max);
  double number_or(std::string_view key, double fallback, double min, double max);
  bool boolean_or(std::string_view key, bool fallback);
  std::string enum_or(std::string_view key, std::string fallback, std::initializer_list<std::string_view> allowed);
  std::chrono::milliseconds duration_or(std::string_view key, std::chrono::milliseconds fallback,
                                        std::chrono::milliseconds min = std::chrono::milliseconds(0));
  std::uint64_t size_or(std::string_view key, std::uint64_t fallback, std::uint64_t min = 0);
  // Bytes per second: "2MiB/s"; 0, "0" or "unlimited" mean no cap.
  double rate_or(std::string_view key, double fallback);
  // An existing readable file path (checked on disk), when present.
  std::optional<std::string> file_path(std::string_view key, bool required = false);

  const toml::table* table(std::string_view key);
  // A top-level [section]: like table(), and when `required` and absent, "missing required
  // section [key]" at 1:1.
  const toml::table* section(std::string_view key, bool required);
  const toml::array* array(std::string_view key);

  // Marks a key as known without reading it (handled elsewhere).
  void known(std::string_view key) { known_.insert(std::string(key)); }
  // Reports unread keys as unknown. Call once, after every read.
  void finish();

  void error_at_key(std::string_view key, const std::string& message);
  void error_here(const std::string& message);
  Diagnostics& diagnostics() { return diag_; }
  const std::string& context() const { return context_; }
  const toml::table& raw() const { return table_; }
  // Where `key`'s value stands in the file ({0, 0} when absent), for messages reported later.
  std::pair<int, int> position(std::string_view key) const;

 private:
  const toml::node* get(std::string_view key, bool required);
  void wrong_type(std::string_view key, const toml::node& n, std::string_view expected);

  const toml::table& table_;
  Diagnostics& diag_;
  std::string context_;
  std::set<std::string> known_;
};

std::string_view type_name(toml::node_type t);

}  // namespace ioc_edge
