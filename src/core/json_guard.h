// nlohmann::json throws where a file holds a value of an unexpected type (value("k", 1) on a string,
// get<int>() on an object, [] on an array). The parsers of outside JSON run their walk through guard_json so
// that such a file gives CORRUPT_DATA naming the file and the JSON error, never an escaped exception (found
// by fuzz/).
#pragma once

#include <nlohmann/json.hpp>

#include <string_view>
#include <utility>

#include "core/status.h"

namespace sacc {

// Calls walk() (returning a Status or a Result) and turns a JSON exception into CORRUPT_DATA.
template <typename Walk>
auto guard_json(std::string_view origin, Walk&& walk) -> decltype(walk()) {
  try {
    return std::forward<Walk>(walk)();
  } catch (const nlohmann::json::exception& error) {
    return make_error(StatusCode::CORRUPT_DATA, "{}: unexpected JSON structure: {}", origin, error.what());
  }
}

}  // namespace sacc
