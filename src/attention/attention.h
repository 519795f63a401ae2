// The one attention selector: "is this supported", "how much workspace" and "which kernel" for the CUDA path,
// so the runtime, the CLI and the benchmarks cannot disagree. Compiles without CUDA (streams are void*,
// a cudaStream_t); without CUDA every CUDA request answers UNSUPPORTED.
#pragma once

#include <cstddef>
#include <string>

#include "attention/attention_params.h"
#include "attention/flash_choice.h"
#include "attention/sparse_index.h"
#include "core/status.h"

namespace sacc {

enum class AttentionKernel {
  FLASH_DENSE_CAUSAL,  // flash kernel visiting every causal key block
  FLASH_SPARSE_INDEX,  // the same kernel visiting the CSR key blocks and gathered columns of a SparseIndex
};

const char* attention_kernel_name(AttentionKernel kernel);

struct AttentionSelection {
  AttentionKernel kernel = AttentionKernel::FLASH_DENSE_CAUSAL;
  size_t workspace_bytes = 0;  // device bytes attention_run_cuda needs in `workspace`
};

// Checks shape, head dim, index geometry and picks the kernel. maybe_geometry null = dense causal.
Result<AttentionSelection> attention_select_cuda(const AttentionShape& shape,
                                                 const IndexGeometry* maybe_geometry);

// Runs causal attention for all heads of one layer in one launch on `stream` (a cudaStream_t; null = default
// stream) with the kernel body and packing `kernel` names (runtime/attention_selector.h decides them; packing
// needs the SM90 body and an index shared by an even number of query heads). params.q_begin > 0 (queries
// from that row on, a multiple of kTileBlockQ) needs the dense kernel. maybe_index null = dense;
// otherwise the index's arrays are device pointers (e.g. a plan workspace). `workspace` must hold
// attention_select_cuda(...)->workspace_bytes device bytes (may be null when 0). A dense launch with
// q_begin > 0 that has fewer query blocks than the GPU has SMs splits each block's keys over several CTAs
// when the workspace has room for their partial outputs (cuda/flash_suffix_split.h; O then differs from one
// pass by a bf16 rounding), else runs one pass. No host synchronisation: safe inside CUDA graph capture.
Status attention_run_cuda(const AttentionParams& params, const SparseIndexView* maybe_index,
                          FlashKernelChoice kernel, void* workspace, size_t workspace_bytes, void* stream);

}  // namespace sacc
