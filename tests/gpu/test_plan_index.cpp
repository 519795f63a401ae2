// GPU plan() against the CPU oracle (src/reference/build_index.h) on synthetic inputs with planted structure:
//  * DENSE and TRIANGULAR slots equal the oracle's exactly;
//  * Interval-Slash: the GPU's chosen verticals / slashes pass the tie-tolerant selection rule on the
//  oracle's
//    scores, and the GPU index equals the oracle's index builder applied to the GPU's selections;
//  * Block-Cluster: every slot's blocks pass the selection rule on the oracle's block probabilities;
//  * the copied-back index validates, for per-head and shared-per-group indices, mixed kinds and awkward
//  shapes.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/device_info.h"
#include "plan_test_util.h"
#include "reference/build_index.h"
#include "reference/estimate_block_cluster.h"
#include "reference/estimate_interval_slash.h"
#include "reference/synthetic.h"
#include "test_plan_support.h"

namespace sacc::plan_test {
namespace {

struct PlanCase {
  AttentionShape shape;
  std::vector<std::string> patterns;  // one per index head
  bool shared = false;
  int block_q = 128;
  int block_k = 64;
  EstimationConfig estimation;
  uint64_t seed = 7;
};

PatternSpec parse(const std::string& text) {
  return test::parse_or_fail(text);
}

std::vector<int> query_heads(const PlanCase& c, int index_head) {
  if (!c.shared) return {index_head};
  std::vector<int> heads;
  for (int g = 0; g < c.shape.group_size(); ++g) heads.push_back(index_head * c.shape.group_size() + g);
  return heads;
}

void check_interval_slash_head(const PlanCase& c, const ref::QkvView& qkv, const IndexGeometry& geometry,
                               int index_head, const PatternSpec& spec, const GpuPlanResult& gpu) {
  const std::vector<int> heads = query_heads(c, index_head);
  Result<ref::IntervalSlashScores> sum = ref::interval_slash_scores(qkv, heads[0], c.estimation);
  ASSERT_TRUE(sum.is_ok());
  for (size_t n = 1; n < heads.size(); ++n) {
    Result<ref::IntervalSlashScores> more = ref::interval_slash_scores(qkv, heads[n], c.estimation);
    ASSERT_TRUE(more.is_ok());
    ref::accumulate_scores(*sum, *more);
  }
  const int64_t seq_len = c.shape.seq_len;
  std::vector<int32_t> sinks, locals;
  for (int64_t j = 0; j < std::min(c.estimation.sink_keys, seq_len); ++j)
    sinks.push_back(static_cast<int32_t>(j));
  for (int64_t o = 0; o < std::clamp<int64_t>(c.estimation.local_diagonals, 1, seq_len); ++o) {
    locals.push_back(static_cast<int32_t>(o));
  }
  SelectionRuleCheck vertical_rule{std::min(spec.vertical, seq_len), spec.gamma, sum->total_mass};
  SelectionRuleCheck slash_rule{std::max<int64_t>(1, std::min(spec.slash, seq_len)), spec.gamma,
                                sum->total_mass};
  EXPECT_TRUE(check_selection(sum->vertical, sinks, gpu.verticals[index_head], vertical_rule))
      << "verticals of index head " << index_head << " (" << to_string(spec) << ")";
  EXPECT_TRUE(check_selection(sum->slash, locals, gpu.slashes[index_head], slash_rule))
      << "slashes of index head " << index_head << " (" << to_string(spec) << ")";

  // The builder: the oracle's index from the GPU's own selections must equal the GPU index exactly.
  ref::IntervalSlashSelection selection{gpu.verticals[index_head], gpu.slashes[index_head]};
  const ref::HeadIndex expected = ref::interval_slash_head_index(selection, geometry);
  for (int64_t qb = 0; qb < geometry.num_q_blocks(); ++qb) {
    const int64_t slot = index_head * geometry.num_q_blocks() + qb;
    ASSERT_EQ(slot_blocks(gpu.index, slot), expected.blocks[qb])
        << "head " << index_head << " q block " << qb;
    ASSERT_EQ(slot_columns(gpu.index, slot), expected.columns[qb])
        << "head " << index_head << " q block " << qb;
  }
}

void check_block_cluster_head(const PlanCase& c, const ref::QkvView& qkv, const IndexGeometry& geometry,
                              int index_head, const PatternSpec& spec, const GpuPlanResult& gpu) {
  const std::vector<int> heads = query_heads(c, index_head);
  Result<ref::BlockScores> sum = ref::block_cluster_scores(qkv, heads[0], geometry);
  ASSERT_TRUE(sum.is_ok());
  for (size_t n = 1; n < heads.size(); ++n) {
    Result<ref::BlockScores> more = ref::block_cluster_scores(qkv, heads[n], geometry);
    ASSERT_TRUE(more.is_ok());
    ref::accumulate_scores(*sum, *more);
  }
  for (int64_t qb = 0; qb < geometry.num_q_blocks(); ++qb) {
    const int64_t last_block = geometry.last_causal_k_block(qb);
    const int64_t first_diagonal = qb * geometry.block_q / geometry.block_k;
    std::vector<int32_t> forced{0};
    for (int64_t kb = std::max<int64_t>(1, first_diagonal); kb <= last_block; ++kb) {
      forced.push_back(static_cast<int32_t>(kb));
    }
    const float* p = sum->prob.data() + qb * sum->num_k_blocks;
    const std::vector<float> row(p, p + last_block + 1);
    double row_mass = 0.0;
    for (float x : row) row_mass += x;
    SelectionRuleCheck rule;
    rule.cap = std::max<int64_t>(std::min<int64_t>(spec.blocks, last_block + 1), forced.size());
    rule.gamma = spec.gamma;
    rule.total = row_mass;
    rule.keep_all_forced = true;
    const int64_t slot = index_head * geometry.num_q_blocks() + qb;
    ASSERT_TRUE(check_selection(row, forced, slot_blocks(gpu.index, slot), rule))
        << "head " << index_head << " q block " << qb << " (" << to_string(spec) << ")";
    ASSERT_TRUE(slot_columns(gpu.index, slot).empty());
  }
}

void check_plan(const PlanCase& c) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  ref::SyntheticConfig config;
  config.shape = c.shape;
  config.seed = c.seed;
  Result<ref::SyntheticInput> input = ref::make_synthetic_input(config);
  ASSERT_TRUE(input.is_ok()) << input.status().to_string();
  const ref::QkvView qkv = input->qkv.view();

  IndexGeometry geometry = test::index_geometry_of(c.shape, c.shared);
  geometry.block_q = c.block_q;
  geometry.block_k = c.block_k;
  LayerPatterns patterns;
  patterns.shared_per_kv_group = c.shared;
  patterns.estimation = c.estimation;
  for (const std::string& text : c.patterns) patterns.heads.push_back(parse(text));
  ASSERT_EQ(static_cast<int>(patterns.heads.size()), geometry.num_heads);

  GpuPlanResult gpu;
  run_gpu_plan(input->qkv, patterns, geometry, /*capture=*/false, &gpu);
  if (::testing::Test::HasFatalFailure()) return;
  const Status valid = gpu.index.validate();
  ASSERT_TRUE(valid.is_ok()) << valid.to_string();

  std::vector<PatternSpec> clamped;
  for (const PatternSpec& spec : patterns.heads)
    clamped.push_back(ref::clamp_pattern_to_length(spec, geometry));
  Result<SparseIndex> oracle = ref::build_index(qkv, clamped, c.estimation, geometry);
  ASSERT_TRUE(oracle.is_ok()) << oracle.status().to_string();

  for (int h = 0; h < geometry.num_heads; ++h) {
    const PatternSpec& spec = clamped[h];
    switch (spec.kind) {
      case PatternKind::DENSE:
      case PatternKind::TRIANGULAR:
        for (int64_t qb = 0; qb < geometry.num_q_blocks(); ++qb) {
          const int64_t slot = h * geometry.num_q_blocks() + qb;
          ASSERT_EQ(slot_blocks(gpu.index, slot), slot_blocks(*oracle, slot))
              << to_string(spec) << " qb " << qb;
          ASSERT_EQ(slot_columns(gpu.index, slot), slot_columns(*oracle, slot))
              << to_string(spec) << " qb " << qb;
        }
        break;
      case PatternKind::INTERVAL_SLASH:
        check_interval_slash_head(c, qkv, geometry, h, spec, gpu);
        break;
      case PatternKind::BLOCK_CLUSTER:
        check_block_cluster_head(c, qkv, geometry, h, spec, gpu);
        break;
    }
    if (::testing::Test::HasFatalFailure()) return;
  }
}

TEST(PlanIndex, MixedKindsPerHead) {
  PlanCase c;
  c.shape = {1023, 8, 2, 128};
  c.patterns = {
      "dense",           "triangular:70,200",    "interval-slash:60,150", "interval-slash:200,400@0.9",
      "block-cluster:6", "block-cluster:10@0.8", "triangular:64,1",       "interval-slash:5,1"};
  check_plan(c);
}

TEST(PlanIndex, SharedPerGroupHeadDim64) {
  PlanCase c;
  c.shape = {4224, 12, 3, 64};
  c.shared = true;
  c.patterns = {"interval-slash:300,500", "block-cluster:12", "interval-slash:100,200@0.95"};
  check_plan(c);
}

TEST(PlanIndex, SingleQueryBlockBudgetsBeyondLength) {
  PlanCase c;
  c.shape = {113, 3, 1, 64};
  c.patterns = {"interval-slash:1000,1000", "block-cluster:40", "triangular:4,16"};
  check_plan(c);
}

TEST(PlanIndex, SingleToken) {
  PlanCase c;
  c.shape = {1, 2, 1, 128};
  c.patterns = {"interval-slash:3,3", "block-cluster:1"};
  check_plan(c);
}

TEST(PlanIndex, GroupOf8ManyEstimatingRows) {
  PlanCase c;
  c.shape = {2125, 16, 2, 128};
  c.estimation.last_queries = 100;  // two row tiles, the second partial
  c.estimation.sink_keys = 7;
  c.estimation.local_diagonals = 0;  // still keeps the main diagonal
  for (int h = 0; h < 16; ++h) {
    c.patterns.push_back(h % 2 ? "interval-slash:" + std::to_string(20 + 40 * h) + "," +
                                     std::to_string(30 * h + 1)
                               : "interval-slash:" + std::to_string(50 * h + 1) + ",64@0.9");
  }
  check_plan(c);
}

TEST(PlanIndex, SharedGroupOf8SeveralEstimationPasses) {
  PlanCase c;
  c.shape = {1500, 16, 2, 64};
  c.shared = true;
  c.estimation.last_queries = 100;  // 2 row tiles x 8 heads: the group is estimated in several passes
  c.patterns = {"interval-slash:90,200", "interval-slash:300,50@0.9"};
  check_plan(c);
}

TEST(PlanIndex, QueryBlocksSmallerThanKeyBlocks) {
  PlanCase c;
  c.shape = {3001, 4, 4, 128};
  c.block_q = 64;
  c.block_k = 128;
  c.patterns = {"triangular:100,300", "interval-slash:80,120", "block-cluster:5@0.7", "dense"};
  check_plan(c);
}

TEST(PlanIndex, BlockClusterRowsByWarpAndByCta) {
  PlanCase c;
  c.shape = {9000, 4, 2, 64};
  c.block_q = 64;
  c.block_k = 16;  // up to 563 key blocks a row: the late query blocks' rows are chosen by the whole CTA
  c.patterns = {"block-cluster:40", "block-cluster:300@0.9", "interval-slash:100,200",
                "block-cluster:600@0.95"};
  check_plan(c);
}

TEST(PlanIndex, LongerSequenceSharedIntervalSlash) {
  PlanCase c;
  c.shape = {16384, 8, 2, 128};
  c.shared = true;
  c.patterns = {"interval-slash:1000,2000", "interval-slash:3500,100"};
  check_plan(c);
}

TEST(PlanWorkspace, RejectsMismatchedArguments) {
  AttentionShape shape{256, 4, 2, 128};
  IndexGeometry geometry{256, 4, 128, 64, false};
  LayerPatterns patterns;
  patterns.heads.assign(3, PatternSpec{});
  EXPECT_FALSE(plan_workspace_bytes(shape, patterns, geometry).is_ok());  // 3 patterns for 4 heads
  patterns.heads.assign(4, PatternSpec{});
  EXPECT_TRUE(plan_workspace_bytes(shape, patterns, geometry).is_ok());
  patterns.shared_per_kv_group = true;  // geometry says per query head
  EXPECT_FALSE(plan_workspace_bytes(shape, patterns, geometry).is_ok());
  patterns.shared_per_kv_group = false;
  patterns.heads[1].kind = PatternKind::INTERVAL_SLASH;
  patterns.heads[1].gamma = 1.5;
  EXPECT_FALSE(plan_workspace_bytes(shape, patterns, geometry).is_ok());
}

}  // namespace
}  // namespace sacc::plan_test
