// The dense tail "...+tail:T" (attention/pattern.h): parsing and round trips, the oracle's index equal to the
// pattern's own index outside the tail and to every causal key block inside it, plan_cpu equal to the oracle,
// and the cost model's bound.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "attention/cost_model.h"
#include "attention/cpu/plan_cpu.h"
#include "plan_test_util.h"
#include "reference/build_index.h"
#include "reference/synthetic.h"

namespace sacc {
namespace {

PatternSpec parse(const std::string& text) {
  return test::parse_or_fail(text);
}

TEST(DenseTail, ParsesAndRoundTrips) {
  const PatternSpec bc = parse("block-cluster:512@0.99+tail:256");
  EXPECT_EQ(bc.kind, PatternKind::BLOCK_CLUSTER);
  EXPECT_EQ(bc.blocks, 512);
  EXPECT_EQ(bc.tail, 256);
  EXPECT_EQ(to_string(bc), "block-cluster:512@0.99+tail:256");
  const PatternSpec joined = parse("interval-slash:1000,256@0.95+block-cluster:512@0.99+tail:128");
  EXPECT_TRUE(joined.joins_alternative());
  EXPECT_EQ(joined.tail, 128);
  EXPECT_EQ(joined.alternative().tail, 0);
  for (const std::string text : {"interval-slash:1000,256@0.95+block-cluster:512@0.99+tail:128",
                                 "interval-slash:5,1|block-cluster:2+tail:64", "triangular:4,64+tail:1"}) {
    EXPECT_EQ(to_string(parse(text)), text);
  }
  EXPECT_EQ(parse("block-cluster:8").tail, 0);
}

TEST(DenseTail, RejectsBadTails) {
  for (const std::string text :
       {"dense+tail:64", "block-cluster:8+tail:0", "block-cluster:8+tail:-1", "block-cluster:8+tail:x",
        "block-cluster:8+tail:", "+tail:5", "block-cluster:8+tail:5+tail:6", "block-cluster:8+tail:5@0.9"}) {
    EXPECT_FALSE(parse_pattern(text).is_ok()) << text;
  }
  const Result<PatternSpec> dense = parse_pattern("dense+tail:64");
  ASSERT_FALSE(dense.is_ok());
  EXPECT_NE(dense.status().to_string().find("takes no tail"), std::string::npos);
}

TEST(DenseTail, ClampsToTheLength) {
  const IndexGeometry geometry{300, 1, 128, 64, false};
  EXPECT_EQ(clamp_pattern_to_length(parse("block-cluster:4+tail:1000"), geometry).tail, 300);
}

TEST(DenseTail, CostAddsAtMostTheTailsTiles) {
  const IndexGeometry geometry{32768, 1, 128, 64, false};
  const EstimationConfig estimation;
  const AttentionCost plain = predict_cost(parse("block-cluster:16"), geometry, 128, estimation);
  const AttentionCost tailed = predict_cost(parse("block-cluster:16+tail:256"), geometry, 128, estimation);
  // The last two query blocks: 512 + 510 causal key blocks.
  EXPECT_EQ(tailed.visited_tiles, plain.visited_tiles + 1022);
  EXPECT_DOUBLE_EQ(tailed.estimator_flops, plain.estimator_flops);
  const AttentionCost whole = predict_cost(parse("block-cluster:16+tail:32768"), geometry, 128, estimation);
  EXPECT_DOUBLE_EQ(whole.kernel_flops, whole.causal_flops);
}

struct TailCase {
  AttentionShape shape{2000, 4, 2, 128};  // 16 query blocks, the last one partial (80 rows)
  std::string pattern;
  bool shared = false;
};

std::vector<int32_t> slot_ids(const std::vector<int32_t>& offsets, const std::vector<int32_t>& ids,
                              int64_t slot) {
  return {ids.begin() + offsets[slot], ids.begin() + offsets[slot + 1]};
}

// The oracle with the tail lists every causal key block (no column) in the tail's slots and the pattern's own
// lists elsewhere; plan_cpu gives the same index.
void check_tail(const TailCase& c) {
  ref::SyntheticConfig config;
  config.shape = c.shape;
  config.vary_heads = true;
  Result<ref::SyntheticInput> input = ref::make_synthetic_input(config);
  ASSERT_TRUE(input.is_ok()) << input.status().to_string();
  IndexGeometry geometry = test::index_geometry_of(c.shape, c.shared);
  const PatternSpec spec = parse(c.pattern);
  ASSERT_GT(spec.tail, 0);
  PatternSpec untailed = spec;
  untailed.tail = 0;
  Result<SparseIndex> tailed = ref::build_index(input->qkv.view(), {spec}, {}, geometry);
  Result<SparseIndex> plain = ref::build_index(input->qkv.view(), {untailed}, {}, geometry);
  ASSERT_TRUE(tailed.is_ok() && plain.is_ok());
  int64_t tail_slots = 0, grew = 0;
  for (int h = 0; h < geometry.num_heads; ++h) {
    for (int64_t qb = 0; qb < geometry.num_q_blocks(); ++qb) {
      const int64_t slot = h * geometry.num_q_blocks() + qb;
      const int64_t last_row = std::min(geometry.seq_len, (qb + 1) * geometry.block_q) - 1;
      const std::vector<int32_t> blocks = slot_ids(tailed->block_offsets, tailed->block_ids, slot);
      const std::vector<int32_t> columns = slot_ids(tailed->column_offsets, tailed->column_ids, slot);
      if (last_row >= geometry.seq_len - spec.tail) {
        ++tail_slots;
        std::vector<int32_t> all(static_cast<size_t>(geometry.last_causal_k_block(qb) + 1));
        for (size_t kb = 0; kb < all.size(); ++kb) all[kb] = static_cast<int32_t>(kb);
        EXPECT_EQ(blocks, all) << c.pattern << " head " << h << " qb " << qb;
        EXPECT_TRUE(columns.empty()) << c.pattern << " head " << h << " qb " << qb;
        grew += static_cast<int64_t>(all.size()) -
                static_cast<int64_t>(slot_ids(plain->block_offsets, plain->block_ids, slot).size());
      } else {
        EXPECT_EQ(blocks, slot_ids(plain->block_offsets, plain->block_ids, slot))
            << c.pattern << " qb " << qb;
        EXPECT_EQ(columns, slot_ids(plain->column_offsets, plain->column_ids, slot))
            << c.pattern << " qb " << qb;
      }
    }
  }
  const int64_t first_tail_row = std::max<int64_t>(0, c.shape.seq_len - spec.tail);
  const int64_t tail_blocks =
      (c.shape.seq_len - 1) / geometry.block_q - first_tail_row / geometry.block_q + 1;
  EXPECT_EQ(tail_slots, geometry.num_heads * tail_blocks);
  EXPECT_GT(grew, 0) << "the tail added no block: the case does not exercise it";

  AttentionParams params;
  params.shape = c.shape;
  params.q = input->qkv.q.data();
  params.k = input->qkv.k.data();
  LayerPatterns patterns;
  patterns.shared_per_kv_group = c.shared;
  patterns.heads.assign(geometry.num_heads, spec);
  Result<SparseIndex> cpu = plan_cpu(params, patterns, geometry, {DType::F32, DType::F32});
  ASSERT_TRUE(cpu.is_ok()) << cpu.status().to_string();
  EXPECT_EQ(cpu->block_offsets, tailed->block_offsets) << c.pattern;
  EXPECT_EQ(cpu->block_ids, tailed->block_ids) << c.pattern;
  EXPECT_EQ(cpu->column_offsets, tailed->column_offsets) << c.pattern;
  EXPECT_EQ(cpu->column_ids, tailed->column_ids) << c.pattern;
}

TEST(DenseTail, EveryKindOfPattern) {
  TailCase c;
  for (const std::string pattern :
       {"block-cluster:3@0.9+tail:200", "interval-slash:40,60@0.9+block-cluster:4@0.9+tail:81",
        "interval-slash:30,50+tail:80", "interval-slash:30,50|block-cluster:3+tail:300",
        "triangular:10,100+tail:1"}) {
    c.pattern = pattern;
    check_tail(c);
  }
}

TEST(DenseTail, SharedPerGroupLongerThanThePrompt) {
  TailCase c;
  c.shape = {1100, 6, 2, 64};
  c.shared = true;
  c.pattern = "interval-slash:20,40@0.95+block-cluster:3@0.9+tail:129";
  check_tail(c);
  c.pattern = "block-cluster:2+tail:5000";  // clamped to the prompt: every slot dense
  check_tail(c);
}

}  // namespace
}  // namespace sacc
