// Plain parameters of one attention call (one layer, all heads). No model types, no framework headers.
// Pointers are device pointers for CUDA kernels and host pointers for the CPU path.
#pragma once

#include <cstdint>
#include <vector>

#include "attention/pattern.h"
#include "attention/sparse_index.h"

namespace sacc {

struct AttentionShape {
  int64_t seq_len = 0;   // L: keys [0, L), causal; the queries are rows [q_begin, L) (AttentionParams)
  int num_q_heads = 0;   // Hq
  int num_kv_heads = 0;  // Hkv; Hq % Hkv == 0 (GQA group g = Hq / Hkv)
  int head_dim = 0;      // d (64 or 128)

  int group_size() const { return num_kv_heads ? num_q_heads / num_kv_heads : 0; }
  Status validate() const;
};

// bf16 tensors, row-major; strides in elements (token stride first, then head stride; the last dim is
// contiguous). n = L - q_begin query rows.
struct AttentionParams {
  AttentionShape shape;
  const void* q = nullptr;  // [n, Hq, d]  bf16: row i is query row q_begin + i
  const void* k = nullptr;  // [L, Hkv, d] bf16
  const void* v = nullptr;  // [L, Hkv, d] bf16
  // [n, Hq, d] bf16. The flash kernels (attention_run_cuda) allow o == q with equal strides: a query tile is
  // read whole before the same rows of O are written, and no other tile reads it. The baselines do not.
  void* o = nullptr;
  float* maybe_lse = nullptr;  // [Hq, n] natural-log log-sum-exp of the scaled scores; may be null
  int64_t q_token_stride = 0, q_head_stride = 0;  // 0: contiguous defaults (Hq*d, d)
  int64_t kv_token_stride = 0, kv_head_stride = 0;
  int64_t o_token_stride = 0, o_head_stride = 0;
  // First query row: 0 for a prefill; > 0 for the rest of a prompt after a restored prefix, whose keys
  // [0, q_begin) are already cached. Only the dense flash kernels take q_begin > 0 (at a multiple of their
  // query tile, kTileBlockQ); the baselines and the planners take 0.
  int64_t q_begin = 0;
  float softmax_scale = 0.0f;  // 0: 1/sqrt(d)

  // Fill zero strides / scale with the contiguous defaults.
  AttentionParams with_defaults() const;
  // OK for a whole prompt (q_begin == 0); UNSUPPORTED naming `who` otherwise: for the paths that only run a
  // prefill from row 0 (the baselines, the planners, a sparse index).
  Status require_whole_prompt(const char* who) const;
};

// The patterns of one layer: one spec per index head (query head, or KV group when shared).
struct LayerPatterns {
  std::vector<PatternSpec> heads;  // [num index heads]
  bool shared_per_kv_group = false;
  EstimationConfig estimation;
};

}  // namespace sacc
