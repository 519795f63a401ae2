// Attention on the host for the runtime's CPU backend: dense causal GQA, or sparse over a SparseIndex.
// Not the oracle (src/reference/ is for tests); this one is written for speed, as a flash-attention loop: a
// task is a tile of query rows with all query heads of one KV group that share their keys, run against key
// blocks of 64 with an online softmax. Each block's bf16 K and V rows are prepared once per tile (not once
// per query row) and reused by every row of the tile; scores, the exponential and the accumulation are
// vectorised over the tile's rows, with inner loops chosen at run time from what the CPU has. fp32
// accumulation throughout; the products are fp32 (portable, AVX2/FMA) or, with AVX-512 BF16, bf16 queries and
// probabilities times the bf16 keys and values, as on the GPU. Work split over (KV head, query tile), the
// tiles with the most keys first.
#pragma once

#include <cstdint>

#include "attention/sparse_index.h"
#include "core/status.h"

namespace sacc {

// The queries are the LAST Lq positions of Lk keys: prefill has Lq == Lk, a decode step Lq == 1.
// Query row i sits at position Lk - Lq + i and attends keys j <= that position.
struct CpuAttentionArgs {
  int64_t num_queries = 0;      // Lq
  int64_t num_keys = 0;         // Lk >= Lq, < 2^31
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

// The inner loops' instruction set, ordered. PORTABLE and AVX2 give the same answer up to fp32 rounding (an
// FMA rounds once where the portable loops round twice); AVX512_BF16 rounds the queries and the
// probabilities to bf16 (even head dims; odd ones run its AVX2 loops). The tests run every set the CPU has.
enum class CpuAttentionIsa { PORTABLE, AVX2, AVX512_BF16 };
// The best set the CPU has (CPUID, checked once) within SACC_CPU_ISA's cap: AVX512_BF16 needs AVX-512
// F/BW/VL/BF16 and the AVX2 set's AVX2 and FMA.
CpuAttentionIsa best_cpu_attention_isa();
const char* cpu_attention_isa_name(CpuAttentionIsa isa);

Status cpu_attention_dense(const CpuAttentionArgs& args);
Status cpu_attention_dense(const CpuAttentionArgs& args, CpuAttentionIsa isa);

// Sparse prefill (Lq == Lk == index.geometry.seq_len): row i of query head h attends the keys of the key
// blocks and single columns the index lists for (index head of h, i / block_q), causally. With every block
// listed (and block_k = 64) the answer is the dense one bit for bit: the same keys in the same blocks in
// the same order.
Status cpu_attention_sparse(const CpuAttentionArgs& args, const SparseIndex& index);
Status cpu_attention_sparse(const CpuAttentionArgs& args, const SparseIndex& index, CpuAttentionIsa isa);

}  // namespace sacc
