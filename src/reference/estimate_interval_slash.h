// Interval-Slash (vertical-slash) online estimation, DESIGN.md §4:
//   P = causal softmax(Q[L-m:] K^T * scale) in fp32 over the last m queries;
//   vertical score of key j = sum_i P[i, j]; slash score of offset o = i - j = sum of P along that diagonal;
//   the first `sink_keys` keys and the `local_diagonals` nearest offsets are always kept (inside the
//   budgets); then the top-kv verticals and top-ks slashes (or, adaptive, the fewest reaching gamma of the
//   mass).
// Index: each slash o covers, in the query block with rows [r0, r1], keys [r0 - o, r1 - o]; all key blocks
// such bands touch are listed; verticals not inside a listed block become single columns.
#pragma once

#include <cstdint>
#include <vector>

#include "attention/pattern.h"
#include "reference/head_index.h"
#include "reference/qkv.h"

namespace sacc::ref {

struct IntervalSlashScores {
  std::vector<float> vertical;  // [L] attention mass of the last m queries on key j
  std::vector<float> slash;     // [L] mass on offset o = i - j
  double total_mass = 0.0;      // number of estimating rows (each row's softmax sums to 1), summed over heads
};

// Scores of one query head.
Result<IntervalSlashScores> interval_slash_scores(const QkvView& qkv, int q_head,
                                                  const EstimationConfig& config);
// Adds `other` into `sum` (combining the query heads of a KV group for a shared index).
void accumulate_scores(IntervalSlashScores& sum, const IntervalSlashScores& other);

struct IntervalSlashSelection {
  std::vector<int32_t> columns;  // ascending key ids (vertical lines)
  std::vector<int32_t> offsets;  // ascending diagonal offsets o = i - j (slash lines)
};

// Top-kv / top-ks with the forced sinks and local diagonals, or the adaptive choice when spec.gamma > 0.
// INVALID_ARGUMENT when a budget exceeds L (clamp with clamp_pattern_to_length first if that is intended).
Result<IntervalSlashSelection> select_interval_slash(const IntervalSlashScores& scores,
                                                     const PatternSpec& spec, const EstimationConfig& config);

HeadIndex interval_slash_head_index(const IntervalSlashSelection& selection, const IndexGeometry& geometry);

}  // namespace sacc::ref
