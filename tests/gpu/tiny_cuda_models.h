// Shared by the CUDA runtime tests: tiny Llama-3 / Qwen2 configs for random weights, a fixed prompt, and the
// relative error the logits comparisons use.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "model/model_config.h"

namespace sacc::test {

// GQA groups of 2 (llama: llama3 RoPE scaling) or 3 (qwen2: q/k/v biases, tied embeddings); 2 KV heads, so
// tensor parallel over two GPUs has one per GPU.
inline ModelConfig tiny_cuda_config(bool qwen, int num_layers) {
  ModelConfig c;
  c.name = qwen ? "tiny-qwen2" : "tiny-llama3";
  c.architecture = qwen ? "qwen2" : "llama";
  c.qkv_bias = qwen;
  c.tied_embeddings = qwen;
  c.hidden = 256;
  c.num_layers = num_layers;
  c.num_heads = qwen ? 6 : 4;
  c.num_kv_heads = 2;
  c.head_dim = 64;
  c.ffn = 512;
  c.vocab = 1000;
  c.rope_theta = qwen ? 1000000.0 : 500000.0;
  if (!qwen) c.rope_scaling = {true, 8.0, 1.0, 4.0, 128};
  c.max_context = 4096;
  return c;
}

// A fixed prompt that covers the vocabulary: [length] ids.
inline std::vector<int32_t> fixed_prompt(int length, int vocab) {
  std::vector<int32_t> t(length);
  for (int i = 0; i < length; ++i) t[i] = (i * 37 + 11) % vocab;
  return t;
}

// ||a - b|| / ||b||
inline double relative_error(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < b.size(); ++i) {
    num += (a[i] - b[i]) * double(a[i] - b[i]);
    den += double(b[i]) * b[i];
  }
  return std::sqrt(num / den);
}

}  // namespace sacc::test
