#include <cuda_bf16.h>

#include <cmath>

#include "attention_bench_fill.h"

namespace sacc::bench {
namespace {

// splitmix64: a full-avalanche 64-bit mix, enough for benchmark inputs.
__device__ inline uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

__global__ void fill_kernel(__nv_bfloat16* data,  // [count]
                            int64_t count, uint64_t seed, float amplitude) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride) {
    const uint64_t bits = mix(seed ^ mix(static_cast<uint64_t>(i)));
    const float unit = static_cast<float>(bits >> 40) * (1.0f / 16777216.0f);  // [0, 1) from 24 bits
    data[i] = __float2bfloat16((2.0f * unit - 1.0f) * amplitude);
  }
}

__device__ inline float uniform_pm(uint64_t seed, uint64_t index,
                                   float amplitude) {  // [-amplitude, amplitude)
  const uint64_t bits = mix(seed ^ mix(index));
  return (2.0f * static_cast<float>(bits >> 40) * (1.0f / 16777216.0f) - 1.0f) * amplitude;
}

// One thread per (token, head, dim pair): pair p < pairs is a rotary pair, the last pair holds the sink and
// vertical features. Consecutive threads write consecutive pairs, so stores coalesce.
__global__ void structured_kernel(__nv_bfloat162* q,  // [L, Hq, d/2] pairs
                                  __nv_bfloat162* k,  // [L, Hkv, d/2]
                                  __nv_bfloat162* v,  // [L, Hkv, d/2]
                                  int64_t seq_len, int hq, int hkv, StructuredTables t, uint64_t seed) {
  const int half = t.pairs + 1;
  const int64_t q_pairs = seq_len * hq * half, kv_pairs = seq_len * hkv * half;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < q_pairs + kv_pairs;
       e += stride) {
    const float n0 = uniform_pm(seed, 2 * e, t.noise), n1 = uniform_pm(seed, 2 * e + 1, t.noise);
    if (e < q_pairs) {
      const int p = static_cast<int>(e % half);
      const int h = static_cast<int>(e / half % hq);
      const int64_t i = e / half / hq;
      const float* w = t.q_weights + 3 * h;
      float a, b;
      if (p < t.pairs) {
        double c, s;
        sincos(t.theta[p] * static_cast<double>(i), &s, &c);
        a = n0 + w[2] * t.rotary * static_cast<float>(c);
        b = n1 + w[2] * t.rotary * static_cast<float>(s);
      } else {
        a = n0 + w[0] * t.feature;
        b = n1 + w[1] * t.feature;
      }
      q[e] = __floats2bfloat162_rn(a, b);
      continue;
    }
    const int64_t f = e - q_pairs;
    const int p = static_cast<int>(f % half);
    const int kh = static_cast<int>(f / half % hkv);
    const int64_t j = f / half / hkv;
    float a, b;
    if (p < t.pairs) {
      double c, s;
      sincos(t.theta[p] * static_cast<double>(j), &s, &c);
      const float cf = t.k_rotary[(kh * t.pairs + p) * 2], sf = t.k_rotary[(kh * t.pairs + p) * 2 + 1];
      a = n0 + t.rotary * static_cast<float>(c * cf - s * sf);
      b = n1 + t.rotary * static_cast<float>(s * cf + c * sf);
    } else {
      a = n0 + (j < t.sinks ? t.feature : 0.0f);
      b = n1 + t.feature * t.column_weight[kh * seq_len + j];
    }
    k[f] = __floats2bfloat162_rn(a, b);
    const float unit_variance = 1.7320508f;  // uniform on [-sqrt 3, sqrt 3]
    v[f] = __floats2bfloat162_rn(uniform_pm(~seed, 2 * f, unit_variance),
                                 uniform_pm(~seed, 2 * f + 1, unit_variance));
  }
}

__global__ void squared_sums_kernel(const __nv_bfloat16* a, const __nv_bfloat16* b,  // [count] each
                                    int64_t count, double* sums) {  // [2]: sum (a-b)^2, sum b^2
  double diff2 = 0.0, ref2 = 0.0;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride) {
    const double x = __bfloat162float(a[i]), y = __bfloat162float(b[i]);
    diff2 += (x - y) * (x - y);
    ref2 += y * y;
  }
  for (int offset = 16; offset > 0; offset /= 2) {
    diff2 += __shfl_xor_sync(0xffffffffu, diff2, offset);
    ref2 += __shfl_xor_sync(0xffffffffu, ref2, offset);
  }
  if (threadIdx.x % 32 == 0) {
    atomicAdd(&sums[0], diff2);
    atomicAdd(&sums[1], ref2);
  }
}

constexpr int kThreads = 256;
constexpr int kBlocks = 132 * 16;  // enough resident blocks for every SM of an H200; grid-stride beyond that

}  // namespace

cudaError_t fill_random_bf16(void* data, int64_t count, uint64_t seed, float amplitude, cudaStream_t stream) {
  fill_kernel<<<kBlocks, kThreads, 0, stream>>>(static_cast<__nv_bfloat16*>(data), count, seed, amplitude);
  return cudaGetLastError();
}

cudaError_t fill_structured_qkv(void* q, void* k, void* v, int64_t seq_len, int num_q_heads, int num_kv_heads,
                                int head_dim, const StructuredTables& tables, uint64_t seed,
                                cudaStream_t stream) {
  if (head_dim != 2 * (tables.pairs + 1)) return cudaErrorInvalidValue;
  structured_kernel<<<kBlocks, kThreads, 0, stream>>>(
      static_cast<__nv_bfloat162*>(q), static_cast<__nv_bfloat162*>(k), static_cast<__nv_bfloat162*>(v),
      seq_len, num_q_heads, num_kv_heads, tables, seed);
  return cudaGetLastError();
}

cudaError_t relative_l2_error_bf16(const void* a, const void* b, int64_t count, double* relative_l2,
                                   cudaStream_t stream) {
  double* sums = nullptr;
  cudaError_t error = cudaMallocAsync(&sums, 2 * sizeof(double), stream);
  if (error != cudaSuccess) return error;
  double host[2] = {0.0, 0.0};
  cudaMemsetAsync(sums, 0, 2 * sizeof(double), stream);
  squared_sums_kernel<<<kBlocks, kThreads, 0, stream>>>(static_cast<const __nv_bfloat16*>(a),
                                                        static_cast<const __nv_bfloat16*>(b), count, sums);
  cudaMemcpyAsync(host, sums, sizeof(host), cudaMemcpyDeviceToHost, stream);
  cudaFreeAsync(sums, stream);
  error = cudaStreamSynchronize(stream);
  if (error == cudaSuccess) error = cudaGetLastError();
  *relative_l2 = host[1] > 0.0 ? sqrt(host[0] / host[1]) : (host[0] > 0.0 ? INFINITY : 0.0);
  return error;
}

}  // namespace sacc::bench
