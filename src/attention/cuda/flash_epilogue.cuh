// The epilogue of both flash bodies: O normalised by the softmax sum and stored as bf16, and the natural-log
// LSE, for the two rows (row0 + quad_row, row0 + quad_row + 8) of one m16 row tile a thread holds (fragment
// layout: flash_softmax.cuh). Rows with no visible key: O = 0, LSE = -inf. Rows past L are not written. Rows
// are absolute; O and the LSE hold them from p.q_begin on, in key split `split` (FlashParams::key_splits).
#pragma once

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "attention/cuda/flash_params.h"
#include "attention/cuda/flash_softmax.cuh"
#include "attention/cuda/ptx.cuh"

namespace sacc::flash {

template <int kORegs>
__device__ __forceinline__ void store_rows(const FlashParams& p, int split, int q_head, int row0,
                                           int quad_row, int quad_col, const float (&o)[kORegs],
                                           const SoftmaxRows& rows) {
  const int64_t n = p.seq_len - p.q_begin;
  uint16_t* o_base = p.o + split * p.o_split_stride + q_head * p.o_head_stride;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    float sum = rows.sum[h];
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    const int row = row0 + quad_row + h * 8;
    if (row >= p.seq_len) continue;
    const float inv = sum > 0.f ? 1.f / sum : 0.f;
    const int q_row = row - p.q_begin;
    uint16_t* o_row = o_base + static_cast<int64_t>(q_row) * p.o_token_stride + quad_col * 2;
#pragma unroll
    for (int j = 0; j < kORegs / 4; ++j)
      *reinterpret_cast<uint32_t*>(o_row + j * 8) =
          ptx::pack_bf16(o[j * 4 + 2 * h] * inv, o[j * 4 + 2 * h + 1] * inv);
    if (p.maybe_lse != nullptr && quad_col == 0) {
      p.maybe_lse[(static_cast<int64_t>(split) * p.num_q_heads + q_head) * n + q_row] =
          sum > 0.f ? (rows.max[h] + log2f(sum)) * 0.69314718055994531f : -INFINITY;
    }
  }
}

}  // namespace sacc::flash
