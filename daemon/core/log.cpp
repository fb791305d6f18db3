#include "core/log.h"

#include <spdlog/sinks/stdout_sinks.h>

namespace ioc_edge {

namespace {
std::mutex g_mu;
spdlog::level::level_enum g_level = spdlog::level::info;

spdlog::sink_ptr shared_sink() {
  static spdlog::sink_ptr sink = [] {
    auto s = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    // Under systemd the journal stamps time; keep the line short but self-contained for files.
    s->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%n] %v");
    return s;
  }();
  return sink;
}
}  // namespace

std::shared_ptr<spdlog::logger> logger(const std::string& name) {
  std::lock_guard lk(g_mu);
  if (auto existing = spdlog::get(name)) return existing;
  auto l = std::make_shared<spdlog::logger>(name, shared_sink());
  l->set_level(g_level);
  l->flush_on(spdlog::level::warn);
  spdlog::register_logger(l);
  return l;
}

bool set_log_level(const std::string& level) {
  const auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off") return false;
  std::lock_guard lk(g_mu);
  g_level = lvl;
  spdlog::set_level(lvl);
  return true;
}

}  // namespace ioc_edge
