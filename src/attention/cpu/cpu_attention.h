// fp32 attention on the host for the runtime's CPU backend: dense causal GQA, or sparse over a SparseIndex.
// Not the oracle (src/reference/ is for tests); this one is written for speed: one pass of scores per query
// row over only the keys the row may see, reading the bf16 KV cache in place (bf16 loads, fp32 accumulation:
// no per-tile conversion of the prefix), work split over (KV head, query tile).
#pragma once

#include <cstdint>

#include "attention/sparse_index.h"
#include "core/status.h"

namespace sacc {

// The queries are the LAST Lq positions of Lk keys: prefill has Lq == Lk, a decode step Lq == 1.
// Query row i sits at position Lk - Lq + i and attends keys j <= that position.
struct CpuAttentionArgs {
  int64_t num_queries = 0;      // Lq
  int64_t num_keys = 0;         // Lk >= Lq
  int num_q_heads = 0;          // Hq
  int num_kv_heads = 0;         // Hkv, Hq % Hkv == 0
  int head_dim = 0;             // d
  const float* q = nullptr;     // [Lq, Hq, d] fp32, contiguous
  const uint16_t* k = nullptr;  // [Lk, Hkv, d] bf16, contiguous
  const uint16_t* v = nullptr;  // [Lk, Hkv, d] bf16, contiguous
  float* o = nullptr;           // [Lq, Hq, d] fp32, contiguous
  float softmax_scale = 0.0f;   // 0: 1/sqrt(d)

  Status validate() const;
};

Status cpu_attention_dense(const CpuAttentionArgs& args);

// Sparse prefill (Lq == Lk == index.geometry.seq_len): row i of query head h attends the keys of the key
// blocks and single columns the index lists for (index head of h, i / block_q), causally.
Status cpu_attention_sparse(const CpuAttentionArgs& args, const SparseIndex& index);

}  // namespace sacc
