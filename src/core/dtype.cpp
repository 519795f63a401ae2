#include "core/dtype.h"

#include <cmath>
#include <cstring>

namespace sacc {

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::F64:
    case DType::I64:
      return 8;
    case DType::F32:
    case DType::I32:
      return 4;
    case DType::F16:
    case DType::BF16:
    case DType::I16:
      return 2;
    case DType::FP8_E4M3:
    case DType::I8:
    case DType::U8:
    case DType::BOOL:
      return 1;
  }
  return 0;
}

std::string_view dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F64:
      return "F64";
    case DType::F32:
      return "F32";
    case DType::F16:
      return "F16";
    case DType::BF16:
      return "BF16";
    case DType::FP8_E4M3:
      return "F8_E4M3";
    case DType::I64:
      return "I64";
    case DType::I32:
      return "I32";
    case DType::I16:
      return "I16";
    case DType::I8:
      return "I8";
    case DType::U8:
      return "U8";
    case DType::BOOL:
      return "BOOL";
  }
  return "?";
}

Result<DType> parse_dtype(std::string_view name) {
  for (DType d : {DType::F64, DType::F32, DType::F16, DType::BF16, DType::FP8_E4M3, DType::I64, DType::I32,
                  DType::I16, DType::I8, DType::U8, DType::BOOL}) {
    if (dtype_name(d) == name) return d;
  }
  return make_error(StatusCode::UNSUPPORTED,
                    "unknown dtype '{}' (known: F64 F32 F16 BF16 F8_E4M3 I64 I32 I16 I8 U8 BOOL)", name);
}

bool is_floating(DType dtype) {
  return dtype == DType::F64 || dtype == DType::F32 || dtype == DType::F16 || dtype == DType::BF16 ||
         dtype == DType::FP8_E4M3;
}

uint16_t float_to_fp16(float value) {
  uint32_t bits = std::bit_cast<uint32_t>(value);
  uint32_t sign = (bits >> 16) & 0x8000u;
  uint32_t abs = bits & 0x7fffffffu;
  if (abs >= 0x7f800000u) {  // inf or NaN
    return static_cast<uint16_t>(sign | 0x7c00u | (abs > 0x7f800000u ? 0x0200u : 0u));
  }
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to >= 65520: inf
  if (abs < 0x38800000u) {
    // Subnormal fp16 (or zero): value = m * 2^-24; round the float to a multiple of 2^-24, ties to even.
    float magnitude = std::bit_cast<float>(abs);
    float scaled = magnitude * 16777216.0f;  // exact (power of two)
    float rounded = std::nearbyint(scaled);  // default rounding mode: to nearest even
    return static_cast<uint16_t>(sign | static_cast<uint32_t>(rounded));
  }
  // Normal: rebias exponent 127 -> 15 and round the 23-bit mantissa to 10 bits, ties to even.
  uint32_t rebased = abs - ((127u - 15u) << 23);
  uint32_t rounding_bias = 0x0fffu + ((rebased >> 13) & 1u);
  return static_cast<uint16_t>(sign | ((rebased + rounding_bias) >> 13));
}

float fp16_to_float(uint16_t value) {
  uint32_t sign = static_cast<uint32_t>(value & 0x8000u) << 16;
  uint32_t exponent = (value >> 10) & 0x1fu;
  uint32_t mantissa = value & 0x3ffu;
  if (exponent == 0) {
    float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    return sign ? -magnitude : magnitude;
  }
  if (exponent == 31) return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));
  return std::bit_cast<float>(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

uint8_t float_to_fp8_e4m3(float value) {
  if (std::isnan(value)) return 0x7f;
  uint8_t sign = std::signbit(value) ? 0x80 : 0x00;
  float magnitude = std::fabs(value);
  if (magnitude >= 464.0f) return static_cast<uint8_t>(sign | 0x7e);  // saturate to 448 (no inf in e4m3fn)
  // Find the nearest representable value by scanning the 127 non-negative codes (exact, and only used off the
  // hot path: weight conversion and tests).
  uint8_t best = 0;
  float best_error = magnitude;
  for (uint8_t code = 1; code < 0x7f; ++code) {
    float error = std::fabs(fp8_e4m3_to_float(code) - magnitude);
    if (error < best_error || (error == best_error && (code & 1u) == 0)) {
      best = code;
      best_error = error;
    }
  }
  return static_cast<uint8_t>(sign | best);
}

float fp8_e4m3_to_float(uint8_t value) {
  float sign = (value & 0x80) ? -1.0f : 1.0f;
  uint32_t exponent = (value >> 3) & 0x0f;
  uint32_t mantissa = value & 0x07;
  if (exponent == 0x0f && mantissa == 0x07) return std::nanf("");
  if (exponent == 0) return sign * std::ldexp(static_cast<float>(mantissa), -9);
  return sign * std::ldexp(1.0f + static_cast<float>(mantissa) / 8.0f, static_cast<int>(exponent) - 7);
}

float load_as_float(const void* data, DType dtype, size_t index) {
  const auto* bytes = static_cast<const unsigned char*>(data) + index * dtype_size(dtype);
  switch (dtype) {
    case DType::F64: {
      double v;
      std::memcpy(&v, bytes, 8);
      return static_cast<float>(v);
    }
    case DType::F32: {
      float v;
      std::memcpy(&v, bytes, 4);
      return v;
    }
    case DType::F16: {
      uint16_t v;
      std::memcpy(&v, bytes, 2);
      return fp16_to_float(v);
    }
    case DType::BF16: {
      uint16_t v;
      std::memcpy(&v, bytes, 2);
      return bf16_to_float(v);
    }
    case DType::FP8_E4M3:
      return fp8_e4m3_to_float(*bytes);
    case DType::I64: {
      int64_t v;
      std::memcpy(&v, bytes, 8);
      return static_cast<float>(v);
    }
    case DType::I32: {
      int32_t v;
      std::memcpy(&v, bytes, 4);
      return static_cast<float>(v);
    }
    case DType::I16: {
      int16_t v;
      std::memcpy(&v, bytes, 2);
      return static_cast<float>(v);
    }
    case DType::I8:
      return static_cast<float>(static_cast<int8_t>(*bytes));
    case DType::U8:
    case DType::BOOL:
      return static_cast<float>(*bytes);
  }
  return 0.0f;
}

void store_from_float(void* data, DType dtype, size_t index, float value) {
  auto* bytes = static_cast<unsigned char*>(data) + index * dtype_size(dtype);
  switch (dtype) {
    case DType::F64: {
      double v = value;
      std::memcpy(bytes, &v, 8);
      return;
    }
    case DType::F32:
      std::memcpy(bytes, &value, 4);
      return;
    case DType::F16: {
      uint16_t v = float_to_fp16(value);
      std::memcpy(bytes, &v, 2);
      return;
    }
    case DType::BF16: {
      uint16_t v = float_to_bf16(value);
      std::memcpy(bytes, &v, 2);
      return;
    }
    case DType::FP8_E4M3:
      *bytes = float_to_fp8_e4m3(value);
      return;
    case DType::I64: {
      int64_t v = static_cast<int64_t>(value);
      std::memcpy(bytes, &v, 8);
      return;
    }
    case DType::I32: {
      int32_t v = static_cast<int32_t>(value);
      std::memcpy(bytes, &v, 4);
      return;
    }
    case DType::I16: {
      int16_t v = static_cast<int16_t>(value);
      std::memcpy(bytes, &v, 2);
      return;
    }
    case DType::I8:
      *bytes = static_cast<unsigned char>(static_cast<int8_t>(value));
      return;
    case DType::U8:
    case DType::BOOL:
      *bytes = static_cast<unsigned char>(value);
      return;
  }
}

}  // namespace sacc
