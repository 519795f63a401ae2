// validate_plan_arguments (attention/attention_validation.h) is the one check the GPU plan, the CPU plan and
// the oracle share: one pattern for all heads plans like the same pattern given per head, and the length
// limit is the one constant kMaxAttentionSeqLen.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "attention/attention_validation.h"
#include "attention/cpu/plan_cpu.h"
#include "reference/build_index.h"
#include "reference/synthetic.h"

namespace sacc {
namespace {

void expect_same_index(const SparseIndex& actual, const SparseIndex& expected) {
  EXPECT_EQ(actual.block_offsets, expected.block_offsets);
  EXPECT_EQ(actual.block_ids, expected.block_ids);
  EXPECT_EQ(actual.column_offsets, expected.column_offsets);
  EXPECT_EQ(actual.column_ids, expected.column_ids);
}

TEST(AttentionValidation, OnePatternForAllHeadsPlansLikeOnePerHead) {
  ref::SyntheticConfig config;
  config.shape = {700, 4, 2, 64};
  Result<ref::SyntheticInput> input = ref::make_synthetic_input(config);
  ASSERT_TRUE(input.is_ok()) << input.status().to_string();
  const ref::HostQkv& qkv = input->qkv;
  const IndexGeometry geometry{700, 4, 128, 64, false};
  const PatternSpec spec = *parse_pattern("interval-slash:40,90");
  LayerPatterns one;
  one.heads = {spec};
  LayerPatterns each;
  each.heads.assign(4, spec);

  const AttentionParams params{config.shape, qkv.q.data(), qkv.k.data()};
  Result<SparseIndex> from_one = plan_cpu(params, one, geometry, {DType::F32, DType::F32});
  Result<SparseIndex> from_each = plan_cpu(params, each, geometry, {DType::F32, DType::F32});
  ASSERT_TRUE(from_one.is_ok()) << from_one.status().to_string();
  ASSERT_TRUE(from_each.is_ok()) << from_each.status().to_string();
  SCOPED_TRACE("one against each");
  expect_same_index(*from_one, *from_each);

  Result<SparseIndex> oracle = ref::build_index(qkv.view(), one.heads, one.estimation, geometry);
  ASSERT_TRUE(oracle.is_ok()) << oracle.status().to_string();
  expect_same_index(*from_one, *oracle);
}

TEST(AttentionValidation, LengthLimitIsOneConstant) {
  const std::vector<PatternSpec> dense{PatternSpec{}};
  const EstimationConfig estimation;
  const AttentionShape at_limit{kMaxAttentionSeqLen, 2, 1, 64};
  const IndexGeometry geometry_at_limit{kMaxAttentionSeqLen, 2, 128, 64, false};
  EXPECT_TRUE(validate_plan_arguments("plan", at_limit, dense, estimation, geometry_at_limit).is_ok());

  const AttentionShape past_limit{kMaxAttentionSeqLen + 1, 2, 1, 64};
  const IndexGeometry geometry_past_limit{kMaxAttentionSeqLen + 1, 2, 128, 64, false};
  const Status rejected = validate_plan_arguments("plan", past_limit, dense, estimation, geometry_past_limit);
  EXPECT_EQ(rejected.code(), StatusCode::UNSUPPORTED) << rejected.to_string();
  EXPECT_NE(rejected.message().find("2^30"), std::string::npos) << rejected.to_string();

  // The CPU plan of a static pattern needs no Q/K, so it reaches the same check at that length.
  LayerPatterns patterns;
  patterns.heads = dense;
  const Result<SparseIndex> cpu = plan_cpu(AttentionParams{past_limit}, patterns, geometry_past_limit);
  ASSERT_FALSE(cpu.is_ok());
  EXPECT_EQ(cpu.status().code(), StatusCode::UNSUPPORTED) << cpu.status().to_string();
}

// Only the dense flash kernels take queries from a row past 0 (AttentionParams::q_begin): an index has a slot
// for every query block.
TEST(AttentionValidation, CpuPlanRefusesASuffixOfQueries) {
  LayerPatterns patterns;
  patterns.heads = {PatternSpec{}};
  AttentionParams params{AttentionShape{256, 4, 2, 64}};
  params.q_begin = 128;
  const Result<SparseIndex> cpu = plan_cpu(params, patterns, IndexGeometry{256, 4, 128, 64, false});
  ASSERT_FALSE(cpu.is_ok());
  EXPECT_EQ(cpu.status().code(), StatusCode::UNSUPPORTED) << cpu.status().to_string();
}

TEST(AttentionValidation, PatternCountAndBudgetsNamed) {
  const AttentionShape shape{256, 4, 2, 64};
  const IndexGeometry geometry{256, 4, 128, 64, false};
  const EstimationConfig estimation;
  const std::vector<PatternSpec> two(2, PatternSpec{});
  const Status count = validate_plan_arguments("oracle index", shape, two, estimation, geometry);
  EXPECT_NE(count.message().find("oracle index: 2 head patterns for 4 index heads (give 1 or 4)"),
            std::string::npos)
      << count.to_string();

  std::vector<PatternSpec> negative(4, PatternSpec{});
  negative[3].kind = PatternKind::BLOCK_CLUSTER;
  negative[3].blocks = -1;
  const Status budget = validate_plan_arguments("plan", shape, negative, estimation, geometry);
  EXPECT_NE(budget.message().find("plan: index head 3 has a negative budget"), std::string::npos)
      << budget.to_string();
}

}  // namespace
}  // namespace sacc
