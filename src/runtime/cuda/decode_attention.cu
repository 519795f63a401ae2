// Decode attention (one query row per head against the KV cache; or a batch of rows, each against its own
// sequence's cache), split over key chunks.
//
// One CTA takes one KV head, up to kMaxGroup of its query heads, and kDecodeChunk keys: the group's queries
// share every K and V load (GQA), and each warp scores 32 keys at once (a lane per key) so the loads of a
// tile are in flight together instead of one key's load waiting behind the previous key's softmax. The
// partial results (running max, sum, unnormalised output per query head and chunk) are combined by a second
// kernel.
#include <algorithm>
#include <cmath>

#include "runtime/cuda/bf16_bits.cuh"
#include "runtime/cuda/cuda_kernels.h"

namespace sacc::cuda_rt {
namespace {

constexpr int kDecodeChunk = 256;  // keys per CTA: 128K keys -> 500 chunks per KV head
constexpr int kDecodeWarps = 4;
constexpr int kMaxGroup = 8;   // query heads per CTA; larger GQA groups take several CTAs per KV head
constexpr int kTileKeys = 32;  // keys a warp scores at once, one per lane

// 8 bf16 (one 16-byte load) dotted with 8 fp32.
__device__ __forceinline__ float dot8(const uint4 k8, const float* q) {
  const uint32_t w[4] = {k8.x, k8.y, k8.z, k8.w};
  float s = 0.0f;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    s += q[2 * i] * __uint_as_float(w[i] << 16);
    s += q[2 * i + 1] * __uint_as_float(w[i] & 0xFFFF0000u);
  }
  return s;
}

// One launch: `rows` query rows (blockIdx.z), each of its own sequence: one cache (k, v, num_keys) for a
// single row, or per-row caches and positions (a batch of sequences, arrays on the device).
struct DecodeArgs {
  const uint16_t* q = nullptr;  // [rows, Hq, d]
  const uint16_t* k = nullptr;  // [num_keys, Hkv, d] (single row)
  const uint16_t* v = nullptr;
  int64_t num_keys = 0;
  const uint16_t* const* k_rows = nullptr;  // [rows] -> [capacity_r, Hkv, d] (batch)
  const uint16_t* const* v_rows = nullptr;
  const int32_t* positions = nullptr;  // [rows]: row r attends keys [0, positions[r]]
  float* partial = nullptr;            // [rows, Hq, chunks, d + 2]
  int num_q_heads = 0, num_kv_heads = 0, chunks = 0;
  float scale_log2 = 0.0f;
};

// Partials per (row, query head, chunk): [0] m (max of the scaled log2 scores), [1] l (sum of 2^(s - m)),
// [2 + c] the unnormalised output o[c]. A chunk past a row's keys writes m = -inf, which the combine skips.
template <int kHeadDim>
__global__ void __launch_bounds__(32 * kDecodeWarps) decode_chunk_kernel(const DecodeArgs a) {
  constexpr int kPerLane = kHeadDim / 32;  // output columns a lane accumulates
  constexpr int kVectors = kHeadDim / 8;   // 16-byte loads per K row
  const int num_q_heads = a.num_q_heads, num_kv_heads = a.num_kv_heads, chunks = a.chunks;
  const int row = blockIdx.z;
  const uint16_t* __restrict__ q = a.q + static_cast<int64_t>(row) * num_q_heads * kHeadDim;
  const uint16_t* __restrict__ k = a.k_rows ? a.k_rows[row] : a.k;
  const uint16_t* __restrict__ v = a.v_rows ? a.v_rows[row] : a.v;
  const int64_t num_keys = a.positions ? static_cast<int64_t>(a.positions[row]) + 1 : a.num_keys;
  float* __restrict__ partial = a.partial + static_cast<int64_t>(row) * num_q_heads * chunks * (kHeadDim + 2);
  const float scale_log2 = a.scale_log2;
  const int group = num_q_heads / num_kv_heads;
  const int ctas_per_kv = (group + kMaxGroup - 1) / kMaxGroup;
  const int kvh = blockIdx.x / ctas_per_kv;
  const int first = (blockIdx.x % ctas_per_kv) * kMaxGroup;  // within the group
  const int count = min(kMaxGroup, group - first);
  const int head0 = kvh * group + first;  // this CTA's query heads: head0 .. head0 + count - 1
  const int chunk = blockIdx.y;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (static_cast<int64_t>(chunk) * kDecodeChunk >= num_keys) {  // a shorter row of a batch
    for (int g = threadIdx.x; g < count; g += blockDim.x)
      partial[(static_cast<int64_t>(head0 + g) * chunks + chunk) * (kHeadDim + 2)] = -INFINITY;
    return;
  }

  __shared__ float q_s[kMaxGroup][kHeadDim];  // scaled queries
  for (int i = threadIdx.x; i < count * kHeadDim; i += blockDim.x)
    q_s[i / kHeadDim][i % kHeadDim] = to_f(q[static_cast<int64_t>(head0) * kHeadDim + i]) * scale_log2;
  __syncthreads();

  float m[kMaxGroup], l[kMaxGroup], acc[kMaxGroup][kPerLane];
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) {
    m[g] = -INFINITY;
    l[g] = 0.0f;
#pragma unroll
    for (int e = 0; e < kPerLane; ++e) acc[g][e] = 0.0f;
  }
  const int64_t token_stride = static_cast<int64_t>(num_kv_heads) * kHeadDim;
  const int64_t begin = static_cast<int64_t>(chunk) * kDecodeChunk;
  const int64_t end = num_keys < begin + kDecodeChunk ? num_keys : begin + kDecodeChunk;
  for (int64_t tile = begin + warp * kTileKeys; tile < end; tile += kDecodeWarps * kTileKeys) {
    const int64_t key = tile + lane;
    const int live = end - tile < kTileKeys ? static_cast<int>(end - tile) : kTileKeys;  // keys of this tile
    float s[kMaxGroup];
#pragma unroll
    for (int g = 0; g < kMaxGroup; ++g) s[g] = 0.0f;
    if (lane < live) {
      const uint4* row = reinterpret_cast<const uint4*>(k + key * token_stride + kvh * kHeadDim);
      uint4 k8[kVectors];
#pragma unroll
      for (int i = 0; i < kVectors; ++i) k8[i] = row[i];
#pragma unroll
      for (int g = 0; g < kMaxGroup; ++g) {
        if (g < count) {
#pragma unroll
          for (int i = 0; i < kVectors; ++i) s[g] += dot8(k8[i], &q_s[g][8 * i]);
        }
      }
    }
    // Online softmax per query head over the tile's keys (a lane past the tile scores -inf: p = 0).
    float p[kMaxGroup];
#pragma unroll
    for (int g = 0; g < kMaxGroup; ++g) {
      if (g >= count) break;
      const float score = lane < live ? s[g] : -INFINITY;
      float tile_max = score;
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) tile_max = fmaxf(tile_max, __shfl_xor_sync(0xFFFFFFFFu, tile_max, o));
      const float m_new = fmaxf(m[g], tile_max);
      const float correction = exp2f(m[g] - m_new);
      p[g] = exp2f(score - m_new);
      float sum = p[g];
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xFFFFFFFFu, sum, o);
      l[g] = l[g] * correction + sum;
      m[g] = m_new;
#pragma unroll
      for (int e = 0; e < kPerLane; ++e) acc[g][e] *= correction;
    }
    // P . V: lane owns columns lane * kPerLane .. + kPerLane; key t's weight comes from lane t.
    const uint16_t* v_tile = v + tile * token_stride + kvh * kHeadDim + lane * kPerLane;
#pragma unroll 8
    for (int t = 0; t < kTileKeys; ++t) {
      if (t >= live) break;
      float vf[kPerLane];
      if constexpr (kPerLane == 2) {
        const uint32_t pair = *reinterpret_cast<const uint32_t*>(v_tile + t * token_stride);
        vf[0] = __uint_as_float(pair << 16);
        vf[1] = __uint_as_float(pair & 0xFFFF0000u);
      } else {
        const uint2 quad = *reinterpret_cast<const uint2*>(v_tile + t * token_stride);
        vf[0] = __uint_as_float(quad.x << 16);
        vf[1] = __uint_as_float(quad.x & 0xFFFF0000u);
        vf[2] = __uint_as_float(quad.y << 16);
        vf[3] = __uint_as_float(quad.y & 0xFFFF0000u);
      }
#pragma unroll
      for (int g = 0; g < kMaxGroup; ++g) {
        if (g >= count) break;
        const float weight = __shfl_sync(0xFFFFFFFFu, p[g], t);
#pragma unroll
        for (int e = 0; e < kPerLane; ++e) acc[g][e] += weight * vf[e];
      }
    }
  }

  // The warps' partials into one per query head.
  __shared__ float m_s[kDecodeWarps][kMaxGroup], l_s[kDecodeWarps][kMaxGroup];
  __shared__ float o_s[kDecodeWarps][kMaxGroup][kHeadDim];
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) {
    if (g >= count) break;
    if (lane == 0) {
      m_s[warp][g] = m[g];
      l_s[warp][g] = l[g];
    }
#pragma unroll
    for (int e = 0; e < kPerLane; ++e) o_s[warp][g][lane * kPerLane + e] = acc[g][e];
  }
  __syncthreads();
  for (int i = threadIdx.x; i < count * kHeadDim; i += blockDim.x) {
    const int g = i / kHeadDim, c = i % kHeadDim;
    float mm = -INFINITY;
    for (int w = 0; w < kDecodeWarps; ++w) mm = fmaxf(mm, m_s[w][g]);
    float o = 0.0f, total = 0.0f;
    for (int w = 0; w < kDecodeWarps; ++w) {
      if (m_s[w][g] == -INFINITY) continue;  // a warp with no key in this chunk
      const float scale = exp2f(m_s[w][g] - mm);
      o += o_s[w][g][c] * scale;
      total += l_s[w][g] * scale;
    }
    float* out = partial + (static_cast<int64_t>(head0 + g) * chunks + chunk) * (kHeadDim + 2);
    out[2 + c] = o;
    if (c == 0) {
      out[0] = mm;
      out[1] = total;
    }
  }
}

// The CTA (head blockIdx.x, row blockIdx.y): partial [rows, Hq, chunks, d + 2] -> out [rows, Hq, d].
__global__ void decode_combine_kernel(const float* __restrict__ partial, uint16_t* __restrict__ out,
                                      int chunks, int head_dim) {
  const int64_t h = static_cast<int64_t>(blockIdx.y) * gridDim.x + blockIdx.x;  // (row, head) over all rows
  const float* p = partial + h * chunks * (head_dim + 2);
  float m = -INFINITY;
  for (int s = 0; s < chunks; ++s) m = fmaxf(m, p[s * (head_dim + 2)]);
  for (int c = threadIdx.x; c < head_dim; c += blockDim.x) {
    float l = 0.0f, o = 0.0f;
    for (int s = 0; s < chunks; ++s) {
      const float* ps = p + s * (head_dim + 2);
      if (ps[0] == -INFINITY) continue;
      const float w = exp2f(ps[0] - m);
      l += ps[1] * w;
      o += ps[2 + c] * w;
    }
    out[h * head_dim + c] = to_bf(o / l);
  }
}

int64_t chunks_for(int64_t num_keys) {
  return (num_keys + kDecodeChunk - 1) / kDecodeChunk;
}

}  // namespace

size_t decode_attention_scratch_bytes(int num_q_heads, int head_dim, int64_t max_keys) {
  return static_cast<size_t>(num_q_heads) * chunks_for(max_keys) * (head_dim + 2) * sizeof(float);
}

namespace {

// Checks and launches both kernels for `rows` rows; a.num_keys (single) or max_keys (batch) sizes the grid.
cudaError_t launch_decode(DecodeArgs a, uint16_t* out, int rows, int head_dim, int64_t max_keys,
                          void* scratch, size_t scratch_bytes, cudaStream_t stream) {
  if (rows < 1 || rows > 65535 || max_keys < 1 || a.num_kv_heads < 1 || a.num_q_heads % a.num_kv_heads != 0)
    return cudaErrorInvalidValue;
  if (static_cast<size_t>(rows) * decode_attention_scratch_bytes(a.num_q_heads, head_dim, max_keys) >
      scratch_bytes)
    return cudaErrorInvalidValue;
  a.chunks = static_cast<int>(chunks_for(max_keys));
  a.scale_log2 = 1.4426950408889634f / std::sqrt(static_cast<float>(head_dim));
  a.partial = static_cast<float*>(scratch);
  const int group = a.num_q_heads / a.num_kv_heads;
  const dim3 grid(a.num_kv_heads * ((group + kMaxGroup - 1) / kMaxGroup), a.chunks, rows);
  if (head_dim == 64) {
    decode_chunk_kernel<64><<<grid, 32 * kDecodeWarps, 0, stream>>>(a);
  } else if (head_dim == 128) {
    decode_chunk_kernel<128><<<grid, 32 * kDecodeWarps, 0, stream>>>(a);
  } else {
    return cudaErrorInvalidValue;
  }
  if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  decode_combine_kernel<<<dim3(a.num_q_heads, rows), 128, 0, stream>>>(a.partial, out, a.chunks, head_dim);
  return cudaGetLastError();
}

}  // namespace

cudaError_t decode_attention(const uint16_t* q, const uint16_t* k, const uint16_t* v, uint16_t* out,
                             int num_q_heads, int num_kv_heads, int head_dim, int64_t num_keys, void* scratch,
                             size_t scratch_bytes, cudaStream_t stream) {
  // 16-byte K rows: the cache's rows and head slices are whole multiples of 8 bf16 for d 64 and 128.
  if (reinterpret_cast<uintptr_t>(k) % 16 != 0 || reinterpret_cast<uintptr_t>(v) % 16 != 0)
    return cudaErrorInvalidValue;
  DecodeArgs a;
  a.q = q;
  a.k = k;
  a.v = v;
  a.num_keys = num_keys;
  a.num_q_heads = num_q_heads;
  a.num_kv_heads = num_kv_heads;
  return launch_decode(a, out, 1, head_dim, num_keys, scratch, scratch_bytes, stream);
}

size_t decode_attention_batch_scratch_bytes(int rows, int num_q_heads, int head_dim, int64_t max_keys) {
  return static_cast<size_t>(rows) * decode_attention_scratch_bytes(num_q_heads, head_dim, max_keys);
}

// The caches' base pointers are allocation offsets of whole [capacity, Hkv, d] blocks (16-byte aligned).
cudaError_t decode_attention_batch(const uint16_t* q, const uint16_t* const* k, const uint16_t* const* v,
                                   const int32_t* positions, uint16_t* out, int rows, int num_q_heads,
                                   int num_kv_heads, int head_dim, int64_t max_keys, void* scratch,
                                   size_t scratch_bytes, cudaStream_t stream) {
  DecodeArgs a;
  a.q = q;
  a.k_rows = k;
  a.v_rows = v;
  a.positions = positions;
  a.num_q_heads = num_q_heads;
  a.num_kv_heads = num_kv_heads;
  return launch_decode(a, out, rows, head_dim, max_keys, scratch, scratch_bytes, stream);
}

}  // namespace sacc::cuda_rt
