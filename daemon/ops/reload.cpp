#include "ops/reload.h"

#include <map>

namespace ioc_edge {

namespace {

template <typename T>
void differs(std::vector<std::string>& out, const char* key, const T& a, const T& b) {
  if (!(a == b)) out.emplace_back(key);
}

}  // namespace

ReloadPlan plan_reload(const Settings& running, const Settings& next, bool uplink_files_changed) {
  ReloadPlan p;
  const auto &g0 = running.gateway, &g1 = next.gateway;
  differs(p.restart_needed, "[gateway] site", g0.site, g1.site);
  differs(p.restart_needed, "[gateway] province", g0.province, g1.province);
  differs(p.restart_needed, "[gateway] data_dir", g0.data_dir, g1.data_dir);
  // The office's codes are in every message's header, whose size the buffer's records were cut to.
  differs(p.restart_needed, "[gateway] unit_code", g0.unit_code, g1.unit_code);
  differs(p.restart_needed, "[gateway] agency_code", g0.agency_code, g1.agency_code);
  differs(p.restart_needed, "[gateway] name", g0.name, g1.name);
  const auto &b0 = running.buffer, &b1 = next.buffer;
  differs(p.restart_needed, "[buffer] max_size", b0.max_size, b1.max_size);
  differs(p.restart_needed, "[buffer] max_age", b0.max_age, b1.max_age);
  differs(p.restart_needed, "[buffer] sync", b0.sync_full, b1.sync_full);
  differs(p.restart_needed, "[buffer] commit_interval", b0.commit_interval, b1.commit_interval);
  differs(p.restart_needed, "[status] listen", running.status.listen, next.status.listen);
  // The roll-up file is opened with its retention; the report's offset and write interval apply.
  differs(p.restart_needed, "[report] retention", running.report.retention, next.report.retention);
  const auto &u0 = running.uplink, &u1 = next.uplink;
  // The buffer merges records up to these sizes from the moment it opens.
  differs(p.restart_needed, "[uplink] batch_max_readings", u0.batch_max_readings, u1.batch_max_readings);
  differs(p.restart_needed, "[uplink] batch_max_bytes", u0.batch_max_bytes, u1.batch_max_bytes);
  differs(p.restart_needed, "[uplink] blob_max_bytes", u0.blob_max_bytes, u1.blob_max_bytes);

  auto& up = p.uplink_changes;
  differs(up, "[gateway] topic_prefix", g0.topic_prefix, g1.topic_prefix);
  differs(up, "[uplink] url", u0.url, u1.url);
  differs(up, "[uplink] client_id", u0.client_id, u1.client_id);
  differs(up, "[uplink] ca_file", u0.ca_file, u1.ca_file);
  differs(up, "[uplink] cert_file", u0.cert_file, u1.cert_file);
  differs(up, "[uplink] key_file", u0.key_file, u1.key_file);
  differs(up, "[uplink] username", u0.username, u1.username);
  differs(up, "[uplink] password_file", u0.password_file, u1.password_file);
  differs(up, "[uplink] verify_hostname", u0.verify_hostname, u1.verify_hostname);
  differs(up, "[uplink] mqtt_version", u0.mqtt_version, u1.mqtt_version);
  differs(up, "[uplink] max_inflight", u0.max_inflight, u1.max_inflight);
  differs(up, "[uplink] batch_wait", u0.batch_wait, u1.batch_wait);
  differs(up, "[uplink] backlog_rate", u0.backlog_rate, u1.backlog_rate);
  differs(up, "[uplink] keepalive", u0.keepalive, u1.keepalive);
  differs(up, "[uplink] connect_timeout", u0.connect_timeout, u1.connect_timeout);
  differs(up, "[uplink] reconnect_min", u0.reconnect_min, u1.reconnect_min);
  differs(up, "[uplink] reconnect_max", u0.reconnect_max, u1.reconnect_max);
  differs(up, "[uplink] heartbeat", u0.heartbeat, u1.heartbeat);
  if (uplink_files_changed) up.emplace_back("the content of a TLS or password file");
  p.log_level_changed = g0.log_level != g1.log_level;

  std::map<std::string, const SourceSettings*> old;
  for (const auto& s : running.sources) old[s.name] = &s;
  for (std::size_t i = 0; i < next.sources.size(); ++i) {
    const auto& s = next.sources[i];
    const auto it = old.find(s.name);
    if (it == old.end()) {
      p.added.push_back(i);
      continue;
    }
    const auto& o = *it->second;
    if (o.type != s.type || o.section_text != s.section_text || o.priority != s.priority ||
        o.expected_every != s.expected_every)
      p.changed.push_back(i);
    else
      ++p.unchanged;
    old.erase(it);
  }
  for (const auto& s : running.sources)
    if (old.count(s.name)) p.removed.push_back(s.name);
  return p;
}

std::string ReloadPlan::summary(const Settings& next) const {
  const auto names = [&](const std::vector<std::size_t>& idx) {
    std::string out;
    for (auto i : idx) out += (out.empty() ? "" : ", ") + next.sources[i].name;
    return out;
  };
  std::string out;
  const auto part = [&](std::size_t n, const char* what, const std::string& list) {
    if (n == 0) return;
    out += (out.empty() ? "" : ", ") + std::to_string(n) + " " + what + (list.empty() ? "" : " (" + list + ")");
  };
  std::string removed_list;
  for (const auto& r : removed) removed_list += (removed_list.empty() ? "" : ", ") + r;
  part(added.size(), added.size() == 1 ? "source added" : "sources added", names(added));
  part(changed.size(), "changed", names(changed));
  part(removed.size(), "removed", removed_list);
  part(unchanged, "unchanged", "");
  if (out.empty()) out = "no sources";
  if (uplink_changes.empty()) {
    out += "; the uplink stays connected";
  } else {
    std::string keys;
    for (const auto& k : uplink_changes) keys += (keys.empty() ? "" : ", ") + k;
    out += "; the uplink reconnects (" + keys + ")";
  }
  if (log_level_changed) out += "; log level " + next.gateway.log_level;
  return out;
}

}  // namespace ioc_edge
