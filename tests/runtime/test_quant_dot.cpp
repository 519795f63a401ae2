// The quantised dot products against dequantise-then-fp64 on random blocks of every supported format (every
// kernel family the CPU runs), the vector kernels (AVX2, AVX-512) against the scalar ones, every tile shape
// against the same dots computed one pair at a time, activation blocks quantised alone and in groups sharing
// a scale, and the inline half-to-float conversion against the library's.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "runtime/cpu/quant_dot.h"
#include "runtime/cpu/quant_formats.h"
#include "runtime/quant_blocks.h"

namespace sacc {
namespace {

using test::FormatCase;
using test::random_rows;
using test::tiled;

class QuantDotTest : public ::testing::TestWithParam<FormatCase> {};

// Quantising the activations to 8 bits moves element i by at most d_block / 2, so the dot moves by at most
// Σ_blocks d_block / 2 · Σ_i |w_i|; fp32 accumulation adds a relative 1e-5 of Σ |w_i x_i|.
TEST_P(QuantDotTest, MatchesDequantisedReferenceWithinActivationRounding) {
  const FormatCase& c = GetParam();
  const int64_t cols = 768, rows = kMaxTileRows, n_blocks = cols / kActBlock;
  std::mt19937 rng(static_cast<uint32_t>(c.type) * 7919u);
  const std::vector<uint8_t> w = random_rows(c.type, 1, cols, c.f16_offsets, rng);
  std::vector<float> w_f32(cols);
  dequantize_to_f32(c.type, w.data(), cols, w_f32.data());
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(rows * cols);  // [rows, cols]
  for (float& v : x) v = normal(rng);
  std::vector<ActBlock> act(rows * n_blocks);  // [rows, cols / 32]
  quantize_act_rows(x.data(), rows, cols, act.data(), quant_act_group(c.type));

  for (QuantIsa isa : test::runnable_quant_isas()) {
    const QuantTileFn dot = quant_dot_kernel(c.type, isa);
    ASSERT_NE(dot, nullptr);
    for (int nr = 1; nr <= kMaxTileRows; ++nr) {
      std::vector<float> y(nr);
      dot(w.data(), 0, 1, act.data(), n_blocks, nr, n_blocks, y.data(), 1);
      for (int r = 0; r < nr; ++r) {
        double exact = 0.0, magnitude = 0.0, bound = 0.0;
        for (int64_t b = 0; b < n_blocks; ++b) {
          double w_abs = 0.0;
          for (int64_t i = b * kActBlock; i < (b + 1) * kActBlock; ++i) {
            exact += static_cast<double>(w_f32[i]) * x[r * cols + i];
            magnitude += std::fabs(static_cast<double>(w_f32[i]) * x[r * cols + i]);
            w_abs += std::fabs(w_f32[i]);
          }
          bound += act[r * n_blocks + b].d / 2.0 * w_abs;
        }
        EXPECT_NEAR(y[r], exact, bound * 1.001 + 1e-5 * magnitude)
            << ggml_type_name(c.type) << " " << quant_isa_name(isa) << " nr=" << nr << " row " << r;
      }
    }
  }
}

TEST_P(QuantDotTest, VectorKernelMatchesScalarKernel) {
  const FormatCase& c = GetParam();
  if (!cpu_runs_quant_isa(QuantIsa::AVX2)) GTEST_SKIP() << "no AVX2 on this CPU";
  const int64_t cols = 1024, rows = 3, n_blocks = cols / kActBlock;
  const int64_t row_bytes = cols / ggml_block_size(c.type) * ggml_block_bytes(c.type);
  std::mt19937 rng(17u + static_cast<uint32_t>(c.type));
  const std::vector<uint8_t> w = random_rows(c.type, kMaxTileWeights, cols, c.f16_offsets, rng);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> x(rows * cols);
  for (float& v : x) v = normal(rng);
  std::vector<ActBlock> act(rows * n_blocks);
  quantize_act_rows(x.data(), rows, cols, act.data(), quant_act_group(c.type));
  float scalar[kMaxTileRows * kMaxTileWeights];
  quant_dot_scalar(c.type)(w.data(), row_bytes, kMaxTileWeights, act.data(), n_blocks, rows, n_blocks, scalar,
                           kMaxTileWeights);
  // Both round in fp32 relative to the terms they add (Q6_K's products and its -32 offset cancel), so the
  // tolerance is relative to Σ |w_i x_i|, not to the result.
  std::vector<float> w_f32(kMaxTileWeights * cols);
  dequantize_to_f32(c.type, w.data(), kMaxTileWeights * cols, w_f32.data());
  for (QuantIsa isa : test::runnable_quant_isas()) {
    if (isa == QuantIsa::SCALAR) continue;
    float vector[kMaxTileRows * kMaxTileWeights];
    quant_dot_kernel(c.type, isa)(w.data(), row_bytes, kMaxTileWeights, act.data(), n_blocks, rows, n_blocks,
                                  vector, kMaxTileWeights);
    for (int k = 0; k < rows * kMaxTileWeights; ++k) {
      const int r = k / kMaxTileWeights, i = k % kMaxTileWeights;
      double magnitude = 0.0;
      for (int64_t e = 0; e < cols; ++e)
        magnitude += std::fabs(static_cast<double>(w_f32[i * cols + e]) * x[r * cols + e]);
      EXPECT_NEAR(vector[k], scalar[k], 1e-5 * (magnitude + 1.0))
          << ggml_type_name(c.type) << " " << quant_isa_name(isa) << " activation row " << r
          << ", weight row " << i << ", magnitude " << magnitude;
    }
  }
}

// A matrix of odd shape (weight and activation rows that leave partial tiles, rows that are not a whole
// number of 256-blocks for the 32-blocks formats) multiplied tile by tile in every tile shape, against the
// same dots taken one (weight row, activation row) pair at a time: each must be bit for bit the same, so the
// tiling the matmul picks never changes a result (decode and prefill agree on a token's logits).
TEST_P(QuantDotTest, EveryTileShapeGivesTheSameBitsAsSinglePairs) {
  const FormatCase& c = GetParam();
  const int64_t block = ggml_block_size(c.type);
  const int64_t cols = block == 256 ? 3 * 256 : 23 * 32, n_blocks = cols / kActBlock;
  const int64_t row_bytes = cols / block * ggml_block_bytes(c.type);
  const int64_t w_rows = 2 * kMaxTileWeights + 1, x_rows = 2 * kMaxTileRows + 3;
  std::mt19937 rng(101u + static_cast<uint32_t>(c.type));
  const std::vector<uint8_t> w = random_rows(c.type, w_rows, cols, c.f16_offsets, rng);
  std::normal_distribution<float> normal(0.0f, 1.5f);
  std::vector<float> x(x_rows * cols);
  for (float& v : x) v = normal(rng);
  std::vector<ActBlock> act(x_rows * n_blocks);
  quantize_act_rows(x.data(), x_rows, cols, act.data(), quant_act_group(c.type));

  for (QuantIsa isa : test::runnable_quant_isas()) {
    const QuantTileFn dot = quant_dot_kernel(c.type, isa);
    std::vector<float> single(x_rows * w_rows);  // [activation row, weight row]
    for (int64_t r = 0; r < x_rows; ++r)
      for (int64_t o = 0; o < w_rows; ++o)
        dot(w.data() + o * row_bytes, row_bytes, 1, act.data() + r * n_blocks, n_blocks, 1, n_blocks,
            &single[r * w_rows + o], 1);
    for (int tile_w = 1; tile_w <= kMaxTileWeights; ++tile_w)
      for (int tile_r = 1; tile_r <= kMaxTileRows; ++tile_r) {
        const std::vector<float> y = tiled(dot, w, w_rows, row_bytes, act, x_rows, n_blocks, tile_w, tile_r);
        for (int64_t k = 0; k < x_rows * w_rows; ++k)
          ASSERT_EQ(std::memcmp(&y[k], &single[k], sizeof(float)), 0)
              << ggml_type_name(c.type) << " " << quant_isa_name(isa) << " tile " << tile_w << "x" << tile_r
              << ": activation row " << k / w_rows << ", weight row " << k % w_rows << ": " << y[k] << " vs "
              << single[k];
      }
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, QuantDotTest, ::testing::ValuesIn(test::kQuantFormats),
                         [](const ::testing::TestParamInfo<FormatCase>& info) {
                           return std::string(ggml_type_name(info.param.type));
                         });

TEST(QuantDot, ActivationBlocksRoundToNearestWithTheirHalfSums) {
  std::vector<float> x(64);
  for (int i = 0; i < 64; ++i) x[i] = static_cast<float>(i - 20) * 0.37f;
  ActBlock a[2];
  quantize_act_rows(x.data(), 1, 64, a);
  for (int b = 0; b < 2; ++b) {
    int sums[2] = {0, 0};
    for (int i = 0; i < kActBlock; ++i) {
      EXPECT_LE(std::fabs(a[b].d * a[b].q[i] - x[b * 32 + i]), a[b].d / 2 + 1e-6f);
      sums[i / 16] += a[b].q[i];
    }
    EXPECT_EQ(a[b].sum[0], sums[0]);
    EXPECT_EQ(a[b].sum[1], sums[1]);
  }
  const std::vector<float> zeros(32, 0.0f);
  ActBlock z;
  quantize_act_rows(zeros.data(), 1, 32, &z);
  EXPECT_EQ(z.d, 0.0f);
  EXPECT_EQ(z.q[0], 0);
}

// Eight blocks share the scale of their largest magnitude (Q6_K's super-block); each still rounds to
// nearest and keeps its own sums.
TEST(QuantDot, GroupedActivationBlocksShareOneScale) {
  std::vector<float> x(512);
  for (int i = 0; i < 512; ++i) x[i] = std::sin(0.7f * static_cast<float>(i)) * (i == 300 ? 9.0f : 1.0f);
  ActBlock a[16];
  quantize_act_rows(x.data(), 1, 512, a, 8);
  for (int b = 0; b < 16; ++b) {
    float amax = 0.0f;
    for (int i = b / 8 * 256; i < (b / 8 + 1) * 256; ++i) amax = std::max(amax, std::fabs(x[i]));
    EXPECT_EQ(a[b].d, amax / 127.0f) << b;
    int sum = 0;
    for (int i = 0; i < kActBlock; ++i) {
      EXPECT_LE(std::fabs(a[b].d * a[b].q[i] - x[b * 32 + i]), a[b].d / 2 + 1e-6f);
      sum += a[b].q[i];
    }
    EXPECT_EQ(a[b].sum[0] + a[b].sum[1], sum);
  }
  EXPECT_EQ(a[9].q[300 - 288], 127);
}

// The vector quantisation against the scalar one, bit for bit: values, scales and sums, alone and grouped,
// with halves of the scale among the inputs (ties round to even in both).
TEST(QuantDot, VectorActivationQuantisationMatchesScalar) {
  if (!cpu_runs_quant_isa(QuantIsa::AVX2)) GTEST_SKIP() << "no AVX2 on this CPU";
  const int64_t rows = 3, cols = 1024, n_blocks = cols / kActBlock;
  std::mt19937 rng(5u);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> x(rows * cols);
  for (float& v : x) v = normal(rng);
  for (int64_t i = 0; i < cols; i += 7) x[i] = static_cast<float>(i % 50) - 24.5f;
  x[5] = 127.0f;  // the first block's (and group's) amax: scale 1, so the halves above are exact ties
  for (int64_t group : {1, 8}) {
    std::vector<ActBlock> vector(rows * n_blocks), scalar(rows * n_blocks);
    quantize_act_rows_avx2(x.data(), rows, cols, vector.data(), group);
    quantize_act_rows_scalar(x.data(), rows, cols, scalar.data(), group);
    for (int64_t b = 0; b < rows * n_blocks; ++b)
      ASSERT_EQ(std::memcmp(&vector[b], &scalar[b], sizeof(ActBlock)), 0)
          << "group " << group << ", block " << b;
  }
}

TEST(QuantDot, InlineHalfConversionMatchesLibrary) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const auto bits = static_cast<uint16_t>(h);
    uint8_t bytes[2];
    std::memcpy(bytes, &bits, 2);
    const float want = fp16_to_float(bits), got = quant::f16_at(bytes);
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(got)) << h;
    } else {
      EXPECT_EQ(got, want) << h;
    }
  }
}

}  // namespace
}  // namespace sacc
