// The registration list: one line per driver. No static-initialisation tricks.
#include "drivers/builtin.h"

#include "drivers/generator/generator_source.h"
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
      {"mqtt", "what sensors and cameras publish on the office's MQTT broker (JSON, plain values, snapshots)", mqtt::parse_config, mqtt::create, mqtt::check_together},
      {"spool", "CSV and JSON export files dropped into a directory, each imported exactly once", spool::parse_config, spool::create, nullptr},
  };
  return drivers;
}

}  // namespace ioc_edge
