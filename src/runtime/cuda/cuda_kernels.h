// The small kernels of the CUDA forward pass (everything but GEMMs and prefill attention). bf16 storage, fp32
// math. All launch on `stream`, never synchronise, and return the launch's cudaError_t (this header stays
// free of fmt/Status, which nvcc's consteval handling cannot compile).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "model/random_weights.h"

namespace sacc::cuda_rt {

// out[i] = bf16(random_value(fill, i)) for i < n: the device half of the shared random-weight definition.
cudaError_t fill_random_bf16(uint16_t* out, int64_t n, const RandomFill& fill, cudaStream_t stream);

// out[t] = table[ids[t]]: ids [n] int32, table [V, D] bf16, out [n, D] bf16 (row stride D).
cudaError_t embed_rows(const int32_t* ids, const uint16_t* table, uint16_t* out, int64_t n, int64_t width,
                       cudaStream_t stream);

// out = x / sqrt(mean(x^2) + eps) * weight per row: x [rows, width] (row stride x_stride), weight [width],
// out [rows, width] (row stride width).
cudaError_t rms_norm(const uint16_t* x, int64_t x_stride, const uint16_t* weight, uint16_t* out, int64_t rows,
                     int64_t width, float eps, cudaStream_t stream);

// In place on rows at positions first_position + r (or maybe_positions[r], int32 on the device, for rows of
// different sequences): x [rows, heads, d] (row stride `stride`): add the bias [heads * d] when given, then,
// when inv_freq [d/2] (fp64) is given, rotate halves (x[i], x[i + d/2]).
cudaError_t bias_rope(uint16_t* x, int64_t stride, int64_t rows, int heads, int head_dim,
                      const uint16_t* maybe_bias, const double* maybe_inv_freq, int64_t first_position,
                      cudaStream_t stream, const int32_t* maybe_positions = nullptr);

// gate_up [rows, 2F] (gate in columns [0, F), up in [F, 2F)): gate <- silu(gate) * up, in place.
cudaError_t swiglu(uint16_t* gate_up, int64_t rows, int64_t ffn, cudaStream_t stream);

// One query row per head at position num_keys - 1 against keys [0, num_keys) of the cache (decode step):
// q [Hq, d] bf16, k/v [num_keys, Hkv, d] bf16, out [Hq, d] bf16. Split over key chunks (partials in
// `scratch`, decode_attention_scratch_bytes) and combined, so long caches use the whole GPU. head_dim 64 or
// 128 (cudaErrorInvalidValue otherwise, or when the scratch is too small).
size_t decode_attention_scratch_bytes(int num_q_heads, int head_dim, int64_t max_keys);
cudaError_t decode_attention(const uint16_t* q, const uint16_t* k, const uint16_t* v, uint16_t* out,
                             int num_q_heads, int num_kv_heads, int head_dim, int64_t num_keys, void* scratch,
                             size_t scratch_bytes, cudaStream_t stream);

// decode_attention for a batch of `rows` sequences in one launch: row r's query q [rows, Hq, d] attends keys
// [0, positions[r]] of its own cache k[r], v[r] ([capacity_r, Hkv, d] bf16); out [rows, Hq, d]. k, v
// [rows] (device arrays of device pointers) and positions [rows] int32 live on the device; max_keys >= every
// positions[r] + 1 sizes the split grid (splits past a row's keys do nothing).
size_t decode_attention_batch_scratch_bytes(int rows, int num_q_heads, int head_dim, int64_t max_keys);
cudaError_t decode_attention_batch(const uint16_t* q, const uint16_t* const* k, const uint16_t* const* v,
                                   const int32_t* positions, uint16_t* out, int rows, int num_q_heads,
                                   int num_kv_heads, int head_dim, int64_t max_keys, void* scratch,
                                   size_t scratch_bytes, cudaStream_t stream);

// Row r of src [rows, width] into its own cache row: dst[r] + positions[r] * width (dst [rows] device
// pointers, positions [rows] int32 on the device).
cudaError_t store_rows(const uint16_t* src, int64_t width, uint16_t* const* dst, const int32_t* positions,
                       int64_t rows, cudaStream_t stream);

}  // namespace sacc::cuda_rt
