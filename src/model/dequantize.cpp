#include "model/dequantize.h"

#include <array>
#include <cstring>

#include "core/dtype.h"

namespace sacc {
namespace {

constexpr int64_t kQk = 32;    // elements per block of the legacy formats (Q4_0, Q4_1, Q8_0)
constexpr int64_t kQkK = 256;  // elements per super-block of the k-quants (Q4_K, Q6_K)

constexpr std::array<GgmlTypeInfo, 10> kTypes = {{
    {GgmlType::F32, "F32", 1, 4},
    {GgmlType::F16, "F16", 1, 2},
    {GgmlType::BF16, "BF16", 1, 2},
    {GgmlType::Q4_0, "Q4_0", kQk, 2 + kQk / 2},
    {GgmlType::Q4_1, "Q4_1", kQk, 4 + kQk / 2},
    {GgmlType::Q5_0, "Q5_0", kQk, 2 + 4 + kQk / 2},
    {GgmlType::Q5_1, "Q5_1", kQk, 4 + 4 + kQk / 2},
    {GgmlType::Q8_0, "Q8_0", kQk, 2 + kQk},
    // d, dmin (f16), 12 bytes of packed 6-bit scales and mins, 128 bytes of 4-bit quants.
    {GgmlType::Q4_K, "Q4_K", kQkK, 4 + 12 + kQkK / 2},
    // 128 bytes low nibbles, 64 bytes high 2-bit pairs, 16 int8 scales, d (f16).
    {GgmlType::Q6_K, "Q6_K", kQkK, kQkK / 2 + kQkK / 4 + kQkK / 16 + 2},
}};

// Names of ggml types we recognise but cannot dequantise, so the error says what the file holds.
std::string_view unsupported_type_name(uint32_t code) {
  switch (code) {
    case 9:
      return "Q8_1";
    case 10:
      return "Q2_K";
    case 11:
      return "Q3_K";
    case 13:
      return "Q5_K";
    case 15:
      return "Q8_K";
    case 16:
      return "IQ2_XXS";
    case 17:
      return "IQ2_XS";
    case 18:
      return "IQ3_XXS";
    case 19:
      return "IQ1_S";
    case 20:
      return "IQ4_NL";
    case 21:
      return "IQ3_S";
    case 22:
      return "IQ2_S";
    case 23:
      return "IQ4_XS";
    case 24:
      return "I8";
    case 25:
      return "I16";
    case 26:
      return "I32";
    case 27:
      return "I64";
    case 28:
      return "F64";
    case 29:
      return "IQ1_M";
    default:
      return "";
  }
}

uint16_t read_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

float read_f16(const uint8_t* p) {
  return fp16_to_float(read_u16(p));
}

// Each decoder writes one block of floats; the caller converts to the output type.
void decode_q4_0(const uint8_t* block, float* out) {
  const float d = read_f16(block);
  const uint8_t* qs = block + 2;
  for (int j = 0; j < kQk / 2; ++j) {
    out[j] = static_cast<float>((qs[j] & 0x0f) - 8) * d;
    out[j + kQk / 2] = static_cast<float>((qs[j] >> 4) - 8) * d;
  }
}

void decode_q4_1(const uint8_t* block, float* out) {
  const float d = read_f16(block);
  const float m = read_f16(block + 2);
  const uint8_t* qs = block + 4;
  for (int j = 0; j < kQk / 2; ++j) {
    out[j] = static_cast<float>(qs[j] & 0x0f) * d + m;
    out[j + kQk / 2] = static_cast<float>(qs[j] >> 4) * d + m;
  }
}

// Q5: the 5th bit of element j is bit j of a little-endian uint32 stored before the nibbles.
void decode_q5(const uint8_t* qh_bytes, const uint8_t* qs, float d, float offset, float* out) {
  uint32_t qh;
  std::memcpy(&qh, qh_bytes, sizeof(qh));
  for (int j = 0; j < kQk / 2; ++j) {
    const int lo = (qs[j] & 0x0f) | static_cast<int>(((qh >> j) & 1u) << 4);
    const int hi = (qs[j] >> 4) | static_cast<int>(((qh >> (j + kQk / 2)) & 1u) << 4);
    out[j] = static_cast<float>(lo) * d + offset;
    out[j + kQk / 2] = static_cast<float>(hi) * d + offset;
  }
}

// Q5_0 is symmetric around 16: value = (q - 16) * d.
void decode_q5_0(const uint8_t* block, float* out) {
  const float d = read_f16(block);
  decode_q5(block + 2, block + 6, d, -16.0f * d, out);
}

void decode_q5_1(const uint8_t* block, float* out) {
  decode_q5(block + 4, block + 8, read_f16(block), read_f16(block + 2), out);
}

void decode_q8_0(const uint8_t* block, float* out) {
  const float d = read_f16(block);
  const auto* qs = reinterpret_cast<const int8_t*>(block + 2);
  for (int j = 0; j < kQk; ++j) out[j] = static_cast<float>(qs[j]) * d;
}

// Q4_K packs 8 (scale, min) pairs of 6 bits into 12 bytes: pairs 0-3 in the low 6 bits of bytes 0-3 / 4-7;
// pairs 4-7 take their low 4 bits from bytes 8-11 and their high 2 bits from the top bits of bytes 0-3 / 4-7.
void q4_k_scale_min(const uint8_t* packed, int index, int* scale, int* min) {
  if (index < 4) {
    *scale = packed[index] & 63;
    *min = packed[index + 4] & 63;
  } else {
    *scale = (packed[index + 4] & 0x0f) | ((packed[index - 4] >> 6) << 4);
    *min = (packed[index + 4] >> 4) | ((packed[index] >> 6) << 4);
  }
}

// 8 sub-blocks of 32; sub-blocks 2k and 2k+1 share 32 bytes of quants (low and high nibbles).
void decode_q4_k(const uint8_t* block, float* out) {
  const float d = read_f16(block);
  const float dmin = read_f16(block + 2);
  const uint8_t* packed = block + 4;
  const uint8_t* qs = block + 16;
  for (int pair = 0; pair < 4; ++pair) {
    int scale_lo, min_lo, scale_hi, min_hi;
    q4_k_scale_min(packed, 2 * pair, &scale_lo, &min_lo);
    q4_k_scale_min(packed, 2 * pair + 1, &scale_hi, &min_hi);
    const float d_lo = d * static_cast<float>(scale_lo), m_lo = dmin * static_cast<float>(min_lo);
    const float d_hi = d * static_cast<float>(scale_hi), m_hi = dmin * static_cast<float>(min_hi);
    const uint8_t* q = qs + 32 * pair;
    float* y = out + 64 * pair;
    for (int l = 0; l < 32; ++l) {
      y[l] = d_lo * static_cast<float>(q[l] & 0x0f) - m_lo;
      y[l + 32] = d_hi * static_cast<float>(q[l] >> 4) - m_hi;
    }
  }
}

// Two halves of 128; in each, element l + 32*k takes 4 bits from ql and 2 bits from qh (bit pair k), scale
// index 2*k + l/16 within the half's 8 scales.
void decode_q6_k(const uint8_t* block, float* out) {
  const uint8_t* ql = block;
  const uint8_t* qh = block + kQkK / 2;
  const auto* scales = reinterpret_cast<const int8_t*>(block + kQkK / 2 + kQkK / 4);
  const float d = read_f16(block + kQkK / 2 + kQkK / 4 + kQkK / 16);
  for (int half = 0; half < 2; ++half) {
    const uint8_t* l4 = ql + 64 * half;
    const uint8_t* h2 = qh + 32 * half;
    const int8_t* sc = scales + 8 * half;
    float* y = out + 128 * half;
    for (int l = 0; l < 32; ++l) {
      const int sub = l / 16;
      const int q0 = ((l4[l] & 0x0f) | (((h2[l] >> 0) & 3) << 4)) - 32;
      const int q1 = ((l4[l + 32] & 0x0f) | (((h2[l] >> 2) & 3) << 4)) - 32;
      const int q2 = ((l4[l] >> 4) | (((h2[l] >> 4) & 3) << 4)) - 32;
      const int q3 = ((l4[l + 32] >> 4) | (((h2[l] >> 6) & 3) << 4)) - 32;
      y[l] = d * static_cast<float>(sc[sub + 0]) * static_cast<float>(q0);
      y[l + 32] = d * static_cast<float>(sc[sub + 2]) * static_cast<float>(q1);
      y[l + 64] = d * static_cast<float>(sc[sub + 4]) * static_cast<float>(q2);
      y[l + 96] = d * static_cast<float>(sc[sub + 6]) * static_cast<float>(q3);
    }
  }
}

using BlockDecoder = void (*)(const uint8_t*, float*);

BlockDecoder block_decoder(GgmlType type) {
  switch (type) {
    case GgmlType::Q4_0:
      return decode_q4_0;
    case GgmlType::Q4_1:
      return decode_q4_1;
    case GgmlType::Q5_0:
      return decode_q5_0;
    case GgmlType::Q5_1:
      return decode_q5_1;
    case GgmlType::Q8_0:
      return decode_q8_0;
    case GgmlType::Q4_K:
      return decode_q4_k;
    case GgmlType::Q6_K:
      return decode_q6_k;
    default:
      return nullptr;
  }
}

const GgmlTypeInfo& info_of(GgmlType type) {
  for (const auto& info : kTypes) {
    if (info.type == type) return info;
  }
  return kTypes[0];
}

// Shared driver: plain types convert element-wise, block types decode into a stack buffer first.
template <typename Store>
void dequantize(GgmlType type, const void* src, int64_t n_elements, Store store) {
  const auto* bytes = static_cast<const uint8_t*>(src);
  switch (type) {
    case GgmlType::F32:
      for (int64_t i = 0; i < n_elements; ++i) {
        float v;
        std::memcpy(&v, bytes + 4 * i, sizeof(v));
        store(i, v);
      }
      return;
    case GgmlType::F16:
      for (int64_t i = 0; i < n_elements; ++i) store(i, read_f16(bytes + 2 * i));
      return;
    case GgmlType::BF16:
      for (int64_t i = 0; i < n_elements; ++i) store(i, bf16_to_float(read_u16(bytes + 2 * i)));
      return;
    default:
      break;
  }
  const GgmlTypeInfo& info = info_of(type);
  const BlockDecoder decode = block_decoder(type);
  std::array<float, kQkK> buffer;
  const int64_t n_blocks = n_elements / info.block_size;
  for (int64_t b = 0; b < n_blocks; ++b) {
    decode(bytes + b * info.block_bytes, buffer.data());
    for (int64_t j = 0; j < info.block_size; ++j) store(b * info.block_size + j, buffer[j]);
  }
}

}  // namespace

Result<GgmlTypeInfo> ggml_type_info(uint32_t code) {
  for (const auto& info : kTypes) {
    if (static_cast<uint32_t>(info.type) == code) return info;
  }
  std::string_view known = unsupported_type_name(code);
  if (!known.empty()) {
    return make_error(
        StatusCode::UNSUPPORTED,
        "tensor type {} ({}) cannot be dequantised; supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, "
        "Q5_0, Q5_1, Q4_K, Q6_K",
        known, code);
  }
  return make_error(StatusCode::CORRUPT_DATA, "unknown tensor type code {}", code);
}

std::string_view ggml_type_name(GgmlType type) {
  return info_of(type).name;
}

int64_t ggml_block_size(GgmlType type) {
  return info_of(type).block_size;
}

int64_t ggml_block_bytes(GgmlType type) {
  return info_of(type).block_bytes;
}

uint64_t ggml_nbytes(const GgmlTypeInfo& info, uint64_t n_elements) {
  return n_elements / static_cast<uint64_t>(info.block_size) * static_cast<uint64_t>(info.block_bytes);
}

void dequantize_to_f32(GgmlType type, const void* src, int64_t n_elements, float* dst) {
  dequantize(type, src, n_elements, [dst](int64_t i, float v) { dst[i] = v; });
}

void dequantize_to_bf16(GgmlType type, const void* src, int64_t n_elements, uint16_t* dst) {
  dequantize(type, src, n_elements, [dst](int64_t i, float v) { dst[i] = float_to_bf16(v); });
}

}  // namespace sacc
