#include "runtime/pattern_config.h"

#include <nlohmann/json.hpp>

#include <fstream>

namespace sacc {
namespace {

using nlohmann::json;

Result<PatternSpec> minference_head(const json& entry, const std::string& where) {
  if (!entry.is_array() || entry.size() < 3 || !entry[0].is_string() || !entry[1].is_number() ||
      !entry[2].is_number())
    return make_error(StatusCode::CORRUPT_DATA, "{}: expected [type, v, s, score]", where);
  const std::string type = entry[0].get<std::string>();
  const int64_t v = entry[1].get<int64_t>(), s = entry[2].get<int64_t>();
  PatternSpec spec;
  if (type == "vertical_and_slash") {
    spec.kind = PatternKind::INTERVAL_SLASH;
    spec.vertical = v;
    spec.slash = s;
  } else if (type == "a_shape") {
    spec.kind = PatternKind::TRIANGULAR;
    spec.sink = v;
    spec.window = s;
  } else if (type == "block_sparse") {
    spec.kind = PatternKind::BLOCK_CLUSTER;
    spec.blocks = v;
  } else {
    return make_error(StatusCode::CORRUPT_DATA, "{}: unknown MInference pattern type '{}'", where, type);
  }
  return spec;
}

Result<PatternSpec> our_head(const json& entry, const std::string& where) {
  const json* text = &entry;
  if (entry.is_object()) {
    auto it = entry.find("pattern");
    if (it == entry.end()) return make_error(StatusCode::CORRUPT_DATA, "{}: no 'pattern' key", where);
    text = &*it;
  }
  if (!text->is_string()) return make_error(StatusCode::CORRUPT_DATA, "{}: pattern is not a string", where);
  Result<PatternSpec> spec = parse_pattern(text->get<std::string>());
  if (!spec) return spec.status().with_context(where);
  return spec;
}

}  // namespace

Result<std::vector<LayerPatterns>> load_pattern_config(const std::string& path, const ModelConfig& config) {
  std::ifstream in(path);
  if (!in) return make_error(StatusCode::NOT_FOUND, "--pattern-config {}: cannot open", path);
  const json doc = json::parse(in, nullptr, false);
  if (doc.is_discarded()) return make_error(StatusCode::CORRUPT_DATA, "{}: not valid JSON", path);
  const bool minference = doc.is_array();
  const json* layers = &doc;
  if (!minference) {
    auto it = doc.find("layers");
    if (!doc.is_object() || it == doc.end() || !it->is_array())
      return make_error(StatusCode::CORRUPT_DATA,
                        "{}: expected a 'layers' list or MInference's list of layers", path);
    layers = &*it;
  }
  if (static_cast<int>(layers->size()) != config.num_layers)
    return make_error(StatusCode::INVALID_ARGUMENT, "{}: {} layers, but the model has {}", path,
                      layers->size(), config.num_layers);
  std::vector<LayerPatterns> out(config.num_layers);
  for (int l = 0; l < config.num_layers; ++l) {
    const json& layer = (*layers)[l];
    LayerPatterns& patterns = out[l];
    if (minference) {
      if (!layer.is_object())
        return make_error(StatusCode::CORRUPT_DATA, "{}: layer {} is not an object", path, l);
      patterns.heads.resize(layer.size());
      for (auto it = layer.begin(); it != layer.end(); ++it) {
        const std::string where = fmt::format("{}: layer {} head '{}'", path, l, it.key());
        char* end = nullptr;
        const long head = std::strtol(it.key().c_str(), &end, 10);
        if (*end != '\0' || head < 0 || head >= static_cast<long>(layer.size()))
          return make_error(StatusCode::CORRUPT_DATA, "{}: head key is not an index below {}", where,
                            layer.size());
        SACC_ASSIGN_OR_RETURN(patterns.heads[head], minference_head(it.value(), where));
      }
    } else {
      const json* heads = &layer;
      if (layer.is_object()) {
        auto it = layer.find("heads");
        if (it == layer.end())
          return make_error(StatusCode::CORRUPT_DATA, "{}: layer {} has no 'heads'", path, l);
        heads = &*it;
      }
      if (!heads->is_array())
        return make_error(StatusCode::CORRUPT_DATA, "{}: layer {} heads is not a list", path, l);
      for (size_t h = 0; h < heads->size(); ++h) {
        SACC_ASSIGN_OR_RETURN(PatternSpec spec,
                              our_head((*heads)[h], fmt::format("{}: layer {} head {}", path, l, h)));
        patterns.heads.push_back(spec);
      }
    }
    const int n = static_cast<int>(patterns.heads.size());
    if (n == config.num_kv_heads && n != config.num_heads) {
      patterns.shared_per_kv_group = true;
    } else if (n != config.num_heads) {
      return make_error(StatusCode::INVALID_ARGUMENT, "{}: layer {} has {} heads, the model has {} (kv {})",
                        path, l, n, config.num_heads, config.num_kv_heads);
    }
  }
  return out;
}

}  // namespace sacc
