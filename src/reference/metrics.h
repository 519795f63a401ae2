// Accuracy metrics of a sparse index / output against dense attention.
#pragma once

#include <vector>

#include "attention/sparse_index.h"
#include "reference/qkv.h"

namespace sacc::ref {

struct RecallReport {
  std::vector<double> per_head;  // [Hq] mean over rows of the dense attention mass the index covers
  double mean = 0.0;             // mean over heads
};

// Attention recall of several indices at once (the dense probabilities are computed once per row), fp64.
Result<std::vector<RecallReport>> attention_recall(const QkvView& qkv,
                                                   const std::vector<const SparseIndex*>& indices);
Result<RecallReport> attention_recall(const QkvView& qkv, const SparseIndex& index);

// ||a - ref|| / ||ref|| (0 when both are zero). Sizes must agree.
Result<double> relative_l2_error(const std::vector<double>& a, const std::vector<double>& ref);
// The same per query head for O tensors [L, Hq, d].
Result<std::vector<double>> relative_l2_error_per_head(const std::vector<double>& a,
                                                       const std::vector<double>& ref,
                                                       const AttentionShape& shape);

}  // namespace sacc::ref
