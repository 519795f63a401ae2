// The portable body of the flash kernel family: FlashAttention-2 style on mma.sync m16n8k16 bf16, fp32
// accumulation and online softmax, cp.async multi-stage K/V pipeline. It runs on any sm_80+ GPU (and on
// Hopper with SACC_FLASH_BODY=mma); Hopper uses flash_kernel_sm90.cuh. One body for every visit policy
// (flash_policy.cuh): dense and sparse differ only in which key tiles a query tile visits. Also holds the
// small device helpers (cp.async, ldmatrix, mma, bf16 packing) the Hopper body reuses.
// Included only by the explicit instantiation files flash_inst_*.cu.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <climits>
#include <cstdint>

#include "attention/cuda/flash_config.h"
#include "attention/cuda/flash_params.h"
#include "attention/cuda/flash_policy.cuh"

namespace sacc::flash {

// Shared-memory element offset of (row, 16-byte chunk) with the chunk XOR-swizzled by the row: the 8 rows an
// ldmatrix phase reads land in 8 different 16-byte bank groups (32 banks x 4 bytes), so no bank conflicts.
template <int kHeadDim>
__device__ __forceinline__ int swizzle(int row, int chunk) {
  return row * kHeadDim + ((chunk ^ (row & 7)) << 3);
}

__device__ __forceinline__ void cp_async_16(void* smem, const void* gmem, bool valid) {
  const unsigned dst = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  const int src_bytes = valid ? 16 : 0;  // 0: zero-fill, so padded rows hold finite values
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(gmem), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;\n" ::);
}
template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* smem) {
  const unsigned a = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(a));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* smem) {
  const unsigned a = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(a));
}

// c += a * b for one m16n8k16 tile: a = 16x16 row-major bf16 (4 regs), b = 16x8 col-major bf16 (2 regs).
__device__ __forceinline__ void mma_bf16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

template <int kHeadDim, class Visit>
__global__ void __launch_bounds__(FlashTiles<kHeadDim>::kThreads, FlashConfig<kHeadDim>::kMinBlocksPerSm)
    flash_forward_kernel(const __grid_constant__ FlashParams p) {
  using Tiles = FlashTiles<kHeadDim>;
  constexpr int kMT = Tiles::kMTilesPerWarp;
  constexpr int kStages = Tiles::kStages;
  constexpr int kChunks = Tiles::kChunksPerRow;
  constexpr int kDimTiles = kHeadDim / 8;  // n8 tiles of O
  constexpr int kKeyTiles = kBlockN / 8;   // n8 tiles of S

  extern __shared__ __align__(128) unsigned char smem_raw[];
  uint16_t* s_q = reinterpret_cast<uint16_t*>(smem_raw);                 // [kBlockM, d] swizzled
  uint16_t* s_k = s_q + Tiles::kQElems;                                  // [kStages][kBlockN, d] swizzled
  uint16_t* s_v = s_k + kStages * Tiles::kKvElems;                       // [kStages][kBlockN, d] swizzled
  int* s_key = reinterpret_cast<int*>(s_v + kStages * Tiles::kKvElems);  // [kStages][kBlockN] key positions

  const Visit visit(p, blockIdx.x);
  const int tid = threadIdx.x;
  const int warp = tid >> 5;
  const int lane = tid & 31;
  const int quad_row = lane >> 2;  // row inside an m16 tile (and +8)
  const int quad_col = lane & 3;   // column pair inside an n8 tile
  const int seq_len = p.seq_len;
  const int q_row0 = visit.q_block * kBlockM;
  const int warp_row0 = q_row0 + warp * 16 * kMT;
  const int warp_row_last = warp_row0 + 16 * kMT - 1;
  const int kv_head = visit.q_head / p.group_size;
  const uint16_t* q_base = p.q + visit.q_head * p.q_head_stride;
  const uint16_t* k_base = p.k + kv_head * p.kv_head_stride;
  const uint16_t* v_base = p.v + kv_head * p.kv_head_stride;

  for (int i = tid; i < kBlockM * kChunks; i += Tiles::kThreads) {
    const int r = i / kChunks, c = i % kChunks;
    const int row = q_row0 + r;
    const bool valid = row < seq_len;
    cp_async_16(s_q + swizzle<kHeadDim>(r, c), q_base + (valid ? row : 0) * p.q_token_stride + c * 8, valid);
  }
  cp_async_commit();

  // Rows of listed keys into one stage. Keys past L (the last partial block, unused gathered slots) are
  // zero-filled and recorded as out of range so the causal test masks them.
  auto load_tile = [&](int t, int stage) {
    const KeyTile kt = visit.tile(t);
    for (int i = tid; i < kBlockN * kChunks; i += Tiles::kThreads) {
      const int r = i / kChunks, c = i % kChunks;
      int key = kt.key0 + r;
      if (kt.gathered()) key = r < kt.count ? __ldg(kt.maybe_columns + r) : INT_MAX;
      const bool valid = key < seq_len;
      const int64_t offset = static_cast<int64_t>(valid ? key : 0) * p.kv_token_stride + c * 8;
      cp_async_16(s_k + stage * Tiles::kKvElems + swizzle<kHeadDim>(r, c), k_base + offset, valid);
      cp_async_16(s_v + stage * Tiles::kKvElems + swizzle<kHeadDim>(r, c), v_base + offset, valid);
      if (c == 0) s_key[stage * kBlockN + r] = key;
    }
  };

  const int num_tiles = visit.num_tiles();
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < num_tiles) load_tile(s, s);
    cp_async_commit();
  }

  // Q fragments: lane l addresses row (l & 7) + 8 * ((l >> 3) & 1), chunk 2 * kk + (l >> 4) of an m16 tile.
  const int q_frag_row = warp * 16 * kMT + (lane & 7) + (((lane >> 3) & 1) << 3);
  const int q_frag_chunk = lane >> 4;
  uint32_t q_regs[Tiles::kQInRegisters ? kMT : 1][Tiles::kQInRegisters ? kHeadDim / 16 : 1][4];
  cp_async_wait<kStages - 1>();  // the Q group (committed first) has landed
  __syncthreads();
  if constexpr (Tiles::kQInRegisters) {
#pragma unroll
    for (int mi = 0; mi < kMT; ++mi)
#pragma unroll
      for (int kk = 0; kk < kHeadDim / 16; ++kk)
        ldmatrix_x4(q_regs[mi][kk], s_q + swizzle<kHeadDim>(q_frag_row + mi * 16, 2 * kk + q_frag_chunk));
  }

  float acc_o[kMT][kDimTiles][4];
  float row_max[kMT][2];  // running max of scaled scores, log2 domain
  float row_sum[kMT][2];  // this thread's partial sum of exp2(score - max)
#pragma unroll
  for (int mi = 0; mi < kMT; ++mi) {
#pragma unroll
    for (int j = 0; j < kDimTiles; ++j)
      acc_o[mi][j][0] = acc_o[mi][j][1] = acc_o[mi][j][2] = acc_o[mi][j][3] = 0.f;
    row_max[mi][0] = row_max[mi][1] = -INFINITY;
    row_sum[mi][0] = row_sum[mi][1] = 0.f;
  }

  for (int t = 0; t < num_tiles; ++t) {
    const int stage = t % kStages;
    if (t + kStages - 1 < num_tiles) load_tile(t + kStages - 1, (t + kStages - 1) % kStages);
    cp_async_commit();
    cp_async_wait<kStages - 1>();
    __syncthreads();

    const KeyTile kt = visit.tile(t);
    const bool gathered = kt.gathered();
    // A contiguous tile entirely right of this warp's last row contributes nothing under the causal mask.
    if (gathered || kt.key0 <= warp_row_last) {
      const uint16_t* k_tile = s_k + stage * Tiles::kKvElems;
      const uint16_t* v_tile = s_v + stage * Tiles::kKvElems;

      float acc_s[kMT][kKeyTiles][4];
#pragma unroll
      for (int mi = 0; mi < kMT; ++mi)
#pragma unroll
        for (int j = 0; j < kKeyTiles; ++j)
          acc_s[mi][j][0] = acc_s[mi][j][1] = acc_s[mi][j][2] = acc_s[mi][j][3] = 0.f;

          // S = Q K^T. K fragments: lane l addresses key (l & 7) + 8 * (l >> 4), chunk 2 * kk + ((l >> 3) &
          // 1).
#pragma unroll
      for (int kk = 0; kk < kHeadDim / 16; ++kk) {
        uint32_t a[kMT][4];
#pragma unroll
        for (int mi = 0; mi < kMT; ++mi) {
          if constexpr (Tiles::kQInRegisters) {
#pragma unroll
            for (int e = 0; e < 4; ++e) a[mi][e] = q_regs[mi][kk][e];
          } else {
            ldmatrix_x4(a[mi], s_q + swizzle<kHeadDim>(q_frag_row + mi * 16, 2 * kk + q_frag_chunk));
          }
        }
#pragma unroll
        for (int np = 0; np < kKeyTiles / 2; ++np) {
          uint32_t b[4];
          ldmatrix_x4(b, k_tile + swizzle<kHeadDim>(np * 16 + (lane & 7) + ((lane >> 4) << 3),
                                                    2 * kk + ((lane >> 3) & 1)));
#pragma unroll
          for (int mi = 0; mi < kMT; ++mi) {
            mma_bf16(acc_s[mi][2 * np], a[mi], b[0], b[1]);
            mma_bf16(acc_s[mi][2 * np + 1], a[mi], b[2], b[3]);
          }
        }
      }

      // Causal mask (also drops padded and unused gathered keys), only where the tile can cross it.
      if (gathered || kt.key0 + kBlockN - 1 > warp_row0) {
        const int* keys = s_key + stage * kBlockN;
#pragma unroll
        for (int mi = 0; mi < kMT; ++mi)
#pragma unroll
          for (int j = 0; j < kKeyTiles; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
              const int row = warp_row0 + mi * 16 + quad_row + (e >> 1) * 8;
              const int col = j * 8 + quad_col * 2 + (e & 1);
              const int key = gathered ? keys[col] : kt.key0 + col;
              if (key > row) acc_s[mi][j][e] = -INFINITY;
            }
      }

      // Online softmax: rescale the running O and sum by exp2(old max - new max).
      uint32_t p_frag[kMT][kBlockN / 16][4];
#pragma unroll
      for (int mi = 0; mi < kMT; ++mi) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          float mx = -INFINITY;
#pragma unroll
          for (int j = 0; j < kKeyTiles; ++j)
            mx = fmaxf(mx, fmaxf(acc_s[mi][j][2 * h], acc_s[mi][j][2 * h + 1]));
          mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
          mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
          const float new_max = fmaxf(row_max[mi][h], mx * p.scale_log2);
          // A row with no visible key yet keeps max -inf; offset 0 keeps exp2 finite (all terms are 0).
          const float offset = new_max == -INFINITY ? 0.f : new_max;
          const float alpha = exp2f(row_max[mi][h] - offset);
          row_max[mi][h] = new_max;
          float sum = 0.f;
#pragma unroll
          for (int j = 0; j < kKeyTiles; ++j) {
            const float p0 = exp2f(fmaf(acc_s[mi][j][2 * h], p.scale_log2, -offset));
            const float p1 = exp2f(fmaf(acc_s[mi][j][2 * h + 1], p.scale_log2, -offset));
            acc_s[mi][j][2 * h] = p0;
            acc_s[mi][j][2 * h + 1] = p1;
            sum += p0 + p1;
          }
          row_sum[mi][h] = row_sum[mi][h] * alpha + sum;
#pragma unroll
          for (int j = 0; j < kDimTiles; ++j) {
            acc_o[mi][j][2 * h] *= alpha;
            acc_o[mi][j][2 * h + 1] *= alpha;
          }
        }
        // The S accumulator layout of two adjacent n8 tiles is the A fragment of one k16 step of P V.
#pragma unroll
        for (int kc = 0; kc < kBlockN / 16; ++kc) {
          p_frag[mi][kc][0] = pack_bf16(acc_s[mi][2 * kc][0], acc_s[mi][2 * kc][1]);
          p_frag[mi][kc][1] = pack_bf16(acc_s[mi][2 * kc][2], acc_s[mi][2 * kc][3]);
          p_frag[mi][kc][2] = pack_bf16(acc_s[mi][2 * kc + 1][0], acc_s[mi][2 * kc + 1][1]);
          p_frag[mi][kc][3] = pack_bf16(acc_s[mi][2 * kc + 1][2], acc_s[mi][2 * kc + 1][3]);
        }
      }

      // O += P V. V fragments (transposed): lane l addresses key 16 * kc + (l & 7) + 8 * ((l >> 3) & 1),
      // chunk 2 * dp + (l >> 4).
#pragma unroll
      for (int kc = 0; kc < kBlockN / 16; ++kc) {
#pragma unroll
        for (int dp = 0; dp < kHeadDim / 16; ++dp) {
          uint32_t b[4];
          ldmatrix_x4_trans(b, v_tile + swizzle<kHeadDim>(kc * 16 + (lane & 7) + (((lane >> 3) & 1) << 3),
                                                          2 * dp + (lane >> 4)));
#pragma unroll
          for (int mi = 0; mi < kMT; ++mi) {
            mma_bf16(acc_o[mi][2 * dp], p_frag[mi][kc], b[0], b[1]);
            mma_bf16(acc_o[mi][2 * dp + 1], p_frag[mi][kc], b[2], b[3]);
          }
        }
      }
    }
    __syncthreads();  // every warp is done with this stage before it is refilled
  }
  cp_async_wait<0>();

  // Epilogue: normalise, write O (bf16) and the natural-log LSE. Rows with no visible key: O = 0, LSE = -inf.
  uint16_t* o_base = p.o + visit.q_head * p.o_head_stride;
#pragma unroll
  for (int mi = 0; mi < kMT; ++mi) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      float sum = row_sum[mi][h];
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
      const int row = warp_row0 + mi * 16 + quad_row + h * 8;
      if (row >= seq_len) continue;
      const float inv = sum > 0.f ? 1.f / sum : 0.f;
      uint16_t* o_row = o_base + static_cast<int64_t>(row) * p.o_token_stride + quad_col * 2;
#pragma unroll
      for (int j = 0; j < kDimTiles; ++j) {
        *reinterpret_cast<uint32_t*>(o_row + j * 8) =
            pack_bf16(acc_o[mi][j][2 * h] * inv, acc_o[mi][j][2 * h + 1] * inv);
      }
      if (p.maybe_lse != nullptr && quad_col == 0) {
        p.maybe_lse[static_cast<int64_t>(visit.q_head) * seq_len + row] =
            sum > 0.f ? (row_max[mi][h] + log2f(sum)) * 0.69314718055994531f : -INFINITY;
      }
    }
  }
}

template <int kHeadDim, class Visit>
cudaError_t launch_flash_forward(const FlashParams& params, int num_ctas, cudaStream_t stream) {
  using Tiles = FlashTiles<kHeadDim>;
  auto* kernel = flash_forward_kernel<kHeadDim, Visit>;
  cudaError_t error =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, Tiles::kSmemBytes);
  if (error != cudaSuccess) return error;
  kernel<<<num_ctas, Tiles::kThreads, Tiles::kSmemBytes, stream>>>(params);
  return cudaGetLastError();
}

}  // namespace sacc::flash
