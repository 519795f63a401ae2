#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>

#include "runtime/cuda/bf16_bits.cuh"
#include "runtime/cuda/cuda_kernels.h"

namespace sacc::cuda_rt {
namespace {

int grid_for(int64_t n, int threads) {
  return static_cast<int>(std::min<int64_t>((n + threads - 1) / threads, 65535LL * 16));
}

__global__ void fill_random_kernel(uint16_t* out, int64_t n, RandomFill fill) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    out[i] = to_bf(random_value(fill, static_cast<uint64_t>(i)));
}

__global__ void embed_kernel(const int32_t* ids, const uint16_t* table, uint16_t* out, int64_t width) {
  const int64_t row = blockIdx.x;
  const uint16_t* src = table + static_cast<int64_t>(ids[row]) * width;
  for (int64_t c = threadIdx.x; c < width; c += blockDim.x) out[row * width + c] = src[c];
}

// Block-wide sum over 256 threads.
__device__ float block_sum(float v, float* shared) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  float total = 0.0f;
  for (int w = 0; w < blockDim.x / 32; ++w) total += shared[w];
  return total;
}

__global__ void rms_norm_kernel(const uint16_t* x, int64_t x_stride, const uint16_t* weight, uint16_t* out,
                                int64_t width, float eps) {
  __shared__ float shared[32];
  const uint16_t* row = x + blockIdx.x * x_stride;
  float ss = 0.0f;
  for (int64_t c = threadIdx.x; c < width; c += blockDim.x) {
    const float v = to_f(row[c]);
    ss += v * v;
  }
  const float inv = rsqrtf(block_sum(ss, shared) / static_cast<float>(width) + eps);
  uint16_t* o = out + blockIdx.x * width;
  for (int64_t c = threadIdx.x; c < width; c += blockDim.x)
    o[c] = to_bf(to_f(row[c]) * inv * to_f(weight[c]));
}

// One warp per row with 16-byte loads (the width a multiple of 8): a 256-thread block per row left most of
// the memory bandwidth unused at hidden sizes near 1K.
constexpr int kNormRowsPerBlock = 8;

__global__ void rms_norm_vec8_kernel(const uint16_t* x, int64_t x_stride, const uint16_t* weight,
                                     uint16_t* out, int64_t rows, int64_t width, float eps) {
  const int64_t row = blockIdx.x * int64_t(kNormRowsPerBlock) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= rows) return;
  const uint4* in = reinterpret_cast<const uint4*>(x + row * x_stride);
  const uint4* w = reinterpret_cast<const uint4*>(weight);
  uint4* o = reinterpret_cast<uint4*>(out + row * width);
  const int64_t vectors = width / 8;
  float ss = 0.0f;
  for (int64_t v = lane; v < vectors; v += 32) {
    const uint4 a = in[v];
    const uint32_t* aw = &a.x;
    for (int e = 0; e < 4; ++e) {
      const float lo = to_f(aw[e] & 0xffffu), hi = to_f(aw[e] >> 16);
      ss += lo * lo + hi * hi;
    }
  }
  for (int offset = 16; offset > 0; offset >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, offset);
  const float inv = rsqrtf(ss / static_cast<float>(width) + eps);
  for (int64_t v = lane; v < vectors; v += 32) {
    const uint4 a = in[v], g = w[v];
    const uint32_t* aw = &a.x;
    const uint32_t* gw = &g.x;
    uint4 r;
    uint32_t* rw = &r.x;
    for (int e = 0; e < 4; ++e) {
      const uint16_t lo = to_bf(to_f(aw[e] & 0xffffu) * inv * to_f(gw[e] & 0xffffu));
      const uint16_t hi = to_bf(to_f(aw[e] >> 16) * inv * to_f(gw[e] >> 16));
      rw[e] = static_cast<uint32_t>(lo) | (static_cast<uint32_t>(hi) << 16);
    }
    o[v] = r;
  }
}

// Block (threads per row, rows per block): a block of one row's 32 threads left most of each SM idle.
// Row r's position: positions[r] when given (a batch of sequences), else first_position + r.
__global__ void bias_rope_kernel(uint16_t* x, int64_t stride, int64_t rows, int heads, int head_dim,
                                 const uint16_t* bias, const double* inv_freq, int64_t first_position,
                                 const int32_t* positions) {
  const int64_t r = blockIdx.x * int64_t(blockDim.y) + threadIdx.y;
  if (r >= rows) return;
  uint16_t* row = x + r * stride;
  const int half = head_dim / 2;
  if (inv_freq == nullptr) {
    for (int c = threadIdx.x; c < heads * head_dim; c += blockDim.x)
      row[c] = to_bf(to_f(row[c]) + to_f(bias[c]));
    return;
  }
  // One thread per rotary pair i: its angle is computed once and applied to that pair of every head.
  const double position = static_cast<double>(positions ? positions[r] : first_position + r);
  for (int i = threadIdx.x; i < half; i += blockDim.x) {
    // The angle in double: a float angle at position 1e5 is off by ~0.01 rad.
    double s, c;
    sincos(position * inv_freq[i], &s, &c);
    const float cf = static_cast<float>(c), sf = static_cast<float>(s);
    for (int h = 0; h < heads; ++h) {
      const int lo = h * head_dim + i, hi = lo + half;
      float a = to_f(row[lo]), b = to_f(row[hi]);
      if (bias) {
        a += to_f(bias[lo]);
        b += to_f(bias[hi]);
      }
      row[lo] = to_bf(a * cf - b * sf);
      row[hi] = to_bf(b * cf + a * sf);
    }
  }
}

__device__ __forceinline__ float silu_times(float gate, float up) {
  return gate / (1.0f + __expf(-gate)) * up;
}

// gate_up [rows, 2F]: each row's gate half is overwritten with silu(gate) * up. Memory-bound; the vector form
// moves 8 bf16 (16 bytes) per load, the scalar form takes any F.
__global__ void swiglu_vec8_kernel(uint16_t* gate_up, int64_t rows, int64_t ffn) {
  const int64_t per_row = ffn / 8, n = rows * per_row;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / per_row, j = (i - r * per_row) * 8;
    uint4* g = reinterpret_cast<uint4*>(gate_up + r * 2 * ffn + j);
    const uint4 gv = *g, uv = *reinterpret_cast<const uint4*>(gate_up + r * 2 * ffn + ffn + j);
    const uint32_t* gw = &gv.x;
    const uint32_t* uw = &uv.x;
    uint4 out;
    uint32_t* ow = &out.x;
    for (int w = 0; w < 4; ++w) {
      const float lo = silu_times(to_f(gw[w] & 0xffffu), to_f(uw[w] & 0xffffu));
      const float hi = silu_times(to_f(gw[w] >> 16), to_f(uw[w] >> 16));
      ow[w] = static_cast<uint32_t>(to_bf(lo)) | (static_cast<uint32_t>(to_bf(hi)) << 16);
    }
    *g = out;
  }
}

__global__ void swiglu_kernel(uint16_t* gate_up, int64_t rows, int64_t ffn) {
  const int64_t n = rows * ffn;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / ffn, j = i % ffn;
    uint16_t* g = gate_up + r * 2 * ffn + j;
    *g = to_bf(silu_times(to_f(*g), to_f(g[ffn])));
  }
}

// dst[r][positions[r] * width + c] = src[r * width + c]: each row into its own cache.
__global__ void store_rows_kernel(const uint16_t* src, int64_t width, uint16_t* const* dst,
                                  const int32_t* positions) {
  const int64_t r = blockIdx.x;
  uint16_t* out = dst[r] + static_cast<int64_t>(positions[r]) * width;
  for (int64_t c = threadIdx.x; c < width; c += blockDim.x) out[c] = src[r * width + c];
}

}  // namespace

cudaError_t fill_random_bf16(uint16_t* out, int64_t n, const RandomFill& fill, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  fill_random_kernel<<<grid_for(n, 256), 256, 0, stream>>>(out, n, fill);
  return cudaGetLastError();
}

cudaError_t embed_rows(const int32_t* ids, const uint16_t* table, uint16_t* out, int64_t n, int64_t width,
                       cudaStream_t stream) {
  embed_kernel<<<static_cast<unsigned>(n), 256, 0, stream>>>(ids, table, out, width);
  return cudaGetLastError();
}

cudaError_t rms_norm(const uint16_t* x, int64_t x_stride, const uint16_t* weight, uint16_t* out, int64_t rows,
                     int64_t width, float eps, cudaStream_t stream) {
  if (rows == 0) return cudaSuccess;
  const bool vectors = width % 8 == 0 && x_stride % 8 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0 &&
                       reinterpret_cast<uintptr_t>(weight) % 16 == 0 &&
                       reinterpret_cast<uintptr_t>(out) % 16 == 0;
  if (vectors) {
    const auto blocks = static_cast<unsigned>((rows + kNormRowsPerBlock - 1) / kNormRowsPerBlock);
    rms_norm_vec8_kernel<<<blocks, 32 * kNormRowsPerBlock, 0, stream>>>(x, x_stride, weight, out, rows, width,
                                                                        eps);
  } else {
    rms_norm_kernel<<<static_cast<unsigned>(rows), 256, 0, stream>>>(x, x_stride, weight, out, width, eps);
  }
  return cudaGetLastError();
}

cudaError_t bias_rope(uint16_t* x, int64_t stride, int64_t rows, int heads, int head_dim,
                      const uint16_t* maybe_bias, const double* maybe_inv_freq, int64_t first_position,
                      cudaStream_t stream, const int32_t* maybe_positions) {
  if (!maybe_bias && !maybe_inv_freq) return cudaSuccess;
  if (rows == 0) return cudaSuccess;
  const int per_row = maybe_inv_freq ? std::min(256, std::max(32, head_dim / 2)) : 64;
  const dim3 block(per_row, 256 / per_row);
  const auto blocks = static_cast<unsigned>((rows + block.y - 1) / block.y);
  bias_rope_kernel<<<blocks, block, 0, stream>>>(x, stride, rows, heads, head_dim, maybe_bias, maybe_inv_freq,
                                                 first_position, maybe_positions);
  return cudaGetLastError();
}

cudaError_t swiglu(uint16_t* gate_up, int64_t rows, int64_t ffn, cudaStream_t stream) {
  if (rows * ffn == 0) return cudaSuccess;
  if (ffn % 8 == 0 && reinterpret_cast<uintptr_t>(gate_up) % 16 == 0)
    swiglu_vec8_kernel<<<grid_for(rows * ffn / 8, 256), 256, 0, stream>>>(gate_up, rows, ffn);
  else
    swiglu_kernel<<<grid_for(rows * ffn, 256), 256, 0, stream>>>(gate_up, rows, ffn);
  return cudaGetLastError();
}

cudaError_t store_rows(const uint16_t* src, int64_t width, uint16_t* const* dst, const int32_t* positions,
                       int64_t rows, cudaStream_t stream) {
  if (rows == 0) return cudaSuccess;
  store_rows_kernel<<<static_cast<unsigned>(rows), 128, 0, stream>>>(src, width, dst, positions);
  return cudaGetLastError();
}

}  // namespace sacc::cuda_rt
