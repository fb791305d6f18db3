#include "ops/health.h"

#include "ops/text.h"

namespace ioc_edge {

std::vector<std::string> health_problems(const Snapshot& s) {
  std::vector<std::string> out;
  const auto& ob = s.backlog.outbox;
  if (!ob.fault.empty()) out.push_back("storage fault: " + ob.fault + "; new data is refused until it clears");
  if (ob.held > 0) {
    std::string what = "the IOC broker refused " + std::to_string(ob.held) + " readings";
    if (!s.backlog.held.empty())
      what += " (" + s.backlog.held.front().reason + " on " + s.backlog.held.front().topic + ")";
    out.push_back(what +
                  "; they are kept; fix the broker side or this office's topic settings, then run `ioc-edge outbox "
                  "requeue`");
  }
  const auto& link = s.uplink.link;
  if (link.state != LinkState::Up && link.down_since_ms != 0 && link.down_for_ms >= s.link_down_after_ms) {
    std::string what = "the IOC link has been down for " + human_duration(link.down_for_ms) + " (since " +
                       format_rfc3339_ms(link.down_since_ms) + ")";
    if (!link.last_error.empty()) what += ": " + link.last_error;
    out.push_back(what);
  }
  for (const auto& src : s.sources) {
    if (src.down)
      out.push_back("source \"" + src.name + "\" is down" + (src.last_error.empty() ? "" : ": " + src.last_error));
    if (src.stale) {
      std::string what = "source \"" + src.name + "\" is stale: no good reading ";
      what += src.last_good_ms ? "since " + format_rfc3339_ms(src.last_good_ms) : std::string("since the start");
      if (src.expected_every_ms > 0) what += " (expected every " + human_duration(src.expected_every_ms) + ")";
      out.push_back(what);
    }
  }
  return out;
}

}  // namespace ioc_edge
