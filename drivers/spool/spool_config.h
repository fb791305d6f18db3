#pragma once
// The `spool` source's configuration: a directory where staff or a scheduled job drop CSV or JSON
// export files, and how each file's rows become readings. See drivers/spool/README.md for every key.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "core/source.h"

namespace ioc_edge {
class TableReader;
}

namespace ioc_edge::spool {

enum class Format : std::uint8_t { Csv, Json };
enum class Decimal : std::uint8_t { Auto, Dot, Comma };
enum class TsFormat : std::uint8_t { Rfc3339, Pattern };

struct Config final : DriverConfig {
  std::string dir;                   // absolute path of the drop directory
  Format format = Format::Csv;
  char delimiter = 0;                // ',' ';' '\t'; 0: found from the header line
  Decimal decimal = Decimal::Auto;   // auto: ',' with ';' or tab delimiters, '.' with ','
  std::string encoding;              // empty: UTF-8 (UTF-16 recognised by its BOM); else an iconv name

  std::string ts_column;             // empty: every reading of a file takes the time of its import
  TsFormat ts_format = TsFormat::Rfc3339;
  std::string ts_pattern;            // strptime pattern for TsFormat::Pattern
  int offset_minutes = 7 * 60;       // timezone: Asia/Ho_Chi_Minh (UTC+7, no summer time)

  std::string point_column;          // long layout (one reading per row); empty: wide layout
  std::string value_column;
  std::string unit_column;           // long layout, optional

  // Readings per outbox transaction (whole rows); the outbox still splits them into records and
  // messages of [uplink] batch_max_readings. One commit (an fsync) per batch: bench/README.md.
  std::size_t batch_max_readings = 5000;
  std::chrono::milliseconds settle_time{2000};      // unchanged this long: a file is complete
  std::chrono::milliseconds retry_min{1000}, retry_max{60000};  // after the outbox refused a batch
};

std::unique_ptr<DriverConfig> parse_config(TableReader& section);

// "Asia/Ho_Chi_Minh", "Asia/Saigon", "UTC", "+07:00", "+0700", "+07", "-03:30" -> minutes east of
// UTC. Vietnam has kept UTC+7 without summer time since 1975, so its zone is a fixed offset.
std::optional<int> parse_timezone(std::string_view text);

// Why `pattern` is not a strptime pattern, or empty.
std::string pattern_problem(std::string_view pattern);

}  // namespace ioc_edge::spool
