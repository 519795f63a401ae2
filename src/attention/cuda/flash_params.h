// Device-side parameters of one flash-attention launch (one layer, all heads). Plain pointers and sizes.
#pragma once

#include <cstdint>

namespace sacc::flash {

// Rows are absolute positions [0, L) in the kernels (the causal mask compares them with key positions); Q, O
// and the LSE hold only the n = L - q_begin query rows from q_begin on.
struct FlashParams {
  const uint16_t* q = nullptr;                    // [n, Hq, d]  bf16 bits, row i = query row q_begin + i
  const uint16_t* k = nullptr;                    // [L, Hkv, d] bf16 bits
  const uint16_t* v = nullptr;                    // [L, Hkv, d] bf16 bits
  uint16_t* o = nullptr;                          // [n, Hq, d]  bf16 bits, row i = query row q_begin + i
  float* maybe_lse = nullptr;                     // [Hq, n] natural log
  int64_t q_token_stride = 0, q_head_stride = 0;  // elements
  int64_t kv_token_stride = 0, kv_head_stride = 0;
  int64_t o_token_stride = 0, o_head_stride = 0;
  int seq_len = 0;          // L
  int num_q_heads = 0;      // Hq
  int group_size = 1;       // Hq / Hkv
  int num_q_blocks = 0;     // ceil(L / kBlockM)
  float scale_log2 = 0.0f;  // softmax scale * log2(e)
  // First query row, a multiple of kBlockM (dense only): the launch covers query blocks q_begin / kBlockM ..
  // num_q_blocks - 1, the last ones, which DenseCausalVisit hands out first.
  int q_begin = 0;
  // Key splits of a suffix launch (dense, q_begin > 0; flash_suffix_split.h): work item w takes split
  // w % key_splits of its query block's keys and writes its normalised O and LSE to split w % key_splits of
  // `o` (o_split_stride elements apart) and `maybe_lse` ([key_splits, Hq, n]); a combine kernel merges them.
  int key_splits = 1;
  int64_t o_split_stride = 0;

  // Sparse index (null for dense). Slot s = index_head * num_q_blocks + q_block.
  const int32_t* block_offsets = nullptr;   // [num_slots + 1]
  const int32_t* block_ids = nullptr;       // [total blocks]
  const int32_t* column_offsets = nullptr;  // [num_slots + 1]
  const int32_t* column_ids = nullptr;      // [total columns]
  int heads_per_index_head = 1;             // 1 (per query head) or group_size (shared per KV group)
  // Work item per CTA, longest first (sparse). Item w: slot = w / heads_per_index_head,
  // query head = (slot / num_q_blocks) * heads_per_index_head + w % heads_per_index_head.
  const int32_t* work_order = nullptr;  // [Hq * num_q_blocks]
};

}  // namespace sacc::flash
