// Tile-visit policies: the ONE place where dense and sparse attention differ (STYLE.md "which key blocks a
// query tile visits"). A policy maps the CTA's work item to (query head, query block) and only lists, in
// order, the kBlockN-key blocks and then the single key columns that query block visits:
//   num_key_blocks(), key_block(i), num_key_columns(), key_columns(), consumer_head(c), consumer_row0(c).
// Both kernel bodies read only this interface: the mma.sync body (flash_kernel.cuh) as kBlockN-key tiles
// through num_key_tiles() / key_tile() below, the Hopper body (flash_kernel_sm90.cuh) as 64-key halves of
// 128-key tiles. Masking (key > row, which also drops keys past L and unused gathered slots) and the softmax
// are the same in both.
#pragma once

#include <cstdint>

#include "attention/cuda/flash_config.h"
#include "attention/cuda/flash_params.h"

namespace sacc::flash {

// Dense causal: key blocks 0 .. last causal block, in ascending order. Work items run the most expensive
// query blocks (the last ones) first, so a launch of fewer items covers exactly the last query blocks (the
// suffix from FlashParams::q_begin); heads of one KV group are adjacent so their K/V tiles meet in L2.
// With key splits (a suffix launch), split s of S takes key blocks [s P / S, (s + 1) P / S) of the P blocks
// before q_begin, which every row of the launch sees whole, and the last split also the rest up to the
// diagonal: no split is empty for any row.
struct DenseCausalVisit {
  int q_head = 0;
  int q_block = 0;
  int first_block = 0;
  int num_blocks = 0;
  int split = 0;

  __device__ DenseCausalVisit(const FlashParams& p, int item) {
    split = item % p.key_splits;
    item /= p.key_splits;
    q_block = p.num_q_blocks - 1 - item / p.num_q_heads;
    q_head = item % p.num_q_heads;
    const int last_row = min(p.seq_len, (q_block + 1) * kBlockM) - 1;
    int end_block = last_row / kBlockN + 1;
    if (p.key_splits > 1) {
      const int shared_blocks = p.q_begin / kBlockN;
      first_block = split * shared_blocks / p.key_splits;
      if (split + 1 < p.key_splits) end_block = (split + 1) * shared_blocks / p.key_splits;
    }
    num_blocks = end_block - first_block;
  }
  __device__ int num_key_blocks() const { return num_blocks; }
  __device__ int key_block(int i) const { return first_block + i; }
  __device__ int num_key_columns() const { return 0; }
  __device__ const int32_t* key_columns() const { return nullptr; }
  // Hopper body: the query head and first row of consumer warpgroup c (64 rows each).
  __device__ int consumer_head(int c) const { return q_head; }
  __device__ int consumer_row0(int c) const { return q_block * kBlockM + 64 * c; }
};

// Sparse: the slot's CSR key blocks, then its CSR single columns gathered kBlockN at a time.
struct SparseIndexVisit {
  int q_head = 0;
  int q_block = 0;
  const int32_t* blocks = nullptr;   // [num_blocks] ascending key block ids
  const int32_t* columns = nullptr;  // [num_columns] ascending key positions
  int num_blocks = 0;
  int num_columns = 0;
  static constexpr int split = 0;

  __device__ SparseIndexVisit(const FlashParams& p, int cta) {
    const int item = p.work_order[cta];
    const int slot = item / p.heads_per_index_head;
    const int index_head = slot / p.num_q_blocks;
    q_block = slot - index_head * p.num_q_blocks;
    q_head = index_head * p.heads_per_index_head + item % p.heads_per_index_head;
    const int b0 = __ldg(p.block_offsets + slot);
    const int c0 = __ldg(p.column_offsets + slot);
    blocks = p.block_ids + b0;
    columns = p.column_ids + c0;
    num_blocks = __ldg(p.block_offsets + slot + 1) - b0;
    num_columns = __ldg(p.column_offsets + slot + 1) - c0;
  }
  __device__ int num_key_blocks() const { return num_blocks; }
  __device__ int key_block(int i) const { return __ldg(blocks + i); }
  __device__ int num_key_columns() const { return num_columns; }
  __device__ const int32_t* key_columns() const { return columns; }
  __device__ int consumer_head(int c) const { return q_head; }
  __device__ int consumer_row0(int c) const { return q_block * kBlockM + 64 * c; }
};

// GQA packing (Hopper body, an index shared per KV group with an even group size): a CTA takes 64 rows of
// two query heads of one KV group, one head per consumer warpgroup, so every K/V tile it loads serves two
// heads. The item mapping is SparseIndexVisit's: its query head h stands for the pair h & ~1, h + 1 and its
// parity picks the 64-row half of the query block, so the item count and the longest-first order carry over.
// The slot's list (made for 128 rows) is a superset for either half; the causal mask does the rest.
struct SparsePackedVisit : SparseIndexVisit {
  __device__ SparsePackedVisit(const FlashParams& p, int cta) : SparseIndexVisit(p, cta) {
    // The upper half's last key block(s) lie right of every row of the lower half: skip loading them.
    const int last_row = consumer_row0(0) + 63;
    while (num_blocks > 0 && __ldg(blocks + num_blocks - 1) * kBlockN > last_row) --num_blocks;
  }
  __device__ int consumer_head(int c) const { return (q_head & ~1) + c; }
  __device__ int consumer_row0(int c) const { return q_block * kBlockM + 64 * (q_head & 1); }
};

// One key tile: kBlockN consecutive keys from key0, or (gathered) up to kBlockN listed single key columns.
struct KeyTile {
  int key0 = 0;                            // first key of a contiguous block
  const int32_t* maybe_columns = nullptr;  // [count] listed key positions when gathered
  int count = kBlockN;                     // valid columns of a gathered tile

  __device__ bool gathered() const { return maybe_columns != nullptr; }
};

// The kBlockN-key tiles of a policy's list: its key blocks, then its gathered columns kBlockN at a time.
template <class Visit>
__device__ __forceinline__ int num_key_tiles(const Visit& visit) {
  return visit.num_key_blocks() + (visit.num_key_columns() + kBlockN - 1) / kBlockN;
}
template <class Visit>
__device__ __forceinline__ KeyTile key_tile(const Visit& visit, int t) {
  const int num_blocks = visit.num_key_blocks();
  if (t < num_blocks) return KeyTile{visit.key_block(t) * kBlockN, nullptr, kBlockN};
  const int c = (t - num_blocks) * kBlockN;
  return KeyTile{0, visit.key_columns() + c, min(kBlockN, visit.num_key_columns() - c)};
}

}  // namespace sacc::flash
