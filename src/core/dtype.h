// Element types and the host-side conversions between them. bf16 and fp16 are stored as raw uint16_t on the
// host; conversions round to nearest even, keep NaN a NaN and saturate nothing (overflow goes to inf, as IEEE
// does).
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/status.h"

namespace sacc {

enum class DType : uint8_t { F64, F32, F16, BF16, FP8_E4M3, I64, I32, I16, I8, U8, BOOL };

size_t dtype_size(DType dtype);
// Names as the safetensors header spells them: "F32", "BF16", ...
std::string_view dtype_name(DType dtype);
Result<DType> parse_dtype(std::string_view name);
bool is_floating(DType dtype);

// ---- bf16
// ----------------------------------------------------------------------------------------------------
inline uint16_t float_to_bf16(float value) {
  uint32_t bits = std::bit_cast<uint32_t>(value);
  if ((bits & 0x7f800000u) == 0x7f800000u && (bits & 0x007fffffu) != 0) {
    return static_cast<uint16_t>((bits >> 16) | 0x0040u);  // quiet NaN, sign kept
  }
  uint32_t rounding_bias = 0x7fffu + ((bits >> 16) & 1u);  // round to nearest, ties to even
  return static_cast<uint16_t>((bits + rounding_bias) >> 16);
}

inline float bf16_to_float(uint16_t value) {
  return std::bit_cast<float>(static_cast<uint32_t>(value) << 16);
}

// Round a float through bf16 and back: what a bf16 tensor can hold.
inline float round_to_bf16(float value) {
  return bf16_to_float(float_to_bf16(value));
}

// ---- fp16 (IEEE binary16)
// -------------------------------------------------------------------------------------
uint16_t float_to_fp16(float value);
float fp16_to_float(uint16_t value);
inline float round_to_fp16(float value) {
  return fp16_to_float(float_to_fp16(value));
}

// ---- fp8 e4m3 (OCP "fn" variant: no inf, one NaN pattern, max 448)
// ---------------------------------------------
uint8_t float_to_fp8_e4m3(float value);
float fp8_e4m3_to_float(uint8_t value);

// Read element `index` of a buffer of `dtype` as float / write a float into it (host memory only).
float load_as_float(const void* data, DType dtype, size_t index);
void store_from_float(void* data, DType dtype, size_t index, float value);

}  // namespace sacc
