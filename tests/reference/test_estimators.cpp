// The estimators on inputs with known structure, the adaptive budget, and budget errors.
#include <gtest/gtest.h>

#include <algorithm>

#include "reference/build_index.h"
#include "reference/estimate_interval_slash.h"
#include "reference/metrics.h"
#include "reference/synthetic.h"
#include "test_util.h"

namespace sacc::ref {
namespace {

// Planted sinks, verticals and slashes at full strength over weak noise. The rotary side lobes of the planted
// slashes make some planted lines weak in the actual attention (they interfere), so "found" is checked for
// the planted lines that carry at least 1 % of the estimating rows' attention (most of them; checked too);
// and the index must cover >= 99 % of the dense attention mass of every head.
TEST(PlantedStructure, IntervalSlashFindsThePlantedLines) {
  SyntheticConfig config;
  config.shape = {4096, 4, 2, 128};
  config.seed = 3;
  config.structure_logit = 16.0;
  config.noise_logit = 0.2;
  config.local_width = 2;
  config.vary_heads = false;
  config.topic_logit = 0.0;
  Result<SyntheticInput> input = make_synthetic_input(config);
  ASSERT_TRUE(input.is_ok()) << input.status().to_string();
  const QkvView qkv = input->qkv.view();
  const EstimationConfig estimation{64, config.sinks, config.local_width};
  const PatternSpec spec = parse_pattern("interval-slash:32,64").value();
  int planted = 0, significant = 0;
  for (int h = 0; h < config.shape.num_q_heads; ++h) {
    const int kv_head = h / config.shape.group_size();
    const IntervalSlashScores scores = interval_slash_scores(qkv, h, estimation).value();
    const IntervalSlashSelection selection = select_interval_slash(scores, spec, estimation).value();
    const double threshold = 0.01 * scores.total_mass;
    for (int32_t j : input->planted.vertical_columns[kv_head]) {
      ++planted;
      if (scores.vertical[j] < threshold) continue;
      ++significant;
      EXPECT_TRUE(std::binary_search(selection.columns.begin(), selection.columns.end(), j))
          << "head " << h << " missed vertical " << j;
    }
    for (int32_t o : input->planted.slash_offsets[kv_head]) {
      ++planted;
      if (scores.slash[o] < threshold) continue;
      ++significant;
      EXPECT_TRUE(std::binary_search(selection.offsets.begin(), selection.offsets.end(), o))
          << "head " << h << " missed slash " << o;
    }
    for (int32_t j = 0; j < config.sinks; ++j) EXPECT_TRUE(selection.columns[j] == j);
  }
  EXPECT_GE(significant, planted * 3 / 4) << "the planted structure is too weak for this test to mean much";
  const IndexGeometry geometry{config.shape.seq_len, config.shape.num_q_heads, 128, 64, false};
  Result<SparseIndex> index = build_index(qkv, {spec}, estimation, geometry);
  ASSERT_TRUE(index.is_ok()) << index.status().to_string();
  Result<RecallReport> recall = attention_recall(qkv, *index);
  ASSERT_TRUE(recall.is_ok());
  for (int h = 0; h < config.shape.num_q_heads; ++h) EXPECT_GE(recall->per_head[h], 0.99) << "head " << h;
}

// Larger gamma keeps a superset, so recall can only grow; at gamma = 1 the cap (the fixed budget) is reached.
TEST(AdaptiveBudget, RecallNonDecreasingInGamma) {
  SyntheticConfig config;
  config.shape = {2048, 4, 2, 64};
  config.seed = 5;
  const SyntheticInput input = make_synthetic_input(config).value();
  const QkvView qkv = input.qkv.view();
  for (bool shared : {false, true}) {
    const IndexGeometry geometry{2048, shared ? 2 : 4, 64, 64, shared};
    for (const char* base : {"interval-slash:256,64", "block-cluster:12"}) {
      std::vector<SparseIndex> indices;
      for (double gamma : {0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0}) {
        PatternSpec spec = parse_pattern(base).value();
        spec.gamma = gamma;
        Result<SparseIndex> index = build_index(qkv, {spec}, EstimationConfig{}, geometry);
        ASSERT_TRUE(index.is_ok()) << index.status().to_string();
        indices.push_back(std::move(index).value());
      }
      std::vector<const SparseIndex*> pointers;
      for (const SparseIndex& index : indices) pointers.push_back(&index);
      const std::vector<RecallReport> recall = attention_recall(qkv, pointers).value();
      for (size_t n = 1; n < recall.size(); ++n) {
        for (int h = 0; h < 4; ++h) {
          EXPECT_GE(recall[n].per_head[h], recall[n - 1].per_head[h] - 1e-12)
              << base << " shared=" << shared << " step " << n << " head " << h;
        }
        for (int head = 0; head < geometry.num_heads; ++head) {  // nested: every earlier key is still there
          for (int64_t row = 0; row < 2048; row += 61) {
            const std::vector<int32_t> small = keys_of_row(indices[n - 1], head, row);
            const std::vector<int32_t> large = keys_of_row(indices[n], head, row);
            ASSERT_TRUE(std::includes(large.begin(), large.end(), small.begin(), small.end()));
          }
        }
      }
      EXPECT_LT(recall.front().mean, recall.back().mean) << base;  // the knob does something
    }
  }
}

TEST(Budgets, LargerThanTheSequenceIsAClearError) {
  const HostQkv qkv = testing::random_qkv({100, 2, 1, 16}, 1);
  const IndexGeometry geometry{100, 2, 64, 64, false};
  Result<SparseIndex> verticals =
      build_index(qkv.view(), {parse_pattern("interval-slash:101,5").value()}, EstimationConfig{}, geometry);
  ASSERT_FALSE(verticals.is_ok());
  EXPECT_EQ(verticals.status().code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(verticals.status().message().find("L = 100"), std::string::npos) << verticals.status().message();
  Result<SparseIndex> blocks =
      build_index(qkv.view(), {parse_pattern("block-cluster:3").value()}, EstimationConfig{}, geometry);
  ASSERT_FALSE(blocks.is_ok());
  EXPECT_NE(blocks.status().message().find("only 2"), std::string::npos) << blocks.status().message();
  // Clamped, the same requests are served.
  for (const char* text : {"interval-slash:101,5000", "block-cluster:3"}) {
    const PatternSpec clamped = clamp_pattern_to_length(parse_pattern(text).value(), geometry);
    EXPECT_TRUE(build_index(qkv.view(), {clamped}, EstimationConfig{}, geometry).is_ok()) << text;
  }
}

TEST(BuildIndex, RejectsMismatchedGeometryAndPatternCount) {
  const HostQkv qkv = testing::random_qkv({100, 4, 2, 16}, 1);
  const std::vector<PatternSpec> dense{PatternSpec{}};
  EXPECT_FALSE(build_index(qkv.view(), dense, EstimationConfig{}, {99, 4, 64, 64, false}).is_ok());
  EXPECT_FALSE(build_index(qkv.view(), dense, EstimationConfig{}, {100, 4, 64, 64, true}).is_ok());
  EXPECT_FALSE(build_index(qkv.view(), dense, EstimationConfig{}, {100, 4, 0, 64, false}).is_ok());
  EXPECT_FALSE(
      build_index(qkv.view(), {PatternSpec{}, PatternSpec{}}, EstimationConfig{}, {100, 4, 64, 64, false})
          .is_ok());
  EstimationConfig no_queries;
  no_queries.last_queries = 0;
  EXPECT_FALSE(build_index(qkv.view(), {parse_pattern("interval-slash:4,4").value()}, no_queries,
                           {100, 4, 64, 64, false})
                   .is_ok());
}

// One pattern per head: each head's slots follow its own spec.
TEST(BuildIndex, MixedPatternsPerHead) {
  const HostQkv qkv = testing::random_qkv({300, 3, 1, 32}, 2);
  const IndexGeometry geometry{300, 3, 64, 64, false};
  const std::vector<PatternSpec> specs{parse_pattern("dense").value(),
                                       parse_pattern("triangular:0,1").value(),
                                       parse_pattern("block-cluster:2").value()};
  Result<SparseIndex> index = build_index(qkv.view(), specs, EstimationConfig{}, geometry);
  ASSERT_TRUE(index.is_ok()) << index.status().to_string();
  EXPECT_EQ(keys_of_row(*index, 0, 299).size(), 300u);
  EXPECT_EQ(keys_of_row(*index, 1, 299),
            (std::vector<int32_t>{256, 257, 258, 259, 260, 261, 262, 263, 264, 265, 266, 267, 268, 269, 270,
                                  271, 272, 273, 274, 275, 276, 277, 278, 279, 280, 281, 282, 283, 284, 285,
                                  286, 287, 288, 289, 290, 291, 292, 293, 294, 295, 296, 297, 298, 299}));
  const int64_t last_slot = 2 * geometry.num_q_blocks() + geometry.num_q_blocks() - 1;
  EXPECT_EQ(index->block_offsets[last_slot + 1] - index->block_offsets[last_slot],
            2);  // block 0 + diagonal 4
}

}  // namespace
}  // namespace sacc::ref
