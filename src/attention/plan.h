// The plan() step of the attention contract (DESIGN.md §4): online estimation of every index head's sparse
// index on the GPU, written as a SparseIndexView into a caller-provided device workspace. plan() enqueues
// work on a stream and never synchronises with the host, so a layer's plan + run can be captured in one CUDA
// graph.
//
// CUDA-free declarations (the stream is passed as an opaque pointer); defined in src/attention/cuda/ and
// available only in builds with SACC_WITH_CUDA.
//
// Semantics follow the CPU oracle (src/reference/build_index.h) with two differences a caller should know:
//  * budgets larger than the input offers are clamped to it (reference::clamp_pattern_to_length), so one
//  layer
//    config serves every prompt length;
//  * ties between equal scores are broken towards lower key / offset / block ids.
#pragma once

#include <cstddef>

#include "attention/attention_params.h"
#include "attention/sparse_index.h"

namespace sacc {

// Device bytes plan() needs for these shapes and budgets, computed on the host from sizes alone: per-slot
// capacities are upper bounds derived from each head's budget (dense causal in the worst case), so the index
// plan() writes always fits. `geometry` must describe the same length, head count and sharing as the others.
Result<size_t> plan_workspace_bytes(const AttentionShape& shape, const LayerPatterns& patterns,
                                    const IndexGeometry& geometry);

// Estimates and builds the index of one layer (all heads, any mix of pattern kinds and budgets) into
// `workspace` (device memory of at least plan_workspace_bytes(); 256-byte aligned). `maybe_stream` is a
// cudaStream_t (null: the default stream). The returned view points into the workspace and is valid once the
// enqueued work has run; only errors detectable from the arguments are reported here.
Result<SparseIndexView> plan(const AttentionParams& params, const LayerPatterns& patterns,
                             const IndexGeometry& geometry, void* workspace, size_t workspace_bytes,
                             void* maybe_stream);

}  // namespace sacc
