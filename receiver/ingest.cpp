#include "receiver/ingest.h"

#include <algorithm>
#include <array>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <zstd.h>

#include "receiver/json_schema.h"
#include "receiver/pg.h"

namespace ioc_receiver {

namespace {

using nlohmann::json;

constexpr unsigned char kZstdMagic[4] = {0x28, 0xB5, 0x2F, 0xFD};

bool is_zstd(std::string_view payload) {
  return payload.size() >= 4 && std::equal(kZstdMagic, kZstdMagic + 4, reinterpret_cast<const unsigned char*>(payload.data()));
}

// Decompresses a zstd payload (one or more frames) into `out`, at most `limit` bytes. Returns "" or
// why it could not.
std::string unzstd(std::string_view in, std::size_t limit, std::string& out) {
  out.clear();
  ZSTD_DStream* ds = ZSTD_createDStream();
  if (!ds) return "cannot decompress: out of memory";
  ZSTD_inBuffer input{in.data(), in.size(), 0};
  std::array<char, 64 * 1024> chunk;
  std::string error;
  std::size_t last = 1;
  while (input.pos < input.size || last != 0) {
    ZSTD_outBuffer output{chunk.data(), chunk.size(), 0};
    last = ZSTD_decompressStream(ds, &output, &input);
    if (ZSTD_isError(last)) {
      error = std::string("zstd: ") + ZSTD_getErrorName(last);
      break;
    }
    if (out.size() + output.pos > limit) {
      error = "decompressed payload larger than " + std::to_string(limit) + " bytes";
      break;
    }
    out.append(chunk.data(), output.pos);
    if (input.pos == input.size && output.pos == 0 && last != 0) {
      error = "zstd: truncated frame";
      break;
    }
  }
  ZSTD_freeDStream(ds);
  return error;
}

// COPY text field: the value escaped, or \N for NULL.
void field(std::string& out, std::string_view text) { out += pg::copy_escape(text); }
void null_field(std::string& out) { out += "\\N"; }
void sep(std::string& out) { out += '\t'; }

const std::string* str_member(const json& o, const char* name) {
  const auto it = o.find(name);
  return it != o.end() && it->is_string() ? &it->get_ref<const std::string&>() : nullptr;
}

// At most n bytes of s, cut at a character boundary (s is valid UTF-8: it came through the JSON
// parser or the MQTT codec).
std::string clip(std::string_view s, std::size_t n = 80) {
  if (s.size() <= n) return std::string(s);
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return std::string(s.substr(0, n)) + "...";
}

// Where a string of `doc` holds U+0000, which PostgreSQL cannot store in text or jsonb, as a JSON
// pointer ("/readings/3/error"), or "" when none does. Keys count too.
std::string nul_at(const json& doc, const std::string& path = "") {
  if (doc.is_string()) return doc.get_ref<const std::string&>().find('\0') != std::string::npos ? (path.empty() ? "/" : path) : "";
  if (doc.is_array()) {
    for (std::size_t i = 0; i < doc.size(); ++i)
      if (auto at = nul_at(doc[i], path + "/" + std::to_string(i)); !at.empty()) return at;
  } else if (doc.is_object()) {
    for (const auto& [k, v] : doc.items()) {
      if (k.find('\0') != std::string::npos) return path + "/(a key)";
      if (auto at = nul_at(v, path + "/" + k); !at.empty()) return at;
    }
  }
  return "";
}

// The JSON text of `payload` escapes U+0000 as \u0000; only then is the document walked.
std::string nul_problem(const std::string& payload, const json& doc) {
  if (payload.find("\\u0000") == std::string::npos) return "";
  const auto at = nul_at(doc);
  return at.empty() ? "" : at + ": holds the character U+0000, which the database cannot store in text";
}

std::string quote(std::string_view s) { return "\"" + clip(s) + "\""; }

}  // namespace

void RowBatch::clear() { *this = RowBatch{}; }

void add_range(std::vector<SeqRange>& ranges, std::int64_t first, std::int64_t last) {
  // The usual case: the next seqs of a batch, at the end.
  if (ranges.empty() || first > ranges.back().last + 1) {
    ranges.push_back({first, last});
    return;
  }
  if (first >= ranges.back().first) {
    ranges.back().last = std::max(ranges.back().last, last);
    return;
  }
  // Anywhere else: insert, then merge neighbours that overlap or touch.
  auto it = std::lower_bound(ranges.begin(), ranges.end(), first,
                             [](const SeqRange& r, std::int64_t v) { return r.last + 1 < v; });
  if (it == ranges.end() || it->first > last + 1) {
    ranges.insert(it, {first, last});
    return;
  }
  it->first = std::min(it->first, first);
  it->last = std::max(it->last, last);
  auto next = it + 1;
  while (next != ranges.end() && next->first <= it->last + 1) {
    it->last = std::max(it->last, next->last);
    next = ranges.erase(next);
  }
}

std::string sha256_hex(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &len, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * len);
  for (unsigned i = 0; i < len; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 0xF];
  }
  return out;
}

std::optional<OfficeTopic> parse_office_topic(std::string_view topic, std::string_view root) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    const auto slash = topic.find('/', start);
    parts.push_back(topic.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  if (parts.size() < 4 || parts[0] != root || parts[1].empty() || parts[2].empty()) return std::nullopt;
  OfficeTopic t;
  t.province = parts[1];
  t.site = parts[2];
  if (parts[3] == "status") {
    if (parts.size() != 4) return std::nullopt;
    t.kind = TopicKind::Status;
    return t;
  }
  if (parts.size() != 5 || parts[4].empty()) return std::nullopt;
  if (parts[3] == "data")
    t.kind = TopicKind::Data;
  else if (parts[3] == "event")
    t.kind = TopicKind::Event;
  else if (parts[3] == "blob")
    t.kind = TopicKind::Blob;
  else
    return std::nullopt;
  t.source = parts[4];
  return t;
}

QuarantineRow Ingest::refused(const ioc_edge::mqtt_wire::Publish& message, const std::string& reason) {
  QuarantineRow q;
  q.topic = message.topic;
  q.reason = reason;
  q.payload = message.payload;
  // {root}/{province}/{site}/...: the third level (the message passed its topic's check before).
  const auto a = message.topic.find('/'), b = a == std::string::npos ? a : message.topic.find('/', a + 1);
  const auto c = b == std::string::npos ? b : message.topic.find('/', b + 1);
  if (c != std::string::npos) q.site_in_topic = message.topic.substr(b + 1, c - b - 1);
  if (!message.user_properties.empty()) {
    json props = json::object();
    for (const auto& [k, v] : message.user_properties) props[k] = v;
    q.properties = props.dump();
  }
  return q;
}

void Ingest::quarantine(const ioc_edge::mqtt_wire::Publish& message, const std::optional<OfficeTopic>& topic, std::string reason,
                        const std::string& payload, RowBatch& batch) {
  QuarantineRow q;
  q.topic = message.topic;
  q.reason = std::move(reason);
  q.payload = payload;
  if (topic) q.site_in_topic = topic->site;
  if (!message.user_properties.empty()) {
    json props = json::object();
    for (const auto& [k, v] : message.user_properties) props[k] = v;
    q.properties = props.dump();
  }
  batch.quarantine.push_back(std::move(q));
  ++counters_.quarantined;
}

void Ingest::add(const ioc_edge::mqtt_wire::Publish& message, RowBatch& batch) {
  ++counters_.messages;
  ++batch.messages;
  const auto topic = parse_office_topic(message.topic, options_.topic_root);
  if (message.oversized) {
    quarantine(message, topic,
               "larger than the receiver's limit (" + std::to_string(message.payload_size) +
                   " bytes); its bytes were not kept",
               "", batch);
    return;
  }
  if (!topic) {
    quarantine(message, topic,
               "not an office topic: expected " + options_.topic_root +
                   "/{province}/{site}/data|event|blob/{source} or .../status",
               message.payload, batch);
    return;
  }
  const std::string* payload = &message.payload;
  std::string inflated;
  if (topic->kind != TopicKind::Blob && is_zstd(message.payload)) {
    const auto error = unzstd(message.payload, options_.max_payload, inflated);
    if (!error.empty()) {
      quarantine(message, topic, "cannot decompress: " + error, message.payload, batch);
      return;
    }
    ++counters_.decompressed;
    payload = &inflated;
  }
  std::string reason;
  switch (topic->kind) {
    case TopicKind::Data:
    case TopicKind::Event: reason = add_batch(*topic, *payload, batch); break;
    case TopicKind::Blob: reason = add_blob(*topic, message, *payload, batch); break;
    case TopicKind::Status: reason = add_status(*topic, message, *payload, batch); break;
  }
  if (!reason.empty()) quarantine(message, topic, std::move(reason), message.payload, batch);
}

std::string Ingest::add_batch(const OfficeTopic& topic, const std::string& payload, RowBatch& batch) {
  json doc = json::parse(payload, nullptr, false);
  if (doc.is_discarded()) return "not JSON (or not valid UTF-8)";
  if (auto nul = nul_problem(payload, doc); !nul.empty()) return nul;
  if (auto problem = batch_schema().first_error(doc))
    return "does not match docs/schema/batch.schema.json: " + *problem;
  const auto& site = doc["site"].get_ref<const std::string&>();
  if (site != topic.site) return "site " + quote(site) + " in the message but " + quote(topic.site) + " in its topic";
  const auto& store = doc["store"].get_ref<const std::string&>();
  const bool events = topic.kind == TopicKind::Event;

  // Rows go to local buffers first: a message is stored whole or not at all (invariant 3).
  std::string rows, gap_rows;
  std::size_t n = 0, gaps = 0;
  std::vector<SeqRange> seqs;
  std::map<std::string, SourceSeen> seen;
  const std::string site_field = pg::copy_escape(site) + '\t' + store + '\t';
  for (const auto& r : doc["readings"]) {
    const auto seq = r["seq"].get<std::int64_t>();
    const auto& ts = r["ts"].get_ref<const std::string&>();
    const auto& source = r["source"].get_ref<const std::string&>();
    const auto& point = r["point"].get_ref<const std::string&>();
    const auto& value = r["value"];
    const auto& quality = r["quality"].get_ref<const std::string&>();
    add_range(seqs, seq, seq);
    rows += site_field;
    rows += std::to_string(seq);
    sep(rows);
    rows += ts;
    sep(rows);
    field(rows, source);
    sep(rows);
    if (events) {
      const std::string* event = value.is_object() ? str_member(value, "event") : nullptr;
      const std::string* name = event ? event : value.is_object() ? str_member(value, "kind") : nullptr;
      field(rows, name ? *name : point);
      sep(rows);
      field(rows, value.is_object() ? value.dump() : json{{"value", value}}.dump());
      rows += '\n';
      if (event && *event == "gap") {  // the schema checked its members
        const auto* reason = str_member(value, "reason");
        for (const auto& range : value["ranges"]) {
          gap_rows += site_field;
          gap_rows += std::to_string(range[0].get<std::int64_t>()) + '\t' + std::to_string(range[1].get<std::int64_t>());
          sep(gap_rows);
          field(gap_rows, reason ? *reason : "");
          sep(gap_rows);
          gap_rows += ts + '\t' + std::to_string(seq) + '\n';
          ++gaps;
        }
      }
    } else {
      field(rows, point);
      sep(rows);
      if (value.is_number_integer())
        rows += value.is_number_unsigned() ? fmt::format("{}", value.get<std::uint64_t>())
                                           : fmt::format("{}", value.get<std::int64_t>());
      else if (value.is_number())
        rows += fmt::format("{}", value.get<double>());
      else
        null_field(rows);
      sep(rows);
      if (value.is_number() || value.is_null())
        null_field(rows);
      else
        field(rows, value.dump());
      sep(rows);
      if (const auto* unit = str_member(r, "unit"))
        field(rows, *unit);
      else
        null_field(rows);
      sep(rows);
      rows += quality;
      sep(rows);
      if (const auto* error = str_member(r, "error"))
        field(rows, *error);
      else
        null_field(rows);
      rows += '\n';
      auto& s = seen[source];
      if (!s.last_reading_ts || ts > *s.last_reading_ts) s.last_reading_ts = ts;
      if (quality != "bad" && (!s.last_good_ts || ts > *s.last_good_ts)) s.last_good_ts = ts;
    }
    ++n;
  }

  // Nothing below can fail: the message is in.
  if (events) {
    batch.events_copy += rows;
    batch.events += n;
    batch.gaps_copy += gap_rows;
    batch.gaps += gaps;
    counters_.events += n;
    counters_.gaps += gaps;
  } else {
    batch.readings_copy += rows;
    batch.readings += n;
    counters_.readings += n;
  }
  auto& ranges = batch.seqs[{site, store}];
  for (const auto& r : seqs) add_range(ranges, r.first, r.last);
  for (auto& [source, s] : seen) {
    auto& into = batch.sources[{site, source}];
    if (s.last_reading_ts && (!into.last_reading_ts || *s.last_reading_ts > *into.last_reading_ts))
      into.last_reading_ts = s.last_reading_ts;
    if (s.last_good_ts && (!into.last_good_ts || *s.last_good_ts > *into.last_good_ts)) into.last_good_ts = s.last_good_ts;
  }
  auto& office = batch.offices[site];
  office.province = topic.province;
  if (const auto it = doc.find("org"); it != doc.end()) {
    if (const auto* v = str_member(*it, "unit_code")) office.unit_code = *v;
    if (const auto* v = str_member(*it, "agency_code")) office.agency_code = *v;
    if (const auto* v = str_member(*it, "name")) office.name = *v;
  }
  return "";
}

std::string Ingest::add_blob(const OfficeTopic& topic, const ioc_edge::mqtt_wire::Publish& message, const std::string& payload,
                             RowBatch& batch) {
  if (message.user_properties.empty()) {
    // MQTT 3.1.1 (or a publisher that sends no properties): the writer matches it by SHA-256.
    batch.unmatched_blobs.push_back({message.topic, topic.site, topic.province, topic.source, sha256_hex(payload), payload});
    ++counters_.blobs;
    return "";
  }
  json props = json::object();
  for (const auto& [k, v] : message.user_properties) {
    if (props.contains(k)) return "user property " + quote(k) + " appears twice";
    props[k] = v;
  }
  if (auto problem = blob_schema().first_error(props)) return "does not match docs/schema/blob.schema.json: " + *problem;
  const auto& site = props["site"].get_ref<const std::string&>();
  if (site != topic.site) return "site " + quote(site) + " in the message but " + quote(topic.site) + " in its topic";
  BlobRow b;
  b.site = site;
  b.store = props["store"].get<std::string>();
  b.seq = std::stoll(props["seq"].get<std::string>());
  b.ts = props["ts"].get<std::string>();
  b.source = props["source"].get<std::string>();
  if (const auto* p = str_member(props, "point")) b.point = *p;
  if (const auto* p = str_member(props, "content_type")) b.content_type = *p;
  if (b.content_type.empty()) b.content_type = message.content_type;
  const auto size = std::stoll(props["size"].get<std::string>());
  if (size != static_cast<long long>(payload.size()))
    return "size property says " + std::to_string(size) + " bytes, the payload has " + std::to_string(payload.size());
  b.sha256_hex = sha256_hex(payload);
  if (b.sha256_hex != props["sha256"].get<std::string>()) return "the payload's SHA-256 differs from its sha256 property";
  b.meta = props.dump();
  b.content = payload;
  add_range(batch.seqs[{b.site, b.store}], b.seq, b.seq);
  batch.offices[b.site].province = topic.province;
  batch.blobs.push_back(std::move(b));
  ++counters_.blobs;
  return "";
}

std::string Ingest::add_status(const OfficeTopic& topic, const ioc_edge::mqtt_wire::Publish& message, const std::string& payload,
                               RowBatch& batch) {
  json doc = json::parse(payload, nullptr, false);
  if (doc.is_discarded()) return "not JSON (or not valid UTF-8)";
  if (auto nul = nul_problem(payload, doc); !nul.empty()) return nul;
  if (auto problem = status_schema().first_error(doc))
    return "does not match docs/schema/status.schema.json: " + *problem;
  const auto& site = doc["site"].get_ref<const std::string&>();
  if (site != topic.site) return "site " + quote(site) + " in the message but " + quote(topic.site) + " in its topic";
  StatusRow s;
  s.site = site;
  s.province = topic.province;
  s.body = payload;
  s.state = doc["state"].get<std::string>();
  s.retained = message.retain;
  if (const auto* ts = str_member(doc, "ts")) s.ts = *ts;
  if (const auto it = doc.find("backlog"); it != doc.end() && it->is_number_integer()) s.backlog = it->get<std::int64_t>();
  if (const auto it = doc.find("held"); it != doc.end() && it->is_number_integer()) s.held = it->get<std::int64_t>();
  batch.offices[site].province = topic.province;
  batch.statuses.push_back(std::move(s));
  ++counters_.statuses;
  return "";
}

}  // namespace ioc_receiver
