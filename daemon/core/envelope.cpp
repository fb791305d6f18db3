#include "core/envelope.h"

#include <openssl/evp.h>
#include <cstdlib>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>

#include <nlohmann/json.hpp>

namespace ioc_edge {

namespace {

constexpr std::array<KindInfo, 4> kKinds{{
    {Kind::Data, "data", true},
    {Kind::Event, "event", true},
    {Kind::Blob, "blob", false},
    {Kind::CmdResult, "cmd-result", true},
}};

void append_batch_head(std::string& out, const BatchHeader& header, std::int64_t sent_at_ms) {
  out += "{\"schema\":\"ioc-edge/batch/1\",\"site\":";
  append_json_string(out, header.site);
  out += ",\"store\":\"";
  out += header.store;
  out += "\",\"sent_at\":\"";
  out += format_rfc3339_ms(sent_at_ms);
  out += '"';
  if (!header.org_json.empty()) {
    out += ",\"org\":";
    out += header.org_json;
  }
  out += ",\"readings\":[";
}

}  // namespace

const KindInfo& kind_info(Kind k) {
  for (const auto& info : kKinds)
    if (info.kind == k) return info;
  return kKinds[0];
}

std::optional<Kind> kind_from_int(std::int64_t value) {
  for (const auto& info : kKinds)
    if (static_cast<std::int64_t>(info.kind) == value) return info.kind;
  return std::nullopt;
}

std::string topic_for(std::string_view prefix, Kind kind, std::string_view source) {
  const auto family = kind_info(kind).name;
  std::string t;
  t.reserve(prefix.size() + family.size() + source.size() + 2);
  t.append(prefix).append("/").append(family).append("/").append(source);
  return t;
}

void frame_reading(Envelope& e, const Reading& r, std::string_view reading_source) {
  if (e.body.empty())
    e.count = 0;  // a fresh envelope (count defaults to 1 for a single-body record)
  else
    e.body += '\n';
  append_reading_json(e.body, reading_source.empty() ? std::string_view(e.source) : reading_source, r);
  ++e.count;
}

std::size_t framed_count(std::string_view body) {
  if (body.empty()) return 0;
  return static_cast<std::size_t>(std::count(body.begin(), body.end(), '\n')) + 1;
}

std::size_t batch_overhead(const BatchHeader& header) {
  std::string head;
  append_batch_head(head, header, 0);
  return head.size() + 2;  // "]}"
}

std::size_t record_message_bytes(Kind kind, std::size_t body_bytes, std::size_t count) {
  if (!kind_info(kind).batched) return body_bytes;
  return body_bytes + kSeqOverhead * std::max<std::size_t>(1, count);
}

std::string build_batch(const BatchHeader& header, std::int64_t sent_at_ms, const std::vector<const Record*>& records) {
  std::size_t size = batch_overhead(header);
  for (const auto* r : records) size += record_message_bytes(r->kind, r->body.size(), r->count());
  std::string out;
  out.reserve(size);
  append_batch_head(out, header, sent_at_ms);
  bool first = true;
  char digits[24];
  for (const auto* r : records) {
    // One reading per line of the body; each gets the next seq of the record spliced in front.
    std::int64_t seq = r->first_seq;
    const char* p = r->body.data();
    const char* const end = p + r->body.size();
    const bool single = r->count() == 1;  // the whole body, whatever it holds (a schema-1 row)
    while (p < end && seq <= r->last_seq) {
      const char* nl =
          single ? nullptr : static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
      const char* line_end = nl ? nl : end;
      if (!first) out += ',';
      first = false;
      out += "{\"seq\":";
      const auto [dend, ec] = std::to_chars(digits, digits + sizeof digits, seq);
      out.append(digits, dend);
      if (line_end - p > 2) {  // "{...}": splice its members after seq
        out += ',';
        out.append(p + 1, line_end);
      } else {
        out += '}';
      }
      ++seq;
      p = nl ? nl + 1 : end;
    }
  }
  out += "]}";
  return out;
}

Message build_message(std::string_view prefix, const BatchHeader& header, std::int64_t sent_at_ms,
                      const std::vector<const Record*>& group) {
  Message m;
  const Record& first = *group.front();
  m.topic = topic_for(prefix, first.kind, first.source);
  if (kind_info(first.kind).batched) {
    m.payload = build_batch(header, sent_at_ms, group);
    return m;
  }
  // A blob: one record, its bytes as they are; who, which seq and what it is in user properties.
  m.payload = first.body;
  m.user_properties = {{"schema", "ioc-edge/blob/1"},
                       {"site", header.site},
                       {"store", header.store},
                       {"seq", std::to_string(first.last_seq)},
                       {"source", first.source},
                       {"sent_at", format_rfc3339_ms(sent_at_ms)}};
  for (auto& kv : blob_meta_pairs(first.meta)) {
    if (kv.first == "source")  // the device's own name (the mqtt source's source_name) names the blob
      m.user_properties[4].second = std::move(kv.second);
    else
      m.user_properties.push_back(std::move(kv));
  }
  return m;
}

std::vector<SeqRange> seq_ranges(const std::vector<const Record*>& records) {
  std::vector<SeqRange> out;
  for (const auto* r : records) {
    if (!out.empty() && out.back().last + 1 == r->first_seq && out.back().prio == r->prio)
      out.back().last = r->last_seq;
    else
      out.push_back({r->first_seq, r->last_seq, r->prio});
  }
  return out;
}

std::string blob_meta_json(const BlobMeta& m) {
  std::string out = "{\"point\":";
  append_json_string(out, m.point);
  out += ",\"ts\":\"" + format_rfc3339_ms(m.ts_ms) + "\"";
  if (!m.content_type.empty()) {
    out += ",\"content_type\":";
    append_json_string(out, m.content_type);
  }
  out += ",\"size\":\"" + std::to_string(m.size) + "\"";
  if (!m.sha256.empty()) {
    out += ",\"sha256\":";
    append_json_string(out, m.sha256);
  }
  if (!m.origin.empty()) {
    out += ",\"origin\":";
    append_json_string(out, m.origin);
  }
  if (!m.source.empty()) {
    out += ",\"source\":";
    append_json_string(out, m.source);
  }
  out += '}';
  return out;
}

std::string base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::string sha256_hex(std::string_view bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr) != 1) return {};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(len * 2, '0');
  for (unsigned i = 0; i < len; ++i) {
    out[2 * i] = kHex[md[i] >> 4];
    out[2 * i + 1] = kHex[md[i] & 15];
  }
  return out;
}

Message build_blob_event(std::string_view prefix, const BatchHeader& header, std::int64_t sent_at_ms,
                         const Record& blob) {
  Reading r;
  r.point = "blob";
  std::string source = blob.source;  // the device's own name, when the meta names one
  nlohmann::json value = {{"kind", "blob"}};
  const auto meta = nlohmann::json::parse(blob.meta, nullptr, /*allow_exceptions=*/false);
  if (meta.is_object()) {
    for (const auto& [k, v] : meta.items()) {
      if (!v.is_string()) continue;
      const auto& text = v.get_ref<const std::string&>();
      if (k == "point")
        r.point = text;
      else if (k == "source")
        source = text;
      else if (k == "ts")
        r.ts_ms = parse_rfc3339_ms(text).value_or(0);
      else if (k == "size")
        value["size"] = std::strtoull(text.c_str(), nullptr, 10);
      else
        value[k] = text;
    }
  }
  if (!value.contains("size")) value["size"] = blob.body.size();
  r.value = JsonText{value.dump()};
  Record event;
  event.first_seq = event.last_seq = blob.last_seq;
  event.prio = blob.prio;
  event.kind = Kind::Event;
  event.source = blob.source;
  append_reading_json(event.body, source, r);
  Message m;
  m.topic = topic_for(prefix, Kind::Event, blob.source);
  m.payload = build_batch(header, sent_at_ms, {&event});
  return m;
}

std::vector<std::pair<std::string, std::string>> blob_meta_pairs(std::string_view meta_json) {
  std::vector<std::pair<std::string, std::string>> out;
  if (meta_json.empty()) return out;
  const auto j = nlohmann::json::parse(meta_json, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return out;
  for (const auto& [k, v] : j.items()) out.emplace_back(k, v.is_string() ? v.get<std::string>() : v.dump());
  return out;
}

}  // namespace ioc_edge
