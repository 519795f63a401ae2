// The portable body of the flash kernel family: FlashAttention-2 style on mma.sync m16n8k16 bf16, fp32
// accumulation and online softmax, cp.async multi-stage K/V pipeline. It runs on any sm_80+ GPU (and on
// Hopper with SACC_FLASH_BODY=mma); Hopper uses flash_kernel_sm90.cuh. One body for every visit policy
// (flash_policy.cuh): dense and sparse differ only in which key tiles a query tile visits. The online softmax
// (flash_softmax.cuh), the epilogue (flash_epilogue.cuh) and the PTX wrappers (ptx.cuh) are shared with the
// Hopper body. Included only by the explicit instantiation files flash_inst_*.cu.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <climits>
#include <cstdint>

#include "attention/cuda/flash_config.h"
#include "attention/cuda/flash_epilogue.cuh"
#include "attention/cuda/flash_params.h"
#include "attention/cuda/flash_policy.cuh"
#include "attention/cuda/flash_softmax.cuh"
#include "attention/cuda/ptx.cuh"

namespace sacc::flash {

using namespace ptx;

// Shared-memory element offset of (row, 16-byte chunk) with the chunk XOR-swizzled by the row: the 8 rows an
// ldmatrix phase reads land in 8 different 16-byte bank groups (32 banks x 4 bytes), so no bank conflicts.
template <int kHeadDim>
__device__ __forceinline__ int swizzle(int row, int chunk) {
  return row * kHeadDim + ((chunk ^ (row & 7)) << 3);
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

  // Q holds rows from q_begin on (flash_params.h); q_row0 >= q_begin for every launched query block.
  for (int i = tid; i < kBlockM * kChunks; i += Tiles::kThreads) {
    const int r = i / kChunks, c = i % kChunks;
    const int row = q_row0 + r;
    const bool valid = row < seq_len;
    cp_async_16(s_q + swizzle<kHeadDim>(r, c),
                q_base + (valid ? row - p.q_begin : 0) * p.q_token_stride + c * 8, valid);
  }
  cp_async_commit();

  // Rows of listed keys into one stage. Keys past L (the last partial block, unused gathered slots) are
  // zero-filled and recorded as out of range so the causal test masks them.
  auto load_tile = [&](int t, int stage) {
    const KeyTile kt = key_tile(visit, t);
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

  const int num_tiles = num_key_tiles(visit);
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
  SoftmaxRows rows[kMT];
#pragma unroll
  for (int mi = 0; mi < kMT; ++mi)
#pragma unroll
    for (int j = 0; j < kDimTiles; ++j)
      acc_o[mi][j][0] = acc_o[mi][j][1] = acc_o[mi][j][2] = acc_o[mi][j][3] = 0.f;

  for (int t = 0; t < num_tiles; ++t) {
    const int stage = t % kStages;
    if (t + kStages - 1 < num_tiles) load_tile(t + kStages - 1, (t + kStages - 1) % kStages);
    cp_async_commit();
    cp_async_wait<kStages - 1>();
    __syncthreads();

    const KeyTile kt = key_tile(visit, t);
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

      // Online softmax (flash_softmax.cuh): S becomes P, the running O and sum are rescaled.
      uint32_t p_frag[kMT][kBlockN / 16][4];
#pragma unroll
      for (int mi = 0; mi < kMT; ++mi) {
        softmax_rescale(flat(acc_s[mi]), flat(acc_o[mi]), rows[mi], p.scale_log2);
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

  // Epilogue (flash_epilogue.cuh): normalise, write O (bf16) and the natural-log LSE.
#pragma unroll
  for (int mi = 0; mi < kMT; ++mi)
    store_rows(p, visit.split, visit.q_head, warp_row0 + mi * 16, quad_row, quad_col, flat(acc_o[mi]),
               rows[mi]);
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
