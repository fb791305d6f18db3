#pragma once
// JSON values as reading values, one rule for every driver that reads JSON (mqtt, http-ingest,
// http-poll): integers stay integers (above int64: a double), a non-finite number is refused,
// booleans and strings are themselves, objects and arrays become a record (compact JSON text),
// null is no value.
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "core/reading.h"

namespace ioc_edge {

// False (with `error`) for a number JSON cannot hold as a finite double (1e999).
bool json_to_value(const nlohmann::json& v, Value& out, std::string& error);
// Compact JSON text; never throws (invalid UTF-8 in strings is replaced, though parsed JSON has none).
std::string compact_json(const nlohmann::json& v);

}  // namespace ioc_edge
