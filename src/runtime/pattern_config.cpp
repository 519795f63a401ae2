#include "runtime/pattern_config.h"

#include "model/head_config.h"

namespace sacc {

Result<std::vector<LayerPatterns>> load_pattern_config(const std::string& path, const ModelConfig& config) {
  Result<HeadConfig> file = load_head_config(path);
  if (!file) return file.status().with_context("--pattern-config");
  if (static_cast<int>(file->layers.size()) != config.num_layers) {
    return make_error(StatusCode::INVALID_ARGUMENT, "{}: {} layers, but the model has {}", path,
                      file->layers.size(), config.num_layers);
  }
  std::vector<LayerPatterns> out(config.num_layers);
  for (int layer = 0; layer < config.num_layers; ++layer) {
    out[layer] = file->layer_patterns(layer);
    const int n = static_cast<int>(out[layer].heads.size());
    // One entry per KV head means one index shared by each KV group.
    if (n == config.num_kv_heads && n != config.num_heads) {
      out[layer].shared_per_kv_group = true;
    } else if (n != config.num_heads) {
      return make_error(StatusCode::INVALID_ARGUMENT, "{}: layer {} has {} heads, the model has {} (kv {})",
                        path, layer, n, config.num_heads, config.num_kv_heads);
    }
  }
  return out;
}

}  // namespace sacc
