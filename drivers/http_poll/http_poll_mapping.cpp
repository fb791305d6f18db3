#include "drivers/http_poll/http_poll_mapping.h"

#include <nlohmann/json.hpp>

#include "core/pipeline.h"

namespace ioc_edge::http_poll {

using json = nlohmann::json;

namespace {

constexpr std::size_t kMaxPointName = 256;
// Reports from local systems nest a few levels; the limit keeps the parser and dump() (both
// recursive) off the end of the stack whatever a 256 MiB body holds.
constexpr int kMaxDepth = 64;

void problem(Mapped& m, std::string_view kind, std::string text) {
  ++m.problems[std::string(kind)];
  if (m.first_problem.empty()) m.first_problem = std::move(text);
}

// "record 3" (counted from 0, as a JSON pointer would) or "the document".
std::string where(const std::optional<std::size_t>& index) {
  return index ? "record " + std::to_string(*index) : std::string("the document");
}

}  // namespace

std::optional<Mapper> Mapper::build(const Mapping& m, std::string& error) {
  Mapper out;
  out.m_ = m;
  std::string why;
  const auto split = [&](const std::string& pointer, std::vector<std::string>& tokens, const char* key) {
    if (split_json_pointer(pointer, tokens, why)) return true;
    error = std::string(key) + ": " + why;
    return false;
  };
  out.has_records_ = m.records.has_value();
  out.has_value_ = m.value_pointer.has_value();
  if (out.has_records_ && !split(*m.records, out.records_, "records")) return std::nullopt;
  if (out.has_value_ && !split(*m.value_pointer, out.value_, "value_pointer")) return std::nullopt;
  if (!split(m.point_pointer, out.point_, "point_pointer")) return std::nullopt;
  if (!split(m.ts.pointer, out.ts_, "ts_pointer")) return std::nullopt;
  if (!split(m.unit_pointer, out.unit_, "unit_pointer")) return std::nullopt;
  return out;
}

Mapped Mapper::map(std::string_view body, std::int64_t now_ms) const {
  Mapped m;
  try {
    std::string kind, error;
    const json doc = parse_json(body, kMaxDepth, kind, error);
    if (doc.is_discarded()) {
      m.kind = kind == "empty_payload" ? "empty_body" : kind;
      m.error = kind == "empty_payload" ? "empty body" : error;
      return m;
    }
    // The records: the array the records pointer names, or the whole document as one record.
    std::vector<const json*> records;
    if (has_records_) {
      const json* arr = resolve_json_pointer(doc, records_);
      if (!arr) {
        m.kind = "no_match";
        m.error = "records " + quote_text(*m_.records) + " not found in the document";
        return m;
      }
      if (!arr->is_array()) {
        m.kind = "no_match";
        m.error = "records " + quote_text(*m_.records) + " is " + std::string(json_type_name(*arr)) + ", not an array";
        return m;
      }
      if (arr->size() > kMaxReadingsPerPoll) {
        m.kind = "too_many_records";
        m.error = std::to_string(arr->size()) + " records, more than " + std::to_string(kMaxReadingsPerPoll) +
                  " in one document (none stored)";
        return m;
      }
      records.reserve(arr->size());
      for (const auto& r : *arr) records.push_back(&r);
    } else {
      records.push_back(&doc);
    }

    m.readings.reserve(records.size());
    for (std::size_t i = 0; i < records.size(); ++i) {
      const json& rec = *records[i];
      const std::optional<std::size_t> index = has_records_ ? std::optional<std::size_t>(i) : std::nullopt;
      Reading r;
      // The point's name.
      if (m_.point_pointer.empty() && !m_.point.empty()) {
        r.point = m_.point;
      } else {
        const json* p = resolve_json_pointer(rec, point_);
        if (!p) {
          problem(m, "no_match", where(index) + ": point_pointer " + quote_text(m_.point_pointer) + " not found");
          continue;
        }
        if (p->is_string()) {
          r.point = p->get<std::string>();
        } else if (p->is_number_integer() || p->is_number_unsigned()) {
          r.point = compact_json(*p);  // station numbers: 12 names point "12"
        } else {
          problem(m, "bad_point_name", where(index) + ": point_pointer " + quote_text(m_.point_pointer) + " is " +
                                           std::string(json_type_name(*p)) + ", not a name");
          continue;
        }
        if (r.point.empty() || r.point.size() > kMaxPointName) {
          problem(m, "bad_point_name", where(index) + ": point name " + quote_text(r.point) + " must be 1 to " +
                                           std::to_string(kMaxPointName) + " bytes");
          continue;
        }
      }
      // The time: the record's own, or the time of the answer.
      r.ts_ms = now_ms;
      if (!ts_.empty()) {
        std::string why;
        const json* t = resolve_json_pointer(rec, ts_);
        std::optional<std::int64_t> ts;
        if (!t)
          why = "ts_pointer " + quote_text(m_.ts.pointer) + " not found";
        else if (!(ts = parse_timestamp(*t, m_.ts, why)))
          why = "ts_pointer " + quote_text(m_.ts.pointer) + ": " + why;
        if (ts) {
          r.ts_ms = *ts;
        } else {
          r.quality = Quality::Uncertain;
          r.error = "the time of this value could not be read (" + why + "); stamped when it was fetched";
          problem(m, "bad_timestamp", where(index) + ": " + why);
        }
      }
      // The unit.
      r.unit = m_.unit;
      if (!unit_.empty()) {
        if (const json* u = resolve_json_pointer(rec, unit_); u && u->is_string()) r.unit = u->get<std::string>();
      }
      // The value: what value_pointer names, or the whole record.
      const json* v = has_value_ ? resolve_json_pointer(rec, value_) : &rec;
      if (!v) {
        r.quality = Quality::Bad;
        r.error = "value_pointer " + quote_text(*m_.value_pointer) + " not found in " + where(index);
        problem(m, "no_match", where(index) + ": value_pointer " + quote_text(*m_.value_pointer) + " not found");
        m.readings.push_back(std::move(r));
        continue;
      }
      if (v->is_null()) continue;  // a system that has no value yet says so with null
      std::string why;
      if (!json_to_value(*v, r.value, why)) {
        r.value = std::monostate{};
        r.quality = Quality::Bad;
        r.error = why;
        problem(m, "bad_value", where(index) + ": " + why);
      }
      // What the pipeline would refuse (a 300 KiB text, invalid UTF-8 in a name) would take the
      // whole poll with it: such a record is counted and left out instead.
      if (auto bad = invalid_reason(r); !bad.empty()) {
        problem(m, "bad_value", where(index) + ": " + bad);
        continue;
      }
      m.readings.push_back(std::move(r));
    }
  } catch (const json::exception& e) {  // not expected: every access above checks the type first
    m.readings.clear();
    m.kind = "bad_value";
    m.error = std::string("internal error mapping JSON: ") + e.what();
  }
  return m;
}

}  // namespace ioc_edge::http_poll
