#include "attention/attention.h"

#include <cstdint>
#include <limits>

#include "attention/kernel_tile.h"

#ifdef SACC_WITH_CUDA
#include "attention/cuda/flash_forward.h"
#endif

namespace sacc {
namespace {

#ifdef SACC_WITH_CUDA
bool aligned16(const void* pointer) {
  return reinterpret_cast<uintptr_t>(pointer) % 16 == 0;
}
#endif

}  // namespace

const char* attention_kernel_name(AttentionKernel kernel) {
  switch (kernel) {
    case AttentionKernel::FLASH_DENSE_CAUSAL:
      return "flash-dense-causal";
    case AttentionKernel::FLASH_SPARSE_INDEX:
      return "flash-sparse-index";
  }
  return "unknown";
}

Result<AttentionSelection> attention_select_cuda(const AttentionShape& shape,
                                                 const IndexGeometry* maybe_geometry) {
#ifndef SACC_WITH_CUDA
  (void)shape;
  (void)maybe_geometry;
  return make_error(StatusCode::UNSUPPORTED,
                    "attention: this build has no CUDA kernels (rebuild with SACC_CUDA=ON)");
#else
  SACC_RETURN_IF_ERROR(shape.validate());
  if (shape.head_dim != 64 && shape.head_dim != 128) {
    return make_error(StatusCode::UNSUPPORTED,
                      "attention: CUDA flash kernels support head dim 64 or 128, got {}", shape.head_dim);
  }
  // 32-bit row indices inside the kernel; int32 CSR offsets in the index.
  if (shape.seq_len > std::numeric_limits<int32_t>::max() / 2) {
    return make_error(StatusCode::UNSUPPORTED,
                      "attention: sequence length {} exceeds the kernel's 2^30 limit", shape.seq_len);
  }
  AttentionSelection selection;
  if (maybe_geometry == nullptr) return selection;

  const IndexGeometry& g = *maybe_geometry;
  SACC_RETURN_IF_ERROR(g.validate());
  if (g.block_q != kTileBlockQ || g.block_k != kTileBlockK) {
    return make_error(StatusCode::UNSUPPORTED,
                      "attention: the CUDA sparse kernel reads indices with Bq={} and Bk={}, this index has "
                      "Bq={}, Bk={} (rebuild the index with the kernel's block sizes)",
                      kTileBlockQ, kTileBlockK, g.block_q, g.block_k);
  }
  if (g.seq_len != shape.seq_len) {
    return make_error(StatusCode::INVALID_ARGUMENT, "attention: index built for L={} but the input has L={}",
                      g.seq_len, shape.seq_len);
  }
  const int expected_heads = g.shared_per_kv_group ? shape.num_kv_heads : shape.num_q_heads;
  if (g.num_heads != expected_heads) {
    return make_error(StatusCode::INVALID_ARGUMENT, "attention: index has {} heads but needs {} (one per {})",
                      g.num_heads, expected_heads, g.shared_per_kv_group ? "KV group" : "query head");
  }
  selection.kernel = AttentionKernel::FLASH_SPARSE_INDEX;
  selection.workspace_bytes =
      flash::sparse_work_order_bytes(static_cast<int64_t>(shape.num_q_heads) * g.num_q_blocks());
  return selection;
#endif
}

Status attention_run_cuda(const AttentionParams& params, const SparseIndexView* maybe_index,
                          FlashKernelChoice kernel, void* workspace, size_t workspace_bytes, void* stream) {
#ifndef SACC_WITH_CUDA
  (void)params;
  (void)maybe_index;
  (void)kernel;
  (void)workspace;
  (void)workspace_bytes;
  (void)stream;
  return make_error(StatusCode::UNSUPPORTED,
                    "attention: this build has no CUDA kernels (rebuild with SACC_CUDA=ON)");
#else
  const AttentionParams p = params.with_defaults();
  SACC_ASSIGN_OR_RETURN(const AttentionSelection selection,
                        attention_select_cuda(p.shape, maybe_index ? &maybe_index->geometry : nullptr));
  if (p.q == nullptr || p.k == nullptr || p.v == nullptr || p.o == nullptr) {
    return make_error(StatusCode::INVALID_ARGUMENT,
                      "attention: Q, K, V and O must be device pointers, got null");
  }
  if (!aligned16(p.q) || !aligned16(p.k) || !aligned16(p.v) || !aligned16(p.o)) {
    return make_error(StatusCode::INVALID_ARGUMENT, "attention: Q, K, V and O must be 16-byte aligned");
  }
  for (int64_t stride : {p.q_token_stride, p.q_head_stride, p.kv_token_stride, p.kv_head_stride,
                         p.o_token_stride, p.o_head_stride}) {
    if (stride % 8 != 0) {
      return make_error(StatusCode::INVALID_ARGUMENT,
                        "attention: token/head strides must be multiples of 8 elements (16 bytes), got {}",
                        stride);
    }
  }
  if (maybe_index != nullptr &&
      (maybe_index->block_offsets == nullptr || maybe_index->column_offsets == nullptr)) {
    return make_error(StatusCode::INVALID_ARGUMENT,
                      "attention: sparse index offsets must be device pointers");
  }
  // A suffix's query blocks must be whole kernel tiles: the launch is the last query blocks of the L-row
  // prefill (flash_policy.cuh DenseCausalVisit), and a sparse index has slots for every query block.
  if (p.q_begin < 0 || p.q_begin >= p.shape.seq_len) {
    return make_error(StatusCode::INVALID_ARGUMENT, "attention: first query row {} outside [0, L={})",
                      p.q_begin, p.shape.seq_len);
  }
  if (p.q_begin % kTileBlockQ != 0) {
    return make_error(StatusCode::INVALID_ARGUMENT,
                      "attention: the first query row {} is not a multiple of the kernel's query tile {}",
                      p.q_begin, kTileBlockQ);
  }
  if (p.q_begin > 0 && maybe_index != nullptr) {
    return make_error(
        StatusCode::UNSUPPORTED,
        "attention: queries from row {} need the dense kernel (a sparse index covers every row)", p.q_begin);
  }
  if (workspace_bytes < selection.workspace_bytes) {
    return make_error(StatusCode::INVALID_ARGUMENT, "attention: workspace of {} bytes given, {} needed",
                      workspace_bytes, selection.workspace_bytes);
  }
  if (kernel.gqa_pack && (kernel.body != FlashBody::SM90 || maybe_index == nullptr ||
                          !maybe_index->geometry.shared_per_kv_group || p.shape.group_size() % 2 != 0)) {
    return make_error(StatusCode::INVALID_ARGUMENT,
                      "attention: GQA packing needs the SM90 body and an index shared by an even number of "
                      "query heads");
  }
  return flash::run_flash_forward(p, maybe_index, kernel, workspace, workspace_bytes, stream);
#endif
}

}  // namespace sacc
