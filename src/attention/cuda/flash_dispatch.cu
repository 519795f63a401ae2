// Runtime -> compile-time dispatch of the flash kernel family (head dim x visit policy), plus the sparse work
// order: CTAs are launched longest-first so heads with very different budgets balance across the SMs
// (the hardware hands out CTAs roughly in blockIdx order). No host synchronisation.
#include <cub/device/device_radix_sort.cuh>

#include <cstdlib>
#include <cstring>

#include "attention/cuda/flash_config.h"
#include "attention/cuda/flash_launch.h"

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

// wgmma needs sm_90a; the build targets it by default (CMAKE_CUDA_ARCHITECTURES=90a).
cudaError_t use_wgmma_body(bool* use) {
  int device = 0, major = 0;
  cudaError_t error = cudaGetDevice(&device);
  if (error == cudaSuccess) error = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
  const char* body = std::getenv("SACC_FLASH_BODY");
  *use = major == 9 && !(body != nullptr && std::strcmp(body, "mma") == 0);
  return error;
}

template <class Visit>
cudaError_t launch_for_head_dim(int head_dim, const FlashParams& p, int num_ctas, cudaStream_t stream) {
  bool wgmma = false;
  const cudaError_t error = use_wgmma_body(&wgmma);
  if (error != cudaSuccess) return error;
  switch (head_dim) {
    case 64:
      return wgmma ? launch_flash_forward_sm90<64, Visit>(p, num_ctas, stream)
                   : launch_flash_forward<64, Visit>(p, num_ctas, stream);
    case 128:
      return wgmma ? launch_flash_forward_sm90<128, Visit>(p, num_ctas, stream)
                   : launch_flash_forward<128, Visit>(p, num_ctas, stream);
    default:
      return cudaErrorInvalidValue;
  }
}

}  // namespace

cudaError_t launch_flash_dense(int head_dim, const FlashParams& params, cudaStream_t stream) {
  return launch_for_head_dim<DenseCausalVisit>(head_dim, params, params.num_q_heads * params.num_q_blocks,
                                               stream);
}

size_t sparse_work_order_workspace(int num_items) {
  return 4 * align_up(static_cast<size_t>(num_items) * sizeof(int32_t)) +
         align_up(sort_scratch_bytes(num_items));
}

cudaError_t launch_flash_sparse(int head_dim, FlashParams params, void* workspace, size_t workspace_bytes,
                                cudaStream_t stream) {
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
  return launch_for_head_dim<SparseIndexVisit>(head_dim, params, num_items, stream);
}

}  // namespace sacc::flash
