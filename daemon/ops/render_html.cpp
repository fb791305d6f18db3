// GET /: the status page for district IT. One self-contained document: inline CSS, no script, no
// external asset (it must work offline and in any browser of the last five years), readable on a
// phone (viewport, one column on narrow screens), refreshed by <meta http-equiv="refresh">.
// Problems come first and in colour (red: act now, amber: watch); healthy things are plain.
// Every string that comes from the configuration, a device, a peer or the IOC broker goes through
// html_escape(); Vietnamese text is UTF-8 throughout (<meta charset="utf-8">).
#include <algorithm>
#include <cstdio>

#include "ops/render.h"
#include "ops/text.h"

namespace ioc_edge {

std::string html_escape(std::string_view v) {
  std::string out;
  out.reserve(v.size() + v.size() / 8);
  for (char c : v) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

namespace {

constexpr std::string_view kStyle = R"css(
*{box-sizing:border-box}
body{margin:0;padding:.75rem;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",Arial,sans-serif;color:#1d2330;background:#f3f5f8}
main{max-width:72rem;margin:0 auto}
h1{font-size:1.35rem;margin:.2rem 0}
h2{font-size:1.05rem;margin:0 0 .4rem}
.sub,.muted{color:#5b6475;font-size:.85rem}
.banner{border-radius:.5rem;padding:.6rem .9rem;margin:.75rem 0;border:1px solid}
.banner.ok{background:#eef8f0;border-color:#9fd3ab}
.banner.bad{background:#fdecec;border-color:#e59a9a}
.banner ul{margin:.3rem 0 0;padding-left:1.2rem}
.grid{display:grid;gap:.75rem;grid-template-columns:repeat(auto-fill,minmax(20rem,1fr))}
.card{background:#fff;border:1px solid #d9dee7;border-left:.35rem solid #d9dee7;border-radius:.5rem;padding:.7rem .9rem;margin:0 0 .75rem;overflow-wrap:anywhere}
.card.bad{border-left-color:#c62828;background:#fff7f7}
.card.warn{border-left-color:#e69a00;background:#fffaf0}
.big{font-size:1.3rem;font-weight:600;margin:.1rem 0 .3rem}
.badge{display:inline-block;border-radius:.3rem;padding:0 .4rem;font-size:.8rem;font-weight:600;color:#fff;background:#5b6475;vertical-align:middle}
.badge.bad{background:#c62828}.badge.warn{background:#b36b00}.badge.ok{background:#2e7d32}
.red{color:#b71c1c}.amber{color:#8a5300}
table{border-collapse:collapse;width:100%;font-size:.88rem}
td,th{padding:.15rem .4rem .15rem 0;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.scroll{overflow-x:auto}
.bar{height:.5rem;background:#e6e9ef;border-radius:.25rem;overflow:hidden;margin:.25rem 0}
.bar span{display:block;height:100%;background:#3b6fd8}
.bar.warn span{background:#e69a00}.bar.bad span{background:#c62828}
code{background:#eef1f6;border-radius:.25rem;padding:0 .3rem;font-size:.85rem}
footer{margin:1rem 0;font-size:.8rem;color:#5b6475}
@media (max-width:40rem){body{padding:.4rem;font-size:14px}.grid{grid-template-columns:1fr}}
)css";

// "2026-11-28T22:09:59.500Z" -> "2026-11-28 22:09:59 UTC": people read seconds, not milliseconds.
std::string utc(std::int64_t ms) {
  const std::string t = format_rfc3339_ms(ms);
  return t.size() >= 19 ? t.substr(0, 10) + " " + t.substr(11, 8) + " UTC" : t;
}

std::string when(std::int64_t ms, std::int64_t now_ms) {
  if (ms == 0) return "never";
  const auto ago = now_ms - ms;
  return utc(ms) + (ago >= 0 ? " (" + human_duration(ago) + " ago)" : "");
}

void row(std::string& out, std::string_view name, const std::string& value_html, bool numeric = false) {
  out += "<tr><th>";
  out += name;
  out += numeric ? "</th><td class=\"n\">" : "</th><td>";
  out += value_html;
  out += "</td></tr>";
}

void link_card(std::string& out, const Snapshot& s) {
  const auto& fw = s.uplink.link;
  const bool up = fw.state == LinkState::Up;
  const bool too_long = !up && fw.down_for_ms >= s.link_down_after_ms;
  out += "<section class=\"card";
  out += up ? "" : too_long ? " bad" : " warn";
  out += "\" id=\"link\"><h2>IOC link</h2><p class=\"big\" id=\"link-state\">";
  if (up)
    out += "Connected";
  else if (fw.state == LinkState::Connecting)
    out += "Not connected (connecting)";
  else
    out += "Not connected";
  out += "</p><p class=\"muted\">";
  if (up)
    out += "since " + html_escape(when(fw.state_since_ms, s.now_ms));
  else if (fw.down_since_ms)
    out += "down for " + html_escape(human_duration(fw.down_for_ms)) + ", since " +
           html_escape(when(fw.down_since_ms, s.now_ms)) + (too_long ? "" : "; a problem after " +
           html_escape(human_duration(s.link_down_after_ms)));
  out += "</p>";
  if (!fw.last_error.empty())
    out += std::string("<p class=\"") + (up ? "muted" : "red") + "\">Last error: " + html_escape(fw.last_error) + "</p>";
  out += "<table>";
  row(out, "Readings sent", with_thousands(fw.readings_sent), true);
  row(out, "Messages sent", with_thousands(fw.messages_sent), true);
  row(out, "Data sent", html_escape(human_bytes(fw.bytes_sent)), true);
  row(out, "Connections", with_thousands(fw.connects) + " (" + with_thousands(fw.connect_failures) + " failed)", true);
  row(out, "In flight", with_thousands(fw.inflight), true);
  row(out, "Broker", html_escape(s.uplink.url) + " <span class=\"muted\">MQTT " + html_escape(s.uplink.mqtt_version) +
                         "</span>");
  out += "</table></section>";
}

void backlog_card(std::string& out, const Snapshot& s) {
  const auto& st = s.backlog.outbox;
  const double share =
      s.backlog.max_bytes ? 100.0 * static_cast<double>(st.file_bytes) / static_cast<double>(s.backlog.max_bytes) : 0.0;
  const char* level = share >= 90 ? "bad" : share >= 70 ? "warn" : "";
  out += "<section class=\"card";
  out += *level ? std::string(" ") + level : std::string();
  out += "\" id=\"backlog\"><h2>Waiting to be sent</h2><p class=\"big\" id=\"backlog-readings\">";
  out += with_thousands(static_cast<std::uint64_t>(std::max<std::int64_t>(0, st.pending)));
  out += st.pending == 1 ? " reading" : " readings";
  out += "</p><p class=\"muted\">";
  out += st.pending > 0 ? "oldest waiting " + html_escape(human_duration(st.oldest_age_ms)) : std::string("nothing waits");
  out += "</p><p id=\"backlog-bytes\">Buffer file " + html_escape(human_bytes(st.file_bytes)) + " of " +
         html_escape(human_bytes(s.backlog.max_bytes));
  char pct[16];
  std::snprintf(pct, sizeof pct, "%.1f", share);
  out += std::string(" (") + pct + "%)</p><div class=\"bar " + level + "\"><span style=\"width:" +
         std::to_string(std::clamp(static_cast<int>(share + 0.5), 0, 100)) + "%\"></span></div>";
  out += "<div class=\"scroll\"><table><tr><th>priority</th><th>readings</th><th>bytes</th><th>oldest</th></tr>";
  for (int p = kPriorityLevels - 1; p >= 0; --p) {
    out += "<tr><td>";
    out += to_string(static_cast<Priority>(p));
    out += "</td><td class=\"n\">" + with_thousands(static_cast<std::uint64_t>(std::max<std::int64_t>(0, st.pending_by_prio[p])));
    out += "</td><td class=\"n\">" +
           (st.bytes_by_prio[p] >= 0 ? html_escape(human_bytes(static_cast<std::uint64_t>(st.bytes_by_prio[p])))
                                     : std::string("?"));
    out += "</td><td class=\"n\">" +
           (st.pending_by_prio[p] > 0 ? html_escape(human_duration(st.oldest_age_ms_by_prio[p])) : std::string("-"));
    out += "</td></tr>";
  }
  out += "</table></div><table>";
  row(out, "Evicted since start", with_thousands(st.evicted), true);
  row(out, "Refused since start", with_thousands(st.refused), true);
  char lat[64];
  std::snprintf(lat, sizeof lat, "%.1f ms / %.1f ms", st.ack_p50_ms, st.ack_p99_ms);
  row(out, "Commit wait p50 / p99", lat, true);
  out += "</table></section>";
}

void storage_card(std::string& out, const Snapshot& s) {
  const auto& st = s.backlog.outbox;
  out += "<section class=\"card";
  out += !st.fault.empty() ? " bad" : !st.corruption.empty() ? " warn" : "";
  out += "\" id=\"storage\"><h2>Storage</h2>";
  if (!st.fault.empty())
    out += "<p class=\"big red\">Fault: new data is refused</p><p class=\"red\">" + html_escape(st.fault) + "</p>";
  else
    out += "<p class=\"big\">OK</p>";
  if (!st.corruption.empty())
    out += "<p class=\"amber\">Damaged file salvaged: " + html_escape(st.corruption) + "</p>";
  out += "<table>";
  row(out, "Store", "<code>" + html_escape(s.store) + "</code>");
  row(out, "Last seq", with_thousands(static_cast<std::uint64_t>(std::max<std::int64_t>(0, st.last_seq))), true);
  if (!s.config.last_result.empty()) {
    const bool refused = s.config.last_result.rfind("refused", 0) == 0;
    row(out, "Last reload", std::string(refused ? "<span class=\"amber\">" : "<span>") + html_escape(s.config.last_result) +
                                "</span>");
  }
  out += "</table></section>";
}

void held_card(std::string& out, const Snapshot& s) {
  const auto& st = s.backlog.outbox;
  if (st.held <= 0) return;
  out += "<section class=\"card bad\" id=\"held\"><h2>Refused by the IOC</h2><p class=\"big red\">";
  out += with_thousands(static_cast<std::uint64_t>(st.held));
  out += " readings refused</p><p>They are kept here, not resent. Fix the IOC broker's ACL or limits (or this office's "
         "topic settings), then run <code>ioc-edge outbox requeue</code>.</p>"
         "<div class=\"scroll\"><table><tr><th>seqs</th><th>readings</th><th>topic</th><th>reason</th><th>when</th></tr>";
  for (const auto& h : s.backlog.held)
    out += "<tr><td>" + std::to_string(h.first_seq) + "..." + std::to_string(h.last_seq) + "</td><td class=\"n\">" +
           with_thousands(static_cast<std::uint64_t>(std::max<std::int64_t>(0, h.readings))) + "</td><td>" +
           html_escape(h.topic) + "</td><td>" + html_escape(h.reason) + "</td><td>" + html_escape(when(h.at_ms, s.now_ms)) +
           "</td></tr>";
  out += "</table></div></section>";
}

int severity(const SourceSnapshot& c) { return c.down ? 0 : c.stale ? 1 : 2; }

void source_card(std::string& out, const SourceSnapshot& c, std::int64_t now_ms) {
  const int sev = severity(c);
  out += "<article class=\"card";
  out += sev == 0 ? " bad" : sev == 1 ? " warn" : "";
  out += "\" id=\"source-" + html_escape(c.name) + "\"><h2>";
  out += sev == 0 ? "<span class=\"badge bad\">DOWN</span> "
                  : sev == 1 ? "<span class=\"badge warn\">STALE</span> " : "<span class=\"badge ok\">up</span> ";
  if (!c.title.empty()) {
    out += html_escape(c.title) + " <span class=\"muted\">" + html_escape(c.name) + "</span>";
  } else {
    out += html_escape(c.name);
  }
  out += "</h2><p class=\"muted\">" + html_escape(c.type) + ", priority " + std::string(to_string(c.priority));
  if (c.expected_every_ms > 0) out += ", expected every " + html_escape(human_duration(c.expected_every_ms));
  out += "</p><table>";
  row(out, "Last good reading", html_escape(when(c.last_good_ms, now_ms)));
  if (c.stale) row(out, "Stale since", "<span class=\"amber\">" + html_escape(when(c.stale_since_ms, now_ms)) + "</span>");
  if (!c.last_error.empty())
    row(out, "Last error",
        std::string("<span class=\"") + (sev == 0 ? "red" : "amber") + "\">" + html_escape(c.last_error) + "</span>" +
            (c.last_error_ms ? " <span class=\"muted\">" + html_escape(when(c.last_error_ms, now_ms)) + "</span>"
                             : std::string()));
  row(out, "Stored", with_thousands(c.stored) + " (" + with_thousands(c.good) + " good, " + with_thousands(c.bad) + " bad)",
      true);
  if (c.refused) row(out, "Refused by the buffer", "<span class=\"red\">" + with_thousands(c.refused) + "</span>", true);
  if (c.errors) row(out, "Errors", with_thousands(c.errors), true);
  if (c.overruns) row(out, "Overruns", with_thousands(c.overruns), true);
  if (c.messages) row(out, "Messages", with_thousands(c.messages) + " (" + with_thousands(c.redelivered) + " resent)", true);
  if (!c.bad_input.empty()) {
    std::string kinds;
    for (const auto& [kind, n] : c.bad_input) kinds += (kinds.empty() ? "" : ", ") + html_escape(kind) + " " + with_thousands(n);
    row(out, "Bad input", kinds);
  }
  out += "</table></article>";
}

}  // namespace

std::string render_html(const Snapshot& s, int refresh_s) {
  std::string out;
  out.reserve(6000 + s.sources.size() * 900);
  const std::string place = s.org_name.empty() ? s.site : s.org_name;
  out += "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">";
  if (refresh_s > 0) out += "<meta http-equiv=\"refresh\" content=\"" + std::to_string(refresh_s) + "\">";
  out += "<title>" + std::string(s.healthy() ? "OK" : "PROBLEM") + " · " + html_escape(place) + " · ioc-edge</title>";
  out += "<style>";
  out += kStyle;
  out += "</style></head><body><main><header><h1>" + html_escape(place) + "</h1><p class=\"sub\">site <b>" +
         html_escape(s.site) + "</b> · province " + html_escape(s.province) + " · ioc-edge " + html_escape(s.version) +
         " · running " + html_escape(human_duration(s.uptime_s * 1000)) + " · " + html_escape(utc(s.now_ms)) +
         (refresh_s > 0 ? " · refreshes every " + std::to_string(refresh_s) + " s" : "") + "</p></header>";

  if (s.healthy()) {
    out += "<section class=\"banner ok\" id=\"health\"><b>All is well.</b> The IOC link, the buffer and every source "
           "work.</section>";
  } else {
    out += "<section class=\"banner bad\" id=\"health\"><b>" + std::to_string(s.problems.size()) +
           (s.problems.size() == 1 ? " problem" : " problems") + "</b><ul>";
    for (const auto& p : s.problems) out += "<li>" + html_escape(p) + "</li>";
    out += "</ul></section>";
  }

  held_card(out, s);
  out += "<div class=\"grid\">";
  link_card(out, s);
  backlog_card(out, s);
  storage_card(out, s);
  out += "</div>";

  std::vector<const SourceSnapshot*> order;
  order.reserve(s.sources.size());
  int down = 0, stale = 0;
  for (const auto& c : s.sources) {
    order.push_back(&c);
    down += c.down;
    stale += !c.down && c.stale;
  }
  std::stable_sort(order.begin(), order.end(),
                   [](const SourceSnapshot* a, const SourceSnapshot* b) { return severity(*a) < severity(*b); });
  out += "<section id=\"sources\"><h2>Sources: " + std::to_string(s.sources.size()) + " (";
  out += down ? "<span class=\"red\">" + std::to_string(down) + " down</span>" : "0 down";
  out += ", ";
  out += stale ? "<span class=\"amber\">" + std::to_string(stale) + " stale</span>" : "0 stale";
  out += ")</h2><div class=\"grid\">";
  for (const auto* c : order) source_card(out, *c, s.now_ms);
  out += "</div></section><footer>Machine-readable: <a href=\"/status\">/status</a> (JSON) · <a "
         "href=\"/metrics\">/metrics</a> (Prometheus) · <a href=\"/healthz\">/healthz</a> · on the gateway: "
         "<code>ioc-edge status</code></footer></main></body></html>\n";
  return out;
}

}  // namespace ioc_edge
