#include <gtest/gtest.h>

#include <cmath>

#include "reference/build_index.h"
#include "reference/dense_attention.h"
#include "reference/metrics.h"
#include "reference/sparse_attention.h"
#include "reference/synthetic.h"
#include "search/pattern_search.h"

namespace sacc::search {
namespace {

ref::SyntheticInput calibration_input() {
  ref::SyntheticConfig config;
  config.shape = AttentionShape{2048, 4, 2, 64};
  config.seed = 7;
  Result<ref::SyntheticInput> input = ref::make_synthetic_input(config);
  EXPECT_TRUE(input.is_ok()) << input.status().to_string();
  return std::move(input).value();
}

SearchOptions small_options() {
  SearchOptions options;
  options.block_q = 64;
  options.block_k = 64;
  options.target = parse_pattern("interval-slash:64,256").value();
  options.triangular_sink = 16;
  options.interval_slash_ratio = 4.0;
  return options;
}

TEST(PatternSearch, FitsEveryCandidateToTheCostTarget) {
  const ref::SyntheticInput input = calibration_input();
  const SearchOptions options = small_options();
  Result<LayerResult> result = search_layer(input.qkv.view(), options);
  ASSERT_TRUE(result.is_ok()) << result.status().to_string();
  ASSERT_EQ(result->heads.size(), 4u);
  EXPECT_GT(result->target_flops, 0.0);
  for (const HeadResult& head : result->heads) {
    ASSERT_EQ(head.candidates.size(), 3u);
    for (const Candidate& candidate : head.candidates) {
      // Knobs move in whole blocks / keys, so allow the tolerance plus one tile's worth of granularity.
      const double tile = 4.0 * options.block_q * options.block_k * 64;
      const double slack = options.tolerance * result->target_flops +
                           2.0 * tile * (candidate.pattern.kind == PatternKind::TRIANGULAR ? 32 : 1);
      EXPECT_NEAR(candidate.cost_flops, result->target_flops, slack) << to_string(candidate.pattern);
      EXPECT_GE(candidate.recall, 0.0);
      EXPECT_LE(candidate.recall, 1.0 + 1e-9);
    }
    for (const Candidate& candidate : head.candidates) EXPECT_LE(head.best.error, candidate.error);
  }
}

TEST(PatternSearch, SearchedConfigBeatsUniformTargetPattern) {
  const ref::SyntheticInput input = calibration_input();
  const SearchOptions options = small_options();
  Result<LayerResult> result = search_layer(input.qkv.view(), options);
  ASSERT_TRUE(result.is_ok()) << result.status().to_string();

  IndexGeometry geometry{2048, 4, options.block_q, options.block_k, false};
  Result<SparseIndex> uniform =
      ref::build_index(input.qkv.view(), {options.target}, options.estimation, geometry);
  ASSERT_TRUE(uniform.is_ok());
  Result<ref::AttentionResult> dense = ref::dense_attention(input.qkv.view());
  Result<ref::AttentionResult> sparse = ref::sparse_attention(input.qkv.view(), *uniform);
  ASSERT_TRUE(dense.is_ok() && sparse.is_ok());
  Result<std::vector<double>> uniform_errors =
      ref::relative_l2_error_per_head(sparse->o, dense->o, input.qkv.shape);
  ASSERT_TRUE(uniform_errors.is_ok());
  double searched = 0.0, baseline = 0.0;
  for (int h = 0; h < 4; ++h) {
    searched += result->heads[h].best.error;
    baseline += (*uniform_errors)[h];
  }
  // The uniform target pattern is (up to knob rounding) one of the candidates, so the search never loses
  // by more than that rounding.
  EXPECT_LE(searched, baseline * 1.05 + 1e-6);
}

TEST(PatternSearch, RejectsEmptyCandidateList) {
  const ref::SyntheticInput input = calibration_input();
  SearchOptions options = small_options();
  options.kinds.clear();
  EXPECT_EQ(search_layer(input.qkv.view(), options).status().code(), StatusCode::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace sacc::search
