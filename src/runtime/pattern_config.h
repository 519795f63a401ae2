// Per-head pattern configs for sparse prefill: our versioned head-config files (written by `sacc search`) or
// MInference's per-head JSON, both read by model/head_config.h, mapped onto the model's layers. A layer
// listing one entry per KV head shares one index per KV group.
#pragma once

#include <string>
#include <vector>

#include "attention/attention_params.h"
#include "model/model_config.h"

namespace sacc {

// [N] layers of Hq heads; CORRUPT_DATA naming the file, layer and head when an entry is malformed, and
// INVALID_ARGUMENT when the layer or head count does not match the model.
Result<std::vector<LayerPatterns>> load_pattern_config(const std::string& path, const ModelConfig& config);

}  // namespace sacc
