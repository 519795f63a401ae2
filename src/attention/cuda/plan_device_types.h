// Plain structs every plan kernel receives by value: the per-head table (kernel parameters are captured into
// CUDA graphs, so no host-to-device copy is needed), the sizes and the workspace offsets. No project headers:
// nvcc translation units cannot include core/status.h (fmt's compile-time format strings), so .cu files see
// only this.
#pragma once

#include <cstddef>
#include <cstdint>

namespace sacc::plan_detail {

// PatternKind values (attention/pattern.h; plan_layout.cpp checks they agree).
constexpr int32_t kKindDense = 0;
constexpr int32_t kKindTriangular = 1;
constexpr int32_t kKindIntervalSlash = 2;
constexpr int32_t kKindBlockCluster = 3;

// Index heads one plan call supports (the per-head table travels as a kernel parameter: 128 x 40 B, inside
// the 32 KiB parameter block of CUDA 12.1+ on Volta and later).
constexpr int kMaxPlanHeads = 128;
// Interval-Slash estimation tiles: estimating rows are processed 64 at a time against 64-key tiles.
constexpr int kEstRowTile = 64;
constexpr int kEstKeyTile = 64;
// (query head, row tile) pairs one estimation pass keeps running softmax state for in registers.
constexpr int kEstMaxUnits = 4;
// Row pitch (floats) of the fp32 probability tile: 72 = 8 mod 32, so the 8-byte stores of an mma fragment
// (rows g, columns 2q) land on distinct banks in each half-warp; line reductions read consecutive words.
constexpr int kEstProbPitch = kEstKeyTile + 8;

struct HeadPlan {
  int32_t kind = 0;     // PatternKind
  int32_t a = 0;        // TRIANGULAR: sink S; INTERVAL_SLASH: vertical budget kv; BLOCK_CLUSTER: blocks kb
  int32_t b = 0;        // TRIANGULAR: window W; INTERVAL_SLASH: slash budget ks
  float gamma = 0.0f;   // 0: fixed budget; (0, 1]: adaptive mass target
  int32_t ordinal = 0;  // rank among the heads of the same estimating kind: row of its scratch arrays
  // INTERVAL_SLASH with a Block-Cluster alternative, chosen at runtime or joined (attention/pattern.h): its
  // kb (0: none), adaptive target and rank among the Block-Cluster estimations.
  int32_t alt_blocks = 0;
  float alt_gamma = 0.0f;
  int32_t alt_ordinal = 0;
  int32_t alt_union = 0;  // 1: the index lists both patterns' blocks; 0: the runtime choice picks one
  int32_t tail = 0;       // dense tail (attention/dense_tail.h): the last `tail` rows' query blocks are dense
};

struct PlanHeads {
  HeadPlan head[kMaxPlanHeads];  // [num index heads]
};

// Sizes every kernel needs (all fit in 32 bits: L < 2^31 is checked).
struct PlanDims {
  int seq_len = 0;             // L
  int num_heads = 0;           // index heads (Hq, or Hkv when shared)
  int num_q_heads = 0;         // Hq
  int num_kv_heads = 0;        // Hkv
  int group_size = 1;          // Hq / Hkv
  int shared = 0;              // 1: index head = KV group, scores summed over its query heads
  int head_dim = 0;            // d
  int block_q = 0;             // Bq
  int block_k = 0;             // Bk
  int num_q_blocks = 0;        // ceil(L / Bq)
  int num_k_blocks = 0;        // ceil(L / Bk)
  int est_rows = 0;            // m_eff = min(m, L): estimating queries [L - m_eff, L)
  int est_row_tiles = 0;       // ceil(m_eff / 64)
  int sink_keys = 0;           // forced verticals, clamped to L
  int local_diagonals = 0;     // forced slashes, clamped to L
  float scale = 0.0f;          // softmax scale
  int num_chunks = 0;          // Interval-Slash: key chunks (one CTA per chunk and KV head)
  int chunk_keys = 0;          // keys per chunk (multiple of kEstKeyTile)
  int est_heads_per_pass = 0;  // query heads whose Q rows fit in shared memory at once
  int bc_capacity = 0;         // Block-Cluster: staging entries per slot
  // Interval-Slash slash cover table (when Bk divides Bq): whether a full query block and a key block share a
  // chosen slash depends only on their block distance delta = q_block * Bq / Bk - k_block.
  int cover_ratio = 0;   // Bq / Bk, or 0 when Bk does not divide Bq (no table)
  int cover_stride = 0;  // table bytes per head: deltas -(ratio - 1) .. (num_q_blocks - 1) * ratio, padded
};

struct PlanLayout {
  PlanDims dims;
  PlanHeads heads;
  int num_is_heads = 0;   // index heads with INTERVAL_SLASH
  int num_bc_heads = 0;   // index heads estimating BLOCK_CLUSTER (as their pattern or as the alternative)
  int num_alt_heads = 0;  // INTERVAL_SLASH heads choosing a Block-Cluster alternative at runtime
  int64_t num_slots = 0;
  int64_t block_capacity = 0;   // upper bound of listed key blocks over all slots
  int64_t column_capacity = 0;  // upper bound of single columns over all slots
  // Byte offsets into the workspace (each 256-byte aligned).
  size_t block_offsets = 0;     // int32 [num_slots + 1]
  size_t column_offsets = 0;    // int32 [num_slots + 1]
  size_t block_counts = 0;      // int32 [num_slots]
  size_t column_counts = 0;     // int32 [num_slots]
  size_t block_ids = 0;         // int32 [block_capacity]
  size_t column_ids = 0;        // int32 [column_capacity]
  size_t is_vertical = 0;       // f32 [num_is_heads, L] vertical scores
  size_t is_slash = 0;          // f32 [num_is_heads, L] slash scores
  size_t is_columns = 0;        // int32 [num_is_heads, L] chosen verticals, ascending
  size_t is_column_count = 0;   // int32 [num_is_heads]
  size_t is_slash_prefix = 0;   // int32 [num_is_heads, L + 1] chosen slashes with offset < o
  size_t is_cover = 0;          // uint8 [num_is_heads, cover_stride] slash cover by block distance
  size_t is_partial_stats = 0;  // float2 [Hq, m_eff, num_chunks] per-chunk row max / sum of exp
  size_t is_row_stats = 0;      // float2 [Hq, m_eff] row max / reciprocal sum
  size_t bc_q_pooled = 0;       // f32 [Hq, num_q_blocks, d]
  size_t bc_k_pooled = 0;       // f32 [Hkv, num_k_blocks, d]
  size_t bc_stage_ids = 0;      // int32 [num_bc_heads, num_q_blocks, bc_capacity]
  size_t bc_stage_count = 0;    // int32 [num_bc_heads, num_q_blocks]
  size_t head_choice = 0;       // int32 [num index heads] kind each head with an alternative took
  size_t total_bytes = 0;
};

// Q and K as the estimators read them (bf16, strides in elements; the last dimension is contiguous).
struct PlanInputs {
  const void* q = nullptr;  // [L, Hq, d] bf16
  const void* k = nullptr;  // [L, Hkv, d] bf16
  int64_t q_token_stride = 0, q_head_stride = 0;
  int64_t kv_token_stride = 0, kv_head_stride = 0;
};

// Shared memory of one Interval-Slash estimation CTA holding `heads` query heads' estimating rows.
size_t estimation_smem_bytes(int heads, int row_tiles, int head_dim);

}  // namespace sacc::plan_detail
