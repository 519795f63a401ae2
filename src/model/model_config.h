// The Llama-family configuration (Llama 3.x, SmolLM2, Qwen2): what the loaders read from config.json or GGUF
// metadata and what the runtime sizes its buffers from.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace sacc {

// Llama 3.x "llama3" RoPE scaling: low frequencies are divided by `factor`, high ones kept, a smooth ramp
// between.
struct RopeScaling {
  bool enabled = false;
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position = 8192;
};

struct ModelConfig {
  std::string name;                    // "llama-3.1-8b", or the directory / file it came from
  std::string architecture = "llama";  // "llama" or "qwen2"
  int64_t hidden = 0;                  // D
  int num_layers = 0;                  // N
  int num_heads = 0;                   // Hq
  int num_kv_heads = 0;                // Hkv
  int head_dim = 0;                    // d (hidden / Hq unless the config says otherwise)
  int64_t ffn = 0;                     // F (intermediate size)
  int64_t vocab = 0;                   // V
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  // [d/2] per-frequency divisors (inv_freq[i] = theta^(-2i/d) / divisor[i]); empty: none. llama.cpp's GGUFs
  // of Llama 3.1 carry the llama3 scaling this way (tensor rope_freqs.weight), precomputed by the converter,
  // so when set they replace the rope_scaling formula rather than stack on it.
  std::vector<double> rope_freq_divisors;
  double rms_eps = 1e-5;
  bool tied_embeddings = false;
  bool qkv_bias = false;  // Qwen2
  int64_t max_context = 0;
  int32_t bos_token = -1;  // -1: none
  std::vector<int32_t> eos_tokens;

  int64_t q_dim() const { return static_cast<int64_t>(num_heads) * head_dim; }
  int64_t kv_dim() const { return static_cast<int64_t>(num_kv_heads) * head_dim; }
  // Parameters (elements), counting a tied head once.
  int64_t parameter_count() const;
  Status validate() const;
  std::string summary() const;  // multi-line, for `sacc info`
};

// Largest sizes validate() accepts: far above any real model (Llama-3.1-405B: hidden 16384, ffn 53248, 126
// layers, 128 heads; vocabularies up to 256K tokens) and low enough that parameter_count() fits int64_t and
// the tables sized from a config (the RoPE table: head_dim / 2) stay small, so a corrupt file is an error
// rather than an overflow or a 6 GB allocation (found by fuzz_model_config).
inline constexpr int64_t kMaxModelWidth = int64_t{1} << 24;  // hidden, ffn, vocab
inline constexpr int64_t kMaxModelCount = int64_t{1} << 12;  // layers, heads, KV heads, head_dim

// A count read from a file (`key` in `origin`) for one of ModelConfig's int fields: CORRUPT_DATA when it is
// not in [1, kMaxModelCount], so that it is never truncated to an int.
Result<int> model_count(int64_t value, std::string_view key, const std::string& origin);

// From a parsed HF config.json (`origin` names the file in error messages).
Result<ModelConfig> model_config_from_hf_json(const nlohmann::json& json, const std::string& origin);
// From the text of a config.json, and from the file.
Result<ModelConfig> model_config_from_hf_text(std::string_view text, const std::string& origin);
Result<ModelConfig> model_config_from_hf_file(const std::string& path);

// Built-in configs for `random:<name>`: llama-3.1-8b, llama-3.2-1b, smollm2-135m, qwen2.5-0.5b.
Result<ModelConfig> builtin_model_config(const std::string& name);
std::vector<std::string> builtin_model_names();

// The RoPE inverse frequency of each rotary pair i in [0, d/2): divided by rope_freq_divisors when present,
// else with llama3 scaling applied when enabled. Every backend takes its RoPE table from here.
std::vector<double> rope_inverse_frequencies(const ModelConfig& config);

}  // namespace sacc
