#pragma once
// sd_notify(3) for Type=notify units: READY, STOPPING, STATUS and the watchdog. Each call is a
// no-op when NOTIFY_SOCKET is unset (not under systemd).
#include <chrono>
#include <optional>
#include <string>

namespace ioc_edge::systemd {

void ready(const std::string& status);
void stopping();
void reloading();
void status(const std::string& text);
void watchdog();
// The watchdog interval systemd asked for (WatchdogSec), if any.
std::optional<std::chrono::microseconds> watchdog_interval();

}  // namespace ioc_edge::systemd
