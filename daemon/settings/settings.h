#pragma once
// The configuration file (docs/design.md section 5) as typed structs. Every key is documented in
// config/ioc-edge.toml; this file and that one change together.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/reading.h"
#include "core/source.h"
#include "settings/table_reader.h"

namespace ioc_edge {

struct GatewaySettings {
  std::string site;
  std::string province;
  std::string data_dir = "/var/lib/ioc-edge";
  std::string unit_code, agency_code, name;  // optional official codes, carried as "org"
  std::string topic_prefix;                  // default "ioc/{province}/{site}"
  std::string log_level = "info";
};

struct BufferSettings {
  std::uint64_t max_size = 2ull << 30;
  std::chrono::milliseconds max_age = std::chrono::hours(24 * 30);
  bool sync_full = true;
  // How long an append may wait for company before its commit (docs/design.md, "Writes to flash").
  std::chrono::milliseconds commit_interval{kDefaultCommitInterval};
  static constexpr std::chrono::milliseconds kDefaultCommitInterval{2000};
};

struct UplinkSettings {
  std::string url;
  std::string client_id;  // default "ioc-edge-{site}"
  std::string ca_file, cert_file, key_file;
  std::string username, password_file;
  bool verify_hostname = true;
  int mqtt_version = 5;  // 5, or 4 (MQTT 3.1.1: cannot report refused publishes)
  std::size_t batch_max_readings = 500;
  std::uint64_t batch_max_bytes = 256 * 1024;
  std::uint64_t blob_max_bytes = 4ull << 20;
  std::size_t max_inflight = 100;
  std::chrono::milliseconds batch_wait{0};  // live readings wait up to this for company (0: never)
  double backlog_rate = 2.0 * 1024 * 1024;  // bytes/s; 0 = unlimited
  std::chrono::milliseconds keepalive{30000};
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds reconnect_min{1000};
  std::chrono::milliseconds reconnect_max{60000};
  std::chrono::milliseconds heartbeat{60000};
};

struct StatusSettings {
  std::string listen = "127.0.0.1:8787";  // empty: no status server
  std::string host;                       // parsed from listen
  int port = 8787;
  // The IOC link counts as a problem (/healthz, `ioc-edge status`) once it has been down this long.
  std::chrono::milliseconds link_down_after = std::chrono::minutes(15);
};

// The hourly roll-ups and `ioc-edge report` (daemon/ops/rollup_store.h, daemon/ops/report.h).
struct ReportSettings {
  std::chrono::milliseconds retention = std::chrono::hours(24 * 400);  // roll-ups older than this are deleted
  // How often the counts are written to <data_dir>/rollups.db: one small commit each (flash wear);
  // a crash loses at most this much of them.
  std::chrono::milliseconds write_every = std::chrono::minutes(1);
  int utc_offset_minutes = 7 * 60;  // the report's dates are days at this offset (Vietnam: +07:00)
};

struct SourceSettings {
  std::string name;
  std::string type;
  Priority priority = Priority::Normal;
  std::string title;  // a display name for people (the status page), e.g. "Trạm bơm Cầu Rào"; may be empty
  // How often good data is expected (the stale-source watch, completeness in the report); zero:
  // not watched. Default: the driver's poll_interval(), at least 1 s.
  std::chrono::milliseconds expected_every{0};
  const Driver* driver = nullptr;
  std::shared_ptr<const DriverConfig> config;
  // The [[source]] table as read (keys in order, positions left out): a reload replaces a source
  // whose table differs and leaves alone one whose table is the same.
  std::string section_text;
};

struct Settings {
  std::string file;
  GatewaySettings gateway;
  BufferSettings buffer;
  UplinkSettings uplink;
  StatusSettings status;
  ReportSettings report;
  std::vector<SourceSettings> sources;
};

struct LoadResult {
  std::optional<Settings> settings;  // set only when there were no problems
  Diagnostics diagnostics;
};

// Parses and validates the file. Every problem found is in diagnostics (FILE:LINE:COL).
LoadResult load_settings(const std::string& path, const std::vector<Driver>& drivers);
// The same from text (tests); `name` is used in messages.
// check_files = false skips opening certificate and secret files (documentation examples).
LoadResult load_settings_text(std::string_view text, const std::string& name, const std::vector<Driver>& drivers,
                              bool check_files = true);

}  // namespace ioc_edge
