// plan() and plan_workspace_bytes() (src/attention/plan.h): validate, lay out the workspace, enqueue the
// stages. Launches per layer, whatever the mix of pattern kinds: Interval-Slash 1 memset + 4 kernels (row
// statistics, combine, sums, selection), Block-Cluster 2 (pooling, selection), the runtime pattern choice 1
// (when a head offers an alternative), index build 3 (count, scan, fill). With both estimations present,
// Block-Cluster's two run on a second stream (core/cuda/stream_fork.h) and join before the pattern choice.
#include <cuda_runtime_api.h>

#include <cstdint>
#include <optional>

#include "attention/cuda/plan_kernels.h"
#include "attention/cuda/plan_layout.h"
#include "attention/plan.h"
#include "core/cuda/cuda_check.h"
#include "core/cuda/stream_fork.h"

namespace sacc {

Result<size_t> plan_workspace_bytes(const AttentionShape& shape, const LayerPatterns& patterns,
                                    const IndexGeometry& geometry) {
  SACC_ASSIGN_OR_RETURN(const plan_detail::PlanLayout layout,
                        plan_detail::make_plan_layout(shape, patterns, geometry));
  return layout.total_bytes;
}

Result<SparseIndexView> plan(const AttentionParams& params, const LayerPatterns& patterns,
                             const IndexGeometry& geometry, void* workspace, size_t workspace_bytes,
                             void* maybe_stream) {
  const AttentionParams p = params.with_defaults();
  SACC_RETURN_IF_ERROR(p.require_whole_prompt("plan"));
  SACC_ASSIGN_OR_RETURN(plan_detail::PlanLayout layout,
                        plan_detail::make_plan_layout(p.shape, patterns, geometry));
  if (workspace == nullptr || workspace_bytes < layout.total_bytes) {
    return make_error(StatusCode::INVALID_ARGUMENT,
                      "plan: workspace of {} bytes is too small; plan_workspace_bytes() asks for {}",
                      workspace_bytes, layout.total_bytes);
  }
  if (reinterpret_cast<uintptr_t>(workspace) % 256 != 0) {
    return make_error(StatusCode::INVALID_ARGUMENT, "plan: workspace must be 256-byte aligned");
  }
  const bool estimates = layout.num_is_heads > 0 || layout.num_bc_heads > 0;
  if (estimates) {
    if (p.q == nullptr || p.k == nullptr) {
      return make_error(StatusCode::INVALID_ARGUMENT, "plan: estimating patterns need device Q and K");
    }
    // The estimators read 16-byte vectors of 8 bf16 values along the head dimension.
    const bool aligned = reinterpret_cast<uintptr_t>(p.q) % 16 == 0 &&
                         reinterpret_cast<uintptr_t>(p.k) % 16 == 0 && p.q_token_stride % 8 == 0 &&
                         p.q_head_stride % 8 == 0 && p.kv_token_stride % 8 == 0 &&
                         p.kv_head_stride % 8 == 0 && p.shape.head_dim % 8 == 0;
    if (!aligned) {
      return make_error(
          StatusCode::UNSUPPORTED,
          "plan: Q/K must be 16-byte aligned with strides and head dim multiples of 8 elements");
    }
    if (layout.num_is_heads > 0 && p.shape.group_size() > 32) {
      return make_error(StatusCode::UNSUPPORTED,
                        "plan: Interval-Slash estimation supports GQA groups up to 32");
    }
  }
  layout.dims.scale = p.softmax_scale;
  plan_detail::PlanInputs inputs;
  inputs.q = p.q;
  inputs.k = p.k;
  inputs.q_token_stride = p.q_token_stride;
  inputs.q_head_stride = p.q_head_stride;
  inputs.kv_token_stride = p.kv_token_stride;
  inputs.kv_head_stride = p.kv_head_stride;
  auto stream = static_cast<cudaStream_t>(maybe_stream);
  char* base = static_cast<char*>(workspace);
  // The two estimations read Q/K and write disjoint parts of the workspace. With both present, Block-Cluster
  // runs on a second stream beside Interval-Slash's selection, which is one CTA per (head, kind), far too few
  // for the GPU alone. It is forked after Interval-Slash's estimation (which fills the GPU by itself), so
  // that it fills the SMs the selection leaves idle: forked before it, the real Qwen2.5-0.5B prompt's sparse
  // prefill at 32K took 0.4-1.7 % longer (H200, bench/results/real_models_h200.md, "twelfth session").
  SACC_RETURN_IF_ERROR(
      cuda_status(plan_detail::launch_interval_slash_estimation(layout, inputs, base, stream),
                  "plan: interval-slash estimation"));
  std::optional<StreamFork> fork;
  if (layout.num_is_heads > 0 && layout.num_bc_heads > 0) {
    SACC_ASSIGN_OR_RETURN(StreamFork forked, fork_stream(stream));
    fork.emplace(forked);
  }
  SACC_RETURN_IF_ERROR(cuda_status(
      plan_detail::launch_block_cluster_estimation(layout, inputs, base, fork ? fork->side() : stream),
      "plan: block-cluster estimation"));
  if (layout.num_is_heads > 0) {
    SACC_RETURN_IF_ERROR(cuda_status(plan_detail::launch_interval_slash_select(layout, base, stream),
                                     "plan: interval-slash selection"));
  }
  if (fork) SACC_RETURN_IF_ERROR(fork->join());
  SACC_RETURN_IF_ERROR(
      cuda_status(plan_detail::launch_pattern_choice(layout, base, stream), "plan: pattern choice"));
  SACC_RETURN_IF_ERROR(
      cuda_status(plan_detail::launch_index_build(layout, base, stream), "plan: index build"));

  SparseIndexView view;
  view.geometry = geometry;
  view.block_offsets = reinterpret_cast<const int32_t*>(base + layout.block_offsets);
  view.block_ids = reinterpret_cast<const int32_t*>(base + layout.block_ids);
  view.column_offsets = reinterpret_cast<const int32_t*>(base + layout.column_offsets);
  view.column_ids = reinterpret_cast<const int32_t*>(base + layout.column_ids);
  return view;
}

}  // namespace sacc
