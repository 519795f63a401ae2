// Hopper body of the flash kernel family (sm_90a), warp-specialised: one producer warpgroup moves K/V into a
// shared-memory ring (FlashTilesSm90::kStages deep) guarded by mbarriers, two consumer warpgroups (64 query
// rows each) run S = Q K^T and O += P V on wgmma with the online softmax in between; setmaxnreg hands the
// producer's registers to the consumers. A tile is two 64-key halves taken in order from the visit policy's
// list: index key blocks (one TMA box per 64 columns of d, for K and V) and then groups of 64 listed single
// columns, which the producer gathers row by row with cp.async because TMA cannot gather arbitrary rows on
// sm_90. Both GEMMs are m64n128 per k16 step. Same visit policies (flash_policy.cuh), masking rule, online
// softmax (flash_softmax.cuh), epilogue (flash_epilogue.cuh) and PTX wrappers (ptx.cuh) as the mma.sync body.
//
// One CTA per work item, the hardware handing out CTAs in the longest-first order. A persistent grid (K/V
// ring and a second Q buffer carried across items) was built and removed: on the real Qwen2.5-0.5B prompt at
// 32K it ran dense 3 % slower and sparse no faster than this body (H200, bench/results/real_models_h200.md,
// "eleventh session"). Ping-pong turns between the two consumer warpgroups (named barriers ordering their S
// GEMMs) ran dense 9-11 % slower on the H200; a softmax overlapped with the previous tile's P V is on branch
// exp/softmax-overlap, its only measurement void because ptxas serialised its wgmma (C7520, which
// tests/kernels/check_ptxas.py now rejects): bench/results/flash_schedule_h200.md.
#pragma once

#include <cuda_runtime.h>

#include <climits>
#include <cstdint>

#include "attention/cuda/flash_config.h"
#include "attention/cuda/flash_epilogue.cuh"
#include "attention/cuda/flash_params.h"
#include "attention/cuda/flash_policy.cuh"
#include "attention/cuda/flash_softmax.cuh"
#include "attention/cuda/flash_tma.h"
#include "attention/cuda/ptx.cuh"

namespace sacc::flash {

using namespace ptx;

// One 64-key half of a tile, from the visit policy's ordered list of key blocks then column groups.
struct KeyHalf {
  int key0 = INT_MAX;  // first key of a listed block; INT_MAX: not a block
  int group = -1;      // gathered column group (64 columns per group); -1: not gathered
};

template <class Visit>
__device__ __forceinline__ KeyHalf key_half(const Visit& visit, int half, int num_blocks, int num_halves) {
  KeyHalf kh;
  if (half < num_blocks) {
    kh.key0 = visit.key_block(half) * kBlockN;
  } else if (half < num_halves) {
    kh.group = half - num_blocks;
  }
  return kh;
}

// Whether a half of a tile can hold a key right of row `row0` (or an unused slot), so that rows from row0 on
// need the causal mask: its last key is a block's last column or a gathered half's last listed column
// (columns ascend); a half past the list, or a gathered half with unused slots, always does.
template <class Visit>
__device__ __forceinline__ bool half_needs_mask(const Visit& visit, const KeyHalf& half, int row0) {
  if (half.group >= 0) {
    const int last = half.group * kBlockN + kBlockN - 1;
    return last >= visit.num_key_columns() || __ldg(visit.key_columns() + last) > row0;
  }
  return half.key0 == INT_MAX || half.key0 + kBlockN - 1 > row0;
}

template <int kHeadDim, class Visit>
__global__ void __launch_bounds__(FlashTilesSm90<kHeadDim>::kThreads, 1)
    flash_forward_sm90_kernel(const __grid_constant__ FlashParams p,
                              const __grid_constant__ FlashTmaMaps maps) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)  // wgmma/setmaxnreg exist only in sm_90a; never launched elsewhere
  using Tiles = FlashTilesSm90<kHeadDim>;
  constexpr int kStages = Tiles::kStages;
  constexpr int kTileKeys = Tiles::kTileKeys;
  constexpr int kColumnBlocks = kHeadDim / 64;
  constexpr int kChunks = kHeadDim / 8;                  // 16-byte chunks of one K or V row
  constexpr int kGatherRowStep = 128 / kChunks;          // rows between one producer thread's gathered rows
  constexpr int kGatherRows = kBlockN / kGatherRowStep;  // gathered rows per producer thread and half
  constexpr int kSRegs = kTileKeys / 2;
  constexpr int kORegs = kHeadDim / 2;
  constexpr uint32_t kHalfBytes = kBlockN * kHeadDim * 2;  // one 64-key half of K (or V)

  extern __shared__ unsigned char smem_raw[];
  // The 128-byte swizzle works on absolute address bits: every 8-row atom must start on a 1024-byte boundary.
  auto* s_q = reinterpret_cast<uint16_t*>((reinterpret_cast<uintptr_t>(smem_raw) + 1023) & ~uintptr_t{1023});
  uint16_t* s_k = s_q + Tiles::kQElems;             // [kStages][d/64][kTileKeys][64]
  uint16_t* s_v = s_k + kStages * Tiles::kKvElems;  // [kStages][d/64][kTileKeys][64]
  auto* bars = reinterpret_cast<uint64_t*>(s_v + kStages * Tiles::kKvElems);
  uint64_t* q_full = bars;                      // Q landed
  uint64_t* full = bars + 1;                    // [kStages] K/V stage landed
  uint64_t* empty = bars + 1 + kStages;         // [kStages] every consumer warp is done with the stage
  uint64_t* gathered = bars + 1 + 2 * kStages;  // [kStages] the stage's gathered rows landed

  const Visit visit(p, blockIdx.x);
  const int tid = threadIdx.x;
  const int warp = tid >> 5;
  const int lane = tid & 31;
  const int warpgroup = warp >> 2;  // 0: producer, 1-2: consumers
  const int num_blocks = visit.num_key_blocks();
  const int num_halves = num_blocks + (visit.num_key_columns() + kBlockN - 1) / kBlockN;
  const int num_tiles = (num_halves + 1) / 2;
  const int kv_head = visit.consumer_head(0) / p.group_size;  // both consumers' heads share it

  if (tid == 0) {
    mbarrier_init(q_full, 1);
    for (int s = 0; s < kStages; ++s) {
      mbarrier_init(full + s, 1);
      mbarrier_init(empty + s, 8);       // one arrival per consumer warp
      mbarrier_init(gathered + s, 128);  // one arrival per producer thread, when its copies land
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();

  if (warpgroup == 0) {
    // ---- producer ----
    asm volatile("setmaxnreg.dec.sync.aligned.u32 56;\n" ::: "memory");
    if (tid == 0) {
      mbarrier_arrive_expect_tx(q_full, Tiles::kQElems * 2);
      // One 64-row box per consumer warpgroup and 64-column block: [d/64][consumer][64 rows][64]. The Q map
      // starts at query row q_begin (flash_dispatch.cu), so its row coordinate is relative to it.
      for (int c = 0; c < 2; ++c)
        for (int cb = 0; cb < kColumnBlocks; ++cb)
          tma_load_3d(s_q + cb * kBlockM * 64 + c * 64 * 64, &maps.q, cb * 64, visit.consumer_head(c),
                      visit.consumer_row0(c) - p.q_begin, q_full);
    }
    const uint16_t* k_base = p.k + kv_head * p.kv_head_stride;
    const uint16_t* v_base = p.v + kv_head * p.kv_head_stride;
    for (int t = 0; t < num_tiles; ++t) {
      const int s = t % kStages;
      KeyHalf halves[2] = {key_half(visit, 2 * t, num_blocks, num_halves),
                           key_half(visit, 2 * t + 1, num_blocks, num_halves)};
      // A half past the list repeats a block half (finite data, masked) or is gathered with no columns
      // (zeros).
      if (halves[1].key0 == INT_MAX && halves[1].group < 0) {
        if (halves[0].key0 != INT_MAX) {
          halves[1].key0 = halves[0].key0;
        } else {
          halves[1].group = INT_MAX;
        }
      }
      // Key positions of the rows this thread gathers (rows tid / kChunks + k * kGatherRowStep, chunk
      // tid % kChunks), all loaded before the stage wait: the loads are in flight together and behind the
      // wait, instead of one index round trip per row between the cp.async issues.
      int gather_key[2][kGatherRows];
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const bool listed = halves[h].group >= 0 && halves[h].group != INT_MAX;
        const int c0 = listed ? halves[h].group * kBlockN : 0;
        const int count = listed ? min(kBlockN, visit.num_key_columns() - c0) : 0;
#pragma unroll
        for (int k = 0; k < kGatherRows; ++k) {
          const int r = tid / kChunks + k * kGatherRowStep;
          gather_key[h][k] = r < count ? __ldg(visit.key_columns() + c0 + r) : INT_MAX;
        }
      }
      if (t >= kStages) mbarrier_wait(empty + s, ((t / kStages) - 1) & 1);
      uint16_t* k_tile = s_k + s * Tiles::kKvElems;
      uint16_t* v_tile = s_v + s * Tiles::kKvElems;
      bool any_gathered = false;
      uint32_t tma_bytes = 0;
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        if (halves[h].group < 0) {
          tma_bytes += 2 * kHalfBytes;
          continue;
        }
        any_gathered = true;
#pragma unroll
        for (int k = 0; k < kGatherRows; ++k) {
          const int r = tid / kChunks + k * kGatherRowStep, c = tid % kChunks;
          const bool valid = gather_key[h][k] < p.seq_len;
          const int64_t offset =
              static_cast<int64_t>(valid ? gather_key[h][k] : 0) * p.kv_token_stride + c * 8;
          const int row = h * kBlockN + r;
          cp_async_16(k_tile + sw128_offset<kTileKeys>(row, c), k_base + offset, valid);
          cp_async_16(v_tile + sw128_offset<kTileKeys>(row, c), v_base + offset, valid);
        }
      }
      if (any_gathered) {
        // The gather completes on the stage's own barrier, asynchronously: the producer goes on to the next
        // stage with these rows in flight. (Waiting for them here kept one tile's gather in flight; on the
        // H200 the asynchronous arrival runs Interval-Slash indices 2-5 % faster at d = 128 (density 0.05 and
        // up), no faster at d = 64: bench/results/real_models_h200.md, "twelfth session".)
        cp_async_mbarrier_arrive_noinc(gathered + s);
      }
      if (tid == 0) {
        mbarrier_arrive_expect_tx(full + s, tma_bytes);
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          if (halves[h].group >= 0) continue;
          for (int cb = 0; cb < kColumnBlocks; ++cb) {
            const int at = cb * kTileKeys * 64 + h * kBlockN * 64;
            tma_load_3d(k_tile + at, &maps.k, cb * 64, kv_head, halves[h].key0, full + s);
            tma_load_3d(v_tile + at, &maps.v, cb * 64, kv_head, halves[h].key0, full + s);
          }
        }
      }
    }
    asm volatile("cp.async.wait_all;\n" ::: "memory");  // no copy outlives its issuing thread
    return;
  }

  // ---- consumers ----
  asm volatile("setmaxnreg.inc.sync.aligned.u32 224;\n" ::: "memory");
  const int consumer = warpgroup - 1;
  const int quad_row = lane >> 2;
  const int quad_col = lane & 3;
  const int warpgroup_row0 = visit.consumer_row0(consumer);
  const int warpgroup_row_last = warpgroup_row0 + 63;
  const int warp_row0 = warpgroup_row0 + (warp & 3) * 16;
  const int q_head = visit.consumer_head(consumer);

  float acc_o[kORegs];
  SoftmaxRows rows;
#pragma unroll
  for (int i = 0; i < kORegs; ++i) acc_o[i] = 0.f;

  uint32_t gathered_parity = 0;  // bit s: parity of the next phase of gathered[s]
  mbarrier_wait(q_full, 0);
  for (int t = 0; t < num_tiles; ++t) {
    const int s = t % kStages;
    // Key of each half's first column (INT_MAX: gathered or unused); gathered halves read the list below.
    const KeyHalf half0 = key_half(visit, 2 * t, num_blocks, num_halves);
    const KeyHalf half1 = key_half(visit, 2 * t + 1, num_blocks, num_halves);
    const bool gathered0 = half0.group >= 0, gathered1 = half1.group >= 0;
    const bool any_gathered = gathered0 || gathered1;
    // The causal mask (which also drops padded, repeated and unused keys) is needed only where a half can
    // reach right of this warp's first row. Blocks and gathered columns both ascend, so a half's last key
    // decides: a block's last column, or a gathered half's last slot (INT_MAX when the half has unused
    // slots). A gathered half is usually a set of verticals left of the query block: no mask, and no reads of
    // its column positions.
    const bool mask = half_needs_mask(visit, half0, warp_row0) || half_needs_mask(visit, half1, warp_row0);
    // Key positions of this thread's gathered columns (j * 8 + quad_col * 2 + {0, 1} of a gathered half),
    // straight from the visit policy's list with the producer's rule (INT_MAX past the count), loaded
    // before the stage wait so that their latency hides behind it, and only when the tile is masked.
    // Reading them from the list rather than from a shared copy the producer wrote keeps the consumers' reads
    // off shared memory, whose ordering through the stage's mbarriers compute-sanitizer racecheck does not
    // follow. Per-element predicated loads on every tile cost the real Qwen2.5-0.5B prompt 13 % of its
    // sparse prefill at 32K (H200: 108.6 against 122.5 ms), hence the warp-uniform branch.
    int column_key[kTileKeys / 8][2];  // read by the mask for gathered halves only
    if (any_gathered && mask) {
#pragma unroll
      for (int j = 0; j < kTileKeys / 8; ++j) {
        const KeyHalf& half = j >= kBlockN / 8 ? half1 : half0;
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int c = half.group * kBlockN + ((j * 8 + quad_col * 2 + e) & (kBlockN - 1));
          column_key[j][e] =
              half.group >= 0 && c < visit.num_key_columns() ? __ldg(visit.key_columns() + c) : INT_MAX;
        }
      }
    }
    mbarrier_wait(full + s, (t / kStages) & 1);
    const uint16_t* k_tile = s_k + s * Tiles::kKvElems;
    const uint16_t* v_tile = s_v + s * Tiles::kKvElems;
    if (any_gathered) {
      // Gathered rows were written by cp.async (generic proxy) and are read by wgmma (async proxy): the
      // barrier wait makes them visible to this thread, the proxy fence orders them before its wgmma. The
      // barrier's phase moves only on the stage's gathered tiles, hence a parity bit per stage.
      mbarrier_wait(gathered + s, (gathered_parity >> s) & 1u);
      gathered_parity ^= 1u << s;
      fence_proxy_async();
    }
    // Warpgroup-uniform: blocks ascend, so a block-only tile whose first block starts right of this
    // warpgroup's last row is fully masked.
    if (any_gathered || half0.key0 <= warpgroup_row_last) {
      float acc_s[kSRegs];
#pragma unroll
      for (int i = 0; i < kSRegs; ++i) acc_s[i] = 0.f;
      fence_registers(acc_s);
      wgmma_fence();
#pragma unroll
      for (int kk = 0; kk < kHeadDim / 16; ++kk) {
        const uint64_t desc_q =
            smem_desc_sw128(s_q + (kk / 4) * kBlockM * 64 + consumer * 64 * 64 + (kk % 4) * 16, 16, 1024);
        const uint64_t desc_k = smem_desc_sw128(k_tile + (kk / 4) * kTileKeys * 64 + (kk % 4) * 16, 16, 1024);
        wgmma_m64n128k16_ss(acc_s, desc_q, desc_k, kk > 0 ? 1 : 0);
      }
      wgmma_commit();
      wgmma_wait<0>();
      fence_registers(acc_s);

      if (mask) {
#pragma unroll
        for (int j = 0; j < kTileKeys / 8; ++j) {
          const bool second = j >= kBlockN / 8;
          const bool gathered = second ? gathered1 : gathered0;
          const int half_key0 = second ? half1.key0 : half0.key0;
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int row = warp_row0 + quad_row + (e >> 1) * 8;
            const int col = j * 8 + quad_col * 2 + (e & 1);
            const int key = gathered ? column_key[j][e & 1]
                                     : (half_key0 == INT_MAX ? INT_MAX : half_key0 + (col & (kBlockN - 1)));
            if (key > row) acc_s[j * 4 + e] = -INFINITY;
          }
        }
      }

      // Online softmax (flash_softmax.cuh): S becomes P, the running O and sum are rescaled.
      softmax_rescale<kSRegs, kORegs, Tiles::kExpPolyPeriod>(acc_s, acc_o, rows, p.scale_log2);
      // The S accumulator layout of two adjacent n8 tiles is the A register fragment of one k16 step of P V.
      uint32_t p_frag[kTileKeys / 16][4];
#pragma unroll
      for (int kc = 0; kc < kTileKeys / 16; ++kc) {
        p_frag[kc][0] = pack_bf16(acc_s[8 * kc + 0], acc_s[8 * kc + 1]);
        p_frag[kc][1] = pack_bf16(acc_s[8 * kc + 2], acc_s[8 * kc + 3]);
        p_frag[kc][2] = pack_bf16(acc_s[8 * kc + 4], acc_s[8 * kc + 5]);
        p_frag[kc][3] = pack_bf16(acc_s[8 * kc + 6], acc_s[8 * kc + 7]);
      }

      fence_registers(acc_o);
      wgmma_fence();
#pragma unroll
      for (int kc = 0; kc < kTileKeys / 16; ++kc) {
        // V tile [d/64][kTileKeys][64] is MN-major for the B operand: leading offset = next 64-column block,
        // stride offset = next 8 keys.
        const uint64_t desc_v = smem_desc_sw128(v_tile + kc * 16 * 64, kTileKeys * 128, 1024);
        if constexpr (kHeadDim == 128) {
          wgmma_m64n128k16_rs(acc_o, p_frag[kc], desc_v);
        } else {
          wgmma_m64n64k16_rs(acc_o, p_frag[kc], desc_v);
        }
      }
      wgmma_commit();
      wgmma_wait<0>();
      fence_registers(acc_o);
    }
    __syncwarp();
    if (lane == 0) mbarrier_arrive(empty + s);
  }

  // Epilogue (flash_epilogue.cuh): normalise, write O (bf16) and the natural-log LSE.
  store_rows(p, visit.split, q_head, warp_row0, quad_row, quad_col, acc_o, rows);
#endif
}

template <int kHeadDim, class Visit>
cudaError_t launch_flash_forward_sm90(const FlashParams& params, const FlashTmaMaps& maps, int num_ctas,
                                      cudaStream_t stream) {
  using Tiles = FlashTilesSm90<kHeadDim>;
  auto* kernel = flash_forward_sm90_kernel<kHeadDim, Visit>;
  cudaError_t error =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, Tiles::kSmemBytes);
  if (error != cudaSuccess) return error;
  kernel<<<num_ctas, Tiles::kThreads, Tiles::kSmemBytes, stream>>>(params, maps);
  return cudaGetLastError();
}

}  // namespace sacc::flash
