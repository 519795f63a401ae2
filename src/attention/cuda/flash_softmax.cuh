// The online softmax of both flash bodies (FlashAttention-2/3 style), on the accumulator fragment a thread
// holds for one m16 row tile. In the mma.sync m16n8 layout, and in wgmma's m64 layout per warp, a thread owns
// two rows (h = 0: quad_row, h = 1: quad_row + 8) and, of every n8 column tile j, the elements
// [j * 4 + 2 * h, j * 4 + 2 * h + 1] of its fragment; the row's other columns live in the quad's 3 other
// lanes. Scores are kept in the log2 domain: max of s * scale_log2, P = exp2(s * scale_log2 - max), by
// ex2.approx.ftz (or poly_exp2, poly_exp2.h): exp2f's subnormal handling added two predicated multiplies per
// element, for values below 2^-126 of the row's largest P (which is 1).
//
// The special-function unit does 16 exponentials per clock per SM, an eighth of the FP32 pipe's rate. At d 64
// a 128 x 128 tile needs as many of its clocks (16384 exponentials) as of the tensor cores' (4.2 MFLOP), so
// the kernel can ask for some of its P columns (kPolyPeriod) from poly_exp2 on the FMA and integer pipes.
#pragma once

#include <cuda_runtime.h>

#include <cmath>

#include "attention/cuda/poly_exp2.h"
#include "attention/cuda/ptx.cuh"

namespace sacc::flash {

// Running max (log2 domain) and this thread's partial sum of exp2(score - max), for its two rows.
struct SoftmaxRows {
  float max[2] = {-INFINITY, -INFINITY};
  float sum[2] = {0.f, 0.f};
};

// One key tile: s [kSRegs] (masked scores, -inf where hidden) becomes P, the running O [kORegs] and sum are
// rescaled by exp2(old max - new max). kPolyPeriod > 0: the fragment's n8 column tiles j with
// j % kPolyPeriod == kPolyPeriod - 1 take P from poly_exp2 (a compile-time choice per unrolled j).
template <int kSRegs, int kORegs, int kPolyPeriod = 0>
__device__ __forceinline__ void softmax_rescale(float (&s)[kSRegs], float (&o)[kORegs], SoftmaxRows& rows,
                                                float scale_log2) {
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    float mx = -INFINITY;
#pragma unroll
    for (int j = 0; j < kSRegs / 4; ++j) mx = fmaxf(mx, fmaxf(s[j * 4 + 2 * h], s[j * 4 + 2 * h + 1]));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
    const float new_max = fmaxf(rows.max[h], mx * scale_log2);
    // A row with no visible key yet keeps max -inf; offset 0 keeps exp2 finite (all terms are 0).
    const float offset = new_max == -INFINITY ? 0.f : new_max;
    const float alpha = ptx::fast_exp2(rows.max[h] - offset);
    rows.max[h] = new_max;
    float sum = 0.f;
#pragma unroll
    for (int j = 0; j < kSRegs / 4; ++j) {
      const bool poly = kPolyPeriod > 0 && j % (kPolyPeriod > 0 ? kPolyPeriod : 1) == kPolyPeriod - 1;
      const float x0 = fmaf(s[j * 4 + 2 * h], scale_log2, -offset);
      const float x1 = fmaf(s[j * 4 + 2 * h + 1], scale_log2, -offset);
      const float p0 = poly ? poly_exp2(x0) : ptx::fast_exp2(x0);
      const float p1 = poly ? poly_exp2(x1) : ptx::fast_exp2(x1);
      s[j * 4 + 2 * h] = p0;
      s[j * 4 + 2 * h + 1] = p1;
      sum += p0 + p1;
    }
    rows.sum[h] = rows.sum[h] * alpha + sum;
#pragma unroll
    for (int j = 0; j < kORegs / 4; ++j) {
      o[j * 4 + 2 * h] *= alpha;
      o[j * 4 + 2 * h + 1] *= alpha;
    }
  }
}

// A [n][4] fragment array seen as the flat [n * 4] the functions above take (same registers).
template <int kTiles>
__device__ __forceinline__ float (&flat(float (&tiles)[kTiles][4]))[kTiles * 4] {
  return reinterpret_cast<float(&)[kTiles * 4]>(tiles);
}

}  // namespace sacc::flash
