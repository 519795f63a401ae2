#include "attention/cuda/flash_suffix_split.h"

#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "attention/cuda/flash_config.h"

namespace sacc::flash {
namespace {

// A split shorter than this many key blocks spends more on its own prologue and epilogue than it saves.
constexpr int kMinSplitBlocks = 8;
constexpr int kMaxSplits = 16;
constexpr size_t kAlign = 256;

size_t align_up(size_t bytes) {
  return (bytes + kAlign - 1) / kAlign * kAlign;
}

int64_t suffix_rows(const FlashParams& p) {
  return p.seq_len - p.q_begin;
}

size_t partial_o_bytes(const FlashParams& p, int splits, int head_dim) {
  return align_up(static_cast<size_t>(splits) * suffix_rows(p) * p.num_q_heads * head_dim * sizeof(uint16_t));
}

__device__ __forceinline__ float bf16_to_f(uint16_t v) {
  return __uint_as_float(static_cast<uint32_t>(v) << 16);
}

// One warp per (row, head): LSE = log sum_s exp(LSE_s), O = sum_s exp(LSE_s - LSE) O_s.
__global__ void combine_kernel(
    const uint16_t* __restrict__ partial_o,  // [splits, n, Hq, d]
    const float* __restrict__ partial_lse,   // [splits, Hq, n]
    int splits, int64_t n, int heads, int head_dim,
    uint16_t* __restrict__ o,  // row r, head h at r * o_token_stride + h * o_head_stride
    int64_t o_token_stride, int64_t o_head_stride,
    float* __restrict__ maybe_lse) {  // [Hq, n]
  const int64_t w = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (w >= n * heads) return;
  const int64_t row = w / heads;
  const int head = static_cast<int>(w % heads);
  float m = -INFINITY;
  for (int s = 0; s < splits; ++s)
    m = fmaxf(m, partial_lse[(static_cast<int64_t>(s) * heads + head) * n + row]);
  float total = 0.0f;
  for (int s = 0; s < splits; ++s)
    total += expf(partial_lse[(static_cast<int64_t>(s) * heads + head) * n + row] - m);
  const float lse = m + logf(total);
  for (int c = lane; c < head_dim; c += 32) {
    float acc = 0.0f;
    for (int s = 0; s < splits; ++s) {
      const float weight = expf(partial_lse[(static_cast<int64_t>(s) * heads + head) * n + row] - lse);
      acc +=
          weight * bf16_to_f(partial_o[((static_cast<int64_t>(s) * n + row) * heads + head) * head_dim + c]);
    }
    o[row * o_token_stride + head * o_head_stride + c] = __bfloat16_as_ushort(__float2bfloat16_rn(acc));
  }
  if (maybe_lse != nullptr && lane == 0) maybe_lse[static_cast<int64_t>(head) * n + row] = lse;
}

}  // namespace

int suffix_key_splits(const FlashParams& p, int items, int num_sms, int head_dim, size_t workspace_bytes) {
  if (p.q_begin <= 0 || items <= 0) return 1;
  const int by_sms = num_sms / items;
  const int by_keys = p.q_begin / kBlockN / kMinSplitBlocks;
  int splits = std::min({by_sms, by_keys, kMaxSplits});
  while (splits > 1 && suffix_split_bytes(p, splits, head_dim) > workspace_bytes) --splits;
  return std::max(splits, 1);
}

size_t suffix_split_bytes(const FlashParams& p, int splits, int head_dim) {
  return partial_o_bytes(p, splits, head_dim) +
         align_up(static_cast<size_t>(splits) * p.num_q_heads * suffix_rows(p) * sizeof(float));
}

FlashParams split_params(const FlashParams& p, int splits, int head_dim, void* workspace) {
  FlashParams s = p;
  auto* base = static_cast<unsigned char*>(workspace);
  s.key_splits = splits;
  s.o = reinterpret_cast<uint16_t*>(base);
  s.o_head_stride = head_dim;
  s.o_token_stride = static_cast<int64_t>(p.num_q_heads) * head_dim;
  s.o_split_stride = suffix_rows(p) * s.o_token_stride;
  s.maybe_lse = reinterpret_cast<float*>(base + partial_o_bytes(p, splits, head_dim));
  return s;
}

cudaError_t combine_key_splits(const FlashParams& p, int splits, int head_dim, const void* workspace,
                               cudaStream_t stream) {
  const auto* base = static_cast<const unsigned char*>(workspace);
  const int64_t n = suffix_rows(p);
  constexpr int kThreads = 256;
  const int64_t warps = n * p.num_q_heads;
  const auto blocks = static_cast<unsigned>((warps * 32 + kThreads - 1) / kThreads);
  combine_kernel<<<blocks, kThreads, 0, stream>>>(
      reinterpret_cast<const uint16_t*>(base),
      reinterpret_cast<const float*>(base + partial_o_bytes(p, splits, head_dim)), splits, n, p.num_q_heads,
      head_dim, p.o, p.o_token_stride, p.o_head_stride, p.maybe_lse);
  return cudaGetLastError();
}

}  // namespace sacc::flash
