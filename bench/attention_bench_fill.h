// Device helpers of the attention benchmark: fresh random or structured bf16 inputs (a counter-based hash, so
// every repetition gets new values at memory speed) and an on-device comparison of two outputs.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace sacc::bench {

// Fills `count` bf16 values with uniform values in [-amplitude, amplitude] (never all zeros) from `seed`.
cudaError_t fill_random_bf16(void* data,  // [count] bf16
                             int64_t count, uint64_t seed, float amplitude, cudaStream_t stream);

// The planted structure of a structured input (attention_bench_inputs.h builds it): device pointers.
struct StructuredTables {
  int pairs = 0;                  // rotary pairs per head: dims [0, 2 pairs); then a sink and a vertical dim
  const double* theta = nullptr;  // [pairs] angular frequency of each pair
  const float* k_rotary = nullptr;       // [Hkv, pairs, 2] planted offsets folded into (C_f, S_f) per KV head
  const float* q_weights = nullptr;      // [Hq, 3] sink, vertical, rotary weight of each query head
  const float* column_weight = nullptr;  // [Hkv, L] vertical feature of each key (0 except planted columns)
  int64_t sinks = 0;                     // keys [0, sinks) carry the sink feature
  float rotary = 0, feature = 0, noise = 0;  // amplitudes
};

// Q [L, Hq, d], K and V [L, Hkv, d] (bf16, contiguous) with the planted structure plus fresh noise from
// `seed`. Requires d = 2 (pairs + 1).
cudaError_t fill_structured_qkv(void* q, void* k, void* v, int64_t seq_len, int num_q_heads, int num_kv_heads,
                                int head_dim, const StructuredTables& tables, uint64_t seed,
                                cudaStream_t stream);

// ||a - b|| / ||b|| over `count` bf16 values (fp64 sums on the device); synchronises `stream`. A NaN or inf
// in either makes the result NaN.
cudaError_t relative_l2_error_bf16(const void* a, const void* b,  // [count] bf16 each
                                   int64_t count, double* relative_l2, cudaStream_t stream);

}  // namespace sacc::bench
