// Interval-Slash scores on the GPU (DESIGN.md §4): P = causal softmax(Q[L-m:] K^T * scale) in fp32 for the
// last m queries of every INTERVAL_SLASH head; vertical score = column sums of P, slash score = sums along
// diagonals o = i - j. Shared per KV group: the group's query heads' P are summed.
//
// The m x L score matrix is never stored: pass 1 computes each row's max and sum of exponentials per key
// chunk (combined by a small kernel), pass 2 recomputes the scores and accumulates P straight into the column
// and diagonal sums. One CTA covers one key chunk of one KV head and keeps the estimating rows of the group's
// query heads in shared memory, so each K tile is read once for all of them. QK^T runs on bf16 tensor cores
// (mma.sync m16n8k16, fp32 accumulate); warp w of 4 owns keys [16w, 16w + 16) of each 64-key tile for all 64
// rows of a row tile. Pass 2 writes each tile's probabilities (summed over the heads of a shared index) to a
// padded shared-memory tile and reduces its columns and diagonals with one thread per line: no shared-memory
// float atomics (a compare-and-swap loop on this hardware).
#include <cuda_bf16.h>

#include <cstdint>

#include "attention/cuda/plan_kernels.h"
#include "attention/cuda/ptx.cuh"

namespace sacc::plan_detail {

namespace {

constexpr int kThreads = 128;
constexpr float kLog2e = 1.4426950408889634f;
constexpr int kProbPitch = kEstProbPitch;  // fp32 probability tile row pitch (plan_device_types.h)

struct ScoreArgs {
  PlanDims dims;
  PlanHeads heads;
  const uint16_t* q;                                                       // [L, Hq, d] bf16 bits
  const uint16_t* k;                                                       // [L, Hkv, d] bf16 bits
  int64_t q_token_stride, q_head_stride, kv_token_stride, kv_head_stride;  // elements
  float2* partial;          // [Hq, m_eff, num_chunks] (row max, sum of exp2) in the log2 domain
  const float2* row_stats;  // [Hq, m_eff] (row max, 1 / sum)
  float* vertical;          // [num_is_heads, L]
  float* slash;             // [num_is_heads, L]
};

// The query heads of KV group `kv` that estimate Interval-Slash, in order; returns their count.
__device__ inline int estimating_heads(const ScoreArgs& args, int kv, int* heads) {
  const PlanDims& dims = args.dims;
  int count = 0;
  for (int g = 0; g < dims.group_size; ++g) {
    const int q_head = kv * dims.group_size + g;
    const int index_head = dims.shared ? kv : q_head;
    if (args.heads.head[index_head].kind == kKindIntervalSlash) heads[count++] = q_head;
  }
  return count;
}

// S = Q[row tile] K[tile]^T for this warp's 16 keys: acc[m tile][n tile][fragment].
template <int kDim>
__device__ inline void score_tile(const __nv_bfloat16* q_rows, const __nv_bfloat16* k_tile, int warp,
                                  int lane, float (&acc)[4][2][4]) {
  constexpr int kPitch = kDim + 8;
#pragma unroll
  for (int mt = 0; mt < 4; ++mt)
#pragma unroll
    for (int nt = 0; nt < 2; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[mt][nt][e] = 0.0f;
  const int b_row = warp * 16 + (lane & 7) + ((lane >> 4) << 3);
  const int b_col = ((lane >> 3) & 1) * 8;
  const int a_row = lane & 15;
  const int a_col = (lane >> 4) * 8;
#pragma unroll
  for (int ks = 0; ks < kDim / 16; ++ks) {
    // All fragments of this k-step first, so the five shared-memory loads are in flight together.
    uint32_t b[4];
    uint32_t a[4][4];
    ptx::ldmatrix_x4(b, k_tile + b_row * kPitch + ks * 16 + b_col);
#pragma unroll
    for (int mt = 0; mt < 4; ++mt)
      ptx::ldmatrix_x4(a[mt], q_rows + (mt * 16 + a_row) * kPitch + ks * 16 + a_col);
#pragma unroll
    for (int mt = 0; mt < 4; ++mt) {
      ptx::mma_bf16(acc[mt][0], a[mt], b[0], b[1]);
      ptx::mma_bf16(acc[mt][1], a[mt], b[2], b[3]);
    }
  }
}

template <int kDim, bool kSums>
__global__ void __launch_bounds__(kThreads) interval_slash_scores_kernel(const ScoreArgs args) {
  constexpr int kPitch = kDim + 8;
  const PlanDims& dims = args.dims;
  const int chunk = blockIdx.x;
  const int kv = blockIdx.y;
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  const int group_id = lane / 4;
  const int quad = lane % 4;

  int heads[32];
  const int num_heads = estimating_heads(args, kv, heads);
  if (num_heads == 0) return;

  const int seq_len = dims.seq_len;
  const int est_rows = dims.est_rows;
  const int rows = dims.est_row_tiles * kEstRowTile;  // padded
  const int row0 = seq_len - est_rows;                // absolute index of estimating row 0
  const int per_pass = dims.est_heads_per_pass;
  const float scale_log2 = dims.scale * kLog2e;

  extern __shared__ __align__(16) unsigned char smem[];
  auto* q_s = reinterpret_cast<__nv_bfloat16*>(smem);                    // [per_pass][rows][kPitch]
  auto* k_s = q_s + static_cast<size_t>(per_pass) * rows * kPitch;       // [2][64][kPitch]
  auto* p_s = reinterpret_cast<float*>(k_s + 2 * kEstKeyTile * kPitch);  // [rows][kProbPitch]
  auto* stat_s = reinterpret_cast<float2*>(p_s + rows * kProbPitch);     // [per_pass][rows][4]

  const int key_begin = chunk * dims.chunk_keys;
  const int key_end = min(seq_len, key_begin + dims.chunk_keys);
  const int num_tiles = (key_end - key_begin + kEstKeyTile - 1) / kEstKeyTile;
  const uint16_t* k_head = args.k + static_cast<int64_t>(kv) * args.kv_head_stride;

  auto load_k_tile = [&](int tile, int buffer) {
    const int first_key = key_begin + tile * kEstKeyTile;
    constexpr int kVectors = kEstKeyTile * kDim / 8;
    for (int v = threadIdx.x; v < kVectors; v += kThreads) {
      const int row = v / (kDim / 8);
      const int col = (v % (kDim / 8)) * 8;
      const int key = first_key + row;
      const bool valid = key < key_end;
      const uint16_t* src =
          k_head + static_cast<int64_t>(valid ? key : key_begin) * args.kv_token_stride + col;
      ptx::cp_async_16(k_s + (buffer * kEstKeyTile + row) * kPitch + col, src, valid);
    }
    ptx::cp_async_commit();
  };

  for (int pass_first = 0; pass_first < num_heads; pass_first += per_pass) {
    const int pass_heads = min(per_pass, num_heads - pass_first);
    // Pass 1 units: (head, row tile) pairs of this pass, at most kEstMaxUnits (plan_layout.cpp).
    const int units = pass_heads * dims.est_row_tiles;
    float run_max[kEstMaxUnits][8];
    float run_sum[kEstMaxUnits][8];
#pragma unroll
    for (int u = 0; u < kEstMaxUnits; ++u)
#pragma unroll
      for (int x = 0; x < 8; ++x) {
        run_max[u][x] = -INFINITY;
        run_sum[u][x] = 0.0f;
      }
    // Estimating rows of this pass's heads (zero-filled rows pad the last row tile), copied asynchronously:
    // they join the first K tile's group, so all of the CTA's loads are in flight together (plain loads kept
    // one 16-byte vector per thread in flight at a time). Then their row state.
    constexpr int kRowVectors = kDim / 8;
    for (int v = threadIdx.x; v < pass_heads * rows * kRowVectors; v += kThreads) {
      const int hb = v / (rows * kRowVectors);
      const int r = (v / kRowVectors) % rows;
      const int col = (v % kRowVectors) * 8;
      const bool valid = r < est_rows;
      const uint16_t* src = args.q + static_cast<int64_t>(row0 + (valid ? r : 0)) * args.q_token_stride +
                            static_cast<int64_t>(heads[pass_first + hb]) * args.q_head_stride + col;
      ptx::cp_async_16(q_s + (hb * rows + r) * kPitch + col, src, valid);
    }
    if (kSums) {
      // Pass 2 keeps (row max, 1 / sum) once per row in the first quarter of the stat area.
      for (int v = threadIdx.x; v < pass_heads * rows; v += kThreads) {
        const int hb = v / rows;
        const int r = v % rows;
        stat_s[v] =
            r < est_rows ? args.row_stats[heads[pass_first + hb] * est_rows + r] : make_float2(0.0f, 0.0f);
      }
    }
    load_k_tile(0, 0);

    for (int tile = 0; tile < num_tiles; ++tile) {
      const int buffer = tile & 1;
      if (tile + 1 < num_tiles) {
        load_k_tile(tile + 1, buffer ^ 1);
        ptx::cp_async_wait<1>();
      } else {
        ptx::cp_async_wait<0>();
      }
      __syncthreads();
      const int j0 = key_begin + tile * kEstKeyTile;
      const __nv_bfloat16* k_tile = k_s + buffer * kEstKeyTile * kPitch;

      // Scaled logits (log2 domain) of this lane's fragment rows; false where masked or padding.
      auto logits = [&](const float(&acc)[4][2][4], int mt, int half, int r, float(&s)[4], bool(&valid)[4]) {
#pragma unroll
        for (int nt = 0; nt < 2; ++nt)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const int j = j0 + warp * 16 + nt * 8 + quad * 2 + e;
            valid[nt * 2 + e] = r < est_rows && j <= row0 + r;
            s[nt * 2 + e] = acc[mt][nt][half * 2 + e] * scale_log2;
          }
      };

      if constexpr (!kSums) {
        // Running (max, sum of exp2) per fragment row in registers: no shuffles or shared memory per tile.
#pragma unroll
        for (int u = 0; u < kEstMaxUnits; ++u) {
          if (u < units) {
            const int hb = u / dims.est_row_tiles;
            const int rt = u - hb * dims.est_row_tiles;
            float acc[4][2][4];
            score_tile<kDim>(q_s + (hb * rows + rt * kEstRowTile) * kPitch, k_tile, warp, lane, acc);
#pragma unroll
            for (int mt = 0; mt < 4; ++mt)
#pragma unroll
              for (int half = 0; half < 2; ++half) {
                const int r = rt * kEstRowTile + mt * 16 + group_id + half * 8;
                float s[4];
                bool valid[4];
                logits(acc, mt, half, r, s, valid);
                float tile_max = -INFINITY;
#pragma unroll
                for (int x = 0; x < 4; ++x) tile_max = valid[x] ? fmaxf(tile_max, s[x]) : tile_max;
                float& row_max = run_max[u][mt * 2 + half];
                float& row_sum = run_sum[u][mt * 2 + half];
                const float new_max = fmaxf(row_max, tile_max);
                const float ref = new_max == -INFINITY ? 0.0f : new_max;  // all masked so far: sums stay 0
                float sum = row_sum * ptx::fast_exp2(row_max - ref);
#pragma unroll
                for (int x = 0; x < 4; ++x) sum += valid[x] ? ptx::fast_exp2(s[x] - ref) : 0.0f;
                row_sum = sum;
                row_max = new_max;
              }
          }
        }
      } else {
        // One output per index head: every head (per-head index) or all heads together (shared index).
        const int outputs = dims.shared ? 1 : pass_heads;
        for (int out = 0; out < outputs; ++out) {
          const int first_hb = dims.shared ? 0 : out;
          const int end_hb = dims.shared ? pass_heads : out + 1;
          for (int hb = first_hb; hb < end_hb; ++hb) {
            for (int rt = 0; rt < dims.est_row_tiles; ++rt) {
              float acc[4][2][4];
              score_tile<kDim>(q_s + (hb * rows + rt * kEstRowTile) * kPitch, k_tile, warp, lane, acc);
#pragma unroll
              for (int mt = 0; mt < 4; ++mt)
#pragma unroll
                for (int half = 0; half < 2; ++half) {
                  const int r = rt * kEstRowTile + mt * 16 + group_id + half * 8;
                  float s[4];
                  bool valid[4];
                  logits(acc, mt, half, r, s, valid);
                  const float2 stats = stat_s[hb * rows + r];
#pragma unroll
                  for (int nt = 0; nt < 2; ++nt) {
                    float2 p;
                    p.x = valid[nt * 2] ? ptx::fast_exp2(s[nt * 2] - stats.x) * stats.y : 0.0f;
                    p.y = valid[nt * 2 + 1] ? ptx::fast_exp2(s[nt * 2 + 1] - stats.x) * stats.y : 0.0f;
                    float2* cell =
                        reinterpret_cast<float2*>(p_s + r * kProbPitch + warp * 16 + nt * 8 + quad * 2);
                    if (hb != first_hb) {
                      const float2 old = *cell;
                      p.x += old.x;
                      p.y += old.y;
                    }
                    *cell = p;
                  }
                }
            }
          }
          __syncthreads();
          const int index_head = dims.shared ? kv : heads[pass_first + out];
          const int64_t base = static_cast<int64_t>(args.heads.head[index_head].ordinal) * seq_len;
          // Column sums: vertical scores of keys j0 .. j0 + 63 (this CTA alone owns them).
          for (int c = threadIdx.x; c < kEstKeyTile; c += kThreads) {
            // Four partial sums: independent shared-memory loads in flight instead of one dependent chain.
            float part[4] = {0.0f, 0.0f, 0.0f, 0.0f};
            for (int r = 0; r < rows; r += 4) {  // rows is a multiple of 64
#pragma unroll
              for (int u = 0; u < 4; ++u) part[u] += p_s[(r + u) * kProbPitch + c];
            }
            const float sum = (part[0] + part[1]) + (part[2] + part[3]);
            const int j = j0 + c;
            if (j < seq_len) {
              float* out_j = args.vertical + base + j;
              *out_j = (dims.shared && pass_first > 0) ? *out_j + sum : sum;
            }
          }
          // Diagonal t holds (r, c) with c = r + 63 - t, offset o = row0 + r - (j0 + c) = row0 - j0 - 63 + t.
          for (int t = threadIdx.x; t < rows + kEstKeyTile - 1; t += kThreads) {
            const int r_begin = max(0, t - (kEstKeyTile - 1));
            const int r_end = min(rows, t + 1);
            float part[4] = {0.0f, 0.0f, 0.0f, 0.0f};
            for (int r = r_begin; r < r_end; r += 4) {
#pragma unroll
              for (int u = 0; u < 4; ++u) {
                if (r + u < r_end) part[u] += p_s[(r + u) * kProbPitch + r + u + kEstKeyTile - 1 - t];
              }
            }
            const float sum = (part[0] + part[1]) + (part[2] + part[3]);
            const int o = row0 - j0 - (kEstKeyTile - 1) + t;
            if (sum != 0.0f && o >= 0 && o < seq_len) atomicAdd(args.slash + base + o, sum);
          }
          __syncthreads();
        }
      }
      __syncthreads();  // the next iteration's load overwrites this tile's buffer
    }

    if constexpr (!kSums) {
      // Merge each row's state over the 4 lanes of a quad (same rows, different columns), then over the
      // warps.
#pragma unroll
      for (int u = 0; u < kEstMaxUnits; ++u) {
        if (u < units) {
          const int hb = u / dims.est_row_tiles;
          const int rt = u - hb * dims.est_row_tiles;
#pragma unroll
          for (int x = 0; x < 8; ++x) {
            float row_max = run_max[u][x];
            float row_sum = run_sum[u][x];
#pragma unroll
            for (int width = 1; width <= 2; width *= 2) {
              const float other_max = __shfl_xor_sync(0xFFFFFFFFu, row_max, width);
              const float other_sum = __shfl_xor_sync(0xFFFFFFFFu, row_sum, width);
              const float new_max = fmaxf(row_max, other_max);
              const float ref = new_max == -INFINITY ? 0.0f : new_max;
              row_sum = row_sum * ptx::fast_exp2(row_max - ref) + other_sum * ptx::fast_exp2(other_max - ref);
              row_max = new_max;
            }
            const int r = rt * kEstRowTile + (x / 2) * 16 + group_id + (x % 2) * 8;
            if (quad == 0) stat_s[(hb * rows + r) * 4 + warp] = make_float2(row_max, row_sum);
          }
        }
      }
      __syncthreads();
      for (int v = threadIdx.x; v < pass_heads * est_rows; v += kThreads) {
        const int hb = v / est_rows;
        const int r = v % est_rows;
        float row_max = -INFINITY;
        for (int w = 0; w < 4; ++w) row_max = fmaxf(row_max, stat_s[(hb * rows + r) * 4 + w].x);
        float row_sum = 0.0f;
        if (row_max != -INFINITY) {
          for (int w = 0; w < 4; ++w) {
            const float2 state = stat_s[(hb * rows + r) * 4 + w];
            if (state.x != -INFINITY) row_sum += state.y * ptx::fast_exp2(state.x - row_max);
          }
        }
        const int q_head = heads[pass_first + hb];
        args.partial[(static_cast<int64_t>(q_head) * est_rows + r) * dims.num_chunks + chunk] =
            make_float2(row_max, row_sum);
      }
    }
    __syncthreads();
  }
}

// Combines the per-chunk (max, sum) of every estimating row into (max, 1 / sum).
// One warp per estimating row: its lanes stride over the row's per-chunk partials (contiguous), then reduce.
constexpr int kCombineWarps = 8;

__global__ void __launch_bounds__(kCombineWarps * 32)
    combine_row_stats_kernel(const PlanDims dims, const PlanHeads heads, const float2* partial,
                             float2* row_stats) {
  const int v = blockIdx.x * kCombineWarps + static_cast<int>(threadIdx.x / 32);
  const int lane = static_cast<int>(threadIdx.x & 31u);
  if (v >= dims.num_q_heads * dims.est_rows) return;
  const int q_head = v / dims.est_rows;
  const int index_head = dims.shared ? q_head / dims.group_size : q_head;
  if (heads.head[index_head].kind != kKindIntervalSlash) return;
  const float2* row = partial + static_cast<int64_t>(v) * dims.num_chunks;
  float row_max = -INFINITY;
  for (int c = lane; c < dims.num_chunks; c += 32) row_max = fmaxf(row_max, row[c].x);
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    row_max = fmaxf(row_max, __shfl_xor_sync(0xFFFFFFFFu, row_max, offset));
  }
  float row_sum = 0.0f;
  for (int c = lane; c < dims.num_chunks; c += 32) {
    if (row[c].x != -INFINITY) row_sum += row[c].y * exp2f(row[c].x - row_max);
  }
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) row_sum += __shfl_xor_sync(0xFFFFFFFFu, row_sum, offset);
  if (lane == 0) row_stats[v] = make_float2(row_max, 1.0f / row_sum);
}

template <int kDim>
cudaError_t launch_scores(const PlanLayout& layout, const ScoreArgs& args, cudaStream_t stream) {
  const PlanDims& dims = layout.dims;
  const size_t smem = estimation_smem_bytes(dims.est_heads_per_pass, dims.est_row_tiles, kDim);
  const dim3 grid(dims.num_chunks, dims.num_kv_heads);
  cudaError_t error =
      cudaFuncSetAttribute(interval_slash_scores_kernel<kDim, false>,
                           cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
  if (error != cudaSuccess) return error;
  error = cudaFuncSetAttribute(interval_slash_scores_kernel<kDim, true>,
                               cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
  if (error != cudaSuccess) return error;
  interval_slash_scores_kernel<kDim, false><<<grid, kThreads, smem, stream>>>(args);
  if ((error = cudaGetLastError()) != cudaSuccess) return error;
  const int rows = dims.num_q_heads * dims.est_rows;
  combine_row_stats_kernel<<<(rows + kCombineWarps - 1) / kCombineWarps, kCombineWarps * 32, 0, stream>>>(
      dims, layout.heads, args.partial, const_cast<float2*>(args.row_stats));
  if ((error = cudaGetLastError()) != cudaSuccess) return error;
  interval_slash_scores_kernel<kDim, true><<<grid, kThreads, smem, stream>>>(args);
  return cudaGetLastError();
}

}  // namespace

cudaError_t launch_interval_slash_estimation(const PlanLayout& layout, const PlanInputs& params,
                                             char* workspace, cudaStream_t stream) {
  if (layout.num_is_heads == 0) return cudaSuccess;
  const PlanDims& dims = layout.dims;
  ScoreArgs args{};
  args.dims = dims;
  args.heads = layout.heads;
  args.q = static_cast<const uint16_t*>(params.q);
  args.k = static_cast<const uint16_t*>(params.k);
  args.q_token_stride = params.q_token_stride;
  args.q_head_stride = params.q_head_stride;
  args.kv_token_stride = params.kv_token_stride;
  args.kv_head_stride = params.kv_head_stride;
  args.partial = reinterpret_cast<float2*>(workspace + layout.is_partial_stats);
  args.row_stats = reinterpret_cast<const float2*>(workspace + layout.is_row_stats);
  args.vertical = reinterpret_cast<float*>(workspace + layout.is_vertical);
  args.slash = reinterpret_cast<float*>(workspace + layout.is_slash);
  cudaError_t error = cudaMemsetAsync(
      args.slash, 0, static_cast<size_t>(layout.num_is_heads) * dims.seq_len * sizeof(float), stream);
  if (error != cudaSuccess) return error;
  return dims.head_dim == 64 ? launch_scores<64>(layout, args, stream)
                             : launch_scores<128>(layout, args, stream);
}

}  // namespace sacc::plan_detail
