// Tile-granular cost model (DESIGN.md §5): what a sparse kernel really computes.
//   cost = visited (query tile, key tile) pairs * 4 * Bq * Bk * d      (QK^T and PV, 2 flops per MAC each)
//        + gathered single columns            * 4 * Bq * d
//        + estimator flops
// density = (visited tiles + gathered columns / Bk) / causal tiles, where causal tiles are the tiles a dense
// causal kernel visits; so dense has density 1 and its cost is the causal-tile flops.
#pragma once

#include <cstdint>

#include "attention/pattern.h"
#include "attention/sparse_index.h"

namespace sacc {

struct AttentionCost {
  int64_t visited_tiles = 0;     // (query block, key block) pairs, summed over heads
  int64_t gathered_columns = 0;  // (query block, single column) pairs, summed over heads
  int64_t causal_tiles = 0;      // what dense causal visits over the same heads
  double kernel_flops = 0.0;     // tiles and columns
  double causal_flops = 0.0;     // what dense causal computes over the same heads
  double estimator_flops = 0.0;  // online estimation

  double total_flops() const { return kernel_flops + estimator_flops; }
  double density() const;
  AttentionCost& operator+=(const AttentionCost& other);
};

// Tiles a dense causal kernel visits for one head of `geometry`.
int64_t causal_tiles(const IndexGeometry& geometry);

// Flops of a (Bq x Bk) tile and of one gathered column for a query block.
double tile_flops(int block_q, int block_k, int head_dim);
double column_flops(int block_q, int head_dim);

// Cost of a built index (all its heads). `estimator_flops` is added as given.
AttentionCost index_cost(const SparseIndex& index, int head_dim, double estimator_flops = 0.0);
// The same from an index's totals alone: its visited tiles and gathered columns (the last entries of its
// block and column offsets, for an index whose lists stay on the device).
AttentionCost index_cost(const IndexGeometry& geometry, int64_t visited_tiles, int64_t gathered_columns,
                         int head_dim);

// Estimation flops of one index head's pattern at length L (0 for dense and triangular).
//   interval-slash: QK^T of the last m queries (2 m L d) + softmax and column/diagonal sums (~6 m L)
//   block-cluster : pooling Q and K (2 L d) + pooled QK^T over the causal block pairs (2 d per pair) +
//   softmax
//   interval-slash with a block-cluster alternative: both
double estimator_flops(const PatternSpec& spec, const IndexGeometry& geometry, int head_dim,
                       const EstimationConfig& config);

// Predicted cost of one index head using `spec` at the geometry's length, without building an index.
// Exact for dense, triangular and fixed-budget block-cluster (it applies the same block rounding as the
// builders); for interval-slash it is the expectation when the non-local slashes and the verticals fall at
// uniformly random positions (the local ones are contiguous). Adaptive budgets are predicted at their cap.
// A head with a runtime alternative is predicted at the costlier of its two patterns plus both estimations;
// joined ('+'), at the sum of both (capped at dense) plus both estimations.
AttentionCost predict_cost(const PatternSpec& spec, const IndexGeometry& geometry, int head_dim,
                           const EstimationConfig& config);

}  // namespace sacc
