// The registration list: one line per driver. No static-initialisation tricks.
#include "drivers/builtin.h"

#include "drivers/generator/generator_source.h"
#include "drivers/http_ingest/ingest_config.h"
#include "drivers/http_ingest/ingest_source.h"
#include "drivers/http_poll/http_poll_config.h"
#include "drivers/http_poll/http_poll_source.h"
#include "drivers/modbus/modbus_config.h"
#include "drivers/modbus/modbus_source.h"
#include "drivers/mqtt/mqtt_config.h"
#include "drivers/mqtt/mqtt_source.h"
#include "drivers/spool/spool_config.h"
#include "drivers/spool/spool_source.h"

namespace ioc_edge {

const std::vector<Driver>& builtin_drivers() {
  static const std::vector<Driver> drivers = {
      {"generator", "synthetic readings at a fixed rate, for demos and benchmarks", generator::parse_config, generator::create, nullptr},
      {"modbus", "Modbus TCP and RTU devices polled on schedules (libmodbus)", modbus::parse_config, modbus::create, modbus::check_together},
      {"http-ingest", "readings that local systems POST as JSON (bearer tokens, idempotent retries)", http_ingest::parse_config, http_ingest::create, http_ingest::check_together},
      {"http-poll", "JSON documents fetched from local systems on a schedule (HTTP GET, ETag-aware)", http_poll::parse_config, http_poll::create, nullptr},
      {"mqtt", "what sensors and cameras publish on the office's MQTT broker (JSON, plain values, snapshots)", mqtt::parse_config, mqtt::create, mqtt::check_together},
      {"spool", "CSV and JSON export files dropped into a directory, each imported exactly once", spool::parse_config, spool::create, nullptr},
  };
  return drivers;
}

}  // namespace ioc_edge
