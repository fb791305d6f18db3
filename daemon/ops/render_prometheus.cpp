// GET /metrics: the Prometheus text exposition format 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/). Every metric is listed in
// docs/metrics.md; the two change together.
//
// Written by hand into one string (no client library in Debian's C++ packages, and none is needed
// for a snapshot): each family's HELP and TYPE, then all its samples, so a family's samples are
// contiguous as the format requires. Counters end in _total, units are base units (seconds,
// bytes), timestamps are Unix seconds (`_timestamp_seconds`). A series whose value is unknown
// (a priority's byte tally before it restarts, a source that never stored a good reading) is left
// out rather than shown as 0.
#include <charconv>
#include <cmath>

#include "ops/render.h"

namespace ioc_edge {

std::string prometheus_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string prometheus_help(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

namespace {

class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}

  void family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += prometheus_help(help);
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  // `labels` is empty or already in the form `a="x",b="y"` (values escaped).
  void sample(std::string_view name, std::string_view labels, double value) {
    out_ += name;
    if (!labels.empty()) {
      out_ += '{';
      out_ += labels;
      out_ += '}';
    }
    out_ += ' ';
    number(value);
    out_ += '\n';
  }
  void sample(std::string_view name, std::string_view labels, std::uint64_t value) {
    out_ += name;
    if (!labels.empty()) {
      out_ += '{';
      out_ += labels;
      out_ += '}';
    }
    out_ += ' ';
    integer(value);
    out_ += '\n';
  }
  void sample(std::string_view name, std::string_view labels, std::int64_t value) {
    if (value < 0) {
      sample(name, labels, static_cast<double>(value));
      return;
    }
    sample(name, labels, static_cast<std::uint64_t>(value));
  }
  void sample(std::string_view name, std::string_view labels, bool value) {
    sample(name, labels, static_cast<std::uint64_t>(value ? 1 : 0));
  }
  // A whole family of one sample without labels.
  template <typename T>
  void single(std::string_view name, std::string_view type, std::string_view help, T value) {
    family(name, type, help);
    sample(name, {}, value);
  }

 private:
  void integer(std::uint64_t v) {
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    out_.append(buf, r.ptr);
  }
  void number(double v) {
    if (std::isnan(v)) {
      out_ += "NaN";
      return;
    }
    if (std::isinf(v)) {
      out_ += v > 0 ? "+Inf" : "-Inf";
      return;
    }
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    out_.append(buf, r.ptr);
  }
  std::string& out_;
};

std::string label(std::string_view name, std::string_view value) {
  std::string out(name);
  out += "=\"";
  out += prometheus_label_value(value);
  out += '"';
  return out;
}

double seconds(std::int64_t ms) { return static_cast<double>(ms) / 1000.0; }

// One per-source counter or gauge family over every source.
template <typename Get>
void per_source(Writer& w, const std::vector<SourceSnapshot>& sources, const std::vector<std::string>& labels,
                std::string_view name, std::string_view type, std::string_view help, Get get) {
  w.family(name, type, help);
  for (std::size_t i = 0; i < sources.size(); ++i) w.sample(name, labels[i], get(sources[i]));
}

// The same, for values that may be absent (0 means "never"): those sources are left out.
template <typename Get>
void per_source_when(Writer& w, const std::vector<SourceSnapshot>& sources, const std::vector<std::string>& labels,
                     std::string_view name, std::string_view help, Get get_ms) {
  w.family(name, "gauge", help);
  for (std::size_t i = 0; i < sources.size(); ++i)
    if (const std::int64_t ms = get_ms(sources[i]); ms != 0) w.sample(name, labels[i], seconds(ms));
}

}  // namespace

std::string render_prometheus(const Snapshot& s) {
  std::string out;
  out.reserve(8192 + s.sources.size() * 1400);
  Writer w(out);
  const auto& st = s.backlog.outbox;
  const auto& fw = s.uplink.link;

  // The gateway.
  w.family("ioc_edge_build_info", "gauge", "Always 1; the labels say which gateway and build this is.");
  w.sample("ioc_edge_build_info",
           label("version", s.version) + "," + label("site", s.site) + "," + label("province", s.province) + "," +
               label("store", s.store),
           std::uint64_t{1});
  w.single("ioc_edge_uptime_seconds", "gauge", "Seconds since the daemon started.", s.uptime_s);
  w.single("ioc_edge_healthy", "gauge",
           "1 when there is no problem (the rules of GET /healthz and `ioc-edge status`), else 0.", s.healthy());
  w.single("ioc_edge_health_problems", "gauge", "How many problems GET /healthz reports now.",
           static_cast<std::uint64_t>(s.problems.size()));

  w.single("ioc_edge_config_reloads_total", "counter", "Configuration reloads (SIGHUP) applied.", s.config.reloads);
  w.single("ioc_edge_config_reloads_refused_total", "counter",
           "Configuration reloads refused (an invalid file, or a change only a restart applies).", s.config.refused);
  w.single("ioc_edge_config_last_reload_ok", "gauge",
           "1 unless the last reload was refused (the file on disk is not what runs), else 0.",
           s.config.last_result.rfind("refused", 0) != 0);

  // The IOC link.
  w.family("ioc_edge_uplink_info", "gauge", "Always 1; the labels say where the uplink goes and how.");
  w.sample("ioc_edge_uplink_info", label("url", s.uplink.url) + "," + label("mqtt_version", s.uplink.mqtt_version),
           std::uint64_t{1});
  w.single("ioc_edge_uplink_connected", "gauge", "1 while the uplink to the IOC broker is connected, else 0.",
           fw.state == LinkState::Up);
  w.family("ioc_edge_uplink_state", "gauge", "1 for the uplink's current state (down, connecting, up), 0 for the others.");
  for (auto state : {LinkState::Down, LinkState::Connecting, LinkState::Up})
    w.sample("ioc_edge_uplink_state", label("state", to_string(state)), fw.state == state);
  w.single("ioc_edge_uplink_down_seconds", "gauge",
           "Seconds the uplink has not been connected (since it was lost, or since the start); 0 while connected.",
           seconds(fw.state == LinkState::Up ? 0 : fw.down_for_ms));
  w.single("ioc_edge_uplink_connects_total", "counter", "Connections to the IOC broker made.", fw.connects);
  w.single("ioc_edge_uplink_connect_failures_total", "counter", "Connection attempts to the IOC broker that failed.",
           fw.connect_failures);
  w.single("ioc_edge_uplink_messages_sent_total", "counter", "Messages the IOC broker acknowledged.", fw.messages_sent);
  w.single("ioc_edge_uplink_readings_sent_total", "counter", "Readings in the messages the IOC broker acknowledged.",
           fw.readings_sent);
  w.single("ioc_edge_uplink_sent_bytes_total", "counter", "Payload bytes of the messages the IOC broker acknowledged.",
           fw.bytes_sent);
  w.single("ioc_edge_uplink_publish_failures_total", "counter",
           "Publishes that failed (link lost before the acknowledgement); their readings are sent again.",
           fw.publish_failures);
  w.single("ioc_edge_uplink_rejected_messages_total", "counter",
           "Messages the IOC broker refused (MQTT 5 reason code 0x80 or more); their readings are held.",
           fw.rejected_messages);
  w.single("ioc_edge_uplink_rejected_readings_total", "counter", "Readings in the messages the IOC broker refused.",
           fw.rejected_readings);
  w.single("ioc_edge_uplink_inflight_messages", "gauge", "Messages sent and not yet acknowledged.",
           static_cast<std::uint64_t>(fw.inflight));
  w.single("ioc_edge_uplink_delivery_rate_bytes_per_second", "gauge",
           "The link's delivery rate measured from acknowledgements (0 until known).", std::round(fw.delivery_rate));

  // The buffer.
  std::string prio_labels[kPriorityLevels];
  for (int p = 0; p < kPriorityLevels; ++p) prio_labels[p] = label("priority", to_string(static_cast<Priority>(p)));
  w.family("ioc_edge_backlog_readings", "gauge", "Readings in the buffer waiting for the IOC, by priority (held ones included).");
  for (int p = 0; p < kPriorityLevels; ++p) w.sample("ioc_edge_backlog_readings", prio_labels[p], st.pending_by_prio[p]);
  w.family("ioc_edge_backlog_bytes", "gauge",
           "Payload bytes of the records in the buffer, by priority (absent while not yet known after an upgrade).");
  for (int p = 0; p < kPriorityLevels; ++p)
    if (st.bytes_by_prio[p] >= 0) w.sample("ioc_edge_backlog_bytes", prio_labels[p], st.bytes_by_prio[p]);
  w.family("ioc_edge_backlog_oldest_age_seconds", "gauge",
           "How long the oldest reading of each priority has waited in the buffer (0 when none waits).");
  for (int p = 0; p < kPriorityLevels; ++p)
    w.sample("ioc_edge_backlog_oldest_age_seconds", prio_labels[p], seconds(st.oldest_age_ms_by_prio[p]));
  w.single("ioc_edge_backlog_held_readings", "gauge",
           "Readings the IOC broker refused, kept until `ioc-edge outbox requeue` or a restart.", st.held);
  w.single("ioc_edge_outbox_file_bytes", "gauge", "Bytes of the buffer file in use.", st.file_bytes);
  w.single("ioc_edge_outbox_max_bytes", "gauge", "[buffer] max_size: beyond it the oldest, lowest-priority data is evicted.",
           s.backlog.max_bytes);
  w.single("ioc_edge_outbox_last_seq", "gauge", "The highest seq ever committed in this store.", st.last_seq);
  w.single("ioc_edge_outbox_appended_readings_total", "counter", "Readings committed to the buffer.", st.appended);
  w.single("ioc_edge_outbox_removed_readings_total", "counter", "Readings deleted after the IOC acknowledged them.",
           st.removed);
  w.single("ioc_edge_outbox_evicted_readings_total", "counter",
           "Readings dropped by the buffer's size or age limit (each named in a gap event).", st.evicted);
  w.single("ioc_edge_outbox_refused_readings_total", "counter",
           "Readings the buffer refused (storage fault or overload); their producers were told.", st.refused);
  w.single("ioc_edge_outbox_commits_total", "counter", "Buffer transactions.", st.commits);
  w.family("ioc_edge_outbox_commit_latency_seconds", "summary",
           "How long producers waited for their data to be committed, since the start (quantile 1 is the maximum).");
  w.sample("ioc_edge_outbox_commit_latency_seconds", "quantile=\"0.5\"", st.ack_p50_ms / 1000.0);
  w.sample("ioc_edge_outbox_commit_latency_seconds", "quantile=\"0.99\"", st.ack_p99_ms / 1000.0);
  w.sample("ioc_edge_outbox_commit_latency_seconds", "quantile=\"1\"", st.ack_max_ms / 1000.0);
  w.sample("ioc_edge_outbox_commit_latency_seconds_sum", {}, st.ack_sum_ms / 1000.0);
  w.sample("ioc_edge_outbox_commit_latency_seconds_count", {}, st.acks);
  w.single("ioc_edge_storage_fault", "gauge", "1 while the buffer cannot store new data (disk full, I/O errors), else 0.",
           !st.fault.empty());
  w.single("ioc_edge_storage_salvaged", "gauge",
           "1 if a damaged buffer file was salvaged since the start (the unreadable seqs went to the IOC in a gap event).",
           !st.corruption.empty());

  // The sources.
  const auto& src = s.sources;
  std::vector<std::string> labels;
  labels.reserve(src.size());
  for (const auto& c : src) labels.push_back(label("source", c.name));
  w.family("ioc_edge_source_info", "gauge", "Always 1; the labels describe the source.");
  for (std::size_t i = 0; i < src.size(); ++i)
    w.sample("ioc_edge_source_info",
             labels[i] + "," + label("type", src[i].type) + "," + label("priority", to_string(src[i].priority)) + "," +
                 label("title", src[i].title),
             std::uint64_t{1});
  per_source(w, src, labels, "ioc_edge_source_up", "gauge",
             "1 while the source's device or peer answers, 0 while it is down.", [](const auto& c) { return !c.down; });
  per_source(w, src, labels, "ioc_edge_source_stale", "gauge",
             "1 while no good reading has come for 3x the source's expected_every, else 0.",
             [](const auto& c) { return c.stale; });
  per_source(w, src, labels, "ioc_edge_source_expected_every_seconds", "gauge",
             "How often the source should deliver good data (expected_every); 0: not watched.",
             [](const auto& c) { return seconds(c.expected_every_ms); });
  per_source(w, src, labels, "ioc_edge_source_produced_readings_total", "counter",
             "Readings the source handed to the buffer.", [](const auto& c) { return c.produced; });
  per_source(w, src, labels, "ioc_edge_source_stored_readings_total", "counter",
             "Readings of the source the buffer committed.", [](const auto& c) { return c.stored; });
  per_source(w, src, labels, "ioc_edge_source_good_readings_total", "counter",
             "Stored data readings with a value (quality good or uncertain).", [](const auto& c) { return c.good; });
  per_source(w, src, labels, "ioc_edge_source_bad_readings_total", "counter",
             "Stored data readings of quality bad (a device's error, an unreadable field).",
             [](const auto& c) { return c.bad; });
  per_source(w, src, labels, "ioc_edge_source_refused_readings_total", "counter",
             "Readings of the source the buffer refused.", [](const auto& c) { return c.refused; });
  per_source(w, src, labels, "ioc_edge_source_errors_total", "counter", "Read or parse errors at the source.",
             [](const auto& c) { return c.errors; });
  per_source(w, src, labels, "ioc_edge_source_overruns_total", "counter",
             "Polls skipped because the previous one ran past its period.", [](const auto& c) { return c.overruns; });
  per_source(w, src, labels, "ioc_edge_source_messages_total", "counter",
             "Messages taken from a sender (MQTT publishes, HTTP requests, files).",
             [](const auto& c) { return c.messages; });
  per_source(w, src, labels, "ioc_edge_source_redelivered_messages_total", "counter",
             "Of those, messages the sender sent again.", [](const auto& c) { return c.redelivered; });
  w.family("ioc_edge_source_bad_input_total", "counter", "Input the source could not use, by kind.");
  for (std::size_t i = 0; i < src.size(); ++i)
    for (const auto& [kind, n] : src[i].bad_input)
      w.sample("ioc_edge_source_bad_input_total", labels[i] + "," + label("kind", kind), n);
  per_source_when(w, src, labels, "ioc_edge_source_last_stored_timestamp_seconds",
                  "When the source's last batch was stored (Unix time).", [](const auto& c) { return c.last_stored_ms; });
  per_source_when(w, src, labels, "ioc_edge_source_last_good_timestamp_seconds",
                  "When the source's last good reading was stored (Unix time).",
                  [](const auto& c) { return c.last_good_ms; });
  per_source_when(w, src, labels, "ioc_edge_source_last_error_timestamp_seconds",
                  "When the source's last error happened (Unix time).", [](const auto& c) { return c.last_error_ms; });
  per_source_when(w, src, labels, "ioc_edge_source_stale_since_timestamp_seconds",
                  "Since when the source is stale (Unix time); only stale sources.",
                  [](const auto& c) { return c.stale ? c.stale_since_ms : 0; });
  return out;
}

}  // namespace ioc_edge
