// A Hugging Face model directory: config.json, model.safetensors or shards listed in
// model.safetensors.index.json, generation_config.json (stop tokens), tokenizer.json / tokenizer_config.json.
// The safetensors files are memory-mapped; weights are zero-copy views into the mappings.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/safetensors.h"
#include "model/llama_weights.h"
#include "model/model_config.h"

namespace sacc {

class HfCheckpoint {
 public:
  // Reads and validates the directory; NOT_FOUND / CORRUPT_DATA naming the file at fault.
  static Result<HfCheckpoint> open(const std::string& directory, bool show_progress = true);

  const std::string& directory() const { return directory_; }
  // config.json, with eos/bos from generation_config.json when it has them.
  const ModelConfig& config() const { return config_; }
  bool has_tokenizer() const;
  uint64_t tensor_bytes() const { return tensor_bytes_; }

  // Views of every weight, checked against the config; the result keeps the mappings alive.
  Result<LlamaWeights> weights() const;

 private:
  std::string directory_;
  ModelConfig config_;
  std::vector<std::shared_ptr<const SafetensorsFile>> files_;
  std::map<std::string, size_t> tensor_file_;  // tensor name -> index into files_
  uint64_t tensor_bytes_ = 0;
};

}  // namespace sacc
