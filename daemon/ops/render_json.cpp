// GET /status. The shape is a contract (`ioc-edge status`, monitoring scripts, the tests): fields
// are added, never renamed or removed.
#include <cmath>

#include <nlohmann/json.hpp>

#include "ops/render.h"

namespace ioc_edge {

namespace {

nlohmann::json time_or_null(std::int64_t ms) { return ms ? nlohmann::json(format_rfc3339_ms(ms)) : nlohmann::json(nullptr); }
nlohmann::json text_or_null(const std::string& s) { return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s); }

nlohmann::json source_json(const SourceSnapshot& c) {
  return {{"name", c.name},
          {"type", c.type},
          {"title", text_or_null(c.title)},
          {"priority", to_string(c.priority)},
          {"state", c.down ? "down" : "up"},
          {"last_error", text_or_null(c.last_error)},
          {"last_error_at", time_or_null(c.last_error_ms)},
          {"produced", c.produced},
          {"stored", c.stored},
          {"good", c.good},
          {"bad", c.bad},
          {"refused", c.refused},
          {"errors", c.errors},
          {"overruns", c.overruns},
          {"messages", c.messages},
          {"redelivered", c.redelivered},
          {"bad_input", c.bad_input},
          {"last_stored", time_or_null(c.last_stored_ms)},
          {"last_good", time_or_null(c.last_good_ms)},
          {"stale", c.stale},
          {"stale_since", c.stale ? time_or_null(c.stale_since_ms) : nlohmann::json(nullptr)},
          {"expected_every_s", static_cast<double>(c.expected_every_ms) / 1000.0}};
}

}  // namespace

std::string render_json(const Snapshot& s) {
  const auto& st = s.backlog.outbox;
  const auto& fw = s.uplink.link;
  nlohmann::json by_prio = nlohmann::json::object();
  nlohmann::json priorities = nlohmann::json::object();
  for (int p = 0; p < kPriorityLevels; ++p) {
    const std::string name(to_string(static_cast<Priority>(p)));
    by_prio[name] = st.pending_by_prio[p];
    priorities[name] = {{"readings", st.pending_by_prio[p]},
                        {"bytes", st.bytes_by_prio[p] >= 0 ? nlohmann::json(st.bytes_by_prio[p]) : nlohmann::json(nullptr)},
                        {"oldest_age_s", static_cast<double>(st.oldest_age_ms_by_prio[p]) / 1000.0}};
  }
  nlohmann::json held = nlohmann::json::array();
  for (const auto& h : s.backlog.held)
    held.push_back({{"first_seq", h.first_seq},
                    {"last_seq", h.last_seq},
                    {"readings", h.readings},
                    {"topic", h.topic},
                    {"reason", h.reason},
                    {"at", format_rfc3339_ms(h.at_ms)}});
  nlohmann::json sources = nlohmann::json::array();
  for (const auto& c : s.sources) sources.push_back(source_json(c));
  nlohmann::json j = {
      {"version", s.version},
      {"site", s.site},
      {"province", s.province},
      {"store", s.store},
      {"now", format_rfc3339_ms(s.now_ms)},
      {"uptime_s", s.uptime_s},
      {"uplink",
       {{"url", s.uplink.url},
        {"state", to_string(fw.state)},
        {"since", time_or_null(fw.state_since_ms)},
        {"down_since", time_or_null(fw.down_since_ms)},
        {"down_for_s", static_cast<double>(fw.down_for_ms) / 1000.0},
        {"last_error", fw.last_error},
        {"connects", fw.connects},
        {"connect_failures", fw.connect_failures},
        {"messages_sent", fw.messages_sent},
        {"readings_sent", fw.readings_sent},
        {"bytes_sent", fw.bytes_sent},
        {"publish_failures", fw.publish_failures},
        {"mqtt_version", s.uplink.mqtt_version},
        {"rejected_messages", fw.rejected_messages},
        {"rejected_readings", fw.rejected_readings},
        {"last_rejection", text_or_null(fw.last_rejection)},
        {"delivery_rate_bytes_per_s", std::round(fw.delivery_rate)},
        {"backlog_budget_bytes", fw.backlog_budget},
        {"inflight", fw.inflight}}},
      {"backlog",
       {{"readings", st.pending},
        {"by_priority", by_prio},
        {"priorities", priorities},
        {"oldest_age_s", static_cast<double>(st.oldest_age_ms) / 1000.0},
        {"last_seq", st.last_seq},
        {"file_bytes", st.file_bytes},
        {"max_bytes", s.backlog.max_bytes},
        {"appended", st.appended},
        {"removed", st.removed},
        {"evicted", st.evicted},
        {"refused", st.refused},
        {"removing", st.removing},
        {"commits", st.commits},
        {"commit_latency_ms",
         {{"count", st.acks}, {"p50", st.ack_p50_ms}, {"p99", st.ack_p99_ms}, {"max", st.ack_max_ms}, {"sum", st.ack_sum_ms}}},
        {"held", {{"readings", st.held}, {"messages", held}}},
        {"fault", text_or_null(st.fault)},
        {"corruption", text_or_null(st.corruption)}}},
      {"sources", sources},
      {"health", {{"ok", s.healthy()}, {"problems", s.problems}}},
      {"config",
       {{"file", s.config.file},
        {"loaded_at", time_or_null(s.config.loaded_at_ms)},
        {"reloads", s.config.reloads},
        {"reloads_refused", s.config.refused},
        {"last_reload_at", time_or_null(s.config.last_at_ms)},
        {"last_reload", s.config.last_result.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.config.last_result)}}},
  };
  // Text from devices and peers (errors, refusal reasons) is shown as it came; a byte that is not
  // UTF-8 becomes U+FFFD rather than failing the whole status.
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace ioc_edge
