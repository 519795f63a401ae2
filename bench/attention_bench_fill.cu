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
