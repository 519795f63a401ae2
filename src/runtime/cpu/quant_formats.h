// The GGUF block formats as the dot kernels see them: a block is `kSubs` sub-blocks of 32 elements, each with
// 32 small integers w, one float scale, an int16 multiplier per half (Q6_K's scale per 16 elements; 1
// otherwise) and a constant term c (the weight every element adds besides scale * w):
//   sub · x = scale * d_x * (mul[0] * Σ_{i<16} w_i q_i + mul[1] * Σ_{i>=16} w_i q_i) + c * d_x * Σ q_i
// Formats whose constant is a fixed integer offset (Q4_0's -8, Q5_0's -16, Q6_K's -32) are `kSigned`: w has
// the offset subtracted and c is 0, so the whole sub-block is one exact integer sum times one float; only
// formats with a float minimum (Q4_1, Q5_1, Q4_K) keep unsigned w and a constant term.
// Layouts are the ggml file format (docs/models.md); the scalar `unpack` here is the portable definition.
#pragma once

#include <cstdint>
#include <cstring>

namespace sacc::quant {

struct SubScale {
  float scale = 0.0f;
  float c = 0.0f;
  int16_t mul[2] = {1, 1};
};

// IEEE half to float inline (called once or twice per block of 32, so a library call would cost as much as
// the block's products): the exponent is rebased by a float multiply, subnormals by a subtraction.
inline float f16_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, sizeof(h));
  const uint32_t w = static_cast<uint32_t>(h) << 16, sign = w & 0x80000000u, two_w = w + w;
  auto as_float = [](uint32_t bits) {
    float f;
    std::memcpy(&f, &bits, sizeof(f));
    return f;
  };
  auto as_bits = [](float f) {
    uint32_t bits;
    std::memcpy(&bits, &f, sizeof(bits));
    return bits;
  };
  const float normal = as_float((two_w >> 4) + (0xE0u << 23)) * 0x1.0p-112f;
  const float subnormal = as_float((two_w >> 17) | (126u << 23)) - 0.5f;
  return as_float(sign | as_bits(two_w < (1u << 27) ? subnormal : normal));
}

// A block's scales with its halves (kHalves of them, at byte offsets kHalfAt) read by the portable
// conversion; the AVX2 kernels read them with F16C instead, which gives the same floats.
template <class F>
void block_scales(const uint8_t* b, SubScale* s) {
  float half[2] = {0.0f, 0.0f};
  for (int k = 0; k < F::kHalves; ++k) half[k] = f16_at(b + F::kHalfAt[k]);
  F::scales(b, half, s);
}

inline uint32_t u32_at(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// Q4_0: d (f16), 16 bytes of nibbles n; value = (n - 8) * d, w = n - 8. Element j < 16 is the low nibble of
// byte j, element j + 16 its high nibble (the same split for Q4_1 and Q5_x).
struct Q4_0 {
  static constexpr int kSubs = 1, kBytes = 18;
  static constexpr bool kSigned = true;
  static constexpr int kHalves = 1, kHalfAt[2] = {0, 0};
  static void scales(const uint8_t* b, const float* half, SubScale* s) { s[0].scale = half[0]; }
  static void unpack(const uint8_t* b, int, int16_t* w) {
    for (int j = 0; j < 16; ++j) {
      w[j] = static_cast<int16_t>((b[2 + j] & 0x0f) - 8);
      w[j + 16] = static_cast<int16_t>((b[2 + j] >> 4) - 8);
    }
  }
};

// Q4_1: d, m (f16), 16 bytes of nibbles; value = w * d + m.
struct Q4_1 {
  static constexpr int kSubs = 1, kBytes = 20;
  static constexpr bool kSigned = false;
  static constexpr int kHalves = 2, kHalfAt[2] = {0, 2};
  static void scales(const uint8_t* b, const float* half, SubScale* s) {
    s[0].scale = half[0];
    s[0].c = half[1];
  }
  static void unpack(const uint8_t* b, int, int16_t* w) {
    for (int j = 0; j < 16; ++j) {
      w[j] = b[4 + j] & 0x0f;
      w[j + 16] = b[4 + j] >> 4;
    }
  }
};

// Q5_x: the fifth bit of element j is bit j of a little-endian uint32 before the nibbles; w = n - offset.
inline void unpack_q5(const uint8_t* qh, const uint8_t* qs, int offset, int16_t* w) {
  const uint32_t bits = u32_at(qh);
  for (int j = 0; j < 16; ++j) {
    w[j] = static_cast<int16_t>(((qs[j] & 0x0f) | (((bits >> j) & 1u) << 4)) - offset);
    w[j + 16] = static_cast<int16_t>(((qs[j] >> 4) | (((bits >> (j + 16)) & 1u) << 4)) - offset);
  }
}

// Q5_0: d (f16), qh, nibbles; value = (n - 16) * d, w = n - 16.
struct Q5_0 {
  static constexpr int kSubs = 1, kBytes = 22;
  static constexpr bool kSigned = true;
  static constexpr int kHalves = 1, kHalfAt[2] = {0, 0};
  static void scales(const uint8_t* b, const float* half, SubScale* s) { s[0].scale = half[0]; }
  static void unpack(const uint8_t* b, int, int16_t* w) { unpack_q5(b + 2, b + 6, 16, w); }
};

// Q5_1: d, m (f16), qh, nibbles; value = w * d + m.
struct Q5_1 {
  static constexpr int kSubs = 1, kBytes = 24;
  static constexpr bool kSigned = false;
  static constexpr int kHalves = 2, kHalfAt[2] = {0, 2};
  static void scales(const uint8_t* b, const float* half, SubScale* s) {
    s[0].scale = half[0];
    s[0].c = half[1];
  }
  static void unpack(const uint8_t* b, int, int16_t* w) { unpack_q5(b + 4, b + 8, 0, w); }
};

// Q8_0: d (f16), 32 int8; value = w * d.
struct Q8_0 {
  static constexpr int kSubs = 1, kBytes = 34;
  static constexpr bool kSigned = true;
  static constexpr int kHalves = 1, kHalfAt[2] = {0, 0};
  static void scales(const uint8_t* b, const float* half, SubScale* s) { s[0].scale = half[0]; }
  static void unpack(const uint8_t* b, int, int16_t* w) {
    for (int j = 0; j < 32; ++j) w[j] = static_cast<int8_t>(b[2 + j]);
  }
};

// Q4_K: d, dmin (f16), 12 bytes of eight 6-bit (scale, min) pairs, 128 bytes of nibbles. Sub-blocks 2p and
// 2p + 1 are the low and high nibbles of bytes 32p..32p+31; value = d * scale_j * w - dmin * min_j. Pairs 0-3
// sit in the low 6 bits of bytes 0-3 (scales) and 4-7 (mins); pairs 4-7 take their low 4 bits from bytes
// 8-11 and their top 2 bits from the top of bytes 0-3 / 4-7.
struct Q4_K {
  static constexpr int kSubs = 8, kBytes = 144;
  static constexpr bool kSigned = false;
  static constexpr int kHalves = 2, kHalfAt[2] = {0, 2};
  static void scales(const uint8_t* b, const float* half, SubScale* s) {
    const float d = half[0], dmin = half[1];
    const uint8_t* p = b + 4;
    for (int j = 0; j < 8; ++j) {
      const int scale = j < 4 ? p[j] & 63 : (p[j + 4] & 0x0f) | ((p[j - 4] >> 6) << 4);
      const int min = j < 4 ? p[j + 4] & 63 : (p[j + 4] >> 4) | ((p[j] >> 6) << 4);
      s[j].scale = d * static_cast<float>(scale);
      s[j].c = -dmin * static_cast<float>(min);
    }
  }
  static void unpack(const uint8_t* b, int sub, int16_t* w) {
    const uint8_t* q = b + 16 + 32 * (sub / 2);
    const int shift = 4 * (sub % 2);
    for (int l = 0; l < 32; ++l) w[l] = (q[l] >> shift) & 0x0f;
  }
};

// Q6_K: 128 bytes of low nibbles (ql), 64 bytes of 2-bit highs (qh), 16 int8 scales, d (f16); value =
// d * scale * (n - 32), w = n - 32. Sub-block s = 4h + k (half h, quarter k): element l takes its nibble from
// ql[64h + 32(k & 1) + l] (high nibble when k >= 2), its top bits from bits 2k of qh[32h + l], and the scale
// sc[8h + 2k + l / 16].
struct Q6_K {
  static constexpr int kSubs = 8, kBytes = 210;
  static constexpr bool kSigned = true;
  static constexpr int kHalves = 1, kHalfAt[2] = {208, 0};
  static void scales(const uint8_t* b, const float* half, SubScale* s) {
    int16_t mul[8][2];
    int_scales(b, mul);
    for (int j = 0; j < 8; ++j) {
      s[j].scale = half[0];
      for (int h = 0; h < 2; ++h) s[j].mul[h] = mul[j][h];
    }
  }
  // The integer scale of each half of every sub-block (no min: the format is signed).
  static void int_scales(const uint8_t* b, int16_t (*mul)[2]) {
    const auto* sc = reinterpret_cast<const int8_t*>(b + 192);
    for (int j = 0; j < 8; ++j)
      for (int h = 0; h < 2; ++h) mul[j][h] = sc[8 * (j / 4) + 2 * (j % 4) + h];
  }
  static void unpack(const uint8_t* b, int sub, int16_t* w) {
    const int h = sub / 4, k = sub % 4;
    const uint8_t* ql = b + 64 * h + 32 * (k & 1);
    const uint8_t* qh = b + 128 + 32 * h;
    const int nibble_shift = k >= 2 ? 4 : 0;
    for (int l = 0; l < 32; ++l)
      w[l] = static_cast<int16_t>((((ql[l] >> nibble_shift) & 0x0f) | (((qh[l] >> (2 * k)) & 3) << 4)) - 32);
  }
};

}  // namespace sacc::quant
