// Runtime -> compile-time dispatch of the flash kernel family (head dim x body x visit policy; the body and
// GQA packing come decided from the attention selector), plus the sparse work order: CTAs are launched
// longest-first so heads with very different budgets balance across the SMs (the hardware hands out CTAs
// roughly in blockIdx order). No host synchronisation.
#include <cub/device/device_radix_sort.cuh>

#include <cudaTypedefs.h>

#include "attention/cuda/flash_config.h"
#include "attention/cuda/flash_launch.h"
#include "attention/cuda/flash_suffix_split.h"
#include "attention/cuda/flash_tma.h"

namespace sacc::flash {
namespace {

// Sort keys: tiles a work item visits, clamped to 16 bits (two radix passes; beyond 65535 tiles the order
// among the heaviest items no longer matters for balance).
constexpr int kCostBits = 16;
constexpr size_t kAlign = 256;

size_t align_up(size_t bytes) {
  return (bytes + kAlign - 1) / kAlign * kAlign;
}

size_t sort_scratch_bytes(int num_items) {
  size_t bytes = 0;
  cub::DeviceRadixSort::SortPairsDescending(
      nullptr, bytes, static_cast<const uint32_t*>(nullptr), static_cast<uint32_t*>(nullptr),
      static_cast<const int32_t*>(nullptr), static_cast<int32_t*>(nullptr), num_items, 0, kCostBits);
  return bytes;
}

// costs[w] = key blocks + gathered column tiles of work item w's slot; items[w] = w.
__global__ void work_item_costs(const int32_t* __restrict__ block_offsets,   // [num_slots + 1]
                                const int32_t* __restrict__ column_offsets,  // [num_slots + 1]
                                int heads_per_index_head, int num_items,
                                uint32_t* __restrict__ costs,   // [num_items]
                                int32_t* __restrict__ items) {  // [num_items]
  const int w = blockIdx.x * blockDim.x + threadIdx.x;
  if (w >= num_items) return;
  const int slot = w / heads_per_index_head;
  const int blocks = block_offsets[slot + 1] - block_offsets[slot];
  const int columns = column_offsets[slot + 1] - column_offsets[slot];
  const int tiles = blocks + (columns + kBlockN - 1) / kBlockN;
  costs[w] = static_cast<uint32_t>(min(tiles, (1 << kCostBits) - 1));
  items[w] = w;
}

// A [L, heads, d] bf16 tensor as a 3-D TMA map (column, head, row) with a 64-column x box_rows box, 128-byte
// swizzle (the wgmma operand layout), zero fill past L.
cudaError_t encode_map(CUtensorMap* map, const uint16_t* base, int head_dim, int heads, int seq_len,
                       int64_t head_stride, int64_t token_stride, int box_rows) {
  static PFN_cuTensorMapEncodeTiled_v12000 encode = [] {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult found{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &found) !=
            cudaSuccess ||
        found != cudaDriverEntryPointSuccess)
      fn = nullptr;
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(fn);
  }();
  if (encode == nullptr) return cudaErrorNotSupported;
  const cuuint64_t dims[3] = {static_cast<cuuint64_t>(head_dim), static_cast<cuuint64_t>(heads),
                              static_cast<cuuint64_t>(seq_len)};
  const cuuint64_t strides[2] = {static_cast<cuuint64_t>(head_stride) * 2,
                                 static_cast<cuuint64_t>(token_stride) * 2};
  const cuuint32_t box[3] = {64, 1, static_cast<cuuint32_t>(box_rows)};
  const cuuint32_t element_strides[3] = {1, 1, 1};
  const CUresult result =
      encode(map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 3, const_cast<uint16_t*>(base), dims, strides, box,
             element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
             CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  return result == CUDA_SUCCESS ? cudaSuccess : cudaErrorInvalidValue;
}

cudaError_t make_maps(const FlashParams& p, int head_dim, FlashTmaMaps* maps) {
  const int kv_heads = p.num_q_heads / p.group_size;
  // Q in 64-row boxes: one per consumer warpgroup, which may take different heads (GQA packing). Q holds
  // the query rows from q_begin on, so its map has L - q_begin rows and the kernel offsets its row
  // coordinate by q_begin; rows past the map read as zeros, as past L before.
  cudaError_t error = encode_map(&maps->q, p.q, head_dim, p.num_q_heads, p.seq_len - p.q_begin,
                                 p.q_head_stride, p.q_token_stride, 64);
  if (error == cudaSuccess)
    error = encode_map(&maps->k, p.k, head_dim, kv_heads, p.seq_len, p.kv_head_stride, p.kv_token_stride,
                       kBlockN);
  if (error == cudaSuccess)
    error = encode_map(&maps->v, p.v, head_dim, kv_heads, p.seq_len, p.kv_head_stride, p.kv_token_stride,
                       kBlockN);
  return error;
}

template <int kHeadDim, class Visit>
cudaError_t launch_body(FlashBody body, const FlashParams& p, int num_ctas, cudaStream_t stream) {
  if (body == FlashBody::MMA) return launch_flash_forward<kHeadDim, Visit>(p, num_ctas, stream);
  FlashTmaMaps maps;
  const cudaError_t error = make_maps(p, kHeadDim, &maps);
  if (error != cudaSuccess) return error;
  return launch_flash_forward_sm90<kHeadDim, Visit>(p, maps, num_ctas, stream);
}

template <class Visit>
cudaError_t launch_for_head_dim(int head_dim, FlashBody body, const FlashParams& p, int num_ctas,
                                cudaStream_t stream) {
  switch (head_dim) {
    case 64:
      return launch_body<64, Visit>(body, p, num_ctas, stream);
    case 128:
      return launch_body<128, Visit>(body, p, num_ctas, stream);
    default:
      return cudaErrorInvalidValue;
  }
}

}  // namespace

cudaError_t launch_flash_dense(int head_dim, FlashKernelChoice choice, const FlashParams& params,
                               void* workspace, size_t workspace_bytes, cudaStream_t stream) {
  // DenseCausalVisit hands out the last query blocks first, so the first CTAs are exactly the blocks from
  // q_begin on.
  if (params.q_begin % kBlockM != 0) return cudaErrorInvalidValue;
  const int items = params.num_q_heads * (params.num_q_blocks - params.q_begin / kBlockM);
  int splits = 1;
  if (params.q_begin > 0 && workspace != nullptr) {
    int device = 0, num_sms = 0;
    cudaError_t error = cudaGetDevice(&device);
    if (error == cudaSuccess)
      error = cudaDeviceGetAttribute(&num_sms, cudaDevAttrMultiProcessorCount, device);
    if (error != cudaSuccess) return error;
    splits = suffix_key_splits(params, items, num_sms, head_dim, workspace_bytes);
  }
  if (splits == 1) return launch_for_head_dim<DenseCausalVisit>(head_dim, choice.body, params, items, stream);
  const cudaError_t error = launch_for_head_dim<DenseCausalVisit>(
      head_dim, choice.body, split_params(params, splits, head_dim, workspace), items * splits, stream);
  if (error != cudaSuccess) return error;
  return combine_key_splits(params, splits, head_dim, workspace, stream);
}

size_t sparse_work_order_workspace(int num_items) {
  return 4 * align_up(static_cast<size_t>(num_items) * sizeof(int32_t)) +
         align_up(sort_scratch_bytes(num_items));
}

cudaError_t launch_flash_sparse(int head_dim, FlashKernelChoice choice, FlashParams params, void* workspace,
                                size_t workspace_bytes, cudaStream_t stream) {
  // Packing: two query heads of one index per CTA, so the Hopper body and an even number of heads per index.
  if (choice.gqa_pack && (choice.body != FlashBody::SM90 || params.heads_per_index_head % 2 != 0))
    return cudaErrorInvalidValue;
  if (params.q_begin != 0) return cudaErrorInvalidValue;  // the index's slots cover every query block
  const int num_items = params.num_q_heads * params.num_q_blocks;
  if (workspace == nullptr || workspace_bytes < sparse_work_order_workspace(num_items))
    return cudaErrorInvalidValue;
  const size_t array_bytes = align_up(static_cast<size_t>(num_items) * sizeof(int32_t));
  auto* base = static_cast<unsigned char*>(workspace);
  auto* costs_in = reinterpret_cast<uint32_t*>(base);
  auto* costs_out = reinterpret_cast<uint32_t*>(base + array_bytes);
  auto* items_in = reinterpret_cast<int32_t*>(base + 2 * array_bytes);
  auto* items_out = reinterpret_cast<int32_t*>(base + 3 * array_bytes);
  size_t scratch_bytes = workspace_bytes - 4 * array_bytes;

  constexpr int kThreads = 256;
  work_item_costs<<<(num_items + kThreads - 1) / kThreads, kThreads, 0, stream>>>(
      params.block_offsets, params.column_offsets, params.heads_per_index_head, num_items, costs_in,
      items_in);
  cudaError_t error = cudaGetLastError();
  if (error != cudaSuccess) return error;
  error =
      cub::DeviceRadixSort::SortPairsDescending(base + 4 * array_bytes, scratch_bytes, costs_in, costs_out,
                                                items_in, items_out, num_items, 0, kCostBits, stream);
  if (error != cudaSuccess) return error;
  params.work_order = items_out;
  if (choice.gqa_pack) {
    FlashTmaMaps maps;
    error = make_maps(params, head_dim, &maps);
    if (error != cudaSuccess) return error;
    if (head_dim == 64)
      return launch_flash_forward_sm90<64, SparsePackedVisit>(params, maps, num_items, stream);
    if (head_dim == 128)
      return launch_flash_forward_sm90<128, SparsePackedVisit>(params, maps, num_items, stream);
    return cudaErrorInvalidValue;
  }
  return launch_for_head_dim<SparseIndexVisit>(head_dim, choice.body, params, num_items, stream);
}

}  // namespace sacc::flash
