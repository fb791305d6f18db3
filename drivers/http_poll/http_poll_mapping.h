#pragma once
// How a polled JSON document becomes readings (drivers/http_poll/README.md, "Mapping"). Pure
// functions; no I/O, no threads.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/reading.h"
#include "drivers/http_poll/http_poll_config.h"

namespace ioc_edge::http_poll {

// Readings one poll may give at most; a document with more records is refused whole.
inline constexpr std::size_t kMaxReadingsPerPoll = 100000;

// The outcome of mapping one document.
struct Mapped {
  std::vector<Reading> readings;
  // The document as a whole could not be read (not JSON, the records pointer matches nothing or
  // no array, too many records): the poll failed and `readings` is empty.
  std::string error;
  std::string kind;  // of `error`, for the counters: "malformed_json", "invalid_utf8", "empty_body", "no_match", ...
  // Records that gave no reading or a reading with a problem, by kind ("no_match", "bad_point_name",
  // "bad_value", "bad_timestamp"), and the first such problem in words (naming the record).
  std::map<std::string, std::uint64_t> problems;
  std::string first_problem;
};

// The compiled mapping of one source (pointers split once).
class Mapper {
 public:
  // nullopt with `error` only for a pointer parse_config would have refused.
  static std::optional<Mapper> build(const Mapping& m, std::string& error);

  // `now_ms` stamps readings without a ts_pointer (the time of the answer), and those whose
  // time cannot be read (quality uncertain, the problem in `error`). A record whose point cannot
  // be named is skipped and counted; a record whose value is missing gives a bad reading naming
  // the problem; a null value is skipped (no value yet).
  Mapped map(std::string_view body, std::int64_t now_ms) const;

 private:
  Mapping m_;
  bool has_records_ = false, has_value_ = false;
  std::vector<std::string> records_, point_, value_, ts_, unit_;
};

}  // namespace ioc_edge::http_poll
