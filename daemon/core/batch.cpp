#include "core/batch.h"

namespace ioc_edge {

std::string build_batch(const BatchHeader& header, std::int64_t sent_at_ms, const std::vector<const Record*>& records) {
  std::size_t size = 160 + header.org_json.size();
  for (const auto* r : records) size += r->body.size() + 24;
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
  for (const auto* r : records) {
    if (!first) out += ',';
    first = false;
    out += "{\"seq\":";
    out += std::to_string(r->seq);
    if (r->body.size() > 2) {  // body is "{...}": splice its members after seq
      out += ',';
      out.append(r->body, 1, std::string::npos);
    } else {
      out += '}';
    }
  }
  out += "]}";
  return out;
}

std::vector<SeqRange> seq_ranges(const std::vector<const Record*>& records) {
  std::vector<SeqRange> out;
  for (const auto* r : records) {
    if (!out.empty() && out.back().last + 1 == r->seq && out.back().prio == r->prio)
      out.back().last = r->seq;
    else
      out.push_back({r->seq, r->seq, r->prio});
  }
  return out;
}

}  // namespace ioc_edge
