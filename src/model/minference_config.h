// Reader of MInference's per-head pattern configs (DESIGN.md §5; ../shared/data/minference/): a JSON list
// over layers, each an object {"<head>": [type, v, s, score]} with head ids "0".."H-1". Types map to our
// patterns:
//   "vertical_and_slash" -> interval-slash:v,s
//   "stream_llm"         -> triangular:v,s        (v initial sink keys, s local window)
//   "block_sparse"       -> block-cluster:v       (v key blocks per query block)
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <string>
#include <vector>

#include "attention/pattern.h"
#include "core/status.h"

namespace sacc {

struct MinferenceHead {
  PatternSpec spec;
  double score = 0.0;  // MInference's search score for the chosen pattern (informational)
};

// [layer][head], every layer with the same number of heads.
using MinferenceConfig = std::vector<std::vector<MinferenceHead>>;

Result<MinferenceConfig> parse_minference_config(const std::string& json_text,
                                                 const std::string& source_name);
// The same from parsed JSON (head_config.cpp detects the format from it).
Result<MinferenceConfig> minference_config_from_json(const nlohmann::json& root,
                                                     const std::string& source_name);
Result<MinferenceConfig> load_minference_config(const std::string& path);

// The specs of one layer, for LayerPatterns::heads.
std::vector<PatternSpec> layer_patterns(const MinferenceConfig& config, size_t layer);

}  // namespace sacc
