#include "model/head_config.h"

#include "core/json_guard.h"
#include "model/minference_config.h"

#include "attention/sparse_index.h"

#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace sacc {
namespace {

constexpr const char* kFormat = "sparseaccelerate.head-config";
constexpr int kVersion = 1;

using Json = nlohmann::json;

Result<HeadConfig> from_minference(const MinferenceConfig& minference) {
  HeadConfig config;
  config.target = "minference";
  for (const auto& heads : minference) {
    std::vector<HeadChoiceRecord> records;
    records.reserve(heads.size());
    for (const MinferenceHead& head : heads) records.push_back({head.spec});
    config.layers.push_back(std::move(records));
  }
  return config;
}

// An optional integer field: absent -> `fallback`; present, it must be a JSON integer within [0, 2^31).
Result<int64_t> read_count(const Json& root, const char* key, int64_t fallback, const std::string& origin) {
  if (!root.contains(key)) return fallback;
  const Json& value = root[key];
  if (!value.is_number_integer() || value.get<int64_t>() < 0 || value.get<int64_t>() > INT32_MAX) {
    return make_error(StatusCode::CORRUPT_DATA, "{}: \"{}\" must be an integer from 0 to 2^31 - 1", origin,
                      key);
  }
  return value.get<int64_t>();
}

Result<HeadConfig> parse_ours(const Json& root, const std::string& origin) {
  if (root.value("format", "") != kFormat) {
    return make_error(StatusCode::CORRUPT_DATA, "{}: not a head config (\"format\" is not \"{}\")", origin,
                      kFormat);
  }
  SACC_ASSIGN_OR_RETURN(const int64_t version, read_count(root, "version", 0, origin));
  if (version != kVersion) {
    return make_error(StatusCode::UNSUPPORTED, "{}: head-config version {} (this build reads version {})",
                      origin, version, kVersion);
  }
  HeadConfig config;
  config.model = root.value("model", "");
  config.target = root.value("target", "");
  SACC_ASSIGN_OR_RETURN(const int64_t block_q, read_count(root, "block_q", kTileBlockQ, origin));
  SACC_ASSIGN_OR_RETURN(const int64_t block_k, read_count(root, "block_k", kTileBlockK, origin));
  config.block_q = static_cast<int>(block_q);
  config.block_k = static_cast<int>(block_k);
  SACC_RETURN_IF_ERROR(check_kernel_tile(config.block_q, config.block_k, origin));
  EstimationConfig& e = config.estimation;
  SACC_ASSIGN_OR_RETURN(e.last_queries, read_count(root, "last_queries", e.last_queries, origin));
  SACC_ASSIGN_OR_RETURN(e.sink_keys, read_count(root, "sink_keys", e.sink_keys, origin));
  SACC_ASSIGN_OR_RETURN(e.local_diagonals, read_count(root, "local_diagonals", e.local_diagonals, origin));
  if (!root.contains("layers") || !root["layers"].is_array()) {
    return make_error(StatusCode::CORRUPT_DATA, "{}: \"layers\" must be a list of layers", origin);
  }
  for (size_t layer = 0; layer < root["layers"].size(); ++layer) {
    const Json& heads = root["layers"][layer];
    if (!heads.is_array()) {
      return make_error(StatusCode::CORRUPT_DATA, "{}: layer {} must be a list of heads", origin, layer);
    }
    std::vector<HeadChoiceRecord> records;
    for (size_t head = 0; head < heads.size(); ++head) {
      const std::string where = fmt::format("{}: layer {} head {}", origin, layer, head);
      const Json& entry = heads[head];
      if (!entry.is_object() || !entry.contains("pattern") || !entry["pattern"].is_string()) {
        return make_error(StatusCode::CORRUPT_DATA, "{}: needs a \"pattern\" string", where);
      }
      HeadChoiceRecord record;
      Result<PatternSpec> spec = parse_pattern(entry["pattern"].get<std::string>());
      if (!spec) return spec.status().with_context(where);
      record.pattern = *spec;
      record.error = entry.value("error", -1.0);
      record.recall = entry.value("recall", -1.0);
      record.density = entry.value("density", -1.0);
      records.push_back(record);
    }
    config.layers.push_back(std::move(records));
  }
  return config;
}

}  // namespace

LayerPatterns HeadConfig::layer_patterns(int layer) const {
  LayerPatterns patterns;
  patterns.estimation = estimation;
  for (const HeadChoiceRecord& record : layers.at(layer)) patterns.heads.push_back(record.pattern);
  return patterns;
}

Status HeadConfig::check_fits(int num_layers, int num_q_heads) const {
  if (static_cast<int>(layers.size()) != num_layers) {
    return make_error(StatusCode::INVALID_ARGUMENT, "head config has {} layers but the model has {}",
                      layers.size(), num_layers);
  }
  for (size_t layer = 0; layer < layers.size(); ++layer) {
    if (static_cast<int>(layers[layer].size()) != num_q_heads) {
      return make_error(StatusCode::INVALID_ARGUMENT,
                        "head config layer {} has {} heads but the model has {}", layer, layers[layer].size(),
                        num_q_heads);
    }
  }
  return Status::ok();
}

Result<HeadConfig> parse_head_config(const std::string& json_text, const std::string& origin) {
  Json root = Json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) return make_error(StatusCode::CORRUPT_DATA, "{}: not valid JSON", origin);
  if (root.is_array()) {
    SACC_ASSIGN_OR_RETURN(MinferenceConfig minference, minference_config_from_json(root, origin));
    return from_minference(minference);
  }
  if (root.is_object()) return guard_json(origin, [&] { return parse_ours(root, origin); });
  return make_error(StatusCode::CORRUPT_DATA, "{}: expected a JSON object or list", origin);
}

Result<HeadConfig> load_head_config(const std::string& path) {
  std::ifstream file(path);
  if (!file) return make_error(StatusCode::NOT_FOUND, "cannot open head config '{}'", path);
  std::stringstream text;
  text << file.rdbuf();
  return parse_head_config(text.str(), path);
}

Status save_head_config(const HeadConfig& config, const std::string& path) {
  Json root;
  root["format"] = kFormat;
  root["version"] = kVersion;
  root["model"] = config.model;
  root["target"] = config.target;
  root["block_q"] = config.block_q;
  root["block_k"] = config.block_k;
  root["last_queries"] = config.estimation.last_queries;
  root["sink_keys"] = config.estimation.sink_keys;
  root["local_diagonals"] = config.estimation.local_diagonals;
  Json layers = Json::array();
  for (const auto& heads : config.layers) {
    Json layer = Json::array();
    for (const HeadChoiceRecord& record : heads) {
      Json entry;
      entry["pattern"] = to_string(record.pattern);
      if (record.error >= 0) entry["error"] = record.error;
      if (record.recall >= 0) entry["recall"] = record.recall;
      if (record.density >= 0) entry["density"] = record.density;
      layer.push_back(entry);
    }
    layers.push_back(layer);
  }
  root["layers"] = layers;
  std::ofstream file(path);
  if (!file) return make_error(StatusCode::IO_ERROR, "cannot write head config '{}'", path);
  file << root.dump(1) << "\n";
  if (!file) return make_error(StatusCode::IO_ERROR, "writing head config '{}' failed", path);
  return Status::ok();
}

}  // namespace sacc
