#pragma once
// What a configuration reload (SIGHUP) changes: the running settings against the file's new ones,
// as a plan the Gateway carries out (docs/operations.md, "Reloading the configuration").
//
//   - sources: added, removed, or changed (their [[source]] table differs in any key): a changed
//     source is stopped and started again with its new table; an unchanged one is not touched;
//   - the uplink: any other [uplink] key, the topic prefix or the content of a TLS or password file
//     changed -> the link to the IOC is closed and opened again; otherwise it stays up;
//   - [gateway] log_level: applied;
//   - what names the buffer or the status API ([gateway] site, province, data_dir, the office's
//     codes, [buffer], [status], and the [uplink] message sizes the buffer was opened with): only a restart applies it, so the
//     whole reload is refused and the running configuration kept.
// Pure: no I/O.
#include <cstddef>
#include <string>
#include <vector>

#include "settings/settings.h"

namespace ioc_edge {

struct ReloadPlan {
  std::vector<std::string> restart_needed;   // e.g. "[gateway] data_dir" (the reload is refused)
  std::vector<std::string> uplink_changes;   // e.g. "[uplink] keepalive"; not empty: reconnect
  bool log_level_changed = false;
  std::vector<std::size_t> added;            // indexes into the new settings' sources
  std::vector<std::size_t> changed;          // indexes into the new settings' sources
  std::vector<std::string> removed;          // names of running sources
  std::size_t unchanged = 0;

  bool refused() const { return !restart_needed.empty(); }
  bool nothing_to_do() const {
    return restart_needed.empty() && uplink_changes.empty() && !log_level_changed && added.empty() &&
           changed.empty() && removed.empty();
  }
  // One line for the log: "2 sources added (a, b), 1 changed (c), 1 removed (d), 3 unchanged; the
  // uplink reconnects ([uplink] keepalive)".
  std::string summary(const Settings& next) const;
};

// `uplink_files_changed`: the content of a file the uplink reads (CA, certificate, key, password)
// differs from when the link was opened (a renewed certificate under the same name).
ReloadPlan plan_reload(const Settings& running, const Settings& next, bool uplink_files_changed);

}  // namespace ioc_edge
