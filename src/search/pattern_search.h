// The kernel-aware per-head pattern search (DESIGN.md §5).
//
// For every query head of one layer's calibration Q/K/V:
//  1. cost target t: the mean per-head kernel cost (tile-granular, src/attention/cost_model.h) of
//     `options.target` on this input, or `options.target_density` of the causal cost;
//  2. for each candidate kind, its size knob is adjusted until the head's cost is within `tolerance` of t
//     (Triangular: the window, sinks fixed; Block-Cluster: the block budget; Interval-Slash: both budgets
//     scaled together from `options.interval_slash_ratio`). Interval-Slash cost depends on the data, so its
//     knob is searched per head on the head's own estimate;
//  3. each candidate's sparse output is compared with dense attention; the head keeps the candidate with the
//     smallest ||O_sparse - O_dense|| / ||O_dense|| (its attention recall is recorded too).
// The oracle computes everything in fp64 on the CPU, so calibration inputs should be a few thousand tokens.
#pragma once

#include <vector>

#include "attention/pattern.h"
#include "attention/sparse_index.h"
#include "reference/qkv.h"

namespace sacc::search {

struct SearchOptions {
  PatternSpec target{PatternKind::INTERVAL_SLASH, 0, 0, 1000, 6096, 0, 0.0};
  double target_density = 0.0;  // > 0: use this fraction of the causal cost instead of `target`
  double tolerance = 0.05;      // |cost - t| <= tolerance * t when the knob can reach it
  int block_q = kTileBlockQ;
  int block_k = kTileBlockK;
  EstimationConfig estimation;
  int64_t triangular_sink = 64;                   // sink keys of Triangular candidates
  double interval_slash_ratio = 6096.0 / 1000.0;  // slashes per vertical of Interval-Slash candidates
  std::vector<PatternKind> kinds{PatternKind::TRIANGULAR, PatternKind::INTERVAL_SLASH,
                                 PatternKind::BLOCK_CLUSTER};
};

struct Candidate {
  PatternSpec pattern;
  double cost_flops = 0.0;  // kernel cost of this head's index
  double density = 0.0;     // cost / causal cost of the head
  double error = 0.0;       // relative L2 error of O against dense
  double recall = 0.0;      // attention recall
};

struct HeadResult {
  Candidate best;
  std::vector<Candidate> candidates;  // one per kind searched
};

struct LayerResult {
  double target_flops = 0.0;      // per head
  std::vector<HeadResult> heads;  // [Hq]
};

Result<LayerResult> search_layer(const ref::QkvView& calibration, const SearchOptions& options);

// Kernel cost of each index head of `index` (tiles and gathered columns), [num_heads].
std::vector<double> per_head_cost(const SparseIndex& index, int head_dim);

}  // namespace sacc::search
