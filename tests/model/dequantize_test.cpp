// Dequantisation of every block type against blocks built by hand: literal single-block examples whose values
// are worked out in the comments, and packers that build blocks element by element from the format
// description (a different direction from the decoder, which walks bytes).
#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "model/dequantize.h"

namespace sacc {
namespace {

void put_f16(std::string& block, size_t at, float value) {
  const uint16_t bits = float_to_fp16(value);
  std::memcpy(block.data() + at, &bits, 2);
}

std::vector<float> decode(GgmlType type, const std::string& bytes, int64_t n) {
  std::vector<float> out(static_cast<size_t>(n), -999.0f);
  dequantize_to_f32(type, bytes.data(), n, out.data());
  return out;
}

TEST(GgmlTypes, InfoAndErrors) {
  auto q4k = ggml_type_info(12);
  ASSERT_TRUE(q4k.is_ok());
  EXPECT_EQ(q4k->name, "Q4_K");
  EXPECT_EQ(q4k->block_size, 256);
  EXPECT_EQ(q4k->block_bytes, 144);
  EXPECT_EQ(ggml_type_info(14)->block_bytes, 210);
  EXPECT_EQ(ggml_type_info(8)->block_bytes, 34);
  EXPECT_EQ(ggml_type_info(2)->block_bytes, 18);
  EXPECT_EQ(ggml_type_info(3)->block_bytes, 20);
  EXPECT_EQ(ggml_type_info(6)->block_bytes, 22);
  EXPECT_EQ(ggml_type_info(30)->block_bytes, 2);
  auto q3k = ggml_type_info(11);
  EXPECT_EQ(q3k.status().code(), StatusCode::UNSUPPORTED);
  EXPECT_NE(q3k.status().message().find("Q3_K"), std::string::npos);
  EXPECT_EQ(ggml_type_info(99).status().code(), StatusCode::CORRUPT_DATA);
  EXPECT_EQ(ggml_nbytes(*q4k, 512), 288u);
}

TEST(Dequantize, PlainTypes) {
  std::string f16(6, '\0');
  put_f16(f16, 0, 1.5f);
  put_f16(f16, 2, -0.25f);
  put_f16(f16, 4, 65504.0f);
  EXPECT_EQ(decode(GgmlType::F16, f16, 3), (std::vector<float>{1.5f, -0.25f, 65504.0f}));
  std::string bf16(4, '\0');
  const uint16_t a = 0x3fc0, b = 0xc2f6;  // 1.5 and -123.0
  std::memcpy(bf16.data(), &a, 2);
  std::memcpy(bf16.data() + 2, &b, 2);
  EXPECT_EQ(decode(GgmlType::BF16, bf16, 2), (std::vector<float>{1.5f, -123.0f}));
  const std::array<float, 2> values = {3.25f, -1e-20f};
  std::string f32(reinterpret_cast<const char*>(values.data()), 8);
  EXPECT_EQ(decode(GgmlType::F32, f32, 2), (std::vector<float>{3.25f, -1e-20f}));
}

TEST(Dequantize, Q8_0Literal) {
  // d = 0.5, q[j] = j - 16  ->  x[j] = (j - 16) / 2.
  std::string block(34, '\0');
  put_f16(block, 0, 0.5f);
  for (int j = 0; j < 32; ++j) block[2 + j] = static_cast<char>(static_cast<int8_t>(j - 16));
  const auto x = decode(GgmlType::Q8_0, block, 32);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(x[j], (j - 16) * 0.5f) << j;
}

TEST(Dequantize, Q4_0Literal) {
  // d = 2; byte j holds element j (low nibble) and element j + 16 (high nibble); x = (q - 8) * d.
  // Byte 0 = 0xF0: x[0] = (0 - 8) * 2 = -16, x[16] = (15 - 8) * 2 = 14.  Byte 1 = 0x19: x[1] = 2, x[17] =
  // -14.
  std::string block(18, '\0');
  put_f16(block, 0, 2.0f);
  block[2] = static_cast<char>(0xf0);
  block[3] = static_cast<char>(0x19);
  for (int j = 2; j < 16; ++j) block[2 + j] = static_cast<char>(0x88);  // zeros
  const auto x = decode(GgmlType::Q4_0, block, 32);
  EXPECT_EQ(x[0], -16.0f);
  EXPECT_EQ(x[16], 14.0f);
  EXPECT_EQ(x[1], 2.0f);
  EXPECT_EQ(x[17], -14.0f);
  for (int j = 2; j < 16; ++j) {
    EXPECT_EQ(x[j], 0.0f);
    EXPECT_EQ(x[j + 16], 0.0f);
  }
}

TEST(Dequantize, Q4_1Literal) {
  // d = 0.25, m = -1; x = q * d + m. Byte 0 = 0x4C: x[0] = 12 * 0.25 - 1 = 2, x[16] = 4 * 0.25 - 1 = 0.
  std::string block(20, '\0');
  put_f16(block, 0, 0.25f);
  put_f16(block, 2, -1.0f);
  block[4] = static_cast<char>(0x4c);
  const auto x = decode(GgmlType::Q4_1, block, 32);
  EXPECT_EQ(x[0], 2.0f);
  EXPECT_EQ(x[16], 0.0f);
  EXPECT_EQ(x[1], -1.0f);
}

TEST(Dequantize, Q5Literal) {
  // Q5_0: d = 1; element j's fifth bit is bit j of qh. qh = 0x00010001 sets bits 0 and 16.
  // x[0] = ((qs[0] & 15) | 16) - 16 = 3 with qs[0] = 0x23; x[16] = ((0x23 >> 4) | 16) - 16 = 2; x[1] = 0
  // - 16.
  std::string block(22, '\0');
  put_f16(block, 0, 1.0f);
  const uint32_t qh = 0x00010001u;
  std::memcpy(block.data() + 2, &qh, 4);
  block[6] = 0x23;
  auto x = decode(GgmlType::Q5_0, block, 32);
  EXPECT_EQ(x[0], 3.0f);
  EXPECT_EQ(x[16], 2.0f);
  EXPECT_EQ(x[1], -16.0f);
  EXPECT_EQ(x[17], -16.0f);
  // Q5_1: d = 0.5, m = 10: x = q * d + m; q[0] = 19 -> 19.5, q[16] = 18 -> 19, q[1] = 0 -> 10.
  std::string block1(24, '\0');
  put_f16(block1, 0, 0.5f);
  put_f16(block1, 2, 10.0f);
  std::memcpy(block1.data() + 4, &qh, 4);
  block1[8] = 0x23;
  x = decode(GgmlType::Q5_1, block1, 32);
  EXPECT_EQ(x[0], 19.5f);
  EXPECT_EQ(x[16], 19.0f);
  EXPECT_EQ(x[1], 10.0f);
}

// ---- k-quants: packers that place each element where the format description says it lives.

struct Q4KBlock {
  float d = 0, dmin = 0;
  std::array<int, 8> scale{}, min{};  // 6 bits each
  std::array<int, 256> q{};           // 4 bits each
};

std::string pack_q4_k(const Q4KBlock& b) {
  std::string out(144, '\0');
  put_f16(out, 0, b.d);
  put_f16(out, 2, b.dmin);
  auto* s = reinterpret_cast<uint8_t*>(out.data() + 4);
  for (int j = 0; j < 4; ++j) {
    s[j] = static_cast<uint8_t>(b.scale[j] & 63);
    s[j + 4] = static_cast<uint8_t>(b.min[j] & 63);
  }
  for (int j = 4; j < 8; ++j) {
    s[j + 4] = static_cast<uint8_t>((b.scale[j] & 15) | ((b.min[j] & 15) << 4));
    s[j - 4] |= static_cast<uint8_t>((b.scale[j] >> 4) << 6);
    s[j] |= static_cast<uint8_t>((b.min[j] >> 4) << 6);
  }
  auto* qs = reinterpret_cast<uint8_t*>(out.data() + 16);
  for (int e = 0; e < 256; ++e) {
    const int sub = e / 32, l = e % 32;
    uint8_t& byte = qs[32 * (sub / 2) + l];
    byte |= static_cast<uint8_t>(sub % 2 == 0 ? b.q[e] : b.q[e] << 4);
  }
  return out;
}

struct Q6KBlock {
  float d = 0;
  std::array<int, 16> scale{};  // int8
  std::array<int, 256> q{};     // 6 bits, value = d * scale * (q - 32)
};

std::string pack_q6_k(const Q6KBlock& b) {
  std::string out(210, '\0');
  auto* ql = reinterpret_cast<uint8_t*>(out.data());
  auto* qh = ql + 128;
  auto* sc = reinterpret_cast<int8_t*>(ql + 192);
  for (int i = 0; i < 16; ++i) sc[i] = static_cast<int8_t>(b.scale[i]);
  put_f16(out, 208, b.d);
  for (int e = 0; e < 256; ++e) {
    const int half = e / 128, r = e % 128, k = r / 32, l = r % 32;
    uint8_t& low = ql[64 * half + l + (k % 2 == 1 ? 32 : 0)];
    low |= static_cast<uint8_t>(k < 2 ? (b.q[e] & 15) : (b.q[e] & 15) << 4);
    qh[32 * half + l] |= static_cast<uint8_t>((b.q[e] >> 4) << (2 * k));
  }
  return out;
}

float q6_k_scale_of(const Q6KBlock& b, int e) {
  const int half = e / 128, r = e % 128, k = r / 32, l = r % 32;
  return static_cast<float>(b.scale[8 * half + l / 16 + 2 * k]);
}

TEST(Dequantize, Q4_KLiteral) {
  // All quants 3 and sub-block 5 (elements 160..191, high nibbles of pair 2) with scale 37 and min 50 (both
  // need the high bits), the others scale 1, min 0: x = 0.5 * 37 * 3 - 0.25 * 50 = 43 in sub-block 5, 1.5
  // elsewhere.
  Q4KBlock b;
  b.d = 0.5f;
  b.dmin = 0.25f;
  b.scale.fill(1);
  b.scale[5] = 37;
  b.min[5] = 50;
  b.q.fill(3);
  const auto x = decode(GgmlType::Q4_K, pack_q4_k(b), 256);
  for (int e = 0; e < 256; ++e) EXPECT_EQ(x[e], e / 32 == 5 ? 43.0f : 1.5f) << e;
}

TEST(Dequantize, Q6_KLiteral) {
  // d = 0.125; q = 32 + 5 = 37 everywhere; scale 8 except scale[13] = -16 (second half, k = 2, l >= 16, i.e.
  // elements 128 + 64 + 16 .. 128 + 64 + 31): x = 0.125 * 8 * 5 = 5, and -10 there.
  Q6KBlock b;
  b.d = 0.125f;
  b.scale.fill(8);
  b.scale[13] = -16;
  b.q.fill(37);
  const auto x = decode(GgmlType::Q6_K, pack_q6_k(b), 256);
  for (int e = 0; e < 256; ++e) EXPECT_EQ(x[e], e >= 208 && e < 224 ? -10.0f : 5.0f) << e;
}

TEST(Dequantize, KQuantsRandomBlocks) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> six(0, 63), four(0, 15), int8(-128, 127);
  for (int trial = 0; trial < 20; ++trial) {
    Q4KBlock a;
    a.d = round_to_fp16(0.01f * static_cast<float>(trial + 1));
    a.dmin = round_to_fp16(0.003f * static_cast<float>(trial + 2));
    for (int i = 0; i < 8; ++i) {
      a.scale[i] = six(rng);
      a.min[i] = six(rng);
    }
    for (int& q : a.q) q = four(rng);
    Q6KBlock b;
    b.d = round_to_fp16(0.002f * static_cast<float>(trial + 1));
    for (int& s : b.scale) s = int8(rng);
    for (int& q : b.q) q = six(rng);
    // Two blocks back to back: the second block must be read at its own offset.
    const auto xa = decode(GgmlType::Q4_K, pack_q4_k(a) + pack_q4_k(a), 512);
    const auto xb = decode(GgmlType::Q6_K, pack_q6_k(b) + pack_q6_k(b), 512);
    for (int e = 0; e < 512; ++e) {
      const int i = e % 256;
      const float expect_a = a.d * static_cast<float>(a.scale[i / 32]) * static_cast<float>(a.q[i]) -
                             a.dmin * static_cast<float>(a.min[i / 32]);
      ASSERT_FLOAT_EQ(xa[e], expect_a) << "Q4_K trial " << trial << " element " << e;
      const float expect_b = b.d * q6_k_scale_of(b, i) * static_cast<float>(b.q[i] - 32);
      ASSERT_FLOAT_EQ(xb[e], expect_b) << "Q6_K trial " << trial << " element " << e;
    }
  }
}

TEST(Dequantize, Bf16OutputRoundsToNearestEven) {
  std::string block(34, '\0');
  put_f16(block, 0, 1.0f / 1024.0f);  // exact in fp16
  for (int j = 0; j < 32; ++j) block[2 + j] = static_cast<char>(static_cast<int8_t>(127 - 3 * j));
  std::vector<float> f32(32);
  std::vector<uint16_t> bf16(32);
  dequantize_to_f32(GgmlType::Q8_0, block.data(), 32, f32.data());
  dequantize_to_bf16(GgmlType::Q8_0, block.data(), 32, bf16.data());
  for (int j = 0; j < 32; ++j) EXPECT_EQ(bf16[j], float_to_bf16(f32[j])) << j;
}

}  // namespace
}  // namespace sacc
