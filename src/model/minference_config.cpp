#include "model/minference_config.h"

#include <charconv>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/json_guard.h"

namespace sacc {
namespace {

// `where()` names the head in errors; formatted only on an error, since configs hold thousands of heads.
template <typename Where>
Result<MinferenceHead> parse_head(const nlohmann::json& entry, const Where& where) {
  if (!entry.is_array() || entry.size() < 3 || !entry[0].is_string() || !entry[1].is_number_integer() ||
      !entry[2].is_number_integer()) {
    return make_error(StatusCode::CORRUPT_DATA, "{}: expected [type, v, s, score], got {}", where(),
                      entry.dump());
  }
  const std::string type = entry[0].get<std::string>();
  const int64_t v = entry[1].get<int64_t>();
  const int64_t s = entry[2].get<int64_t>();
  if (v < 0 || s < 0)
    return make_error(StatusCode::CORRUPT_DATA, "{}: negative budget in {}", where(), entry.dump());
  MinferenceHead head;
  if (entry.size() > 3 && entry[3].is_number()) head.score = entry[3].get<double>();
  if (type == "vertical_and_slash") {
    head.spec.kind = PatternKind::INTERVAL_SLASH;
    head.spec.vertical = v;
    head.spec.slash = s;
  } else if (type == "stream_llm") {
    head.spec.kind = PatternKind::TRIANGULAR;
    head.spec.sink = v;
    head.spec.window = s;
  } else if (type == "block_sparse") {
    head.spec.kind = PatternKind::BLOCK_CLUSTER;
    head.spec.blocks = v;
  } else {
    return make_error(
        StatusCode::CORRUPT_DATA,
        "{}: unknown pattern type '{}' (expected vertical_and_slash, stream_llm or block_sparse)", where(),
        type);
  }
  return head;
}

}  // namespace

Result<MinferenceConfig> parse_minference_config(const std::string& json_text,
                                                 const std::string& source_name) {
  const nlohmann::json root = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) return make_error(StatusCode::CORRUPT_DATA, "{}: not valid JSON", source_name);
  return minference_config_from_json(root, source_name);
}

Result<MinferenceConfig> minference_config_from_json(const nlohmann::json& root,
                                                     const std::string& source_name) {
  return guard_json(source_name, [&]() -> Result<MinferenceConfig> {
    if (!root.is_array() || root.empty()) {
      return make_error(StatusCode::CORRUPT_DATA, "{}: expected a non-empty list of layers", source_name);
    }
    MinferenceConfig config;
    for (size_t layer = 0; layer < root.size(); ++layer) {
      const nlohmann::json& heads = root[layer];
      if (!heads.is_object() || heads.empty()) {
        return make_error(StatusCode::CORRUPT_DATA, "{}: layer {} is not a non-empty object of heads",
                          source_name, layer);
      }
      std::vector<MinferenceHead> row(heads.size());
      std::vector<char> seen(heads.size(), 0);
      for (const auto& [key, entry] : heads.items()) {
        size_t head = 0;
        const auto [end, error] = std::from_chars(key.data(), key.data() + key.size(), head);
        if (error != std::errc() || end != key.data() + key.size() || head >= heads.size() || seen[head]) {
          return make_error(StatusCode::CORRUPT_DATA,
                            "{}: layer {}: head id '{}' is not one of 0..{} (or repeats)", source_name, layer,
                            key, heads.size() - 1);
        }
        seen[head] = 1;
        SACC_ASSIGN_OR_RETURN(row[head], parse_head(entry, [&, &key = key] {
                                return fmt::format("{}: layer {} head {}", source_name, layer, key);
                              }));
      }
      if (!config.empty() && row.size() != config.front().size()) {
        return make_error(StatusCode::CORRUPT_DATA, "{}: layer {} has {} heads, layer 0 has {}", source_name,
                          layer, row.size(), config.front().size());
      }
      config.push_back(std::move(row));
    }
    return config;
  });
}

Result<MinferenceConfig> load_minference_config(const std::string& path) {
  std::ifstream file(path);
  if (!file) return make_error(StatusCode::NOT_FOUND, "{}: cannot open the MInference config", path);
  std::stringstream text;
  text << file.rdbuf();
  return parse_minference_config(text.str(), path);
}

std::vector<PatternSpec> layer_patterns(const MinferenceConfig& config, size_t layer) {
  std::vector<PatternSpec> specs;
  for (const MinferenceHead& head : config.at(layer)) specs.push_back(head.spec);
  return specs;
}

}  // namespace sacc
