// Launcher of eager attention's causal softmax kernel (eager_attention.cu), kept apart so the host code can
// be plain C++.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace sacc {

// Turns scaled scores [num_heads, L, L] fp32 into causal softmax probabilities written in place as bf16 with
// a row stride of 2L elements (the first half of each fp32 row), and the natural-log LSE [num_heads, L] when
// maybe_lse.
cudaError_t launch_eager_causal_softmax(
    float* scores,  // [num_heads, L, L] fp32 in, [num_heads, L, 2L] bf16 out
    int64_t seq_len, int num_heads,
    float* maybe_lse,  // [num_heads, L]
    cudaStream_t stream);

}  // namespace sacc
