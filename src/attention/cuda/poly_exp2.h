// 2^x for x <= 0 without the special-function unit, for the flash kernels' softmax (flash_softmax.cuh):
// x = j + f, j = round(x), f in [-0.5, 0.5]; 2^f from a cubic with the constant term 1 (the others fitted for
// the least largest relative error on the interval: 1.0e-4 in fp32, under bf16's 2^-9 rounding of P); 2^j
// added to the exponent bits. x is clamped to -127 first: -inf (a masked score) then gives j = -127, f = 0,
// the cubic's exact 1, and +0 exactly. The host copy of the same arithmetic is what the CPU tests check
// (tests/attention/test_poly_exp2.cpp).
#pragma once

#include <cstdint>

#include "core/host_device.h"

#if !defined(__CUDA_ARCH__)
#include <bit>
#include <cmath>
#endif

namespace sacc::flash {

SACC_HOST_DEVICE inline float poly_exp2(float x) {
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: x + kRound keeps round(x) in its low mantissa bits
  constexpr float kC1 = 0.69328296f, kC2 = 0.24221118f, kC3 = 0.05500888f;
  // The low 9 bits of shifted's pattern hold j (two's complement, as kRound's low bits are 0); shifted left
  // by 23 (unsigned, modulo 2^32) they add j to the exponent field.
#if defined(__CUDA_ARCH__)
  x = fmaxf(x, -127.0f);
  const float shifted = __fadd_rn(x, kRound);  // the _rn intrinsics are never contracted or reordered
  const float f = __fsub_rn(x, __fsub_rn(shifted, kRound));
  const float p = fmaf(fmaf(fmaf(kC3, f, kC2), f, kC1), f, 1.0f);
  return __uint_as_float(__float_as_uint(p) + (__float_as_uint(shifted) << 23));
#else
  x = std::fmax(x, -127.0f);
  const float shifted = x + kRound;
  const float f = x - (shifted - kRound);
  const float p = std::fma(std::fma(std::fma(kC3, f, kC2), f, kC1), f, 1.0f);
  return std::bit_cast<float>(std::bit_cast<uint32_t>(p) + (std::bit_cast<uint32_t>(shifted) << 23));
#endif
}

}  // namespace sacc::flash
