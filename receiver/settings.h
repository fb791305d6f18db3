#pragma once
// ioc-receiver's settings: one TOML file (config/ioc-receiver.toml documents every key), read
// with the gateway's TableReader, so every problem is reported as FILE:LINE:COL and unknown keys
// are errors with a did-you-mean.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "settings/table_reader.h"

namespace ioc_receiver {

struct BrokerSettings {
  std::string url;  // mqtt:// or mqtts://
  bool tls = false;
  std::string host;
  int port = 8883;
  std::string ca_file, cert_file, key_file;
  bool verify_hostname = true;
  std::string client_id;  // default: ioc-receiver-<host name>
  // Receivers with the same group share the offices' messages ($share/{group}/...); "" for none.
  std::string share_group = "ioc-receivers";
  std::string topic_root = "ioc";  // offices publish under {topic_root}/{province}/{site}/
  // Messages the broker may send before their acknowledgement (MQTT 5 Receive Maximum): how many
  // wait for their commit at most, and so the receiver's memory.
  int receive_maximum = 1000;
};

struct DatabaseSettings {
  std::string url;  // a libpq connection string
  std::size_t batch_max_rows = 5000;
  std::chrono::milliseconds batch_wait{100};
  int partitions_ahead = 3;  // months of `readings` partitions made ahead
};

struct StatusSettings {
  std::string listen = "127.0.0.1:8788";  // "" turns the status server off
  std::string host = "127.0.0.1";
  int port = 8788;
};

struct LateSettings {
  std::chrono::milliseconds office_after = std::chrono::minutes(10);
  double source_factor = 3.0;  // a source is late after this many times its cadence
  // ... and never sooner than this: a source read every second is not late between two batches.
  std::chrono::milliseconds source_min_silence = std::chrono::minutes(1);
};

struct CoverageSettings {
  std::chrono::milliseconds hole_grace = std::chrono::minutes(10);
};

struct Settings {
  std::string file;
  std::string log_level = "info";
  BrokerSettings broker;
  DatabaseSettings database;
  StatusSettings status;
  LateSettings late;
  CoverageSettings coverage;
};

struct LoadResult {
  std::optional<Settings> settings;  // set when there was no problem
  ioc_edge::Diagnostics diagnostics;
};

LoadResult load_settings(const std::string& path);
// `check_files`: false skips opening certificate files (for documentation examples).
LoadResult load_settings_text(std::string_view text, const std::string& name, bool check_files = true);

}  // namespace ioc_receiver
