// The online softmax of both flash bodies (FlashAttention-2/3 style), on the accumulator fragment a thread
// holds for one m16 row tile. In the mma.sync m16n8 layout, and in wgmma's m64 layout per warp, a thread owns
// two rows (h = 0: quad_row, h = 1: quad_row + 8) and, of every n8 column tile j, the elements
// [j * 4 + 2 * h, j * 4 + 2 * h + 1] of its fragment; the row's other columns live in the quad's 3 other
// lanes. Scores are kept in the log2 domain: max of s * scale_log2, P = exp2(s * scale_log2 - max), by
// ex2.approx.ftz (or poly_exp2, below): exp2f's subnormal handling added two predicated multiplies per
// element, for values below 2^-126 of the row's largest P (which is 1).
//
// The special-function unit does 16 exponentials per clock per SM, a quarter of the FP32 pipe's rate. At d 64
// a 128 x 128 tile needs as many of its clocks (16384 exponentials) as of the tensor cores' (4.2 MFLOP), so
// the kernel can ask for some of its P columns (kPolyPeriod) from poly_exp2 on the FMA and integer pipes.
#pragma once

#include <cuda_runtime.h>

#include <cmath>

#include "attention/cuda/ptx.cuh"

namespace sacc::flash {

// 2^x for x <= 0 without the special-function unit: x = j + f, j = round(x), f in [-0.5, 0.5]; 2^f from a
// cubic with the constant term 1 (the others fitted here for the least largest relative error on the
// interval: 1.0e-4 in fp32, under bf16's 2^-9 rounding of P), 2^j added to the exponent bits. x is clamped
// to -127 first: -inf (a masked score) then gives j = -127, f = 0, the cubic's exact 1, and +0 exactly.
__device__ __forceinline__ float poly_exp2(float x) {
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: x + kRound keeps round(x) in its low mantissa bits
  x = fmaxf(x, -127.0f);
  const float shifted = __fadd_rn(x, kRound);  // the _rn intrinsics are never contracted or reordered
  const float f = __fsub_rn(x, __fsub_rn(shifted, kRound));
  const float p = fmaf(fmaf(fmaf(0.05500888f, f, 0.24221118f), f, 0.69328296f), f, 1.0f);
  // The low 9 bits of shifted's pattern hold j (two's complement, as kRound's low bits are 0).
  return __int_as_float(__float_as_int(p) + (__float_as_int(shifted) << 23));
}

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
