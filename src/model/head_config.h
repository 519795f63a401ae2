// Per-(layer, head) pattern configuration files: ours (written by `sacc search`) and MInference's.
//
// Ours, versioned:
//   {"format": "sparseaccelerate.head-config", "version": 1, "model": "...", "target": "...",
//    "block_q": 128, "block_k": 64, "last_queries": 64, "sink_keys": 30, "local_diagonals": 100,
//    (block_q / block_k: the kernel tile, attention/kernel_tile.h; a config built for another is rejected)
//    "layers": [[{"pattern": "interval-slash:1000,6096", "error": 0.012, "recall": 0.97, "density": 0.08},
//    ...],
//               ...]}                                                  // [num_layers][num_q_heads]
// MInference's (model/minference_config.h): a list over layers of {"<head>": [type, v, s, score]}.
#pragma once

#include <string>
#include <vector>

#include "attention/attention_params.h"
#include "attention/kernel_tile.h"

namespace sacc {

struct HeadChoiceRecord {
  PatternSpec pattern;
  double error = -1.0;    // relative L2 error of O against dense on the calibration input (-1: unknown)
  double recall = -1.0;   // attention recall on the calibration input (-1: unknown)
  double density = -1.0;  // visited tiles / causal tiles (-1: unknown)
};

struct HeadConfig {
  std::string model;
  std::string target;
  int block_q = kTileBlockQ;
  int block_k = kTileBlockK;
  EstimationConfig estimation;  // "last_queries", "sink_keys", "local_diagonals" (each optional)
  std::vector<std::vector<HeadChoiceRecord>> layers;  // [num_layers][num_q_heads]

  // The patterns of layer `layer` as the attention library takes them (per query head).
  LayerPatterns layer_patterns(int layer) const;
  // Checks the config fits a model (layer and head counts); errors say which count differs.
  Status check_fits(int num_layers, int num_q_heads) const;
};

// Reads either format (detected from the JSON's top level).
Result<HeadConfig> load_head_config(const std::string& path);
Result<HeadConfig> parse_head_config(const std::string& json_text, const std::string& origin);
Status save_head_config(const HeadConfig& config, const std::string& path);

}  // namespace sacc
