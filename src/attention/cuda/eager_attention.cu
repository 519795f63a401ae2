// The causal softmax of eager attention (host code lives in eager_attention.cpp).
#include <cuda_bf16.h>

#include <cmath>

#include "attention/cuda/eager_softmax.h"

namespace sacc {
namespace {

// The softmax is bandwidth-bound (it streams the [Hq, L, L] matrix twice); 256 threads per row keep the loads
// coalesced and give enough blocks (Hq * L) to fill every SM.
constexpr int kSoftmaxThreads = 256;
static_assert(kSoftmaxThreads % 32 == 0, "whole warps");

// (max, sum of exp(x - max)) pairs combine associatively; an empty side is (-inf, 0).
__device__ inline void combine(float& m, float& s, float other_m, float other_s) {
  const float top = fmaxf(m, other_m);
  if (top == -INFINITY) return;
  s = s * expf(m - top) + other_s * expf(other_m - top);
  m = top;
}

// One block per (query head h, row i) of scores [Hq, L, L] (already scaled). Pass 1: max and sum over keys
// 0..i. Pass 2: rewrite the row as bf16 probabilities (0 above the diagonal) into the first half of the row's
// own storage, so P has a row stride of 2L bf16 elements. In-place is safe chunk by chunk: the bf16 writes of
// chunk [c*T, (c+1)*T) land on fp32 elements [c*T/2, (c+1)*T/2), which every thread has read before the
// barrier.
__global__ void __launch_bounds__(kSoftmaxThreads)
    causal_softmax_kernel(float* scores,     // [Hq, L, L] fp32 in, [Hq, L, 2L] bf16 out (first L of each row)
                          int64_t seq_len,   // L
                          float* maybe_lse)  // [Hq, L]
{
  const int64_t row = blockIdx.x;  // h * L + i
  const int64_t i = row % seq_len;
  float* s = scores + row * seq_len;

  float m = -INFINITY, sum = 0.0f;
  for (int64_t j = threadIdx.x; j <= i; j += kSoftmaxThreads) combine(m, sum, s[j], 1.0f);
  for (int offset = 16; offset > 0; offset /= 2) {
    combine(m, sum, __shfl_xor_sync(0xffffffffu, m, offset), __shfl_xor_sync(0xffffffffu, sum, offset));
  }
  __shared__ float warp_m[kSoftmaxThreads / 32], warp_sum[kSoftmaxThreads / 32];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) {
    warp_m[warp] = m;
    warp_sum[warp] = sum;
  }
  __syncthreads();
  m = warp_m[0];
  sum = warp_sum[0];
  for (int w = 1; w < kSoftmaxThreads / 32; ++w) combine(m, sum, warp_m[w], warp_sum[w]);
  if (maybe_lse && threadIdx.x == 0) maybe_lse[row] = m + logf(sum);

  const float inv_sum = 1.0f / sum;
  __nv_bfloat16* p = reinterpret_cast<__nv_bfloat16*>(s);
  for (int64_t base = 0; base < seq_len; base += kSoftmaxThreads) {
    const int64_t j = base + threadIdx.x;
    const float value = j <= i ? expf(s[j] - m) * inv_sum : 0.0f;
    __syncthreads();
    if (j < seq_len) p[j] = __float2bfloat16(value);
  }
}

}  // namespace

cudaError_t launch_eager_causal_softmax(float* scores, int64_t seq_len, int num_heads, float* maybe_lse,
                                        cudaStream_t stream) {
  causal_softmax_kernel<<<static_cast<unsigned>(num_heads * seq_len), kSoftmaxThreads, 0, stream>>>(
      scores, seq_len, maybe_lse);
  return cudaGetLastError();
}

}  // namespace sacc
