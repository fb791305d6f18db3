#pragma once
// The gateway's own events (docs/design.md section 3): what it tells the IOC about data it dropped
// (`gap`) or that the IOC broker refused (`rejected`). They travel as readings of source
// "_gateway" on {prefix}/event/_gateway, priority System. docs/schema/README.md documents them;
// this file is the only place that builds them. Pure functions.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/envelope.h"

namespace ioc_edge {

inline constexpr std::string_view kGatewaySource = "_gateway";

// An eviction's gap events: the exact seq runs dropped, split over several events when there are
// more than 1,000 runs; the first one also counts the dropped readings per source. A salvage of a
// damaged file (reason "corrupt") knows neither the priority nor the sources of what it could not read.
struct SeqRun {
  std::int64_t first = 0;
  std::int64_t last = 0;
};
std::vector<Envelope> gap_events(std::string_view reason, std::optional<Priority> dropped_prio, const std::vector<SeqRun>& runs,
                                 const std::map<std::string, std::int64_t>& per_source, std::int64_t ts_ms);

// The IOC broker refused a message (MQTT 5 PUBACK reason code >= 0x80): which seqs, on which topic,
// and why. The records stay in the outbox, set aside until `ioc-edge outbox requeue` or a restart.
struct Refusal {
  std::string topic;
  int reason_code = 0;          // 0x87 not authorized, 0x95 packet too large, ...
  std::string reason;           // the reason code in words
  std::vector<SeqRange> ranges;
  std::size_t readings = 0;
  std::string source;           // the records' source
};
Envelope rejected_event(const Refusal& r, std::int64_t ts_ms);

// Readings of `source` that the outbox refused (full disk, overload) and that therefore have no
// seq: how many, over which span of time and why. Sent by the source's pipeline once storage takes
// data again, on {prefix}/event/{source}, so the IOC can tell "not measured" from "lost at the office".
Envelope refused_event(std::string_view source, std::uint64_t count, std::int64_t from_ms, std::int64_t to_ms,
                       std::string_view reason, std::int64_t ts_ms);

// MQTT 5 reason codes in words, as the log, the status API and the rejected event say them.
std::string mqtt_reason_text(int reason_code);

}  // namespace ioc_edge
