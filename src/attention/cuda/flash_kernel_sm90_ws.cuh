// Warp-specialised Hopper body of the flash kernel family (sm_90a): one producer warpgroup moves K/V tiles
// with the tensor-memory accelerator (TMA) into a two-stage shared-memory ring guarded by mbarriers, two
// consumer warpgroups (64 query rows each) run S = Q K^T and O += P V on wgmma with the online softmax in
// between. Registers move from producer to consumers with setmaxnreg. Each tile is two index key blocks (128
// keys), so both GEMMs are m64n128; a tile of gathered single columns (sparse) is 128 listed keys that the
// producer gathers row by row with cp.async, since TMA cannot gather arbitrary rows on sm_90.
#pragma once

#include "attention/cuda/flash_kernel.cuh"
#include "attention/cuda/flash_kernel_sm90.cuh"
#include "attention/cuda/flash_tma.h"
#include "attention/cuda/flash_wgmma.cuh"

namespace sacc::flash {

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void mbarrier_init(uint64_t* bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smem_u32(bar)), "r"(count) : "memory");
}
__device__ __forceinline__ void mbarrier_arrive_expect_tx(uint64_t* bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(smem_u32(bar)), "r"(bytes)
               : "memory");
}
__device__ __forceinline__ void mbarrier_arrive(uint64_t* bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(smem_u32(bar)) : "memory");
}
__device__ __forceinline__ void mbarrier_wait(uint64_t* bar, uint32_t parity) {
  uint32_t done = 0;
  do {
    asm volatile(
        "{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(smem_u32(bar)), "r"(parity)
        : "memory");
  } while (!done);
}
// 3-D tiled TMA load (coordinates: column, head, row) completing on an mbarrier.
__device__ __forceinline__ void tma_load_3d(void* dst, const CUtensorMap* map, int column, int head, int row,
                                            uint64_t* bar) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4}], "
      "[%5];\n" ::"r"(smem_u32(dst)),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(column), "r"(head), "r"(row), "r"(smem_u32(bar))
      : "memory");
}

template <int kHeadDim, class Visit>
__global__ void __launch_bounds__(FlashTilesSm90Ws<kHeadDim>::kThreads, 1)
    flash_forward_sm90_ws_kernel(const __grid_constant__ FlashParams p,
                                 const __grid_constant__ FlashTmaMaps maps) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using Tiles = FlashTilesSm90Ws<kHeadDim>;
  constexpr int kStages = Tiles::kStages;
  constexpr int kTileKeys = Tiles::kTileKeys;  // 128: two index key blocks
  constexpr int kColumnBlocks = kHeadDim / 64;
  constexpr int kChunks = kHeadDim / 8;
  constexpr int kSRegs = kTileKeys / 2;
  constexpr int kORegs = kHeadDim / 2;

  extern __shared__ unsigned char smem_raw[];
  auto* s_q = reinterpret_cast<uint16_t*>((reinterpret_cast<uintptr_t>(smem_raw) + 1023) & ~uintptr_t{1023});
  uint16_t* s_k = s_q + Tiles::kQElems;                                  // [kStages][d/64][kTileKeys][64]
  uint16_t* s_v = s_k + kStages * Tiles::kKvElems;                       // [kStages][d/64][kTileKeys][64]
  int* s_key = reinterpret_cast<int*>(s_v + kStages * Tiles::kKvElems);  // [kStages][kTileKeys]
  auto* bars = reinterpret_cast<uint64_t*>(s_key + kStages * kTileKeys);
  uint64_t* q_full = bars;               // Q landed
  uint64_t* full = bars + 1;             // [kStages] K/V stage landed
  uint64_t* empty = bars + 1 + kStages;  // [kStages] every consumer warp is done with the stage

  const Visit visit(p, blockIdx.x);
  const int tid = threadIdx.x;
  const int warp = tid >> 5;
  const int lane = tid & 31;
  const int warpgroup = warp >> 2;  // 0: producer, 1-2: consumers
  const int num_blocks = visit.num_key_blocks();
  const int num_block_tiles = (num_blocks + 1) / 2;
  const int num_tiles = num_block_tiles + (visit.num_key_columns() + kTileKeys - 1) / kTileKeys;
  const int kv_head = visit.q_head / p.group_size;
  const int q_row0 = visit.q_block * kBlockM;

  if (tid == 0) {
    mbarrier_init(q_full, 1);
    for (int s = 0; s < kStages; ++s) {
      mbarrier_init(full + s, 1);
      mbarrier_init(empty + s, 8);  // one arrival per consumer warp
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();

  if (warpgroup == 0) {
    asm volatile("setmaxnreg.dec.sync.aligned.u32 40;\n" ::: "memory");
    const int ptid = tid;  // 0..127
    if (ptid == 0) {
      mbarrier_arrive_expect_tx(q_full, Tiles::kQElems * 2);
      for (int cb = 0; cb < kColumnBlocks; ++cb)
        tma_load_3d(s_q + cb * kBlockM * 64, &maps.q, cb * 64, visit.q_head, q_row0, q_full);
    }
    for (int t = 0; t < num_tiles; ++t) {
      const int s = t % kStages;
      if (t >= kStages) mbarrier_wait(empty + s, ((t / kStages) - 1) & 1);
      uint16_t* k_tile = s_k + s * Tiles::kKvElems;
      uint16_t* v_tile = s_v + s * Tiles::kKvElems;
      if (t < num_block_tiles) {
        if (ptid == 0) {
          mbarrier_arrive_expect_tx(full + s, 2 * Tiles::kKvElems * 2);
          const int b0 = visit.key_block(2 * t);
          // An odd last block repeats in the second half (finite data); the consumers mask that half.
          const int b1 = 2 * t + 1 < num_blocks ? visit.key_block(2 * t + 1) : b0;
          for (int h = 0; h < 2; ++h) {
            const int row = (h == 0 ? b0 : b1) * kBlockN;
            for (int cb = 0; cb < kColumnBlocks; ++cb) {
              const int at = cb * kTileKeys * 64 + h * kBlockN * 64;
              tma_load_3d(k_tile + at, &maps.k, cb * 64, kv_head, row, full + s);
              tma_load_3d(v_tile + at, &maps.v, cb * 64, kv_head, row, full + s);
            }
          }
        }
      } else {
        const int c0 = (t - num_block_tiles) * kTileKeys;
        const int count = min(kTileKeys, visit.num_key_columns() - c0);
        const int32_t* columns = visit.key_columns() + c0;
        const uint16_t* k_base = p.k + kv_head * p.kv_head_stride;
        const uint16_t* v_base = p.v + kv_head * p.kv_head_stride;
        for (int i = ptid; i < kTileKeys * kChunks; i += 128) {
          const int r = i / kChunks, c = i % kChunks;
          const int key = r < count ? __ldg(columns + r) : INT_MAX;
          const bool valid = key < p.seq_len;
          const int64_t offset = static_cast<int64_t>(valid ? key : 0) * p.kv_token_stride + c * 8;
          cp_async_16(k_tile + sw128_offset<kTileKeys>(r, c), k_base + offset, valid);
          cp_async_16(v_tile + sw128_offset<kTileKeys>(r, c), v_base + offset, valid);
          if (c == 0) s_key[s * kTileKeys + r] = key;
        }
        asm volatile("cp.async.wait_all;\n" ::: "memory");
        fence_proxy_async();
        asm volatile("bar.sync 1, 128;\n" ::: "memory");
        if (ptid == 0) mbarrier_arrive(full + s);
      }
    }
    return;
  }

  asm volatile("setmaxnreg.inc.sync.aligned.u32 232;\n" ::: "memory");
  const int consumer = warpgroup - 1;
  const int quad_row = lane >> 2;
  const int quad_col = lane & 3;
  const int warpgroup_row_last = q_row0 + consumer * 64 + 63;
  const int warp_row0 = q_row0 + (warp - 4) * 16;

  float acc_o[kORegs];
  float row_max[2] = {-INFINITY, -INFINITY};
  float row_sum[2] = {0.f, 0.f};
#pragma unroll
  for (int i = 0; i < kORegs; ++i) acc_o[i] = 0.f;

  mbarrier_wait(q_full, 0);
  for (int t = 0; t < num_tiles; ++t) {
    const int s = t % kStages;
    mbarrier_wait(full + s, (t / kStages) & 1);
    const uint16_t* k_tile = s_k + s * Tiles::kKvElems;
    const uint16_t* v_tile = s_v + s * Tiles::kKvElems;
    const bool gathered = t >= num_block_tiles;
    int key0[2] = {0, INT_MAX};  // first key of each 64-key half; INT_MAX: half not listed
    if (!gathered) {
      key0[0] = visit.key_block(2 * t) * kBlockN;
      if (2 * t + 1 < num_blocks) key0[1] = visit.key_block(2 * t + 1) * kBlockN;
    }
    // Warpgroup-uniform: blocks ascend, so a tile whose first block starts right of the last row is masked.
    if (gathered || key0[0] <= warpgroup_row_last) {
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

      const int last_key0 = key0[1] == INT_MAX ? key0[0] : key0[1];
      if (gathered || key0[1] == INT_MAX || last_key0 + kBlockN - 1 > warp_row0) {
        const int* keys = s_key + s * kTileKeys;
#pragma unroll
        for (int j = 0; j < kTileKeys / 8; ++j)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int row = warp_row0 + quad_row + (e >> 1) * 8;
            const int col = j * 8 + quad_col * 2 + (e & 1);
            const int half_key0 = key0[j >= kBlockN / 8 ? 1 : 0];
            const int key =
                gathered ? keys[col] : (half_key0 == INT_MAX ? INT_MAX : half_key0 + (col & (kBlockN - 1)));
            if (key > row) acc_s[j * 4 + e] = -INFINITY;
          }
      }

#pragma unroll
      for (int h = 0; h < 2; ++h) {
        float mx = -INFINITY;
#pragma unroll
        for (int j = 0; j < kTileKeys / 8; ++j)
          mx = fmaxf(mx, fmaxf(acc_s[j * 4 + 2 * h], acc_s[j * 4 + 2 * h + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        const float new_max = fmaxf(row_max[h], mx * p.scale_log2);
        const float offset = new_max == -INFINITY ? 0.f : new_max;
        const float alpha = exp2f(row_max[h] - offset);
        row_max[h] = new_max;
        float sum = 0.f;
#pragma unroll
        for (int j = 0; j < kTileKeys / 8; ++j) {
          const float p0 = exp2f(fmaf(acc_s[j * 4 + 2 * h], p.scale_log2, -offset));
          const float p1 = exp2f(fmaf(acc_s[j * 4 + 2 * h + 1], p.scale_log2, -offset));
          acc_s[j * 4 + 2 * h] = p0;
          acc_s[j * 4 + 2 * h + 1] = p1;
          sum += p0 + p1;
        }
        row_sum[h] = row_sum[h] * alpha + sum;
#pragma unroll
        for (int j = 0; j < kHeadDim / 8; ++j) {
          acc_o[j * 4 + 2 * h] *= alpha;
          acc_o[j * 4 + 2 * h + 1] *= alpha;
        }
      }
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
        // V tile [d/64][kTileKeys][64]: MN-major B; leading offset = next 64-column block, stride = next 8
        // keys.
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

  uint16_t* o_base = p.o + visit.q_head * p.o_head_stride;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    float sum = row_sum[h];
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    const int row = warp_row0 + quad_row + h * 8;
    if (row >= p.seq_len) continue;
    const float inv = sum > 0.f ? 1.f / sum : 0.f;
    uint16_t* o_row = o_base + static_cast<int64_t>(row) * p.o_token_stride + quad_col * 2;
#pragma unroll
    for (int j = 0; j < kHeadDim / 8; ++j)
      *reinterpret_cast<uint32_t*>(o_row + j * 8) =
          pack_bf16(acc_o[j * 4 + 2 * h] * inv, acc_o[j * 4 + 2 * h + 1] * inv);
    if (p.maybe_lse != nullptr && quad_col == 0) {
      p.maybe_lse[static_cast<int64_t>(visit.q_head) * p.seq_len + row] =
          sum > 0.f ? (row_max[h] + log2f(sum)) * 0.69314718055994531f : -INFINITY;
    }
  }
#endif
}

template <int kHeadDim, class Visit>
cudaError_t launch_flash_forward_sm90_ws(const FlashParams& params, const FlashTmaMaps& maps, int num_ctas,
                                         cudaStream_t stream) {
  using Tiles = FlashTilesSm90Ws<kHeadDim>;
  auto* kernel = flash_forward_sm90_ws_kernel<kHeadDim, Visit>;
  cudaError_t error =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, Tiles::kSmemBytes);
  if (error != cudaSuccess) return error;
  kernel<<<num_ctas, Tiles::kThreads, Tiles::kSmemBytes, stream>>>(params, maps);
  return cudaGetLastError();
}

}  // namespace sacc::flash
