// The AVX-512 VNNI kernels against the AVX2 ones, bit for bit (both sum the same exact integers per lane and
// round the same float operations in the same order), in every tile shape, on ragged matrices (odd weight and
// activation row counts; block counts odd, even, and Qwen2.5-0.5B's 28) and on blocks of extreme values; and
// the SACC_CPU_ISA cap's parsing. The kernel tests skip where the CPU lacks AVX-512 F/BW/VL/VNNI.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <vector>

#include "core/cpu_isa.h"
#include "core/dtype.h"
#include "runtime/cpu/quant_dot.h"
#include "runtime/quant_blocks.h"

namespace sacc {
namespace {

using test::FormatCase;
using test::tiled;

class QuantDotAvx512Test : public ::testing::TestWithParam<FormatCase> {
 protected:
  void SetUp() override {
    if (!cpu_runs_quant_isa(QuantIsa::AVX512)) GTEST_SKIP() << "no AVX-512 F/BW/VL/VNNI on this CPU";
  }
};

void expect_same_bits(const std::vector<float>& got, const std::vector<float>& want, int64_t w_rows,
                      const std::string& what) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t k = 0; k < got.size(); ++k)
    ASSERT_EQ(std::memcmp(&got[k], &want[k], sizeof(float)), 0)
        << what << ": activation row " << k / w_rows << ", weight row " << k % w_rows << ": " << got[k]
        << " (avx512) vs " << want[k] << " (avx2)";
}

TEST_P(QuantDotAvx512Test, MatchesAvx2BitForBitInEveryTileShapeOnRaggedMatrices) {
  const FormatCase& c = GetParam();
  ASSERT_TRUE(cpu_runs_quant_isa(QuantIsa::AVX2));
  const QuantTileFn avx2 = quant_dot_avx2(c.type), avx512 = quant_dot_avx512(c.type);
  ASSERT_NE(avx512, nullptr);
  const int64_t block = ggml_block_size(c.type);
  const std::vector<int64_t> block_counts = block == 256 ? std::vector<int64_t>{1, 3, 4}  // of 256
                                                         : std::vector<int64_t>{1, 23, 28, 29};
  std::mt19937 rng(1234u + static_cast<uint32_t>(c.type));
  for (int64_t blocks : block_counts) {
    const int64_t cols = blocks * block, n_blocks = cols / kActBlock;
    const int64_t row_bytes = blocks * ggml_block_bytes(c.type);
    const int64_t w_rows = 2 * kMaxTileWeights + 1, x_rows = 2 * kMaxTileRows + 3;
    const std::vector<uint8_t> w = test::random_rows(c.type, w_rows, cols, c.f16_offsets, rng);
    std::normal_distribution<float> normal(0.0f, 2.0f);
    std::vector<float> x(x_rows * cols);
    for (float& v : x) v = normal(rng);
    std::vector<ActBlock> act(x_rows * n_blocks);
    quantize_act_rows(x.data(), x_rows, cols, act.data(), quant_act_group(c.type));
    const std::vector<float> want = tiled(avx2, w, w_rows, row_bytes, act, x_rows, n_blocks, 1, 1);
    for (int tile_w = 1; tile_w <= kMaxTileWeights; ++tile_w)
      for (int tile_r = 1; tile_r <= kMaxTileRows; ++tile_r)
        expect_same_bits(tiled(avx512, w, w_rows, row_bytes, act, x_rows, n_blocks, tile_w, tile_r), want,
                         w_rows,
                         std::string(ggml_type_name(c.type)) + " cols " + std::to_string(cols) + " tile " +
                             std::to_string(tile_w) + "x" + std::to_string(tile_r));
  }
}

// Every weight byte (and so every nibble, fifth bit, 6-bit value and int8 scale) at its extremes against
// activations at +-127: the integer sums at their largest, where a saturating or sign-losing step would show.
TEST_P(QuantDotAvx512Test, MatchesAvx2OnExtremeBlocks) {
  const FormatCase& c = GetParam();
  const int64_t block = ggml_block_size(c.type), cols = 2 * std::max<int64_t>(block, 64);
  const int64_t n_blocks = cols / kActBlock, row_bytes = cols / block * ggml_block_bytes(c.type);
  const int64_t w_rows = 4, x_rows = kMaxTileRows;
  std::mt19937 rng(99u);
  for (uint8_t fill : {uint8_t{0x00}, uint8_t{0xff}, uint8_t{0x80}, uint8_t{0x7f}, uint8_t{0x55}}) {
    std::vector<uint8_t> w = test::random_rows(c.type, w_rows, cols, c.f16_offsets, rng);
    // Rows 0 and 2 are the fill everywhere but their f16 scales; rows 1 and 3 keep random bytes.
    const int64_t bytes = ggml_block_bytes(c.type);
    for (int64_t row : {0, 2})
      for (int64_t b = 0; b < cols / block; ++b)
        for (int64_t i = 0; i < bytes; ++i) {
          bool is_scale = false;
          for (int offset : c.f16_offsets) is_scale = is_scale || i == offset || i == offset + 1;
          if (!is_scale) w[row * row_bytes + b * bytes + i] = fill;
        }
    std::vector<float> x(x_rows * cols);
    for (int64_t i = 0; i < x_rows * cols; ++i) x[i] = (i / 3) % 2 == 0 ? 1.0f : -1.0f;
    std::vector<ActBlock> act(x_rows * n_blocks);
    quantize_act_rows(x.data(), x_rows, cols, act.data(), quant_act_group(c.type));
    const std::vector<float> want = tiled(quant_dot_avx2(c.type), w, w_rows, row_bytes, act, x_rows, n_blocks,
                                          kMaxTileWeights, kMaxTileRows);
    for (int tile_w = 1; tile_w <= kMaxTileWeights; ++tile_w)
      expect_same_bits(
          tiled(quant_dot_avx512(c.type), w, w_rows, row_bytes, act, x_rows, n_blocks, tile_w, kMaxTileRows),
          want, w_rows, std::string(ggml_type_name(c.type)) + " fill " + std::to_string(fill));
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, QuantDotAvx512Test, ::testing::ValuesIn(test::kQuantFormats),
                         [](const ::testing::TestParamInfo<FormatCase>& info) {
                           return std::string(ggml_type_name(info.param.type));
                         });

TEST(QuantDotAvx512, BestFamilyIsAvx512WhereTheCpuRunsItUncapped) {
  if (cpu_isa_cap() != CpuIsaCap::NONE) GTEST_SKIP() << "SACC_CPU_ISA is set";
  const QuantIsa want = cpu_runs_quant_isa(QuantIsa::AVX512) ? QuantIsa::AVX512
                        : cpu_runs_quant_isa(QuantIsa::AVX2) ? QuantIsa::AVX2
                                                             : QuantIsa::SCALAR;
  EXPECT_EQ(best_quant_isa(), want) << quant_isa_name(best_quant_isa());
  EXPECT_STREQ(quant_isa_name(QuantIsa::AVX512), "avx512");
}

TEST(CpuIsaCap, ParsesTheThreeFamiliesAndRejectsOthers) {
  CpuIsaCap cap = CpuIsaCap::SCALAR;
  EXPECT_TRUE(parse_cpu_isa_cap(nullptr, &cap));
  EXPECT_EQ(cap, CpuIsaCap::NONE);
  EXPECT_TRUE(parse_cpu_isa_cap("", &cap));
  EXPECT_EQ(cap, CpuIsaCap::NONE);
  EXPECT_TRUE(parse_cpu_isa_cap("avx512", &cap));
  EXPECT_EQ(cap, CpuIsaCap::AVX512);
  EXPECT_TRUE(parse_cpu_isa_cap("avx2", &cap));
  EXPECT_EQ(cap, CpuIsaCap::AVX2);
  EXPECT_TRUE(parse_cpu_isa_cap("scalar", &cap));
  EXPECT_EQ(cap, CpuIsaCap::SCALAR);
  EXPECT_FALSE(parse_cpu_isa_cap("AVX2", &cap));
  EXPECT_FALSE(parse_cpu_isa_cap("sse", &cap));
  EXPECT_LT(CpuIsaCap::SCALAR, CpuIsaCap::AVX2);
  EXPECT_LT(CpuIsaCap::AVX2, CpuIsaCap::AVX512);
  EXPECT_LT(CpuIsaCap::AVX512, CpuIsaCap::NONE);
}

}  // namespace
}  // namespace sacc
