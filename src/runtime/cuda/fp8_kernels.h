// The elementwise halves of the FP8 (e4m3) linear layers: per-row absmax quantisation (the weights once at
// load, per output channel; the activations per token before each linear layer) and, where cuBLASLt cannot
// apply per-row/per-column scales in its epilogue, the dequantisation after the GEMM. Launch on `stream`,
// never synchronise, return the launch's cudaError_t (no fmt/Status here, like cuda_kernels.h).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace sacc::cuda_rt {

// The largest finite e4m3 value: a row's absmax maps onto it.
constexpr float kE4m3Max = 448.0f;

// x [rows, cols] bf16 (row stride ld) -> q [rows, cols] e4m3 (contiguous) and scale [rows] fp32 with
// x[r, c] ~= q[r, c] * scale[r]: scale = absmax(row) / 448 (1 for an all-zero row), q = x / scale rounded to
// nearest, saturating. One fused pass per row (absmax, then convert). cols and ld multiples of 8
// (cudaErrorInvalidValue otherwise), x 16-byte aligned.
cudaError_t quantize_rows_e4m3(const uint16_t* x, int64_t ld, int64_t rows, int64_t cols, uint8_t* q,
                               float* scale, cudaStream_t stream);

// y[r, c] (+)= raw[r, c] * row_scale[r] * col_scale[c]: raw [rows, cols] bf16 (contiguous), y [rows, cols]
// bf16 (row stride ldy), row_scale [rows], col_scale [cols] fp32; `accumulate` adds to y.
cudaError_t dequantize_outer(const uint16_t* raw, const float* row_scale, const float* col_scale, uint16_t* y,
                             int64_t ldy, int64_t rows, int64_t cols, bool accumulate, cudaStream_t stream);

}  // namespace sacc::cuda_rt
