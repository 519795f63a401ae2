// One entry point for every model a user names with -m: an HF directory, a .gguf file or random:<name>.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "model/llama_weights.h"
#include "model/model_config.h"
#include "model/tokenizer.h"

namespace sacc {

enum class ModelSourceKind { HF_DIRECTORY, GGUF, RANDOM };

struct LoadedModel {
  ModelSourceKind kind = ModelSourceKind::RANDOM;
  LlamaWeights weights;
  std::shared_ptr<const Tokenizer> maybe_tokenizer;  // null for random models
  std::vector<int32_t> stop_tokens;                  // generation ends at any of these
};

struct ModelLoadOptions {
  uint64_t seed = 0;  // random: models
  bool load_tokenizer = true;
  bool show_progress = true;
};

// The config only (cheap: no tensor data is touched), for `sacc info`.
Result<ModelConfig> load_model_config(const std::string& spec);
Result<LoadedModel> load_model(const std::string& spec, const ModelLoadOptions& options);

// Maps GGUF hyperparameters onto the runtime's config.
Result<ModelConfig> model_config_from_gguf(const GgufFile& file);

}  // namespace sacc
