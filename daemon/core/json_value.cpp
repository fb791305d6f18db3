#include "core/json_value.h"

#include <cmath>
#include <cstdint>
#include <limits>

#include <nlohmann/json.hpp>

namespace ioc_edge {

using json = nlohmann::json;

std::string compact_json(const json& v) { return v.dump(-1, ' ', false, json::error_handler_t::replace); }

bool json_to_value(const json& v, Value& out, std::string& error) {
  switch (v.type()) {
    case json::value_t::number_integer: out = v.get<std::int64_t>(); return true;
    case json::value_t::number_unsigned: {
      const auto u = v.get<std::uint64_t>();
      if (u <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        out = static_cast<std::int64_t>(u);
      else
        out = static_cast<double>(u);
      return true;
    }
    case json::value_t::number_float: {
      const double d = v.get<double>();
      if (!std::isfinite(d)) {
        error = "number out of range";
        return false;
      }
      out = d;
      return true;
    }
    case json::value_t::boolean: out = v.get<bool>(); return true;
    case json::value_t::string: out = v.get_ref<const std::string&>(); return true;
    case json::value_t::object:
    case json::value_t::array: out = JsonText{compact_json(v)}; return true;
    default: out = std::monostate{}; return true;
  }
}

}  // namespace ioc_edge
