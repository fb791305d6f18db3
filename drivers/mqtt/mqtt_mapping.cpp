#include "drivers/mqtt/mqtt_mapping.h"

#include <algorithm>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstring>
#include <ctime>
#include <limits>

#include <nlohmann/json.hpp>

namespace ioc_edge::mqtt {

using json = nlohmann::json;

namespace {

constexpr std::size_t kMaxPoints = 1000;          // per message (Mapper::map_json)
constexpr std::size_t kMaxPointName = 256;        // bytes, as a modbus point name
constexpr std::size_t kMaxValueString = 256 * 1024;
// Sensor payloads nest a few levels; the limit keeps flattening and serializing (both recursive)
// off the end of the stack whatever a 64 MiB payload holds.
constexpr int kMaxDepth = 64;
constexpr int kMaxLevelNumber = 32767;            // a 65535-byte topic has at most 32768 levels

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

// Records a problem of a message with its kind (Mapped::kind), unless an earlier one is there.
void fail(Mapped& m, std::string_view kind, std::string error) {
  if (!m.error.empty()) return;
  m.error = std::move(error);
  m.kind = std::string(kind);
}

// Parses a JSON payload; on failure `m` says why and the result is discarded.
json parse_document(std::string_view payload, Mapped& m) {
  std::string kind, error;
  json doc = parse_json(payload, kMaxDepth, kind, error);
  if (doc.is_discarded()) fail(m, kind, std::move(error));
  return doc;
}


}  // namespace

// --- Topics -------------------------------------------------------------------------------------

bool topic_matches(std::string_view filter, std::string_view topic) {
  // MQTT 3.1.1 section 4.7.2: "$SYS/..." is not matched by "#" or "+/...".
  if (!topic.empty() && topic.front() == '$' && !filter.empty() && (filter.front() == '#' || filter.front() == '+'))
    return false;
  std::size_t fi = 0, ti = 0;
  for (;;) {
    std::size_t fe = filter.find('/', fi);
    if (fe == std::string_view::npos) fe = filter.size();
    const auto level = filter.substr(fi, fe - fi);
    if (level == "#") return true;
    std::size_t te = topic.find('/', ti);
    if (te == std::string_view::npos) te = topic.size();
    if (level != "+" && level != topic.substr(ti, te - ti)) return false;
    const bool filter_done = fe == filter.size(), topic_done = te == topic.size();
    if (filter_done || topic_done) {
      if (filter_done && topic_done) return true;
      // "sport/#" matches "sport" too: '#' includes the parent level.
      return topic_done && filter.substr(fe) == "/#";
    }
    fi = fe + 1;
    ti = te + 1;
  }
}

std::string filter_problem(std::string_view filter) {
  if (filter.empty()) return "a topic filter must not be empty";
  if (filter.size() > 65535) return "longer than 65535 bytes";
  if (!valid_utf8(filter)) return "not valid UTF-8";
  if (filter.find('\0') != std::string_view::npos) return "contains a NUL character";
  std::size_t start = 0;
  for (;;) {
    std::size_t end = filter.find('/', start);
    const bool last = end == std::string_view::npos;
    if (last) end = filter.size();
    const auto level = filter.substr(start, end - start);
    if (level.find('#') != std::string_view::npos) {
      if (level != "#") return "'#' must be a whole level (\"a/#\", not \"a#\")";
      if (!last) return "'#' must be the last level";
    }
    if (level.find('+') != std::string_view::npos && level != "+")
      return "'+' must be a whole level (\"a/+/b\", not \"a+/b\")";
    if (last) return {};
    start = end + 1;
  }
}

std::vector<std::string_view> topic_levels(std::string_view topic) {
  std::vector<std::string_view> levels;
  levels.reserve(8);
  std::size_t start = 0;
  for (;;) {
    const std::size_t end = topic.find('/', start);
    if (end == std::string_view::npos) {
      levels.push_back(topic.substr(start));
      return levels;
    }
    levels.push_back(topic.substr(start, end - start));
    start = end + 1;
  }
}


// --- Name templates -----------------------------------------------------------------------------

NameTemplate NameTemplate::parse(std::string_view text, std::string& error) {
  error.clear();
  NameTemplate t;
  std::string literal;
  const auto flush = [&] {
    if (literal.empty()) return;
    t.parts_.push_back({std::move(literal), 0, false});
    literal.clear();
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '{') {
      if (i + 1 < text.size() && text[i + 1] == '{') {
        literal += '{';
        ++i;
        continue;
      }
      const auto close = text.find('}', i + 1);
      if (close == std::string_view::npos) {
        error = "'{' without '}' (write \"{{\" for a brace)";
        return {};
      }
      const auto inner = text.substr(i + 1, close - i - 1);
      const std::string shown = "{" + std::string(inner) + "}";
      const bool negative = !inner.empty() && inner.front() == '-';
      const auto number = negative ? inner.substr(1) : inner;
      int value = 0;
      const auto [p, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
      if (number.empty() || number.front() == '+' || ec != std::errc() || p != number.data() + number.size()) {
        error = shown + ": not a level number ({0} is the first level, {-1} the last)";
        return {};
      }
      if (value > kMaxLevelNumber) {
        error = shown + ": a topic has at most " + std::to_string(kMaxLevelNumber + 1) + " levels";
        return {};
      }
      if (negative && value == 0) {
        error = shown + ": counting from the end starts at {-1} (the last level)";
        return {};
      }
      flush();
      t.parts_.push_back({std::string(), negative ? -value : value, true});
      i = close;
    } else if (c == '}') {
      if (i + 1 < text.size() && text[i + 1] == '}') {
        literal += '}';
        ++i;
        continue;
      }
      error = "'}' without '{' (write \"}}\" for a brace)";
      return {};
    } else {
      literal += c;
    }
  }
  flush();
  return t;
}

std::size_t NameTemplate::min_levels() const {
  std::size_t n = 0;
  for (const auto& p : parts_)
    if (p.is_level) n = std::max(n, static_cast<std::size_t>(p.level >= 0 ? p.level + 1 : -p.level));
  return n;
}

std::optional<std::string> NameTemplate::expand(const std::vector<std::string_view>& levels, std::string& error) const {
  const std::size_t n = levels.size();
  std::string out;
  std::size_t size = 0;
  for (const auto& p : parts_) {
    if (!p.is_level) {
      size += p.text.size();
      continue;
    }
    const std::size_t needed = static_cast<std::size_t>(p.level >= 0 ? p.level + 1 : -p.level);
    if (needed > n) {
      error = "topic has " + std::to_string(n) + (n == 1 ? " level, {" : " levels, {") + std::to_string(p.level) +
              "} needs " + std::to_string(needed);
      return std::nullopt;
    }
    size += levels[p.level >= 0 ? static_cast<std::size_t>(p.level) : n - needed].size();
  }
  out.reserve(size);
  for (const auto& p : parts_) {
    if (!p.is_level)
      out += p.text;
    else
      out += levels[p.level >= 0 ? static_cast<std::size_t>(p.level) : n - static_cast<std::size_t>(-p.level)];
  }
  return out;
}

// --- The mapper ---------------------------------------------------------------------------------

namespace {

// Flattens a JSON document into one reading per leaf, named by its path.
class Flattener {
 public:
  Flattener(const json* ts_leaf, std::int64_t ts_ms, Mapped& m) : ts_leaf_(ts_leaf), ts_ms_(ts_ms), m_(m), out_(m.readings) {
    path_.reserve(64);
  }

  // False when the message has more than kMaxPoints points.
  bool walk(const json& v) {
    switch (v.type()) {
      case json::value_t::object:
        for (const auto& [key, child] : v.get_ref<const json::object_t&>())
          if (!child_(key, child)) return false;
        return true;
      case json::value_t::array: {
        const auto& arr = v.get_ref<const json::array_t&>();
        char buf[24];
        for (std::size_t i = 0; i < arr.size(); ++i) {
          const auto [p, ec] = std::to_chars(buf, buf + sizeof buf, i);
          if (!child_(std::string_view(buf, static_cast<std::size_t>(p - buf)), arr[i])) return false;
        }
        return true;
      }
      case json::value_t::null:
      case json::value_t::discarded: return true;
      default: return leaf_(v);
    }
  }

 private:
  bool child_(std::string_view key, const json& child) {
    const std::size_t at = path_.size();
    const std::size_t grown = at + (at == 0 ? 0 : 1) + key.size();
    if (grown > kMaxPointName) {
      fail(m_, "bad_point_name", pointer_(key) + ": the point name would be over " + std::to_string(kMaxPointName) + " bytes");
      return true;
    }
    if (at != 0) path_ += '.';
    starts_.push_back(at == 0 ? 0 : at + 1);
    path_ += key;
    const bool ok = walk(child);
    path_.resize(at);
    starts_.pop_back();
    return ok;
  }

  bool leaf_(const json& v) {
    if (&v == ts_leaf_) return true;
    if (path_.empty()) {
      fail(m_, "bad_point_name", pointer_({}) + ": an empty key does not name a point");
      return true;
    }
    if (out_.size() == kMaxPoints) return false;
    Reading r;
    std::string why;
    if (!json_to_value(v, r.value, why)) {
      fail(m_, "bad_value", pointer_({}) + ": " + why);
      return true;
    }
    r.point = path_;
    r.ts_ms = ts_ms_;
    out_.push_back(std::move(r));
    return true;
  }

  // The JSON pointer of where the walk is (plus `key`), for messages: the path's segments were
  // recorded as offsets because a key may itself contain '.'.
  std::string pointer_(std::string_view key) const {
    std::string p;
    const auto add = [&p](std::string_view seg) {
      p += '/';
      for (const char c : seg) {
        if (c == '~') p += "~0";
        else if (c == '/') p += "~1";
        else p += c;
      }
    };
    for (std::size_t k = 0; k < starts_.size(); ++k) {
      const std::size_t end = k + 1 < starts_.size() ? starts_[k + 1] - 1 : path_.size();
      add(std::string_view(path_).substr(starts_[k], end - starts_[k]));
    }
    if (!key.empty()) add(key);
    return p.empty() ? std::string("/") : p;
  }

  const json* ts_leaf_;
  std::int64_t ts_ms_;
  Mapped& m_;
  std::vector<Reading>& out_;
  std::string path_;
  std::vector<std::size_t> starts_;  // where each segment of path_ begins
};

bool over_max(std::string_view payload, std::uint64_t max, Mapped& m) {
  if (max == 0 || payload.size() <= max) return false;
  fail(m, "oversized", "payload of " + std::to_string(payload.size()) + " bytes is over max_payload (" +
                          std::to_string(max) + " bytes)");
  return true;
}

}  // namespace

std::optional<Mapper> Mapper::build(const Config& cfg, std::string& error) {
  error.clear();
  Mapper m;
  std::string why;
  if (!cfg.source_name.empty()) {
    m.source_ = NameTemplate::parse(cfg.source_name, why);
    if (!why.empty()) {
      error = "source_name: " + why;
      return std::nullopt;
    }
  }
  m.point_ = NameTemplate::parse(cfg.point.empty() ? std::string_view("{-1}") : std::string_view(cfg.point), why);
  if (!why.empty()) {
    error = "point: " + why;
    return std::nullopt;
  }
  m.fields_ = cfg.fields;
  m.field_tokens_.resize(cfg.fields.size());
  for (std::size_t i = 0; i < cfg.fields.size(); ++i) {
    if (!split_json_pointer(cfg.fields[i].pointer, m.field_tokens_[i], why)) {
      error = "field \"" + cfg.fields[i].point + "\": pointer: " + why;
      return std::nullopt;
    }
  }
  m.ts_ = cfg.ts;
  if (!split_json_pointer(cfg.ts.pointer, m.ts_tokens_, why)) {
    error = "ts_pointer: " + why;
    return std::nullopt;
  }
  m.unit_ = cfg.unit;
  m.max_payload_ = cfg.max_payload;
  return m;
}

std::optional<std::string> Mapper::source_for(const std::vector<std::string_view>& levels, std::string_view own_name,
                                              std::string& error) const {
  if (source_.empty()) return std::string(own_name);
  auto name = source_.expand(levels, error);
  if (!name) return std::nullopt;
  if (!valid_id(*name)) {
    error = "source name " + quote_text(*name) + " (from the topic) " + std::string(id_rule());
    return std::nullopt;
  }
  return name;
}

std::optional<std::string> Mapper::point_for(const std::vector<std::string_view>& levels, std::string& error) const {
  auto point = point_.expand(levels, error);
  if (!point) return std::nullopt;
  if (point->empty() || point->size() > kMaxPointName) {
    error = "point name " + quote_text(*point) + " (from the topic) must be 1 to " + std::to_string(kMaxPointName) + " bytes";
    return std::nullopt;
  }
  return point;
}

Mapped Mapper::map_json(std::string_view payload, const std::vector<std::string_view>& levels,
                        std::int64_t now_ms) const {
  Mapped m;
  if (over_max(payload, max_payload_, m)) return m;
  try {
    const json doc = parse_document(payload, m);
    if (doc.is_discarded()) return m;

    // The timestamp first: every reading of the message carries it, and its problem is the one
    // reported (the readings say it too).
    std::string ts_error;
    std::int64_t ts = now_ms;
    const json* ts_leaf = nullptr;
    if (!ts_tokens_.empty()) {
      ts_leaf = resolve_json_pointer(doc, ts_tokens_);
      std::string why;
      if (!ts_leaf) {
        ts_error = "ts: " + ts_.pointer + ": not found";
      } else if (auto t = parse_timestamp(*ts_leaf, ts_, why)) {
        ts = *t;
      } else {
        ts_error = "ts: " + ts_.pointer + ": " + why;
      }
      if (!ts_error.empty()) fail(m, "bad_timestamp", ts_error);
    }
    if (!fields_.empty()) {
      m.readings.reserve(fields_.size());
      for (std::size_t i = 0; i < fields_.size(); ++i) {
        const json* v = resolve_json_pointer(doc, field_tokens_[i]);
        if (!v) {
          fail(m, "no_match", fields_[i].pointer + ": not found (field \"" + fields_[i].point + "\")");
          continue;
        }
        if (v->is_null()) continue;  // a device that has no value yet says so with null
        Reading r;
        std::string why;
        if (!json_to_value(*v, r.value, why)) {
          fail(m, "bad_value", fields_[i].pointer + ": " + why);
          continue;
        }
        r.point = fields_[i].point;
        r.unit = fields_[i].unit;
        r.ts_ms = ts;
        m.readings.push_back(std::move(r));
      }
    } else if (doc.is_object() || doc.is_array()) {
      Flattener flat(ts_leaf, ts, m);
      if (!flat.walk(doc)) {
        m.readings.clear();
        m.error = "more than " + std::to_string(kMaxPoints) +
                  " points in one message (none stored); map the ones needed with [[source.field]]";
        m.kind = "too_many_points";
        return m;
      }
    } else if (!doc.is_null() && &doc != ts_leaf) {
      // A bare value ("23.5" on zigbee2mqtt/sensor/temperature): the topic names its point.
      std::string why;
      auto point = point_for(levels, why);
      Reading r;
      if (!point) {
        fail(m, "bad_point_name", why);
      } else if (!json_to_value(doc, r.value, why)) {
        fail(m, "bad_value", "/: " + why);
      } else {
        r.point = std::move(*point);
        r.ts_ms = ts;
        m.readings.push_back(std::move(r));
      }
    }
    if (!ts_error.empty()) {
      for (auto& r : m.readings) {
        r.quality = Quality::Uncertain;
        r.error = ts_error;
      }
    }
  } catch (const json::exception& e) {  // not expected: every access above checks the type first
    m.readings.clear();
    m.error = std::string("internal error mapping JSON: ") + e.what();
    m.kind = "bad_value";
  }
  return m;
}

Mapped Mapper::map_event(std::string_view payload, const std::vector<std::string_view>& levels,
                         std::int64_t now_ms) const {
  Mapped m;
  if (over_max(payload, max_payload_, m)) return m;
  try {
    const json doc = parse_document(payload, m);
    if (doc.is_discarded()) return m;
    std::string why;
    auto point = point_for(levels, why);
    if (!point) {
      fail(m, "bad_point_name", why);
      return m;
    }
    Reading r;
    r.point = std::move(*point);
    r.ts_ms = now_ms;
    if (doc.is_object() || doc.is_array() || doc.is_null()) {
      r.value = JsonText{compact_json(doc)};
    } else if (!json_to_value(doc, r.value, why)) {
      fail(m, "bad_value", "/: " + why);
      return m;
    }
    if (!ts_tokens_.empty()) {
      std::string ts_error;
      if (const json* leaf = resolve_json_pointer(doc, ts_tokens_); !leaf) {
        ts_error = "ts: " + ts_.pointer + ": not found";
      } else if (auto t = parse_timestamp(*leaf, ts_, why)) {
        r.ts_ms = *t;
      } else {
        ts_error = "ts: " + ts_.pointer + ": " + why;
      }
      if (!ts_error.empty()) {
        r.quality = Quality::Uncertain;
        r.error = ts_error;
        fail(m, "bad_timestamp", std::move(ts_error));
      }
    }
    m.readings.push_back(std::move(r));
  } catch (const json::exception& e) {  // not expected, as in map_json
    m.readings.clear();
    m.error = std::string("internal error mapping JSON: ") + e.what();
    m.kind = "bad_value";
  }
  return m;
}

Mapped Mapper::map_value(std::string_view payload, const std::vector<std::string_view>& levels,
                         std::int64_t now_ms) const {
  Mapped m;
  if (over_max(payload, max_payload_, m)) return m;
  const auto text = trim_space(payload);
  if (text.empty()) {
    fail(m, "empty_payload", "empty payload");
    return m;
  }
  Reading r;
  if (const auto n = read_number_text(text); n.ok) {
    if (n.integral) r.value = n.i;
    else r.value = n.d;
  } else if (iequals(text, "true") || iequals(text, "on")) {
    r.value = true;
  } else if (iequals(text, "false") || iequals(text, "off")) {
    r.value = false;
  } else {
    if (const auto bad = utf8_error_at(text); bad != std::string_view::npos) {
      fail(m, "invalid_utf8",
           "invalid UTF-8 at byte " + std::to_string(static_cast<std::size_t>(text.data() - payload.data()) + bad));
      return m;
    }
    if (text.size() > kMaxValueString) {
      fail(m, "bad_value", "a text value of " + std::to_string(text.size()) + " bytes is over the limit of " +
                               std::to_string(kMaxValueString) + " bytes");
      return m;
    }
    // A number too large for a double ("1e999") is text that looks like a number: say so.
    if (const char c0 = text[0] == '-' && text.size() > 1 ? text[1] : text[0]; c0 >= '0' && c0 <= '9') {
      double d;
      const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), d);
      if (ec == std::errc::result_out_of_range && p == text.data() + text.size()) {
        fail(m, "bad_value", quote_text(text) + ": number out of range");
        return m;
      }
    }
    r.value = std::string(text);
  }
  std::string why;
  auto point = point_for(levels, why);
  if (!point) {
    fail(m, "bad_point_name", why);
    return m;
  }
  r.point = std::move(*point);
  r.unit = unit_;
  r.ts_ms = now_ms;
  m.readings.push_back(std::move(r));
  return m;
}

}  // namespace ioc_edge::mqtt
