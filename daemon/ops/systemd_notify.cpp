#include "ops/systemd_notify.h"

#include <ctime>

#include <systemd/sd-daemon.h>

namespace ioc_edge::systemd {

void ready(const std::string& status) { sd_notifyf(0, "READY=1\nSTATUS=%s", status.c_str()); }
void stopping() { sd_notify(0, "STOPPING=1"); }
// MONOTONIC_USEC: systemd 253+ (Type=notify-reload) requires it with RELOADING=1; older ones ignore it.
void reloading() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  const auto usec = static_cast<unsigned long long>(ts.tv_sec) * 1000000ull + static_cast<unsigned long long>(ts.tv_nsec) / 1000;
  sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu", usec);
}
void status(const std::string& text) { sd_notifyf(0, "STATUS=%s", text.c_str()); }
void watchdog() { sd_notify(0, "WATCHDOG=1"); }

std::optional<std::chrono::microseconds> watchdog_interval() {
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) return std::chrono::microseconds(usec);
  return std::nullopt;
}

}  // namespace ioc_edge::systemd
