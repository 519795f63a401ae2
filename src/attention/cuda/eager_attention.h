// "Eager" attention: the score matrix materialised, as HF transformers' eager path does and as the paper's
// slowest baseline. Two cuBLAS batched GEMMs around a causal softmax kernel:
//   S = scale * Q Kᵀ  (fp32, all L x L entries of every query head)  ->  P = softmax_causal(S) (bf16, written
//   over S in place)  ->  O = P V.
// Memory is the point of this baseline: the [Hq, L, L] fp32 workspace grows quadratically (34 GiB at 16K for
// 32 query heads), so callers get a clear OUT_OF_MEMORY where it cannot fit instead of a crash.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "attention/attention_params.h"
#include "core/cuda/device_memory.h"

namespace sacc {

// Bytes of scratch eager attention needs: the [Hq, L, L] fp32 score matrix (the bf16 probabilities overwrite
// it).
uint64_t eager_attention_workspace_bytes(const AttentionShape& shape);

// Allocates that workspace on `device` after checking it against the device's free memory and the allocator
// budget; OUT_OF_MEMORY ("eager attention at L=16384 needs 32.00 GiB for the score matrix; 20.1 GiB free on
// cuda:0 ...") when it cannot fit.
Result<DeviceBuffer> eager_attention_allocate_workspace(const AttentionShape& shape, int device);

// O (and the LSE when params.maybe_lse) on the current device and `stream`. `workspace` must hold
// eager_attention_workspace_bytes(params.shape) bytes.
Status eager_attention_run(const AttentionParams& params, void* workspace,  // [Hq, L, L] fp32 scratch
                           uint64_t workspace_bytes, cudaStream_t stream);

}  // namespace sacc
