#pragma once
// The body of POST /v1/readings, checked whole before anything is stored: either every reading is
// valid (and the client may write every source it names) or the first problem is named by its
// JSON pointer and nothing of the request is taken. Pure: no I/O, unit-tested.
//
//   {"batch_id": "hs-2026-11-30-0042",            (optional; as the Idempotency-Key header)
//    "readings": [{"source": "mot-cua-hoso",      (optional: the source's own name)
//                  "point": "ho_so_tiep_nhan",
//                  "value": 12,                   (number, string, boolean, object or array;
//                                                  null only with quality "bad")
//                  "ts": "2026-11-30T08:00:00+07:00",   (optional: the time of receipt)
//                  "unit": "hồ sơ",               (optional)
//                  "quality": "good",             (optional: good | uncertain | bad)
//                  "error": "..."}]}              (optional: why bad or uncertain)
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/source.h"

namespace ioc_edge::http_ingest {

struct Parsed {
  std::vector<Batch::Group> groups;  // runs of consecutive readings of one source, in request order
  std::size_t readings = 0;
  std::string batch_id;              // empty when the body has none
};

struct Problem {
  int status = 400;      // 400, or 403 for a source outside the client's scope
  std::string kind;      // the bad-input counter: malformed_json, invalid_utf8, bad_field, too_many_readings, forbidden
  std::string pointer;   // "/readings/1/value"; empty for the whole body
  std::string message;
};

struct ParseOptions {
  std::string own_source;                           // a reading without "source" is this source's
  std::int64_t now_ms = 0;                          // a reading without "ts" was taken now
  std::size_t max_readings = 100000;
  std::function<bool(const std::string&)> allowed;  // may the client write this source?
};

// True and `out` filled, or false and `problem` naming the first bad field.
bool parse_request(std::string_view body, const ParseOptions& options, Parsed& out, Problem& problem);

// A batch id or Idempotency-Key: 1-128 printable ASCII characters without spaces.
bool valid_batch_id(std::string_view id);

}  // namespace ioc_edge::http_ingest
