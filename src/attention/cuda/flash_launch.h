// CUDA-side launch interface of the flash kernel family. Kept free of core/status.h: fmt's consteval format
// strings do not compile under nvcc, so Status conversion happens in flash_forward.cpp (host compiler).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

#include "attention/cuda/flash_params.h"
#include "attention/flash_choice.h"

namespace sacc::flash {

struct DenseCausalVisit;
struct SparseIndexVisit;
struct SparsePackedVisit;

// Defined once per (head dim, visit policy) in flash_inst_*.cu.
template <int kHeadDim, class Visit>
cudaError_t launch_flash_forward(const FlashParams& params, int num_ctas, cudaStream_t stream);

extern template cudaError_t launch_flash_forward<64, DenseCausalVisit>(const FlashParams&, int, cudaStream_t);
extern template cudaError_t launch_flash_forward<64, SparseIndexVisit>(const FlashParams&, int, cudaStream_t);
extern template cudaError_t launch_flash_forward<128, DenseCausalVisit>(const FlashParams&, int,
                                                                        cudaStream_t);
extern template cudaError_t launch_flash_forward<128, SparseIndexVisit>(const FlashParams&, int,
                                                                        cudaStream_t);

// The Hopper body (flash_kernel_sm90.cuh: warp-specialised, TMA + wgmma); maps are the launch's Q/K/V tensor
// maps.
struct FlashTmaMaps;
template <int kHeadDim, class Visit>
cudaError_t launch_flash_forward_sm90(const FlashParams& params, const FlashTmaMaps& maps, int num_ctas,
                                      cudaStream_t stream);

extern template cudaError_t launch_flash_forward_sm90<64, DenseCausalVisit>(const FlashParams&,
                                                                            const FlashTmaMaps&, int,
                                                                            cudaStream_t);
extern template cudaError_t launch_flash_forward_sm90<64, SparseIndexVisit>(const FlashParams&,
                                                                            const FlashTmaMaps&, int,
                                                                            cudaStream_t);
extern template cudaError_t launch_flash_forward_sm90<128, DenseCausalVisit>(const FlashParams&,
                                                                             const FlashTmaMaps&, int,
                                                                             cudaStream_t);
extern template cudaError_t launch_flash_forward_sm90<128, SparseIndexVisit>(const FlashParams&,
                                                                             const FlashTmaMaps&, int,
                                                                             cudaStream_t);
extern template cudaError_t launch_flash_forward_sm90<64, SparsePackedVisit>(const FlashParams&,
                                                                             const FlashTmaMaps&, int,
                                                                             cudaStream_t);
extern template cudaError_t launch_flash_forward_sm90<128, SparsePackedVisit>(const FlashParams&,
                                                                              const FlashTmaMaps&, int,
                                                                              cudaStream_t);

// Runtime -> compile-time dispatch (flash_dispatch.cu) of the body `choice` names, over the query blocks from
// params.q_begin on. Head dims other than 64/128 and a q_begin that is not a multiple of kBlockM give
// cudaErrorInvalidValue. A suffix launch (q_begin > 0) too small to fill the GPU splits its keys when
// `workspace` has room (flash_suffix_split.h); without it, one pass.
cudaError_t launch_flash_dense(int head_dim, FlashKernelChoice choice, const FlashParams& params,
                               void* workspace, size_t workspace_bytes, cudaStream_t stream);

// Device bytes of the sparse work order for num_items CTAs.
size_t sparse_work_order_workspace(int num_items);

// Sorts work items by visited tiles (longest first) into `workspace`, then launches the sparse kernel.
// params carries the index pointers; its work_order is set here. choice.gqa_pack needs the SM90 body and an
// even params.heads_per_index_head, and params.q_begin must be 0 (else cudaErrorInvalidValue).
cudaError_t launch_flash_sparse(int head_dim, FlashKernelChoice choice, FlashParams params, void* workspace,
                                size_t workspace_bytes, cudaStream_t stream);

}  // namespace sacc::flash
