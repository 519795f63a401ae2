// The plan() step on the host (DESIGN.md §4): online estimation of every index head's sparse index for the
// runtime's CPU backend, the counterpart of the GPU plan() (src/attention/plan.h) with the same semantics:
//  * Interval-Slash: causal fp32 softmax of the last m queries, column (vertical) and diagonal (slash) sums,
//    forced sinks and local diagonals counted inside the budgets, top-k or adaptive (gamma) selection, slash
//    bands merged into key blocks, verticals outside listed blocks as single columns;
//  * Block-Cluster: pooled causal softmax over blocks, top-kb key blocks with the first and diagonal blocks
//    forced; Triangular with block rounding; Dense;
//  * per index head, or shared per KV group with the scores of the group's query heads summed (in head
//  order);
//  * budgets larger than the input offers are clamped to it, and ties between equal scores go to the lower
//    key / offset / block id.
// The estimators accumulate in the same order as the CPU oracle (src/reference/, which shares no code with
// this), so for the same fp32 values the index is identical to the oracle's build_index().
#pragma once

#include "attention/attention_params.h"
#include "attention/sparse_index.h"
#include "core/dtype.h"

namespace sacc {

// Element types of params.q and params.k (host memory): each DType::F32 or DType::BF16. The runtime's CPU
// backend holds fp32 queries and a bf16 KV cache: {F32, BF16}.
struct CpuPlanTypes {
  DType q = DType::BF16;
  DType k = DType::BF16;
};

// Estimates and builds the index of one layer (all heads, any mix of pattern kinds and budgets) on the host,
// multi-threaded over heads (parallel_for: SACC_THREADS or all cores). params.q [L, Hq, d] and params.k
// [L, Hkv, d] are host pointers with params' element strides (0: contiguous); params.v / o / maybe_lse are
// not read. softmax_scale 0 means 1/sqrt(d) (rounded from double, as the oracle does). patterns.heads has one
// spec per index head; `geometry` must describe the same length, head count and sharing. Errors
// (INVALID_ARGUMENT / UNSUPPORTED) name the offending argument.
Result<SparseIndex> plan_cpu(const AttentionParams& params, const LayerPatterns& patterns,
                             const IndexGeometry& geometry, CpuPlanTypes types = {});

}  // namespace sacc
