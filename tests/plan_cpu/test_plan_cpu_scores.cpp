// The estimators behind plan_cpu() (attention/cpu/plan_cpu_detail.h) against the oracle's scores, bit for
// bit: equal scores are what makes the index equal to the oracle's even where two candidates nearly tie,
// which the index comparisons alone would rarely exercise.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "attention/cpu/plan_cpu_detail.h"
#include "reference/estimate_block_cluster.h"
#include "reference/estimate_interval_slash.h"
#include "reference/synthetic.h"

namespace sacc {
namespace {

// Bitwise equality (so -0 vs 0 or a one-ulp difference fails, and NaN compares equal to itself).
::testing::AssertionResult same_bits(const std::vector<float>& actual, const std::vector<float>& expected) {
  if (actual.size() != expected.size()) {
    return ::testing::AssertionFailure() << "sizes " << actual.size() << " vs " << expected.size();
  }
  for (size_t n = 0; n < actual.size(); ++n) {
    if (std::memcmp(&actual[n], &expected[n], sizeof(float)) != 0) {
      return ::testing::AssertionFailure() << "entry " << n << ": " << actual[n] << " vs " << expected[n];
    }
  }
  return ::testing::AssertionSuccess();
}

cpu_plan::QkSource source_of(const ref::HostQkv& qkv) {
  cpu_plan::QkSource source;
  source.shape = qkv.shape;
  source.q = qkv.q.data();
  source.k = qkv.k.data();
  source.q_dtype = DType::F32;
  source.k_dtype = DType::F32;
  const int d = qkv.shape.head_dim;
  source.q_token_stride = static_cast<int64_t>(qkv.shape.num_q_heads) * d;
  source.q_head_stride = d;
  source.kv_token_stride = static_cast<int64_t>(qkv.shape.num_kv_heads) * d;
  source.kv_head_stride = d;
  source.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(d)));
  return source;
}

struct ScoreCase {
  AttentionShape shape;
  int64_t last_queries;
  int block_q;
  int block_k;
};

class PlanCpuScores : public ::testing::TestWithParam<ScoreCase> {};

TEST_P(PlanCpuScores, BitwiseEqualOracle) {
  const ScoreCase& c = GetParam();
  ref::SyntheticConfig config;
  config.shape = c.shape;
  config.seed = 3;
  Result<ref::SyntheticInput> input = ref::make_synthetic_input(config);
  ASSERT_TRUE(input.is_ok()) << input.status().to_string();
  const ref::QkvView view = input->qkv.view();
  const cpu_plan::QkSource source = source_of(input->qkv);
  EstimationConfig estimation;
  estimation.last_queries = c.last_queries;
  IndexGeometry geometry{c.shape.seq_len, c.shape.num_q_heads, c.block_q, c.block_k, false};
  const int64_t rows = std::min(c.last_queries, c.shape.seq_len);

  for (int h = 0; h < c.shape.num_q_heads; ++h) {
    Result<ref::IntervalSlashScores> expected = ref::interval_slash_scores(view, h, estimation);
    ASSERT_TRUE(expected.is_ok());
    cpu_plan::SlashScores actual;
    cpu_plan::interval_slash_scores(source, h, rows, &actual);
    EXPECT_TRUE(same_bits(actual.vertical, expected->vertical)) << "vertical, head " << h;
    EXPECT_TRUE(same_bits(actual.slash, expected->slash)) << "slash, head " << h;

    Result<ref::BlockScores> expected_blocks = ref::block_cluster_scores(view, h, geometry);
    ASSERT_TRUE(expected_blocks.is_ok());
    const std::vector<float> keys =
        cpu_plan::pooled_keys_transposed(source, h / c.shape.group_size(), geometry);
    std::vector<float> prob;
    cpu_plan::block_cluster_scores(source, h, keys, geometry, &prob);
    EXPECT_TRUE(same_bits(prob, expected_blocks->prob)) << "block probabilities, head " << h;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, PlanCpuScores,
    ::testing::Values(ScoreCase{{1, 2, 1, 64}, 64, 128, 64}, ScoreCase{{63, 3, 1, 128}, 64, 64, 64},
                      ScoreCase{{1023, 4, 2, 64}, 64, 128, 64}, ScoreCase{{1111, 2, 1, 128}, 77, 64, 128},
                      ScoreCase{{4224, 2, 2, 128}, 64, 128, 128}),
    [](const ::testing::TestParamInfo<ScoreCase>& info) {
      const ScoreCase& c = info.param;
      return fmt::format("L{}_hq{}_hkv{}_d{}_m{}_bq{}_bk{}", c.shape.seq_len, c.shape.num_q_heads,
                         c.shape.num_kv_heads, c.shape.head_dim, c.last_queries, c.block_q, c.block_k);
    });

}  // namespace
}  // namespace sacc
