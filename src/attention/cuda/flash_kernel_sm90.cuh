// The Hopper (sm_90a) body of the flash kernel family: the same visit policies, pipeline and online softmax
// as flash_kernel.cuh, with the two GEMMs on warpgroup MMA. Two warpgroups per CTA, 64 query rows each: S = Q
// K^T reads Q and K straight from shared memory (K-major), O += P V takes P from registers and V from shared
// memory (MN-major, the transpose bit). Tiles live in shared memory as 64-column blocks of 128-byte rows with
// the 16-byte chunk XOR-swizzled by the row, which is the layout wgmma's 128-byte swizzle expects.
#pragma once

#include "attention/cuda/flash_kernel.cuh"
#include "attention/cuda/flash_wgmma.cuh"

namespace sacc::flash {

// Element offset of (row, 16-byte chunk) in a [rows, d] tile stored as d/64 blocks of [rows, 64].
template <int kRows>
__device__ __forceinline__ int sw128_offset(int row, int chunk) {
  return (chunk >> 3) * kRows * 64 + row * 64 + (((chunk & 7) ^ (row & 7)) << 3);
}

template <int kHeadDim, class Visit>
__global__ void __launch_bounds__(FlashTilesSm90<kHeadDim>::kThreads,
                                  FlashConfigSm90<kHeadDim>::kMinBlocksPerSm)
    flash_forward_sm90_kernel(const __grid_constant__ FlashParams p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)  // wgmma exists only in the sm_90a target; the dispatcher never
                                        // launches this kernel elsewhere
  using Tiles = FlashTilesSm90<kHeadDim>;
  constexpr int kStages = Tiles::kStages;
  constexpr int kChunks = kHeadDim / 8;
  constexpr int kKeyTiles = kBlockN / 8;
  constexpr int kSRegs = kBlockN / 2;   // m64n64 accumulator registers per thread
  constexpr int kORegs = kHeadDim / 2;  // m64n(d) accumulator registers per thread

  extern __shared__ unsigned char smem_raw[];
  // wgmma's swizzle works on absolute address bits: every 8-row atom must start on a 1024-byte boundary.
  auto* s_q = reinterpret_cast<uint16_t*>((reinterpret_cast<uintptr_t>(smem_raw) + 1023) & ~uintptr_t{1023});
  uint16_t* s_k = s_q + Tiles::kQElems;                                  // [kStages][kBlockN, d]
  uint16_t* s_v = s_k + kStages * Tiles::kKvElems;                       // [kStages][kBlockN, d]
  int* s_key = reinterpret_cast<int*>(s_v + kStages * Tiles::kKvElems);  // [kStages][kBlockN]

  const Visit visit(p, blockIdx.x);
  const int tid = threadIdx.x;
  const int warp = tid >> 5;
  const int lane = tid & 31;
  const int warpgroup = warp >> 2;
  const int quad_row = lane >> 2;
  const int quad_col = lane & 3;
  const int seq_len = p.seq_len;
  const int q_row0 = visit.q_block * kBlockM;
  const int warpgroup_row_last = q_row0 + warpgroup * 64 + 63;
  const int warp_row0 = q_row0 + warp * 16;
  const int kv_head = visit.q_head / p.group_size;
  const uint16_t* q_base = p.q + visit.q_head * p.q_head_stride;
  const uint16_t* k_base = p.k + kv_head * p.kv_head_stride;
  const uint16_t* v_base = p.v + kv_head * p.kv_head_stride;

  for (int i = tid; i < kBlockM * kChunks; i += Tiles::kThreads) {
    const int r = i / kChunks, c = i % kChunks;
    const int row = q_row0 + r;
    const bool valid = row < seq_len;
    cp_async_16(s_q + sw128_offset<kBlockM>(r, c), q_base + (valid ? row : 0) * p.q_token_stride + c * 8,
                valid);
  }
  cp_async_commit();

  auto load_tile = [&](int t, int stage) {
    const KeyTile kt = visit.tile(t);
    for (int i = tid; i < kBlockN * kChunks; i += Tiles::kThreads) {
      const int r = i / kChunks, c = i % kChunks;
      int key = kt.key0 + r;
      if (kt.gathered()) key = r < kt.count ? __ldg(kt.maybe_columns + r) : INT_MAX;
      const bool valid = key < seq_len;
      const int64_t offset = static_cast<int64_t>(valid ? key : 0) * p.kv_token_stride + c * 8;
      cp_async_16(s_k + stage * Tiles::kKvElems + sw128_offset<kBlockN>(r, c), k_base + offset, valid);
      cp_async_16(s_v + stage * Tiles::kKvElems + sw128_offset<kBlockN>(r, c), v_base + offset, valid);
      if (c == 0) s_key[stage * kBlockN + r] = key;
    }
  };

  const int num_tiles = visit.num_tiles();
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < num_tiles) load_tile(s, s);
    cp_async_commit();
  }

  float acc_o[kORegs];
  float row_max[2] = {-INFINITY, -INFINITY};
  float row_sum[2] = {0.f, 0.f};
#pragma unroll
  for (int i = 0; i < kORegs; ++i) acc_o[i] = 0.f;

  for (int t = 0; t < num_tiles; ++t) {
    const int stage = t % kStages;
    if (t + kStages - 1 < num_tiles) load_tile(t + kStages - 1, (t + kStages - 1) % kStages);
    cp_async_commit();
    cp_async_wait<kStages - 1>();
    fence_proxy_async();
    __syncthreads();

    const KeyTile kt = visit.tile(t);
    const bool gathered = kt.gathered();
    // Warpgroup-uniform: a contiguous tile entirely right of this warpgroup's last row is fully masked.
    if (gathered || kt.key0 <= warpgroup_row_last) {
      const uint16_t* k_tile = s_k + stage * Tiles::kKvElems;
      const uint16_t* v_tile = s_v + stage * Tiles::kKvElems;

      float acc_s[kSRegs];
#pragma unroll
      for (int i = 0; i < kSRegs; ++i) acc_s[i] = 0.f;
      fence_registers(acc_s);
      wgmma_fence();
#pragma unroll
      for (int kk = 0; kk < kHeadDim / 16; ++kk) {
        const uint64_t desc_q =
            smem_desc_sw128(s_q + (kk / 4) * kBlockM * 64 + warpgroup * 64 * 64 + (kk % 4) * 16, 16, 1024);
        const uint64_t desc_k = smem_desc_sw128(k_tile + (kk / 4) * kBlockN * 64 + (kk % 4) * 16, 16, 1024);
        wgmma_m64n64k16_ss(acc_s, desc_q, desc_k, kk > 0 ? 1 : 0);
      }
      wgmma_commit();
      wgmma_wait<0>();
      fence_registers(acc_s);

      if (gathered || kt.key0 + kBlockN - 1 > warp_row0) {
        const int* keys = s_key + stage * kBlockN;
#pragma unroll
        for (int j = 0; j < kKeyTiles; ++j)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int row = warp_row0 + quad_row + (e >> 1) * 8;
            const int col = j * 8 + quad_col * 2 + (e & 1);
            const int key = gathered ? keys[col] : kt.key0 + col;
            if (key > row) acc_s[j * 4 + e] = -INFINITY;
          }
      }

      uint32_t p_frag[kBlockN / 16][4];
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        float mx = -INFINITY;
#pragma unroll
        for (int j = 0; j < kKeyTiles; ++j)
          mx = fmaxf(mx, fmaxf(acc_s[j * 4 + 2 * h], acc_s[j * 4 + 2 * h + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        const float new_max = fmaxf(row_max[h], mx * p.scale_log2);
        const float offset = new_max == -INFINITY ? 0.f : new_max;
        const float alpha = exp2f(row_max[h] - offset);
        row_max[h] = new_max;
        float sum = 0.f;
#pragma unroll
        for (int j = 0; j < kKeyTiles; ++j) {
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
#pragma unroll
      for (int kc = 0; kc < kBlockN / 16; ++kc) {
        p_frag[kc][0] = pack_bf16(acc_s[8 * kc + 0], acc_s[8 * kc + 1]);
        p_frag[kc][1] = pack_bf16(acc_s[8 * kc + 2], acc_s[8 * kc + 3]);
        p_frag[kc][2] = pack_bf16(acc_s[8 * kc + 4], acc_s[8 * kc + 5]);
        p_frag[kc][3] = pack_bf16(acc_s[8 * kc + 6], acc_s[8 * kc + 7]);
      }

      fence_registers(acc_o);
      wgmma_fence();
#pragma unroll
      for (int kc = 0; kc < kBlockN / 16; ++kc) {
        // V is [keys, d] with d contiguous: MN-major for the B operand. Leading offset = next 64-column block
        // (kBlockN rows of 128 bytes), stride offset = next 8 keys (1024 bytes).
        const uint64_t desc_v = smem_desc_sw128(v_tile + kc * 16 * 64, kBlockN * 128, 1024);
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
    __syncthreads();
  }
  cp_async_wait<0>();

  uint16_t* o_base = p.o + visit.q_head * p.o_head_stride;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    float sum = row_sum[h];
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    const int row = warp_row0 + quad_row + h * 8;
    if (row >= seq_len) continue;
    const float inv = sum > 0.f ? 1.f / sum : 0.f;
    uint16_t* o_row = o_base + static_cast<int64_t>(row) * p.o_token_stride + quad_col * 2;
#pragma unroll
    for (int j = 0; j < kHeadDim / 8; ++j) {
      *reinterpret_cast<uint32_t*>(o_row + j * 8) =
          pack_bf16(acc_o[j * 4 + 2 * h] * inv, acc_o[j * 4 + 2 * h + 1] * inv);
    }
    if (p.maybe_lse != nullptr && quad_col == 0) {
      p.maybe_lse[static_cast<int64_t>(visit.q_head) * seq_len + row] =
          sum > 0.f ? (row_max[h] + log2f(sum)) * 0.69314718055994531f : -INFINITY;
    }
  }
#endif
}

template <int kHeadDim, class Visit>
cudaError_t launch_flash_forward_sm90(const FlashParams& params, int num_ctas, cudaStream_t stream) {
  using Tiles = FlashTilesSm90<kHeadDim>;
  auto* kernel = flash_forward_sm90_kernel<kHeadDim, Visit>;
  cudaError_t error =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, Tiles::kSmemBytes);
  if (error != cudaSuccess) return error;
  kernel<<<num_ctas, Tiles::kThreads, Tiles::kSmemBytes, stream>>>(params);
  return cudaGetLastError();
}

}  // namespace sacc::flash
