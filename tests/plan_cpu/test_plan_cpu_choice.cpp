// The runtime pattern choice "interval-slash:...|block-cluster:..." (attention/pattern.h): parsing, the
// oracle's choice on inputs built so that one pattern clearly wins (topic blocks: Block-Cluster; planted
// slashes and verticals: Interval-Slash), the chosen head's index equal to that pattern's own index, plan_cpu
// equal to the oracle, and the cost model's prediction (the costlier pattern plus both estimations). The
// union "interval-slash:...+block-cluster:...": per query block the join of both patterns' own indices, in
// the oracle and in plan_cpu alike.
#include <gtest/gtest.h>

#include <algorithm>
#include <iterator>
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

TEST(PatternChoice, ParsesAndRoundTrips) {
  const PatternSpec spec = parse("interval-slash:1000,6096@0.95|block-cluster:16");
  EXPECT_EQ(spec.kind, PatternKind::INTERVAL_SLASH);
  EXPECT_EQ(spec.vertical, 1000);
  EXPECT_EQ(spec.slash, 6096);
  EXPECT_EQ(spec.gamma, 0.95);
  EXPECT_TRUE(spec.has_alternative());
  EXPECT_EQ(spec.alternative_blocks, 16);
  EXPECT_EQ(spec.alternative_gamma, 0.0);
  EXPECT_EQ(to_string(spec), "interval-slash:1000,6096@0.95|block-cluster:16");
  EXPECT_EQ(spec.alternative(), parse("block-cluster:16"));
  EXPECT_EQ(spec.primary(), parse("interval-slash:1000,6096@0.95"));
  for (const std::string text :
       {"interval-slash:64,200|block-cluster:8@0.9", "vertical-slash:5,1|block-sparse:2"}) {
    const PatternSpec parsed = parse(text);
    EXPECT_EQ(parse(to_string(parsed)), parsed) << text;
  }
  EXPECT_EQ(to_string(parse("vertical-slash:5,1|block-sparse:2")), "interval-slash:5,1|block-cluster:2");
  EXPECT_FALSE(parse("interval-slash:5,1").has_alternative());
}

TEST(PatternChoice, RejectsOtherCombinations) {
  for (const std::string text :
       {"block-cluster:8|interval-slash:5,1", "interval-slash:5,1|triangular:4,64", "dense|block-cluster:2",
        "triangular:4,64|block-cluster:2", "interval-slash:5,1|block-cluster:2|block-cluster:3",
        "interval-slash:5,1|block-cluster:0", "interval-slash:5,1|",
        "interval-slash:5,1|block-cluster:2@1.5"}) {
    const Result<PatternSpec> spec = parse_pattern(text);
    EXPECT_FALSE(spec.is_ok()) << text;
  }
  const Result<PatternSpec> mixed = parse_pattern("block-cluster:8|interval-slash:5,1");
  ASSERT_FALSE(mixed.is_ok());
  EXPECT_NE(mixed.status().to_string().find("only 'interval-slash:...|block-cluster:...'"),
            std::string::npos);
}

TEST(PatternChoice, ClampsTheAlternativeToTheKeyBlocks) {
  IndexGeometry geometry{300, 1, 128, 64, false};  // 5 key blocks
  const PatternSpec spec =
      clamp_pattern_to_length(parse("interval-slash:1000,1000|block-cluster:40"), geometry);
  EXPECT_EQ(spec.alternative_blocks, 5);
  EXPECT_EQ(spec.vertical, 300);
}

TEST(PatternChoice, CostIsTheCostlierPatternPlusBothEstimations) {
  const IndexGeometry geometry{32768, 1, 128, 64, false};
  const EstimationConfig estimation;
  const PatternSpec slash = parse("interval-slash:1000,6096");
  const PatternSpec cluster = parse("block-cluster:16");
  const PatternSpec both = parse("interval-slash:1000,6096|block-cluster:16");
  const AttentionCost a = predict_cost(slash, geometry, 128, estimation);
  const AttentionCost b = predict_cost(cluster, geometry, 128, estimation);
  const AttentionCost c = predict_cost(both, geometry, 128, estimation);
  EXPECT_EQ(c.kernel_flops, std::max(a.kernel_flops, b.kernel_flops));
  EXPECT_DOUBLE_EQ(c.estimator_flops, a.estimator_flops + b.estimator_flops);
  EXPECT_DOUBLE_EQ(estimator_flops(both, geometry, 128, estimation), c.estimator_flops);
  const AttentionCost wide =
      predict_cost(parse("interval-slash:10,10|block-cluster:400"), geometry, 128, estimation);
  EXPECT_EQ(wide.kernel_flops,
            predict_cost(parse("block-cluster:400"), geometry, 128, estimation).kernel_flops);
}

struct ChoiceCase {
  AttentionShape shape{2048, 4, 2, 128};
  std::string pattern;
  bool shared = false;
  bool topics = true;  // topic blocks (Block-Cluster shaped) or planted slashes / verticals only
  bool vary_heads = false;
};

ref::SyntheticConfig synthetic_of(const ChoiceCase& c) {
  ref::SyntheticConfig config;
  config.shape = c.shape;
  config.vary_heads = c.vary_heads;
  if (c.topics) {  // attention spread evenly over the blocks of the query's topic
    config.structure_logit = 0.0;
    config.topic_logit = 6.0;
    config.topic_segment = 256;
    config.topics = 4;
  } else {  // sharp planted lines, no topics
    config.topic_logit = 0.0;
    config.slashes = 8;
    config.verticals = 24;
  }
  return config;
}

// One index head's CSR slice.
struct HeadSlice {
  std::vector<std::vector<int32_t>> blocks, columns;
  bool operator==(const HeadSlice&) const = default;
};
HeadSlice head_slice(const SparseIndex& index, int head) {
  HeadSlice slice;
  const int64_t q_blocks = index.geometry.num_q_blocks();
  for (int64_t qb = 0; qb < q_blocks; ++qb) {
    const int64_t slot = head * q_blocks + qb;
    slice.blocks.emplace_back(index.block_ids.begin() + index.block_offsets[slot],
                              index.block_ids.begin() + index.block_offsets[slot + 1]);
    slice.columns.emplace_back(index.column_ids.begin() + index.column_offsets[slot],
                               index.column_ids.begin() + index.column_offsets[slot + 1]);
  }
  return slice;
}

// Index heads: one per query head, or one per KV group when shared.
IndexGeometry geometry_of(const ChoiceCase& c) {
  IndexGeometry geometry = test::index_geometry_of(c.shape, c.shared);
  return geometry;
}

// plan_cpu on the case's input gives `oracle`'s index.
void expect_plan_cpu_equals(const ChoiceCase& c, const ref::SyntheticInput& input,
                            const IndexGeometry& geometry, const SparseIndex& oracle) {
  AttentionParams params;
  params.shape = c.shape;
  params.q = input.qkv.q.data();
  params.k = input.qkv.k.data();
  LayerPatterns patterns;
  patterns.shared_per_kv_group = c.shared;
  patterns.heads.assign(geometry.num_heads, parse(c.pattern));
  Result<SparseIndex> cpu = plan_cpu(params, patterns, geometry, {DType::F32, DType::F32});
  ASSERT_TRUE(cpu.is_ok()) << cpu.status().to_string();
  EXPECT_EQ(cpu->block_offsets, oracle.block_offsets) << c.pattern;
  EXPECT_EQ(cpu->block_ids, oracle.block_ids) << c.pattern;
  EXPECT_EQ(cpu->column_offsets, oracle.column_offsets) << c.pattern;
  EXPECT_EQ(cpu->column_ids, oracle.column_ids) << c.pattern;
}

// The oracle's kinds per head; checks that each head's index is its chosen pattern's own index and that
// plan_cpu gives the oracle's index.
std::vector<PatternKind> check_choice(const ChoiceCase& c) {
  Result<ref::SyntheticInput> input = ref::make_synthetic_input(synthetic_of(c));
  EXPECT_TRUE(input.is_ok()) << input.status().to_string();
  if (!input.is_ok()) return {};
  const ref::QkvView qkv = input->qkv.view();
  const IndexGeometry geometry = geometry_of(c);
  const PatternSpec spec = clamp_pattern_to_length(parse(c.pattern), geometry);
  const EstimationConfig estimation;

  std::vector<PatternKind> kinds;
  Result<SparseIndex> chosen = ref::build_index(qkv, {spec}, estimation, geometry, &kinds);
  Result<SparseIndex> slash = ref::build_index(qkv, {spec.primary()}, estimation, geometry);
  Result<SparseIndex> cluster = ref::build_index(qkv, {spec.alternative()}, estimation, geometry);
  EXPECT_TRUE(chosen.is_ok() && slash.is_ok() && cluster.is_ok());
  if (!chosen.is_ok() || !slash.is_ok() || !cluster.is_ok()) return {};
  EXPECT_EQ(static_cast<int>(kinds.size()), geometry.num_heads);
  for (int h = 0; h < geometry.num_heads; ++h) {
    const SparseIndex& own = kinds[h] == PatternKind::BLOCK_CLUSTER ? *cluster : *slash;
    EXPECT_TRUE(head_slice(*chosen, h) == head_slice(own, h)) << c.pattern << " head " << h;
  }
  expect_plan_cpu_equals(c, *input, geometry, *chosen);
  return kinds;
}

int count(const std::vector<PatternKind>& kinds, PatternKind kind) {
  return static_cast<int>(std::count(kinds.begin(), kinds.end(), kind));
}

TEST(PatternChoice, TopicBlocksTakeBlockCluster) {
  ChoiceCase c;
  c.pattern = "interval-slash:64,64|block-cluster:12";
  const std::vector<PatternKind> kinds = check_choice(c);
  EXPECT_EQ(count(kinds, PatternKind::BLOCK_CLUSTER), c.shape.num_q_heads);
}

TEST(PatternChoice, SlashesAndVerticalsTakeIntervalSlash) {
  ChoiceCase c;
  c.pattern = "interval-slash:64,200|block-cluster:3";
  c.topics = false;
  const std::vector<PatternKind> kinds = check_choice(c);
  EXPECT_EQ(count(kinds, PatternKind::INTERVAL_SLASH), c.shape.num_q_heads);
}

TEST(PatternChoice, SharedPerGroupAdaptiveBoth) {
  ChoiceCase c;
  c.shape = {1999, 8, 2, 64};  // L mod Bq = 79 >= m: the estimating rows lie in the last query block
  c.shared = true;
  c.pattern = "interval-slash:40,40@0.9|block-cluster:10@0.95";
  const std::vector<PatternKind> kinds = check_choice(c);
  EXPECT_EQ(count(kinds, PatternKind::BLOCK_CLUSTER), c.shape.num_kv_heads);
}

TEST(PatternChoice, VariedHeadsEstimatingRowsAcrossTwoQueryBlocks) {
  ChoiceCase c;
  c.shape = {2080, 12, 4, 128};  // L mod Bq = 32 < m: the rows span the last two query blocks
  c.pattern = "interval-slash:100,150|block-cluster:8";
  c.vary_heads = true;
  check_choice(c);
  c.topics = false;
  check_choice(c);
}

TEST(PatternChoice, MixedWithOtherKindsPerHead) {
  ref::SyntheticConfig config;
  config.shape = {1500, 6, 3, 128};
  Result<ref::SyntheticInput> input = ref::make_synthetic_input(config);
  ASSERT_TRUE(input.is_ok());
  const IndexGeometry geometry{1500, 6, 128, 64, false};
  LayerPatterns patterns;
  for (const std::string text : {"interval-slash:60,150|block-cluster:6", "block-cluster:6", "dense",
                                 "interval-slash:200,400@0.9|block-cluster:4@0.8", "triangular:70,200",
                                 "interval-slash:5,1|block-cluster:30"}) {
    patterns.heads.push_back(parse(text));
  }
  std::vector<PatternSpec> clamped;
  for (const PatternSpec& spec : patterns.heads) clamped.push_back(clamp_pattern_to_length(spec, geometry));
  std::vector<PatternKind> kinds;
  Result<SparseIndex> oracle = ref::build_index(input->qkv.view(), clamped, {}, geometry, &kinds);
  ASSERT_TRUE(oracle.is_ok()) << oracle.status().to_string();
  EXPECT_EQ(kinds[1], PatternKind::BLOCK_CLUSTER);
  EXPECT_EQ(kinds[2], PatternKind::DENSE);
  EXPECT_EQ(kinds[5], PatternKind::BLOCK_CLUSTER);  // one slash, five verticals against 30 blocks
  AttentionParams params;
  params.shape = config.shape;
  params.q = input->qkv.q.data();
  params.k = input->qkv.k.data();
  Result<SparseIndex> cpu = plan_cpu(params, patterns, geometry, {DType::F32, DType::F32});
  ASSERT_TRUE(cpu.is_ok()) << cpu.status().to_string();
  EXPECT_EQ(cpu->block_ids, oracle->block_ids);
  EXPECT_EQ(cpu->block_offsets, oracle->block_offsets);
  EXPECT_EQ(cpu->column_ids, oracle->column_ids);
  EXPECT_EQ(cpu->column_offsets, oracle->column_offsets);
}

TEST(PatternChoice, PlanCpuRejectsAnAlternativeOnOtherKinds) {
  const AttentionShape shape{256, 1, 1, 64};
  std::vector<float> q(256 * 64, 0.1f), k(256 * 64, 0.1f);
  AttentionParams params;
  params.shape = shape;
  params.q = q.data();
  params.k = k.data();
  LayerPatterns patterns;
  PatternSpec spec = parse("block-cluster:2");
  spec.alternative_blocks = 3;
  patterns.heads = {spec};
  EXPECT_FALSE(plan_cpu(params, patterns, {256, 1, 128, 64, false}, {DType::F32, DType::F32}).is_ok());
}

TEST(PatternUnion, ParsesAndRoundTrips) {
  const PatternSpec spec = parse("interval-slash:1000,6096@0.95+block-cluster:16@0.9");
  EXPECT_TRUE(spec.joins_alternative());
  EXPECT_FALSE(spec.chooses_alternative());
  EXPECT_EQ(spec.alternative(), parse("block-cluster:16@0.9"));
  EXPECT_EQ(spec.primary(), parse("interval-slash:1000,6096@0.95"));
  EXPECT_EQ(to_string(spec), "interval-slash:1000,6096@0.95+block-cluster:16@0.9");
  EXPECT_NE(spec, parse("interval-slash:1000,6096@0.95|block-cluster:16@0.9"));
  for (const std::string text :
       {"block-cluster:8+interval-slash:5,1", "interval-slash:5,1+triangular:4,64", "interval-slash:5,1+",
        "interval-slash:5,1+block-cluster:2|block-cluster:3"}) {
    EXPECT_FALSE(parse_pattern(text).is_ok()) << text;
  }
}

TEST(PatternUnion, CostIsBothPatternsAndBothEstimations) {
  const IndexGeometry geometry{32768, 1, 128, 64, false};
  const EstimationConfig estimation;
  const AttentionCost a = predict_cost(parse("interval-slash:100,500"), geometry, 128, estimation);
  const AttentionCost b = predict_cost(parse("block-cluster:16"), geometry, 128, estimation);
  const AttentionCost c =
      predict_cost(parse("interval-slash:100,500+block-cluster:16"), geometry, 128, estimation);
  ASSERT_LT(a.kernel_flops + b.kernel_flops, c.causal_flops);
  EXPECT_DOUBLE_EQ(c.kernel_flops, a.kernel_flops + b.kernel_flops);
  EXPECT_DOUBLE_EQ(c.estimator_flops, a.estimator_flops + b.estimator_flops);
  const AttentionCost capped =
      predict_cost(parse("interval-slash:30000,30000+block-cluster:512"), geometry, 128, estimation);
  EXPECT_DOUBLE_EQ(capped.kernel_flops, capped.causal_flops);
}

// The oracle's union equals the join of the two patterns' own indices, and plan_cpu equals the oracle.
void check_union(const ChoiceCase& c) {
  Result<ref::SyntheticInput> input = ref::make_synthetic_input(synthetic_of(c));
  ASSERT_TRUE(input.is_ok()) << input.status().to_string();
  const ref::QkvView qkv = input->qkv.view();
  const IndexGeometry geometry = geometry_of(c);
  const PatternSpec spec = clamp_pattern_to_length(parse(c.pattern), geometry);
  ASSERT_TRUE(spec.joins_alternative());
  std::vector<PatternKind> kinds;
  Result<SparseIndex> joined = ref::build_index(qkv, {spec}, {}, geometry, &kinds);
  Result<SparseIndex> slash = ref::build_index(qkv, {spec.primary()}, {}, geometry);
  Result<SparseIndex> cluster = ref::build_index(qkv, {spec.alternative()}, {}, geometry);
  ASSERT_TRUE(joined.is_ok() && slash.is_ok() && cluster.is_ok());
  EXPECT_EQ(count(kinds, PatternKind::INTERVAL_SLASH), geometry.num_heads);
  int64_t grew = 0;
  for (int h = 0; h < geometry.num_heads; ++h) {
    const HeadSlice a = head_slice(*slash, h), b = head_slice(*cluster, h), out = head_slice(*joined, h);
    for (size_t qb = 0; qb < a.blocks.size(); ++qb) {
      std::vector<int32_t> blocks;
      std::set_union(a.blocks[qb].begin(), a.blocks[qb].end(), b.blocks[qb].begin(), b.blocks[qb].end(),
                     std::back_inserter(blocks));
      std::vector<int32_t> columns;
      for (int32_t j : a.columns[qb]) {
        if (!std::binary_search(blocks.begin(), blocks.end(), j / geometry.block_k)) columns.push_back(j);
      }
      EXPECT_EQ(out.blocks[qb], blocks) << c.pattern << " head " << h << " qb " << qb;
      EXPECT_EQ(out.columns[qb], columns) << c.pattern << " head " << h << " qb " << qb;
      grew += static_cast<int64_t>(blocks.size() - a.blocks[qb].size());
    }
  }
  EXPECT_GT(grew, 0) << "the Block-Cluster part added no block: the case does not exercise the union";
  expect_plan_cpu_equals(c, *input, geometry, *joined);
}

TEST(PatternUnion, TopicBlocksAndPlantedLines) {
  ChoiceCase c;
  c.pattern = "interval-slash:64,64+block-cluster:12";
  check_union(c);
  c.topics = false;
  c.pattern = "interval-slash:64,200@0.9+block-cluster:6@0.9";
  check_union(c);
}

TEST(PatternUnion, SharedPerGroupVariedHeads) {
  ChoiceCase c;
  c.shape = {2080, 12, 4, 128};
  c.shared = true;
  c.vary_heads = true;
  c.pattern = "interval-slash:100,150@0.95+block-cluster:8@0.9";
  check_union(c);
}

}  // namespace
}  // namespace sacc
