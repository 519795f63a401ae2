// The plan workspace: what plan() writes where, computed on the host from shapes and budgets alone, so
// plan_workspace_bytes() and plan() can never disagree (host-only header; kernels see plan_device_types.h).
#pragma once

#include <cstddef>
#include <cstdint>

#include "attention/attention_params.h"
#include "attention/cuda/plan_device_types.h"
#include "attention/sparse_index.h"

namespace sacc::plan_detail {

// Validates the arguments (shapes, head counts, sharing, budgets) and lays out the workspace.
Result<PlanLayout> make_plan_layout(const AttentionShape& shape, const LayerPatterns& patterns,
                                    const IndexGeometry& geometry);

}  // namespace sacc::plan_detail
