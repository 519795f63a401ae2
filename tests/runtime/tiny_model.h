// A tiny Llama-family model for the runtime tests: random weights written by the test itself as an HF
// directory (config.json, safetensors with a hand-written header, generation_config.json), and an independent
// naive fp64 forward pass over the same numbers.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/status.h"
#include "model/llama_weights.h"

namespace sacc::test {

struct TinySpec {
  int hidden = 48;
  int layers = 2;
  int heads = 4;
  int kv_heads = 2;
  int head_dim = 12;
  int ffn = 80;
  int vocab = 97;
  double rope_theta = 10000.0;
  bool llama3_scaling = true;  // with a small original context so the ramp matters at test lengths
  bool qkv_bias = false;
  bool tied = false;
  int max_context = 512;
  double rms_eps = 1e-5;
  uint64_t seed = 7;
};

// Tensors by HF name, values exactly representable in the dtype they are written with.
struct TinyWeights {
  TinySpec spec;
  std::map<std::string, std::vector<double>> tensors;
  std::map<std::string, std::vector<int64_t>> shapes;
  std::map<std::string, std::string>
      dtypes;  // "BF16" for matrices, "F32" for norms and biases ("I32": tests)
};

TinyWeights make_tiny_weights(const TinySpec& spec);

// Writes the directory; `shards` > 1 splits the tensors over files with an index.
void write_hf_dir(const TinyWeights& weights, const std::string& directory, int shards = 1);
// Writes one safetensors file holding `names` (all of the weights when empty).
void write_safetensors_file(const TinyWeights& weights, const std::string& path,
                            const std::vector<std::string>& names = {});
std::string tiny_config_json(const TinySpec& spec);

// Logits [V] of the last position of `tokens`, in fp64. K and V are rounded to bf16 after RoPE, as the
// runtime's KV cache stores them; everything else is exact fp64.
std::vector<double> reference_logits(const TinyWeights& weights, const std::vector<int32_t>& tokens);

// How far the CPU backend's logits (and the Q/K/V its layers see) may sit from reference_logits, relative to
// their largest magnitude: fp32 compute's few ulps times the depth, plus the rare K/V element whose fp32 and
// fp64 values round to neighbouring bf16 values (2^-8 relative), stay under 2e-3 on these small models; where
// the CPU attention multiplies in bf16 (CpuAttentionIsa::AVX512_BF16: queries and probabilities rounded to
// bf16, 2^-8 relative each) one more 2^-8.
double cpu_logit_tolerance();

// One layer's attention inputs in the same fp64 pass: post-RoPE q [L, Hq * d] and k, v [L, Hkv * d], k and v
// rounded to bf16 as the KV cache stores them.
struct ReferenceQkv {
  std::vector<double> q, k, v;
};
std::vector<ReferenceQkv> reference_qkv(const TinyWeights& weights, const std::vector<int32_t>& tokens);

// The weights of an HF directory written by write_hf_dir, as the runtime loads them.
Result<LlamaWeights> load_hf_dir(const std::string& directory);

// A fresh temporary directory, removed by the caller.
std::string make_temp_dir(const std::string& tag);

}  // namespace sacc::test
