#include "attention/cuda/flash_forward.h"

#include <cuda_runtime.h>

#include "attention/cuda/flash_config.h"
#include "attention/cuda/flash_launch.h"
#include "core/cuda/cuda_check.h"

namespace sacc::flash {
namespace {

FlashParams make_params(const AttentionParams& a) {
  FlashParams p;
  p.q = static_cast<const uint16_t*>(a.q);
  p.k = static_cast<const uint16_t*>(a.k);
  p.v = static_cast<const uint16_t*>(a.v);
  p.o = static_cast<uint16_t*>(a.o);
  p.maybe_lse = a.maybe_lse;
  p.q_token_stride = a.q_token_stride;
  p.q_head_stride = a.q_head_stride;
  p.kv_token_stride = a.kv_token_stride;
  p.kv_head_stride = a.kv_head_stride;
  p.o_token_stride = a.o_token_stride;
  p.o_head_stride = a.o_head_stride;
  p.seq_len = static_cast<int>(a.shape.seq_len);
  p.q_begin = static_cast<int>(a.q_begin);
  p.num_q_heads = a.shape.num_q_heads;
  p.group_size = a.shape.group_size();
  p.num_q_blocks = static_cast<int>((a.shape.seq_len + kBlockM - 1) / kBlockM);
  p.scale_log2 = a.softmax_scale * 1.4426950408889634f;  // exp(x) = exp2(x * log2(e))
  return p;
}

}  // namespace

size_t sparse_work_order_bytes(int64_t num_work_items) {
  return sparse_work_order_workspace(static_cast<int>(num_work_items));
}

Status run_flash_forward(const AttentionParams& params, const SparseIndexView* maybe_index,
                         FlashKernelChoice choice, void* workspace, size_t workspace_bytes, void* stream) {
  const AttentionParams a = params.with_defaults();
  FlashParams p = make_params(a);
  const auto cuda_stream = static_cast<cudaStream_t>(stream);
  if (maybe_index == nullptr) {
    SACC_CUDA_TRY(launch_flash_dense(a.shape.head_dim, choice, p, workspace, workspace_bytes, cuda_stream));
    return Status::ok();
  }
  p.block_offsets = maybe_index->block_offsets;
  p.block_ids = maybe_index->block_ids;
  p.column_offsets = maybe_index->column_offsets;
  p.column_ids = maybe_index->column_ids;
  p.heads_per_index_head = maybe_index->geometry.shared_per_kv_group ? p.group_size : 1;
  SACC_CUDA_TRY(launch_flash_sparse(a.shape.head_dim, choice, p, workspace, workspace_bytes, cuda_stream));
  return Status::ok();
}

}  // namespace sacc::flash
