// The oracle's plan step: from Q/K and one PatternSpec per index head, estimate and build the SparseIndex.
// Per head (geometry.shared_per_kv_group = false: num_heads = Hq) or shared per KV group (num_heads = Hkv:
// the scores of the group's query heads are summed before selection, so the group shares one index).
#pragma once

#include <vector>

#include "attention/pattern.h"
#include "attention/sparse_index.h"
#include "reference/qkv.h"

namespace sacc::ref {

// `patterns` has one spec per index head, or a single spec applied to all heads. A head with a Block-Cluster
// alternative takes the pattern the runtime choice picks, or both joined (attention/pattern.h); `kinds`, when
// given, receives the kind each index head's index follows (INTERVAL_SLASH for a union).
Result<SparseIndex> build_index(const QkvView& qkv, const std::vector<PatternSpec>& patterns,
                                const EstimationConfig& config, const IndexGeometry& geometry,
                                std::vector<PatternKind>* kinds = nullptr);

// Budgets larger than the sequence offers are reduced with sacc::clamp_pattern_to_length
// (attention/pattern.h), the same rule the engine's planners apply.
using sacc::clamp_pattern_to_length;

}  // namespace sacc::ref
