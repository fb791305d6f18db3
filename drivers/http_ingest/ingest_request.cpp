#include "drivers/http_ingest/ingest_request.h"

#include <nlohmann/json.hpp>

#include "core/json_value.h"
#include "core/utf8.h"

namespace ioc_edge::http_ingest {

using json = nlohmann::json;

namespace {

constexpr std::string_view kReadingKeys[] = {"source", "point", "value", "ts", "unit", "quality", "error"};

bool fail(Problem& p, std::string kind, std::string pointer, std::string message, int status = 400) {
  p = {status, std::move(kind), std::move(pointer), std::move(message)};
  return false;
}

// External text in a message: quoted and cut at 64 bytes (on a character boundary).
std::string quote(std::string_view s) {
  std::string out(s.substr(0, 64));
  while (!out.empty() && !valid_utf8(out)) out.pop_back();
  return "\"" + out + (s.size() > 64 ? "…\"" : "\"");
}

// The JSON parser's message without its "[json.exception.parse_error.101] " prefix.
std::string parser_message(const char* what) {
  std::string m = what;
  if (const auto close = m.find("] "); m.rfind("[json.exception", 0) == 0 && close != std::string::npos) m.erase(0, close + 2);
  return m;
}

}  // namespace

bool valid_batch_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (const char c : id)
    if (c <= ' ' || c >= 0x7F) return false;
  return true;
}

bool parse_request(std::string_view body, const ParseOptions& o, Parsed& out, Problem& problem) {
  out = {};
  if (const auto bad = utf8_error_at(body); bad != std::string_view::npos)
    return fail(problem, "invalid_utf8", "", "the body is not valid UTF-8 (at byte " + std::to_string(bad) + ")");
  json doc;
  try {
    doc = json::parse(body);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e999
    return fail(problem, "malformed_json", "", "the body is not JSON: " + parser_message(e.what()));
  }
  if (!doc.is_object()) return fail(problem, "bad_field", "", "the body must be a JSON object {\"readings\": [...]}");
  for (const auto& [key, v] : doc.items()) {
    if (key == "readings") continue;
    if (key == "batch_id") {
      if (!v.is_string() || !valid_batch_id(v.get_ref<const std::string&>()))
        return fail(problem, "bad_field", "/batch_id", "must be 1-128 printable ASCII characters without spaces");
      out.batch_id = v.get<std::string>();
      continue;
    }
    return fail(problem, "bad_field", "/" + key, "unknown field " + quote(key) + " (a body has \"readings\" and an optional \"batch_id\")");
  }
  const auto it = doc.find("readings");
  if (it == doc.end()) return fail(problem, "bad_field", "/readings", "missing: the body must have a \"readings\" array");
  if (!it->is_array()) return fail(problem, "bad_field", "/readings", "must be an array of readings");
  if (it->empty()) return fail(problem, "bad_field", "/readings", "is empty: send at least one reading");
  if (it->size() > o.max_readings)
    return fail(problem, "too_many_readings", "/readings",
                "holds " + std::to_string(it->size()) + " readings, more than this source takes in one request (" +
                    std::to_string(o.max_readings) + ", max_readings): split it");

  std::size_t index = 0;
  for (auto& item : *it) {
    const std::string at = "/readings/" + std::to_string(index++);
    if (!item.is_object()) return fail(problem, "bad_field", at, "must be an object with \"point\" and \"value\"");
    for (const auto& [key, v] : item.items()) {
      bool known = false;
      for (const auto k : kReadingKeys) known = known || key == k;
      if (!known)
        return fail(problem, "bad_field", at + "/" + key,
                    "unknown field " + quote(key) + " (a reading has source, point, value, ts, unit, quality, error)");
    }
    Reading r;
    std::string source = o.own_source;
    if (const auto s = item.find("source"); s != item.end()) {
      if (!s->is_string() || !valid_id(s->get_ref<const std::string&>()))
        return fail(problem, "bad_field", at + "/source",
                    (s->is_string() ? quote(s->get_ref<const std::string&>()) + " " : std::string("must be a string: ")) +
                        std::string(id_rule()));
      source = s->get<std::string>();
    }
    if (o.allowed && !o.allowed(source))
      return fail(problem, "forbidden", at + "/source", "this client may not write source " + quote(source), 403);

    const auto p = item.find("point");
    if (p == item.end()) return fail(problem, "bad_field", at + "/point", "missing: every reading names its point");
    if (!p->is_string() || p->get_ref<const std::string&>().empty())
      return fail(problem, "bad_field", at + "/point", "must be a non-empty string");
    r.point = p->get<std::string>();

    if (const auto q = item.find("quality"); q != item.end()) {
      const std::string qs = q->is_string() ? q->get<std::string>() : std::string();
      if (qs == "good") r.quality = Quality::Good;
      else if (qs == "uncertain") r.quality = Quality::Uncertain;
      else if (qs == "bad") r.quality = Quality::Bad;
      else return fail(problem, "bad_field", at + "/quality", "must be \"good\", \"uncertain\" or \"bad\"");
    }
    if (const auto e = item.find("error"); e != item.end()) {
      if (!e->is_string()) return fail(problem, "bad_field", at + "/error", "must be a string");
      r.error = e->get<std::string>();
    }
    const auto v = item.find("value");
    if (v == item.end()) return fail(problem, "bad_field", at + "/value", "missing: every reading has a value (null only with quality \"bad\")");
    if (v->is_null() && r.quality != Quality::Bad)
      return fail(problem, "bad_field", at + "/value", "is null: a reading without a value must say quality \"bad\" (and why, in \"error\")");
    std::string why;
    if (!json_to_value(*v, r.value, why)) return fail(problem, "bad_field", at + "/value", why);

    r.ts_ms = o.now_ms;
    if (const auto t = item.find("ts"); t != item.end()) {
      std::optional<std::int64_t> ms;
      if (t->is_string()) {
        const auto& text = t->get_ref<const std::string&>();
        // RFC 3339 with its offset: a time without one would be read in a zone the sender did not say.
        const bool has_zone = !text.empty() && (text.back() == 'Z' || text.back() == 'z' ||
                                                (text.size() > 6 && (text[text.size() - 6] == '+' || text[text.size() - 6] == '-')));
        if (has_zone) ms = parse_rfc3339_ms(text);
      }
      if (!ms)
        return fail(problem, "bad_field", at + "/ts",
                    "must be an RFC 3339 time with its offset, like \"2026-11-30T08:00:00+07:00\" or "
                    "\"2026-11-30T01:00:00Z\"");
      r.ts_ms = *ms;
    }
    if (const auto u = item.find("unit"); u != item.end()) {
      if (!u->is_string()) return fail(problem, "bad_field", at + "/unit", "must be a string");
      r.unit = u->get<std::string>();
    }
    if (const auto why_not = invalid_reason(r); !why_not.empty()) return fail(problem, "bad_field", at, why_not);

    if (out.groups.empty() || out.groups.back().source != source) out.groups.push_back({source, Kind::Data, {}});
    out.groups.back().readings.push_back(std::move(r));
    ++out.readings;
  }
  return true;
}

}  // namespace ioc_edge::http_ingest
