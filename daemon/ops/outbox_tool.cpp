#include "ops/outbox_tool.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include "core/envelope.h"
#include "core/outbox_reader.h"
#include "settings/settings.h"

namespace ioc_edge {

namespace {

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::unique_ptr<OutboxReader> open_or_say(const OutboxToolOptions& o, std::ostream& err) {
  std::string error;
  auto r = OutboxReader::open(o.db_path, error);
  if (!r) err << "ioc-edge outbox: " << error << "\n";
  return r;
}

// 12345678 -> "12,345,678"
std::string grouped(std::int64_t n) {
  auto s = std::to_string(n < 0 ? -n : n);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<std::size_t>(i), ",");
  return n < 0 ? "-" + s : s;
}

// One export line for a message the daemon would publish.
void write_line(std::ostream& out, const Message& m, bool batched, bool held) {
  out << "{\"topic\":" << nlohmann::json(m.topic).dump();
  if (held) out << ",\"held\":true";
  if (batched) {
    out << ",\"payload\":" << m.payload;
  } else {
    nlohmann::json props = nlohmann::json::object();
    for (const auto& [k, v] : m.user_properties) props[k] = v;
    out << ",\"properties\":" << props.dump() << ",\"payload_base64\":\"" << base64(m.payload) << "\"";
  }
  out << "}\n";
}

}  // namespace

int outbox_stats(const OutboxToolOptions& o, std::ostream& out, std::ostream& err) {
  auto reader = open_or_say(o, err);
  if (!reader) return 1;
  OutboxReader::Stats s;
  std::string error;
  if (!reader->stats(s, error)) {
    err << "ioc-edge outbox stats: " << o.db_path << ": " << error << "\n";
    return 1;
  }
  if (o.count) {
    out << s.readings << "\n";
    return 0;
  }
  if (o.json) {
    nlohmann::json by_prio = nlohmann::json::object();
    for (int p = 0; p < kPriorityLevels; ++p) by_prio[std::string(to_string(static_cast<Priority>(p)))] = s.by_priority[p];
    nlohmann::json sources = nlohmann::json::array();
    for (const auto& x : s.by_source)
      sources.push_back({{"source", x.source},
                         {"kind", kind_info(x.kind).name},
                         {"records", x.records},
                         {"readings", x.readings},
                         {"held", x.held},
                         {"bytes", x.body_bytes},
                         {"first_seq", x.first_seq},
                         {"last_seq", x.last_seq}});
    out << nlohmann::json{{"file", o.db_path},     {"store", s.store},       {"last_seq", s.last_seq},
                          {"records", s.records},  {"readings", s.readings}, {"held", s.held},
                          {"by_priority", by_prio}, {"bytes", s.body_bytes}, {"first_seq", s.first_seq},
                          {"marks", s.marks},       {"sources", sources}}
               .dump(2)
        << "\n";
    return 0;
  }
  out << "outbox   " << o.db_path << " (store " << s.store << ")\n";
  if (s.readings == 0) {
    out << "waiting  nothing: every reading up to seq " << grouped(s.last_seq) << " has reached the IOC or was named in a gap\n";
    return 0;
  }
  out << "waiting  " << grouped(s.readings) << " readings in " << grouped(s.records) << " records, seq "
      << grouped(s.first_seq) << " to " << grouped(s.last_seq) << ", " << grouped(s.body_bytes) << " bytes\n";
  out << "         by priority:";
  for (int p = kPriorityLevels - 1; p >= 0; --p)
    if (s.by_priority[p]) out << " " << to_string(static_cast<Priority>(p)) << " " << grouped(s.by_priority[p]);
  out << "\n";
  if (s.held)
    out << "REFUSED  " << grouped(s.held) << " of them were refused by the IOC broker and are kept aside "
        << "(ioc-edge status says why; ioc-edge outbox requeue sends them again)\n";
  out << "\n" << std::left << std::setw(28) << "source" << std::setw(8) << "kind" << std::right << std::setw(12)
      << "readings" << std::setw(10) << "records" << "  seqs\n";
  for (const auto& x : s.by_source)
    out << std::left << std::setw(28) << x.source << std::setw(8) << kind_info(x.kind).name << std::right
        << std::setw(12) << grouped(x.readings) << std::setw(10) << grouped(x.records) << "  " << x.first_seq << ".."
        << x.last_seq << (x.held ? "  (" + grouped(x.held) + " refused)" : std::string()) << "\n";
  return 0;
}

int outbox_peek(const OutboxToolOptions& o, std::ostream& out, std::ostream& err) {
  auto reader = open_or_say(o, err);
  if (!reader) return 1;
  std::size_t shown = 0;
  std::string error;
  const bool ok = reader->for_each(o.after_seq, o.source, [&](const Record& r, bool held) {
    out << "seq " << r.first_seq << ".." << r.last_seq << "  " << to_string(r.prio) << "  " << kind_info(r.kind).name
        << "  " << r.source << "  " << r.count() << (r.count() == 1 ? " reading" : " readings")
        << (held ? "  REFUSED by the IOC broker, kept aside" : "") << "\n";
    if (!kind_info(r.kind).batched) {
      out << "  " << r.body.size() << " bytes; " << r.meta << "\n";
    } else {
      // The readings as they will travel: each line with its seq.
      std::int64_t seq = r.first_seq;
      std::size_t pos = 0, n = 0;
      while (pos < r.body.size() && n < o.readings) {
        const auto nl = r.body.find('\n', pos);
        const auto line = r.body.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
        out << "  " << seq++ << " " << line << "\n";
        ++n;
        if (nl == std::string::npos) break;
        pos = nl + 1;
      }
      if (r.count() > n) out << "  ... " << r.count() - n << " more\n";
    }
    return ++shown < o.limit;
  }, error);
  if (!ok) {
    err << "ioc-edge outbox peek: " << o.db_path << ": " << error << "\n";
    return 1;
  }
  if (shown == 0) out << "nothing waiting" << (o.source.empty() ? "" : " from source " + o.source) << "\n";
  return 0;
}

int outbox_export(const OutboxToolOptions& o, const Settings& settings, std::ostream& out, std::ostream& err) {
  auto reader = open_or_say(o, err);
  if (!reader) return 1;
  OutboxReader::Stats st;
  std::string error;
  if (!reader->stats(st, error)) {
    err << "ioc-edge outbox export: " << o.db_path << ": " << error << "\n";
    return 1;
  }
  std::ofstream file;
  std::ostream* sink = &out;
  const bool to_file = !o.output.empty() && o.output != "-";
  if (to_file) {
    // Never over an existing file: a hand-over must not destroy an earlier one.
    const int fd = ::open(o.output.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0) {
      err << "ioc-edge outbox export: cannot create " << o.output << ": " << std::strerror(errno)
          << (errno == EEXIST ? " (choose a new name; an existing file is never overwritten)" : "") << "\n";
      return 1;
    }
    ::close(fd);
    file.open(o.output, std::ios::binary | std::ios::trunc);
    sink = &file;
  }
  const auto& g = settings.gateway;
  nlohmann::json org = nlohmann::json::object();
  if (!g.unit_code.empty()) org["unit_code"] = g.unit_code;
  if (!g.agency_code.empty()) org["agency_code"] = g.agency_code;
  if (!g.name.empty()) org["name"] = g.name;
  const BatchHeader header{g.site, st.store, org.empty() ? std::string() : org.dump()};
  const auto sent_at = now_ms();
  std::int64_t records = 0, readings = 0;
  const bool ok = reader->for_each(o.after_seq, o.source, [&](const Record& r, bool held) {
    if (kind_info(r.kind).batched) {
      write_line(*sink, build_message(g.topic_prefix, header, sent_at, {&r}), true, held);
    } else {
      write_line(*sink, build_blob_event(g.topic_prefix, header, sent_at, r), true, held);
      write_line(*sink, build_message(g.topic_prefix, header, sent_at, {&r}), false, held);
    }
    ++records;
    readings += static_cast<std::int64_t>(r.count());
    return static_cast<bool>(*sink);
  }, error);
  sink->flush();
  if (!ok || !*sink) {
    err << "ioc-edge outbox export: " << (ok ? "writing " + (to_file ? o.output : std::string("stdout")) + " failed: " +
                                                   std::strerror(errno)
                                             : o.db_path + ": " + error)
        << "\n";
    return 1;
  }
  err << "exported " << grouped(readings) << " readings in " << grouped(records) << " records (store " << st.store
      << ")" << (to_file ? " to " + o.output : std::string()) << "; they stay in the buffer and are still sent\n";
  return 0;
}

}  // namespace ioc_edge
