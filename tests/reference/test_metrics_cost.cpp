// Attention recall, relative error, the cost model and the synthetic generator.
#include <gtest/gtest.h>

#include <cmath>

#include "attention/cost_model.h"
#include "reference/build_index.h"
#include "reference/metrics.h"
#include "reference/synthetic.h"
#include "test_util.h"

namespace sacc::ref {
namespace {

TEST(AttentionRecall, DenseIsOneAndPartialMatchesNaive) {
  const AttentionShape shape{150, 4, 2, 32};
  const HostQkv qkv = testing::random_qkv(shape, 8, 2.0f);
  const IndexGeometry geometry{150, 4, 64, 32, false};
  const SparseIndex dense = SparseIndex::dense(geometry);
  const SparseIndex window =
      build_index(qkv.view(), {parse_pattern("triangular:3,20").value()}, EstimationConfig{}, geometry)
          .value();
  const std::vector<RecallReport> recall = attention_recall(qkv.view(), {&dense, &window}).value();
  for (double r : recall[0].per_head) EXPECT_NEAR(r, 1.0, 1e-12);
  // Naive: the dense softmax mass on the keys of each row, averaged over rows.
  const double scale = 1.0 / std::sqrt(32.0);
  for (int h = 0; h < 4; ++h) {
    double total = 0.0;
    for (int64_t i = 0; i < 150; ++i) {
      std::vector<double> logits(i + 1);
      double max_logit = -1e300;
      for (int64_t j = 0; j <= i; ++j) {
        double dot = 0.0;
        for (int t = 0; t < 32; ++t)
          dot += double(qkv.q[(i * 4 + h) * 32 + t]) * qkv.k[(j * 2 + h / 2) * 32 + t];
        logits[j] = dot * scale;
        max_logit = std::max(max_logit, logits[j]);
      }
      double sum = 0.0, covered = 0.0;
      const std::vector<int32_t> keys = keys_of_row(window, h, i);
      for (int64_t j = 0; j <= i; ++j) sum += std::exp(logits[j] - max_logit);
      for (int32_t j : keys) covered += std::exp(logits[j] - max_logit);
      total += covered / sum;
    }
    EXPECT_NEAR(recall[1].per_head[h], total / 150.0, 1e-12);
    EXPECT_LT(recall[1].per_head[h], 1.0);
  }
}

TEST(RelativeError, Definition) {
  EXPECT_DOUBLE_EQ(relative_l2_error({3.0, 4.0}, {3.0, 4.0}).value(), 0.0);
  EXPECT_DOUBLE_EQ(relative_l2_error({3.0, 0.0}, {0.0, 4.0}).value(), 5.0 / 4.0);
  EXPECT_FALSE(relative_l2_error({1.0}, {1.0, 2.0}).is_ok());
  const std::vector<double> per_head =
      relative_l2_error_per_head({1, 2, 3, 4, 5, 6, 7, 8}, {1, 2, 0, 0, 5, 6, 7, 0}, {2, 2, 1, 2}).value();
  ASSERT_EQ(per_head.size(), 2u);
  EXPECT_DOUBLE_EQ(per_head[0], std::sqrt(0.0) / std::sqrt(1 + 4 + 25 + 36.0));
  EXPECT_DOUBLE_EQ(per_head[1], std::sqrt(9 + 16 + 64.0) / std::sqrt(49.0));
}

TEST(CostModel, DenseDensityIsOneAndFlopsCountTiles) {
  const IndexGeometry geometry{1000, 2, 128, 64, false};
  const AttentionCost cost = index_cost(SparseIndex::dense(geometry), 128);
  EXPECT_DOUBLE_EQ(cost.density(), 1.0);
  // 8 query blocks; block qb reaches key block min(999, 128 qb + 127) / 64.
  int64_t tiles = 0;
  for (int64_t qb = 0; qb < 8; ++qb) tiles += std::min<int64_t>(999, 128 * qb + 127) / 64 + 1;
  EXPECT_EQ(cost.visited_tiles, 2 * tiles);
  EXPECT_DOUBLE_EQ(cost.kernel_flops, 2.0 * tiles * 4.0 * 128 * 64 * 128);
}

// Prediction without an index must equal the built index exactly for dense, triangular and fixed
// block-cluster, and land near it for interval-slash on structured input.
TEST(CostModel, PredictionMatchesBuiltIndexes) {
  SyntheticConfig config;
  config.shape = {3000, 2, 1, 64};
  const SyntheticInput input = make_synthetic_input(config).value();
  for (const IndexGeometry geometry :
       {IndexGeometry{3000, 1, 128, 64, false}, IndexGeometry{3000, 1, 64, 128, false}}) {
    const QkvView qkv = input.qkv.view();
    for (const char* text : {"dense", "triangular:30,500", "triangular:64,1", "triangular:0,5000",
                             "block-cluster:5", "block-cluster:1"}) {
      const PatternSpec spec = parse_pattern(text).value();
      const IndexGeometry one_head{3000, 2, geometry.block_q, geometry.block_k, false};
      const SparseIndex index = build_index(qkv, {spec}, EstimationConfig{}, one_head).value();
      const AttentionCost built = index_cost(index, 64);
      const AttentionCost predicted = predict_cost(spec, geometry, 64, EstimationConfig{});
      EXPECT_EQ(2 * predicted.visited_tiles, built.visited_tiles) << text;
      EXPECT_EQ(2 * predicted.gathered_columns, built.gathered_columns) << text;
      EXPECT_NEAR(predicted.density(), built.density(), 1e-12) << text;
    }
    const PatternSpec slash = parse_pattern("interval-slash:300,200").value();
    const IndexGeometry one_head{3000, 2, geometry.block_q, geometry.block_k, false};
    const AttentionCost built =
        index_cost(build_index(qkv, {slash}, EstimationConfig{}, one_head).value(), 64);
    const double predicted = predict_cost(slash, geometry, 64, EstimationConfig{}).density();
    EXPECT_NEAR(predicted, built.density(), 0.35 * built.density()) << "interval-slash prediction is off";
  }
  EXPECT_EQ(estimator_flops(parse_pattern("triangular:1,1").value(), {100, 1, 64, 64, false}, 64, {}), 0.0);
  EXPECT_GT(estimator_flops(parse_pattern("interval-slash:1,1").value(), {100, 1, 64, 64, false}, 64, {}),
            0.0);
}

TEST(Synthetic, DeterministicBf16AndSeedDependent) {
  SyntheticConfig config;
  config.shape = {257, 6, 2, 64};
  const SyntheticInput a = make_synthetic_input(config).value();
  const SyntheticInput b = make_synthetic_input(config).value();
  EXPECT_EQ(a.qkv.q, b.qkv.q);
  EXPECT_EQ(a.qkv.k, b.qkv.k);
  EXPECT_EQ(a.qkv.v, b.qkv.v);
  EXPECT_EQ(a.planted.vertical_columns, b.planted.vertical_columns);
  for (float x : a.qkv.q) ASSERT_EQ(x, round_to_bf16(x));
  config.seed = 2;
  const SyntheticInput c = make_synthetic_input(config).value();
  EXPECT_NE(a.qkv.q, c.qkv.q);
  ASSERT_EQ(a.planted.vertical_columns.size(), 2u);
  EXPECT_EQ(a.planted.vertical_columns[0].size(), static_cast<size_t>(config.verticals));
  for (int32_t j : a.planted.vertical_columns[1]) EXPECT_TRUE(j >= config.sinks && j < 257);
  config.shape.head_dim = 7;
  EXPECT_FALSE(make_synthetic_input(config).is_ok());
  config.shape = {1, 1, 1, 16};
  EXPECT_TRUE(make_synthetic_input(config).is_ok());  // tiny inputs plant what fits
}

}  // namespace
}  // namespace sacc::ref
