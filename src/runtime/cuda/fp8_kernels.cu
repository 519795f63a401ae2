#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <algorithm>

#include "runtime/cuda/fp8_kernels.h"

namespace sacc::cuda_rt {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float bf16_to_f(uint32_t bits16) {
  return __uint_as_float(bits16 << 16);
}

// The 8 bf16 of a 16-byte word as floats.
__device__ __forceinline__ void unpack8(const uint4& v, float (&f)[8]) {
  const uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    f[2 * i] = bf16_to_f(w[i] & 0xffffu);
    f[2 * i + 1] = bf16_to_f(w[i] >> 16);
  }
}

__device__ float block_max(float v, float* shared) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  float m = 0.0f;
  for (int w = 0; w < kThreads / 32; ++w) m = fmaxf(m, shared[w]);
  return m;
}

// One block per row: absmax over the row (16-byte loads), then scale and convert 8 values per store.
__global__ void quantize_rows_kernel(const uint16_t* x, int64_t ld, int64_t cols, uint8_t* q, float* scale) {
  __shared__ float shared[kThreads / 32];
  const auto* row = reinterpret_cast<const uint4*>(x + blockIdx.x * ld);
  const int64_t vecs = cols / 8;
  float amax = 0.0f;
  for (int64_t i = threadIdx.x; i < vecs; i += kThreads) {
    float f[8];
    unpack8(row[i], f);
#pragma unroll
    for (int k = 0; k < 8; ++k) amax = fmaxf(amax, fabsf(f[k]));
  }
  amax = block_max(amax, shared);
  const float s = amax > 0.0f ? amax / kE4m3Max : 1.0f;
  const float inv = amax > 0.0f ? kE4m3Max / amax : 1.0f;
  if (threadIdx.x == 0) scale[blockIdx.x] = s;
  auto* out = reinterpret_cast<uint2*>(q + blockIdx.x * cols);
  for (int64_t i = threadIdx.x; i < vecs; i += kThreads) {
    float f[8];
    unpack8(row[i], f);
    uint32_t packed[2] = {0, 0};
#pragma unroll
    for (int k = 0; k < 8; k += 2) {
      const __nv_fp8x2_storage_t pair =
          __nv_cvt_float2_to_fp8x2(make_float2(f[k] * inv, f[k + 1] * inv), __NV_SATFINITE, __NV_E4M3);
      packed[k / 4] |= static_cast<uint32_t>(pair) << (16 * ((k / 2) % 2));
    }
    out[i] = make_uint2(packed[0], packed[1]);
  }
}

__global__ void dequantize_outer_kernel(const uint16_t* raw, const float* row_scale, const float* col_scale,
                                        uint16_t* y, int64_t ldy, int64_t rows, int64_t cols,
                                        bool accumulate) {
  const int64_t n = rows * cols;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / cols, c = i % cols;
    float v = bf16_to_f(raw[i]) * row_scale[r] * col_scale[c];
    uint16_t* out = y + r * ldy + c;
    if (accumulate) v += bf16_to_f(*out);
    *out = __bfloat16_as_ushort(__float2bfloat16_rn(v));
  }
}

}  // namespace

cudaError_t quantize_rows_e4m3(const uint16_t* x, int64_t ld, int64_t rows, int64_t cols, uint8_t* q,
                               float* scale, cudaStream_t stream) {
  if (rows == 0) return cudaSuccess;
  if (cols % 8 != 0 || ld % 8 != 0 || rows > 0x7fffffff) return cudaErrorInvalidValue;
  quantize_rows_kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(x, ld, cols, q, scale);
  return cudaGetLastError();
}

cudaError_t dequantize_outer(const uint16_t* raw, const float* row_scale, const float* col_scale, uint16_t* y,
                             int64_t ldy, int64_t rows, int64_t cols, bool accumulate, cudaStream_t stream) {
  const int64_t n = rows * cols;
  if (n == 0) return cudaSuccess;
  const int blocks = static_cast<int>(std::min<int64_t>((n + kThreads - 1) / kThreads, 65535LL * 16));
  dequantize_outer_kernel<<<blocks, kThreads, 0, stream>>>(raw, row_scale, col_scale, y, ldy, rows, cols,
                                                           accumulate);
  return cudaGetLastError();
}

}  // namespace sacc::cuda_rt
