// Per-head pattern configs for sparse prefill, in either format the runtime accepts:
//  * ours: {"layers": [{"heads": ["interval-slash:1000,6096", {"pattern": "triangular:64,4096", ...}, ...]},
//  ...]}
//    (a layer may also be a plain list of head entries);
//  * MInference's: a list over layers of {"<head>": ["vertical_and_slash" | "a_shape" | "block_sparse", v, s,
//    score]}.
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
