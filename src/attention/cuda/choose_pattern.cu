// Runtime pattern choice (attention/pattern.h, "Runtime choice"): for every Interval-Slash head with a
// Block-Cluster alternative, after both estimations, score each candidate index by the vertical scores summed
// over the keys it lists for the last query block, and write the winner's kind into head_choice for the index
// builder (Block-Cluster iff its mass is strictly larger). One CTA per index head; no host synchronisation.
#include <cub/block/block_reduce.cuh>

#include <cstdint>

#include "attention/cuda/plan_kernels.h"
#include "attention/cuda/plan_slot_capacity.h"

namespace sacc::plan_detail {
namespace {

constexpr int kThreads = 256;

struct ChoiceArgs {
  PlanDims dims;
  PlanHeads heads;
  const float* vertical;           // [num_is_heads, L]
  const int32_t* is_columns;       // [num_is_heads, L] chosen verticals, ascending
  const int32_t* is_column_count;  // [num_is_heads]
  const int32_t* is_slash_prefix;  // [num_is_heads, L + 1]
  const int32_t* bc_stage_ids;     // [num_bc_heads, num_q_blocks, bc_capacity]
  const int32_t* bc_stage_count;   // [num_bc_heads, num_q_blocks]
  int32_t* head_choice;            // [num index heads]
};

__global__ void __launch_bounds__(kThreads) choose_pattern_kernel(const ChoiceArgs args) {
  using Reduce = cub::BlockReduce<double, kThreads>;
  __shared__ typename Reduce::TempStorage reduce;
  const PlanDims& dims = args.dims;
  const int index_head = blockIdx.x;
  const HeadPlan& head = args.heads.head[index_head];
  if (head.kind != kKindIntervalSlash || head.alt_blocks == 0 || head.alt_union) return;
  const int q_block = dims.num_q_blocks - 1;
  const SlotRows rows = slot_rows(dims, q_block);
  const float* v = args.vertical + static_cast<int64_t>(head.ordinal) * dims.seq_len;
  const int32_t* prefix = args.is_slash_prefix + static_cast<int64_t>(head.ordinal) * (dims.seq_len + 1);
  auto covered = [&](int kb) {  // whether the Interval-Slash index lists key block kb (build_index_csr.cu)
    const OffsetRange range = covering_offsets(dims, rows.first_row, rows.last_row, kb);
    return prefix[range.hi + 1] - prefix[range.lo] > 0;
  };

  // Interval-Slash: keys of the covered blocks, then the chosen verticals outside them.
  double slash_mass = 0.0;
  for (int j = threadIdx.x; j <= rows.last_row; j += kThreads) {
    if (covered(j / dims.block_k)) slash_mass += v[j];
  }
  const int32_t* columns = args.is_columns + static_cast<int64_t>(head.ordinal) * dims.seq_len;
  const int count = args.is_column_count[head.ordinal];
  for (int t = threadIdx.x; t < count; t += kThreads) {
    const int j = columns[t];
    if (j <= rows.last_row && !covered(j / dims.block_k)) slash_mass += v[j];
  }
  // Block-Cluster: the keys of the staged blocks.
  const int64_t stage = static_cast<int64_t>(head.alt_ordinal) * dims.num_q_blocks + q_block;
  const int32_t* blocks = args.bc_stage_ids + stage * dims.bc_capacity;
  const int keys = args.bc_stage_count[stage] * dims.block_k;
  double cluster_mass = 0.0;
  for (int t = threadIdx.x; t < keys; t += kThreads) {
    const int j = blocks[t / dims.block_k] * dims.block_k + t % dims.block_k;
    if (j < dims.seq_len) cluster_mass += v[j];
  }

  slash_mass = Reduce(reduce).Sum(slash_mass);
  __syncthreads();
  cluster_mass = Reduce(reduce).Sum(cluster_mass);
  if (threadIdx.x == 0) {
    args.head_choice[index_head] = cluster_mass > slash_mass ? kKindBlockCluster : kKindIntervalSlash;
  }
}

}  // namespace

cudaError_t launch_pattern_choice(const PlanLayout& layout, char* workspace, cudaStream_t stream) {
  if (layout.num_alt_heads == 0) return cudaSuccess;
  ChoiceArgs args{};
  args.dims = layout.dims;
  args.heads = layout.heads;
  args.vertical = reinterpret_cast<const float*>(workspace + layout.is_vertical);
  args.is_columns = reinterpret_cast<const int32_t*>(workspace + layout.is_columns);
  args.is_column_count = reinterpret_cast<const int32_t*>(workspace + layout.is_column_count);
  args.is_slash_prefix = reinterpret_cast<const int32_t*>(workspace + layout.is_slash_prefix);
  args.bc_stage_ids = reinterpret_cast<const int32_t*>(workspace + layout.bc_stage_ids);
  args.bc_stage_count = reinterpret_cast<const int32_t*>(workspace + layout.bc_stage_count);
  args.head_choice = reinterpret_cast<int32_t*>(workspace + layout.head_choice);
  choose_pattern_kernel<<<layout.dims.num_heads, kThreads, 0, stream>>>(args);
  return cudaGetLastError();
}

}  // namespace sacc::plan_detail
