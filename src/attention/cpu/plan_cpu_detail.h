// Internals of plan_cpu() (plan_cpu.h) shared by its translation units: the input reader, the two estimators,
// the selection rule and the per-head index builders. Not a public API.
//
// Exactness: every fp32 sum here runs in the order of a plain scalar loop (dot products over increasing
// dimension, softmax sums over increasing key, row contributions over increasing row, group heads in head
// order); the vector code only computes several independent sums side by side. So scores are bitwise those
// of the straightforward definition, and the index does not depend on the thread count or the SIMD width.
#pragma once

#include <cstdint>
#include <vector>

#include "attention/attention_params.h"
#include "attention/sparse_index.h"
#include "core/dtype.h"

namespace sacc::cpu_plan {

// Q and K of one layer as the estimators read them.
struct QkSource {
  AttentionShape shape;
  const void* q = nullptr;  // [L, Hq, d] host, q_dtype, element strides below
  const void* k = nullptr;  // [L, Hkv, d] host, k_dtype
  DType q_dtype = DType::BF16;
  DType k_dtype = DType::BF16;
  int64_t q_token_stride = 0, q_head_stride = 0;
  int64_t kv_token_stride = 0, kv_head_stride = 0;
  float scale = 0.0f;  // softmax scale applied to q . k

  // Widen one row to fp32: out[t * out_stride] for t in [0, d) (out_stride > 1 writes a column of a
  // transposed tile).
  void load_q(int64_t token, int q_head, float* out, int64_t out_stride = 1) const;
  void load_k(int64_t token, int kv_head, float* out, int64_t out_stride = 1) const;
};

// ---- Interval-Slash
struct SlashScores {
  std::vector<float> vertical;  // [L] mass of the estimating rows on key j
  std::vector<float> slash;     // [L] mass on offset o = i - j
};

// Scores of query head `q_head` from the causal softmax of its last `rows` queries (1 <= rows <= L).
void interval_slash_scores(const QkSource& source, int q_head, int64_t rows, SlashScores* out);

// ---- Block-Cluster
// Mean of each key block of KV head `kv_head` (accumulated in double, rounded to fp32), transposed:
// [d, num_k_blocks].
std::vector<float> pooled_keys_transposed(const QkSource& source, int kv_head, const IndexGeometry& geometry);

// Pooled causal softmax of query head `q_head` against the pooled keys of its KV head: prob
// [num_q_blocks, num_k_blocks], 0 beyond each query block's last causal key block.
void block_cluster_scores(const QkSource& source, int q_head, const std::vector<float>& pooled_keys_t,
                          const IndexGeometry& geometry, std::vector<float>* prob);

// ---- Selection and per-head index lists
struct TopRule {
  int64_t budget = 0;       // most items kept
  double gamma = 0.0;       // 0: keep min(budget, count); > 0: the shortest prefix reaching gamma*total_mass
  double total_mass = 0.0;  // what gamma is a fraction of
  bool keep_all_forced = false;  // forced items are kept even beyond the budget (and the adaptive prefix)
};

// Candidates [0, count): `forced` (ascending) first, then the rest by descending score, ties to the lower
// id; the rule picks a prefix of that order. Returns the chosen ids ascending.
std::vector<int32_t> select_top(const float* scores, int64_t count, const std::vector<int32_t>& forced,
                                const TopRule& rule);

// One index head's CSR lists over its query blocks.
struct HeadLists {
  std::vector<int32_t> block_offsets;   // [num_q_blocks + 1]
  std::vector<int32_t> block_ids;       // ascending per query block
  std::vector<int32_t> column_offsets;  // [num_q_blocks + 1]
  std::vector<int32_t> column_ids;      // ascending per query block, outside the listed blocks
};

HeadLists dense_lists(const IndexGeometry& geometry);
// Every causal key block for the query blocks in a dense tail of `tail` rows (attention/dense_tail.h),
// nothing for the others: joined (join_lists) with a head's lists, it makes the tail dense.
HeadLists dense_tail_lists(int64_t tail, const IndexGeometry& geometry);
// Triangular(S, W) rounded to key blocks: full sink blocks and every block the window touches; sink keys of
// a partial block as columns unless the window lists that block.
HeadLists triangular_lists(const PatternSpec& spec, const IndexGeometry& geometry);
// Chooses verticals and slashes from `scores` (total_mass: the number of estimating rows summed over the
// combined heads) and builds the lists. `spec` budgets are already clamped to L.
HeadLists interval_slash_lists(const SlashScores& scores, double total_mass, const PatternSpec& spec,
                               const EstimationConfig& config, const IndexGeometry& geometry);
// Chooses each query block's key blocks from `prob` [num_q_blocks, num_k_blocks]; `spec.blocks` clamped.
HeadLists block_cluster_lists(const std::vector<float>& prob, const PatternSpec& spec,
                              const IndexGeometry& geometry);
// The union of two heads' lists (attention/pattern.h, "Union"): every key block either lists, and the columns
// of either outside those blocks.
HeadLists join_lists(const HeadLists& a, const HeadLists& b, const IndexGeometry& geometry);
// The runtime choice's score (attention/pattern.h): `vertical` summed (in double, ascending key) over the
// keys the lists give the last query block.
double last_block_mass(const std::vector<float>& vertical, const HeadLists& lists,
                       const IndexGeometry& geometry);

}  // namespace sacc::cpu_plan
