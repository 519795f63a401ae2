// bf16 stored as uint16_t bit patterns, to and from fp32 (device code; include from .cu files only).
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

namespace sacc::cuda_rt {

__device__ __forceinline__ float to_f(uint16_t v) {
  return __uint_as_float(static_cast<uint32_t>(v) << 16);
}

__device__ __forceinline__ uint16_t to_bf(float v) {
  return __bfloat16_as_ushort(__float2bfloat16_rn(v));
}

}  // namespace sacc::cuda_rt
