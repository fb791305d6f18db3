#pragma once
// `ioc-edge outbox stats|peek|export`: the buffer seen through a read-only connection
// (core/outbox_reader.h), while the daemon runs or not; never a second writer.
//
// export writes one JSON object per line per waiting record, exactly the message the daemon would
// publish for it: {"topic": T, "payload": <the ioc-edge/batch/1 document>} for data and events;
// for a blob its metadata event, then {"topic": T, "properties": {..}, "payload_base64": ".."}.
// Held records (refused by the IOC broker) carry "held": true. An office cut off for weeks hands
// the file over; the IOC stores it as if it had arrived over MQTT (seqs make repeats harmless).
#include <cstdint>
#include <iosfwd>
#include <string>

namespace ioc_edge {

struct Settings;

struct OutboxToolOptions {
  std::string db_path;     // the outbox file ([gateway] data_dir + "/outbox.db" unless given)
  bool json = false;       // stats: JSON instead of text
  bool count = false;      // stats: only the number of readings waiting (for scripts)
  std::size_t limit = 10;  // peek: records shown
  std::size_t readings = 3;  // peek: readings shown per record
  std::string source;      // peek, export: only this source's records
  std::int64_t after_seq = 0;  // peek, export: records whose seqs lie above this
  std::string output;      // export: a file to write (created, never overwritten); empty or "-": stdout
};

// Each returns the process exit code: 0 done, 1 the file could not be read or written.
int outbox_stats(const OutboxToolOptions& o, std::ostream& out, std::ostream& err);
int outbox_peek(const OutboxToolOptions& o, std::ostream& out, std::ostream& err);
// `settings` gives the header every message carries (site, office codes) and the topic prefix.
int outbox_export(const OutboxToolOptions& o, const Settings& settings, std::ostream& out, std::ostream& err);

}  // namespace ioc_edge
