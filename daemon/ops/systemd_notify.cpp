#include "ops/systemd_notify.h"

#include <systemd/sd-daemon.h>

namespace ioc_edge::systemd {

void ready(const std::string& status) { sd_notifyf(0, "READY=1\nSTATUS=%s", status.c_str()); }
void stopping() { sd_notify(0, "STOPPING=1"); }
void reloading() { sd_notify(0, "RELOADING=1"); }
void status(const std::string& text) { sd_notifyf(0, "STATUS=%s", text.c_str()); }
void watchdog() { sd_notify(0, "WATCHDOG=1"); }

std::optional<std::chrono::microseconds> watchdog_interval() {
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) return std::chrono::microseconds(usec);
  return std::nullopt;
}

}  // namespace ioc_edge::systemd
