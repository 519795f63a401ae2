// Device helpers of the attention benchmark: fresh random bf16 inputs (a counter-based hash, so every
// repetition gets new values at memory speed and no host transfer) and an on-device comparison of two
// outputs.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace sacc::bench {

// Fills `count` bf16 values with uniform values in [-amplitude, amplitude] (never all zeros) from `seed`.
cudaError_t fill_random_bf16(void* data,  // [count] bf16
                             int64_t count, uint64_t seed, float amplitude, cudaStream_t stream);

// ||a - b|| / ||b|| over `count` bf16 values (fp64 sums on the device); synchronises `stream`. A NaN or inf
// in either makes the result NaN.
cudaError_t relative_l2_error_bf16(const void* a, const void* b,  // [count] bf16 each
                                   int64_t count, double* relative_l2, cudaStream_t stream);

}  // namespace sacc::bench
