// Hyperparameters of a Llama-family GGUF (architectures "llama" and "qwen2"), read from the `<arch>.*` keys.
// The runtime maps this onto its model config; this file only knows what the GGUF says.
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"
#include "model/gguf.h"

namespace sacc {

struct GgufHyperparams {
  std::string architecture;  // general.architecture: "llama" or "qwen2"
  std::string name;          // general.name, "" when absent
  int64_t context_length = 0;
  int64_t embedding_length = 0;     // hidden size
  int64_t block_count = 0;          // layers
  int64_t feed_forward_length = 0;  // MLP intermediate size
  int64_t head_count = 0;
  int64_t head_count_kv = 0;
  int64_t head_dim = 0;    // <arch>.attention.key_length, else embedding_length / head_count
  int64_t vocab_size = 0;  // <arch>.vocab_size, else the length of tokenizer.ggml.tokens
  double rope_freq_base = 10000.0;
  double rms_norm_eps = 1e-5;
  // <arch>.rope.scaling.*: type "none", "linear", "yarn" or "llama3" (llama3 adds the three fields below).
  std::string rope_scaling_type = "none";
  double rope_scaling_factor = 1.0;
  int64_t rope_original_context_length = 0;
  double rope_low_freq_factor = 0.0;
  double rope_high_freq_factor = 0.0;
  bool tied_embeddings = false;  // no output.weight tensor: the LM head reuses token_embd.weight
  bool qkv_bias = false;         // blk.0.attn_q.bias present (Qwen2)
  // llama.cpp writes Llama-3.1's `llama3` RoPE scaling as per-frequency divisors in a tensor
  // rope_freqs.weight [head_dim / 2] instead of rope.scaling.* keys; true when the file has it.
  // model_config_from_gguf reads it into ModelConfig::rope_freq_divisors.
  bool rope_freqs_tensor = false;
  // llama.cpp's converter reorders the rows of attn_q/attn_k of "llama" models so that RoPE rotates adjacent
  // pairs (x[2i], x[2i+1]); HF checkpoints (and "qwen2" GGUFs) rotate halves (x[i], x[i + d/2]). When true,
  // apply unpermute_rope_rows() to attn_q.weight (head_count) and attn_k.weight (head_count_kv) to get HF
  // layout.
  bool rope_rows_interleaved = false;
};

// UNSUPPORTED for other architectures; CORRUPT_DATA naming the key when a required key is missing or
// inconsistent.
Result<GgufHyperparams> read_gguf_hyperparams(const GgufFile& file);

// Reorders the rows of a projection weight from interleaved RoPE pairs to HF's half-split order, in place.
// weight: [n_heads * head_dim, in] (F32 or BF16), or a bias [n_heads * head_dim]. Within each head, row 2i +
// j moves to row j * head_dim / 2 + i.
Status unpermute_rope_rows(Tensor& weight, int64_t n_heads);
// The same over raw rows of any format (a block-quantised row moves as a whole): data [rows, row_bytes].
Status unpermute_rope_rows(uint8_t* data, int64_t rows, size_t row_bytes, int64_t n_heads);

}  // namespace sacc
