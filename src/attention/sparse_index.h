// The kernel index format (DESIGN.md §4): the one structure the estimators write and the kernels read.
//
// Query rows are split into query blocks of `block_q` rows, key columns into key blocks of `block_k` keys.
// For every (index head h, query block qb), with slot s = h * num_q_blocks + qb:
//   key blocks  : block_ids[block_offsets[s] .. block_offsets[s+1])    ascending, each kb <= last causal
//   block key columns : column_ids[column_offsets[s] .. column_offsets[s+1]) ascending single keys not inside
//   any
//                 listed key block of that slot
// A query i in block qb attends key j iff (j's block is listed or j is a listed column) and j <= i (causal).
// Index heads are query heads (num_heads = Hq), or KV groups when shared (num_heads = Hkv; query head q uses
// index head q / (Hq / Hkv)).
// Dense causal = every key block 0..last causal block of the query block, no columns.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "attention/kernel_tile.h"
#include "core/status.h"

namespace sacc {

struct IndexGeometry {
  int64_t seq_len = 0;        // L
  int num_heads = 0;          // index heads: Hq, or Hkv when shared per KV group
  int block_q = kTileBlockQ;  // Bq
  int block_k = kTileBlockK;  // Bk
  bool shared_per_kv_group = false;

  int64_t num_q_blocks() const { return (seq_len + block_q - 1) / block_q; }
  int64_t num_k_blocks() const { return (seq_len + block_k - 1) / block_k; }
  int64_t num_slots() const { return static_cast<int64_t>(num_heads) * num_q_blocks(); }
  // Last key block a query block may touch under the causal mask.
  int64_t last_causal_k_block(int64_t q_block) const {
    const int64_t last_row = std::min(seq_len, (q_block + 1) * block_q) - 1;
    return last_row / block_k;
  }
  Status validate() const;
};

// OK when (block_q, block_k) is the kernel tile; otherwise an error naming `origin` and both tiles.
Status check_kernel_tile(int block_q, int block_k, const std::string& origin);

// Host-side index (the oracle's, and what GPU indices are copied back into for comparison).
struct SparseIndex {
  IndexGeometry geometry;
  std::vector<int32_t> block_offsets;   // [num_slots + 1]
  std::vector<int32_t> block_ids;       // [block_offsets.back()]
  std::vector<int32_t> column_offsets;  // [num_slots + 1]
  std::vector<int32_t> column_ids;      // [column_offsets.back()]

  // Checks the invariants above (sorted, in range, causal, no column inside a listed block).
  Status validate() const;
  // The causal-dense index of a geometry.
  static SparseIndex dense(const IndexGeometry& geometry);
};

// Device-side view of the same arrays (pointers into a plan workspace).
struct SparseIndexView {
  IndexGeometry geometry;
  const int32_t* block_offsets = nullptr;   // [num_slots + 1]
  const int32_t* block_ids = nullptr;       // [total blocks]
  const int32_t* column_offsets = nullptr;  // [num_slots + 1]
  const int32_t* column_ids = nullptr;      // [total columns]
};

}  // namespace sacc
