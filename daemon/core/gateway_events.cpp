#include "core/gateway_events.h"

#include <algorithm>

namespace ioc_edge {

namespace {

constexpr std::size_t kMaxRangesPerEvent = 1000;

Envelope gateway_event(std::string_view point, std::string value_json, std::int64_t ts_ms,
                       std::string_view source = kGatewaySource, Priority prio = Priority::System) {
  Envelope e;
  e.prio = prio;
  e.kind = Kind::Event;
  e.source = std::string(source);
  Reading r;
  r.point = std::string(point);
  r.ts_ms = ts_ms;
  r.value = JsonText{std::move(value_json)};
  frame_reading(e, r);
  return e;
}

void append_range(std::string& v, std::int64_t first, std::int64_t last) {
  v += "[" + std::to_string(first) + "," + std::to_string(last) + "]";
}

}  // namespace

std::vector<Envelope> gap_events(std::string_view reason, std::optional<Priority> dropped_prio, const std::vector<SeqRun>& runs,
                                 const std::map<std::string, std::int64_t>& per_source, std::int64_t ts_ms) {
  std::vector<Envelope> out;
  for (std::size_t i = 0; i < runs.size(); i += kMaxRangesPerEvent) {
    const std::size_t end = std::min(runs.size(), i + kMaxRangesPerEvent);
    std::string v = "{\"event\":\"gap\",\"reason\":";
    append_json_string(v, reason);
    if (dropped_prio) {
      v += ",\"priority\":\"";
      v += to_string(*dropped_prio);
      v += "\"";
    }
    v += ",\"ranges\":[";
    std::int64_t n = 0;
    for (std::size_t k = i; k < end; ++k) {
      if (k > i) v += ',';
      append_range(v, runs[k].first, runs[k].last);
      n += runs[k].last - runs[k].first + 1;
    }
    v += "],\"count\":" + std::to_string(n);
    if (i == 0 && !per_source.empty()) {
      v += ",\"sources\":{";
      bool first = true;
      for (const auto& [src, c] : per_source) {
        if (!first) v += ',';
        first = false;
        append_json_string(v, src);
        v += ":" + std::to_string(c);
      }
      v += "}";
    }
    v += "}";
    out.push_back(gateway_event("gap", std::move(v), ts_ms));
  }
  return out;
}

Envelope rejected_event(const Refusal& r, std::int64_t ts_ms) {
  std::string v = "{\"event\":\"rejected\",\"reason\":";
  append_json_string(v, r.reason);
  v += ",\"reason_code\":" + std::to_string(r.reason_code) + ",\"topic\":";
  append_json_string(v, r.topic);
  v += ",\"ranges\":[";
  for (std::size_t k = 0; k < r.ranges.size() && k < kMaxRangesPerEvent; ++k) {
    if (k) v += ',';
    append_range(v, r.ranges[k].first, r.ranges[k].last);
  }
  v += "],\"count\":" + std::to_string(r.readings) + ",\"sources\":{";
  append_json_string(v, r.source);
  v += ":" + std::to_string(r.readings) + "}}";
  return gateway_event("rejected", std::move(v), ts_ms);
}

Envelope refused_event(std::string_view source, std::uint64_t count, std::int64_t from_ms, std::int64_t to_ms,
                       std::string_view reason, std::int64_t ts_ms) {
  std::string v = "{\"event\":\"refused\",\"count\":" + std::to_string(count) + ",\"from\":\"" +
                  format_rfc3339_ms(from_ms) + "\",\"to\":\"" + format_rfc3339_ms(to_ms) + "\",\"reason\":";
  append_json_string(v, reason);
  v += "}";
  return gateway_event("refused", std::move(v), ts_ms, source, Priority::High);
}

std::string mqtt_reason_text(int rc) {
  switch (rc) {
    case 0x80: return "unspecified error";
    case 0x81: return "malformed packet";
    case 0x82: return "protocol error";
    case 0x83: return "implementation specific error";
    case 0x87: return "not authorized";
    case 0x90: return "topic name invalid";
    case 0x91: return "packet identifier in use";
    case 0x93: return "receive maximum exceeded";
    case 0x94: return "topic alias invalid";
    case 0x95: return "packet too large";
    case 0x97: return "quota exceeded";
    case 0x99: return "payload format invalid";
    default: return "reason code " + std::to_string(rc);
  }
}

}  // namespace ioc_edge
