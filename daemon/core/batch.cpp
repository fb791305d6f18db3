#include "core/batch.h"

#include <charconv>
#include <cstring>

namespace ioc_edge {

std::string build_batch(const BatchHeader& header, std::int64_t sent_at_ms, const std::vector<const Record*>& records) {
  std::size_t size = 160 + header.org_json.size();
  for (const auto* r : records) size += r->body.size() + 24 * r->count();
  std::string out;
  out.reserve(size);
  out += "{\"schema\":\"ioc-edge/batch/1\",\"site\":";
  append_json_string(out, header.site);
  out += ",\"store\":\"";
  out += header.store;
  out += "\",\"sent_at\":\"";
  out += format_rfc3339_ms(sent_at_ms);
  out += '"';
  if (!header.org_json.empty()) {
    out += ",\"org\":";
    out += header.org_json;
  }
  out += ",\"readings\":[";
  bool first = true;
  char digits[24];
  for (const auto* r : records) {
    // One reading per line of the body; each gets the next seq of the record spliced in front.
    std::int64_t seq = r->first_seq;
    const char* p = r->body.data();
    const char* const end = p + r->body.size();
    const bool single = r->count() == 1;  // the whole body, whatever it holds (a schema-1 row)
    while (p < end && seq <= r->last_seq) {
      const char* nl =
          single ? nullptr : static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
      const char* line_end = nl ? nl : end;
      if (!first) out += ',';
      first = false;
      out += "{\"seq\":";
      const auto [dend, ec] = std::to_chars(digits, digits + sizeof digits, seq);
      out.append(digits, dend);
      if (line_end - p > 2) {  // "{...}": splice its members after seq
        out += ',';
        out.append(p + 1, line_end);
      } else {
        out += '}';
      }
      ++seq;
      p = nl ? nl + 1 : end;
    }
  }
  out += "]}";
  return out;
}

std::vector<SeqRange> seq_ranges(const std::vector<const Record*>& records) {
  std::vector<SeqRange> out;
  for (const auto* r : records) {
    if (!out.empty() && out.back().last + 1 == r->first_seq && out.back().prio == r->prio)
      out.back().last = r->last_seq;
    else
      out.push_back({r->first_seq, r->last_seq, r->prio});
  }
  return out;
}

}  // namespace ioc_edge
