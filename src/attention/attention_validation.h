// The checks every planner of a sparse index applies to its arguments, in one place: the GPU plan
// (cuda/plan_layout.cpp), the CPU plan (cpu/plan_cpu.cpp) and the oracle (reference/build_index.cpp) call
// validate_plan_arguments, so that they accept and reject the same calls with the same limits.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "attention/pattern.h"
#include "attention/sparse_index.h"
#include "core/status.h"

namespace sacc {

struct AttentionShape;

// Longest sequence any attention path takes. The kernels index rows with 32-bit ints (a row plus a tile's
// overhang must stay below 2^31) and the index stores int32 ids and offsets.
inline constexpr int64_t kMaxAttentionSeqLen = int64_t{1} << 30;

// A spec's budgets are non-negative, its kind known and its gamma 0 (fixed) or in (0, 1]. `head` names the
// index head in the message.
Status validate_pattern_spec(const PatternSpec& spec, int head);

// The shape and geometry are valid and agree (length, heads: one per query head, or one per KV group when the
// geometry shares), the length is at most kMaxAttentionSeqLen, `heads` holds one spec for every index head or
// one for all of them, and the estimation settings are usable. Messages start with `caller` ("plan").
Status validate_plan_arguments(std::string_view caller, const AttentionShape& shape,
                               std::span<const PatternSpec> heads, const EstimationConfig& estimation,
                               const IndexGeometry& geometry);

// The spec of index head `head`: the only one when one is given for all heads.
inline const PatternSpec& pattern_of_head(std::span<const PatternSpec> heads, int64_t head) {
  return heads.size() == 1 ? heads[0] : heads[static_cast<size_t>(head)];
}

}  // namespace sacc
