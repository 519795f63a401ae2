// One task of the CPU attention (cpu_attention.cpp): a tile of query rows of one KV group, its queries
// gathered once, run against key blocks one at a time with an online softmax, the output written at the end.
// The dense and sparse schedules differ only in which key blocks they feed a tile. Not a public API.
#pragma once

#include <cstdint>
#include <vector>

#include "attention/cpu/attention_kernels.h"
#include "attention/cpu/cpu_attention.h"

namespace sacc::cpu_attn {

// The rows of a tile: query rows [row_begin, row_end) times the query heads [head_begin, head_begin +
// num_heads) of one KV head. Tile row r is query row row_begin + r / num_heads of head head_begin +
// r % num_heads, at position pos_offset + its query row.
struct TileRows {
  int64_t row_begin = 0;
  int64_t row_end = 0;
  int head_begin = 0;
  int num_heads = 1;
  int kv_head = 0;
  int64_t pos_offset = 0;  // Lk - Lq
};

// Query rows per tile for `heads` query heads per tile: a power of two (it divides the index's query block),
// with about kTileRows rows in all. 128 rows keep the tile's transposed queries, scores and accumulator
// ([d, rows], [Bk, rows], [d, rows] fp32: 96 KiB at d = 64) in L2 while each key block is reused by all of
// them.
int64_t query_rows_per_tile(int heads);

class QueryTile {
 public:
  // Gathers and scales the tile's queries; the running state starts empty. The buffers are the calling
  // thread's, reused from task to task.
  QueryTile(const CpuAttentionArgs& args, const TileKernels& kernels, const TileRows& rows);
  QueryTile(const QueryTile&) = delete;
  QueryTile& operator=(const QueryTile&) = delete;

  // Position of the tile's last query row: keys after it are hidden from every row.
  int64_t last_position() const { return max_pos_; }

  // Keys [first, first + count), count <= Bk, each hidden from rows before it.
  void add_key_range(int64_t first, int64_t count);
  // The listed keys (count <= Bk, any positions in [0, Lk)), each hidden from rows before it.
  void add_key_list(const int32_t* keys, int64_t count);

  // O = accumulator / sum for every real row; a row that saw no key gets zeros.
  void write_output();

 private:
  // Copies (bf16 products) or widens (fp32) key / value row `key` into row t of the block buffers.
  void load_key(int t, int64_t key);
  // Runs the block that load_key filled for the first `count` keys (the rest are padding).
  void run_block(int64_t count, int64_t max_key);

  const CpuAttentionArgs& a_;
  const TileKernels& kernels_;
  TileRows rows_;
  int d_ = 0;
  bool pairs_ = false;  // bf16 products (TileKernels::scores_bf16, even d)
  int num_rows_ = 0;    // R real rows
  int rp_ = 0;          // R rounded up to kRowAlign (kPairRowAlign with pairs_)
  int64_t min_pos_ = 0, max_pos_ = 0;
  const uint16_t* k_ = nullptr;  // the KV head's first key row; row j at k_ + j * kv_stride_
  const uint16_t* v_ = nullptr;
  int64_t kv_stride_ = 0;
  // The calling thread's buffers (thread_local, grown on demand):
  float* qt_ = nullptr;         // [d, rp]  queries, transposed, times scale * log2(e)
  float* s_ = nullptr;          // [Bk, rp] scores, then probabilities
  float* ot_ = nullptr;         // [d, rp]  output accumulator, transposed
  float* kb_ = nullptr;         // [Bk, d]  the block's keys, fp32 (not with pairs_)
  float* vb_ = nullptr;         // [Bk, d]  the block's values, fp32 (not with pairs_)
  float* row_max_ = nullptr;    // [rp]
  float* row_sum_ = nullptr;    // [rp]
  float* rescale_ = nullptr;    // [rp]
  int32_t* row_pos_ = nullptr;  // [rp] position of each row (padding rows repeat the last real one)
  int32_t* key_pos_ = nullptr;  // [Bk] position of each key (padding: INT32_MAX, hidden from all rows)
  // With pairs_ only:
  uint16_t* kh_ = nullptr;  // [Bk, d]    the block's keys, bf16
  uint16_t* vh_ = nullptr;  // [Bk, d]    the block's values, bf16
  uint32_t* qp_ = nullptr;  // [d/2, rp]  qt in bf16 pairs
  uint32_t* pp_ = nullptr;  // [Bk/2, rp] the probabilities in bf16 pairs
  uint32_t* vp_ = nullptr;  // [Bk/2, d]  the values in bf16 pairs
};

}  // namespace sacc::cpu_attn
