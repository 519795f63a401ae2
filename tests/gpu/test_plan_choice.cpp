// GPU plan() with the runtime pattern choice "interval-slash:...|block-cluster:..." (attention/pattern.h)
// against the CPU oracle: on inputs built so that one pattern clearly wins (topic blocks: Block-Cluster;
// planted slashes and verticals: Interval-Slash) every such head takes the oracle's kind, and its index is
// exactly what the GPU plans for that pattern alone (whose own agreement with the oracle test_plan_index.cpp
// checks). Also captured into a CUDA graph: the choice needs no host synchronisation. The union
// "interval-slash:...+block-cluster:..." lists, per slot, exactly the join of the two patterns' own GPU
// lists.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <string>
#include <vector>

#include "core/device_info.h"
#include "plan_test_util.h"
#include "reference/build_index.h"
#include "reference/estimate_interval_slash.h"
#include "reference/synthetic.h"
#include "test_plan_support.h"

namespace sacc::plan_test {
namespace {

struct ChoiceCase {
  AttentionShape shape{2048, 4, 2, 128};
  std::vector<std::string> patterns;  // one per index head
  bool shared = false;
  bool topics = true;  // topic blocks (Block-Cluster shaped) or planted slashes / verticals only
  bool vary_heads = false;
};

ref::SyntheticConfig synthetic_of(const ChoiceCase& c) {
  ref::SyntheticConfig config;
  config.shape = c.shape;
  config.vary_heads = c.vary_heads;
  if (c.topics) {
    config.structure_logit = 0.0;
    config.topic_logit = 6.0;
    config.topic_segment = 256;
    config.topics = 4;
  } else {
    config.topic_logit = 0.0;
    config.slashes = 8;
    config.verticals = 24;
  }
  return config;
}

LayerPatterns patterns_of(const ChoiceCase& c, bool primary, bool alternative) {
  LayerPatterns patterns;
  patterns.shared_per_kv_group = c.shared;
  for (const std::string& text : c.patterns) {
    Result<PatternSpec> spec = parse_pattern(text);
    EXPECT_TRUE(spec.is_ok()) << text;
    PatternSpec out = spec.is_ok() ? *spec : PatternSpec{};
    if (out.has_alternative() && primary) out = out.primary();
    if (out.has_alternative() && alternative) out = out.alternative();
    patterns.heads.push_back(out);
  }
  return patterns;
}

// Vertical scores of an index head (summed over its group when shared).
std::vector<float> vertical_scores(const ref::QkvView& qkv, const ChoiceCase& c, int index_head) {
  const int members = c.shared ? c.shape.group_size() : 1;
  std::vector<float> sum(c.shape.seq_len, 0.0f);
  for (int m = 0; m < members; ++m) {
    Result<ref::IntervalSlashScores> scores = ref::interval_slash_scores(qkv, index_head * members + m, {});
    EXPECT_TRUE(scores.is_ok());
    if (!scores.is_ok()) return sum;
    for (size_t j = 0; j < sum.size(); ++j) sum[j] += scores->vertical[j];
  }
  return sum;
}

// The runtime choice's score: vertical scores over the keys the head lists for the last query block.
double last_block_mass(const std::vector<float>& vertical, const SparseIndex& index, int head) {
  const IndexGeometry& geometry = index.geometry;
  const int64_t slot = (head + 1) * geometry.num_q_blocks() - 1;
  double mass = 0.0;
  for (int32_t kb : slot_blocks(index, slot)) {
    for (int64_t j = int64_t{kb} * geometry.block_k;
         j < std::min<int64_t>(geometry.seq_len, (kb + 1) * int64_t{geometry.block_k}); ++j) {
      mass += vertical[j];
    }
  }
  for (int32_t j : slot_columns(index, slot)) mass += vertical[j];
  return mass;
}

// Returns the kind per index head (the oracle's, or the GPU's where the two masses are too close to call).
std::vector<PatternKind> check_choice(const ChoiceCase& c) {
  if (cuda_device_count() == 0) return {};
  Result<ref::SyntheticInput> input = ref::make_synthetic_input(synthetic_of(c));
  EXPECT_TRUE(input.is_ok()) << input.status().to_string();
  if (!input.is_ok()) return {};
  IndexGeometry geometry = test::index_geometry_of(c.shape, c.shared);

  const LayerPatterns both = patterns_of(c, false, false);
  std::vector<PatternSpec> clamped;
  for (const PatternSpec& spec : both.heads) clamped.push_back(ref::clamp_pattern_to_length(spec, geometry));
  std::vector<PatternKind> kinds;
  Result<SparseIndex> oracle =
      ref::build_index(input->qkv.view(), clamped, both.estimation, geometry, &kinds);
  EXPECT_TRUE(oracle.is_ok()) << oracle.status().to_string();
  if (!oracle.is_ok()) return {};

  GpuPlanResult chosen, captured, slash, cluster;
  run_gpu_plan(input->qkv, both, geometry, /*capture=*/false, &chosen);
  run_gpu_plan(input->qkv, both, geometry, /*capture=*/true, &captured);
  run_gpu_plan(input->qkv, patterns_of(c, true, false), geometry, false, &slash);
  run_gpu_plan(input->qkv, patterns_of(c, false, true), geometry, false, &cluster);
  if (::testing::Test::HasFatalFailure()) return {};
  const Status valid = chosen.index.validate();
  EXPECT_TRUE(valid.is_ok()) << valid.to_string();
  EXPECT_EQ(captured.index.block_ids, chosen.index.block_ids);
  EXPECT_EQ(captured.index.column_ids, chosen.index.column_ids);
  for (int h = 0; h < geometry.num_heads; ++h) {
    if (!both.heads[h].has_alternative()) continue;
    // Where the two masses (on the GPU's own selections) are within fp32 reordering of each other, either
    // choice is right; otherwise the oracle's.
    const std::vector<float> vertical = vertical_scores(input->qkv.view(), c, h);
    const double slash_mass = last_block_mass(vertical, slash.index, h);
    const double cluster_mass = last_block_mass(vertical, cluster.index, h);
    const bool close = std::abs(slash_mass - cluster_mass) < 1e-3 * (slash_mass + cluster_mass);
    const bool took_cluster = slot_blocks(chosen.index, (h + 1) * geometry.num_q_blocks() - 1) ==
                                  slot_blocks(cluster.index, (h + 1) * geometry.num_q_blocks() - 1) &&
                              slot_columns(chosen.index, (h + 1) * geometry.num_q_blocks() - 1).empty();
    if (close) kinds[h] = took_cluster ? PatternKind::BLOCK_CLUSTER : PatternKind::INTERVAL_SLASH;
    if (!close) {
      EXPECT_EQ(cluster_mass > slash_mass, kinds[h] == PatternKind::BLOCK_CLUSTER) << "head " << h;
    }
    const SparseIndex& own = kinds[h] == PatternKind::BLOCK_CLUSTER ? cluster.index : slash.index;
    for (int64_t qb = 0; qb < geometry.num_q_blocks(); ++qb) {
      const int64_t slot = h * geometry.num_q_blocks() + qb;
      EXPECT_EQ(slot_blocks(chosen.index, slot), slot_blocks(own, slot))
          << c.patterns[h] << " head " << h << " (oracle: " << pattern_kind_name(kinds[h]) << ") qb " << qb;
      EXPECT_EQ(slot_columns(chosen.index, slot), slot_columns(own, slot))
          << c.patterns[h] << " head " << h << " qb " << qb;
    }
  }
  return kinds;
}

int count(const std::vector<PatternKind>& kinds, PatternKind kind) {
  return static_cast<int>(std::count(kinds.begin(), kinds.end(), kind));
}

TEST(PlanChoice, TopicBlocksTakeBlockCluster) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  ChoiceCase c;
  c.patterns.assign(4, "interval-slash:64,64|block-cluster:12");
  EXPECT_EQ(count(check_choice(c), PatternKind::BLOCK_CLUSTER), 4);
}

TEST(PlanChoice, SlashesAndVerticalsTakeIntervalSlash) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  ChoiceCase c;
  c.topics = false;
  c.patterns.assign(4, "interval-slash:64,200|block-cluster:3");
  EXPECT_EQ(count(check_choice(c), PatternKind::INTERVAL_SLASH), 4);
}

TEST(PlanChoice, SharedAdaptiveMixedWithOtherKinds) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  ChoiceCase c;
  c.shape = {1999, 8, 4, 64};
  c.shared = true;
  c.patterns = {"interval-slash:40,40@0.9|block-cluster:10@0.95", "block-cluster:6", "triangular:64,256",
                "interval-slash:40,40|block-cluster:10"};
  const std::vector<PatternKind> kinds = check_choice(c);
  if (kinds.empty()) return;
  EXPECT_EQ(kinds[0], PatternKind::BLOCK_CLUSTER);
  EXPECT_EQ(kinds[3], PatternKind::BLOCK_CLUSTER);
}

TEST(PlanChoice, VariedHeadsBothOutcomes) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  ChoiceCase c;
  c.shape = {2304, 8, 2, 128};
  c.vary_heads = true;
  c.patterns.assign(8, "interval-slash:100,150|block-cluster:8");
  check_choice(c);
  c.topics = false;
  check_choice(c);
}

// The union: every slot lists the blocks either pattern's own GPU plan lists, and the Interval-Slash columns
// outside them; the same when captured into a CUDA graph.
void check_union(const ChoiceCase& c) {
  Result<ref::SyntheticInput> input = ref::make_synthetic_input(synthetic_of(c));
  ASSERT_TRUE(input.is_ok()) << input.status().to_string();
  IndexGeometry geometry = test::index_geometry_of(c.shape, c.shared);
  GpuPlanResult joined, captured, slash, cluster;
  run_gpu_plan(input->qkv, patterns_of(c, false, false), geometry, /*capture=*/false, &joined);
  run_gpu_plan(input->qkv, patterns_of(c, false, false), geometry, /*capture=*/true, &captured);
  run_gpu_plan(input->qkv, patterns_of(c, true, false), geometry, false, &slash);
  run_gpu_plan(input->qkv, patterns_of(c, false, true), geometry, false, &cluster);
  if (::testing::Test::HasFatalFailure()) return;
  const Status valid = joined.index.validate();
  EXPECT_TRUE(valid.is_ok()) << valid.to_string();
  EXPECT_EQ(captured.index.block_ids, joined.index.block_ids);
  EXPECT_EQ(captured.index.column_ids, joined.index.column_ids);
  const LayerPatterns specs = patterns_of(c, false, false);
  int64_t grew = 0;
  for (int64_t slot = 0; slot < geometry.num_heads * geometry.num_q_blocks(); ++slot) {
    if (!specs.heads[slot / geometry.num_q_blocks()].joins_alternative()) continue;  // choice: PlanChoice
    const std::vector<int32_t> a = slot_blocks(slash.index, slot), b = slot_blocks(cluster.index, slot);
    std::vector<int32_t> blocks;
    std::set_union(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(blocks));
    std::vector<int32_t> columns;
    for (int32_t j : slot_columns(slash.index, slot)) {
      if (!std::binary_search(blocks.begin(), blocks.end(), j / geometry.block_k)) columns.push_back(j);
    }
    EXPECT_EQ(slot_blocks(joined.index, slot), blocks) << "slot " << slot;
    EXPECT_EQ(slot_columns(joined.index, slot), columns) << "slot " << slot;
    grew += static_cast<int64_t>(blocks.size() - a.size());
  }
  EXPECT_GT(grew, 0) << "the Block-Cluster part added no block: the test does not exercise the union";
}

TEST(PlanUnion, JoinsBothPatternsPerSlot) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  ChoiceCase c;
  c.patterns.assign(4, "interval-slash:64,64+block-cluster:12");
  check_union(c);
  c.topics = false;
  c.patterns.assign(4, "interval-slash:64,200@0.9+block-cluster:6@0.9");
  check_union(c);
}

TEST(PlanUnion, StagedIdsWalkedAcrossSteps) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  ChoiceCase c;
  c.shape = {9000, 4, 2, 64};  // 141 key blocks: the index build walks the staged ids over two steps of 128
  c.patterns.assign(4, "interval-slash:64,64+block-cluster:60@0.95");
  check_union(c);
}

TEST(PlanUnion, SharedMixedWithChoiceAndOtherKinds) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  ChoiceCase c;
  c.shape = {1999, 8, 4, 64};
  c.shared = true;
  c.vary_heads = true;
  c.patterns = {"interval-slash:40,40@0.9+block-cluster:10@0.95", "block-cluster:6",
                "interval-slash:40,40|block-cluster:10", "interval-slash:30,80+block-cluster:4"};
  check_union(c);  // heads 0 and 3; the plan of the whole layer must still be valid and graph-stable
}

}  // namespace
}  // namespace sacc::plan_test
