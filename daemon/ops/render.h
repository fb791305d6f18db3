#pragma once
// The three renderings of a Snapshot (ops/snapshot.h): pure functions, no I/O.
//
//   render_json        GET /status, `ioc-edge status --json`: the JSON the status API has always
//                      served (fields are only ever added), plus "health".
//   render_prometheus  GET /metrics: the Prometheus text exposition format 0.0.4 (content type
//                      kPrometheusContentType); every metric is listed in docs/metrics.md.
//   render_html        GET /: one self-contained page for district IT (inline CSS, no script, no
//                      external asset), refreshing itself every `refresh_s` seconds.
#include <string>
#include <string_view>

#include "ops/snapshot.h"

namespace ioc_edge {

inline constexpr std::string_view kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";
inline constexpr std::string_view kHtmlContentType = "text/html; charset=utf-8";

std::string render_json(const Snapshot& s);
std::string render_prometheus(const Snapshot& s);
std::string render_html(const Snapshot& s, int refresh_s = 10);

// A label value as the text format wants it: backslash, double quote and line feed escaped.
std::string prometheus_label_value(std::string_view v);
// HELP text: backslash and line feed escaped.
std::string prometheus_help(std::string_view v);
// Text for HTML element content and attribute values: & < > " ' escaped.
std::string html_escape(std::string_view v);

}  // namespace ioc_edge
