// GPU plan() with a dense tail "...+tail:T" (attention/pattern.h): every slot in the tail lists every causal
// key block and no column, every other slot exactly what the GPU plans for the pattern without the tail
// (whose agreement with the oracle test_plan_index.cpp and test_plan_choice.cpp check); the same when
// captured into a CUDA graph.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/device_info.h"
#include "plan_test_util.h"
#include "reference/synthetic.h"
#include "test_plan_support.h"

namespace sacc::plan_test {
namespace {

struct TailCase {
  AttentionShape shape{2000, 4, 2, 128};
  std::vector<std::string> patterns;  // one per index head
  bool shared = false;
};

LayerPatterns patterns_of(const TailCase& c, bool with_tail) {
  LayerPatterns patterns;
  patterns.shared_per_kv_group = c.shared;
  for (const std::string& text : c.patterns) {
    Result<PatternSpec> spec = parse_pattern(text);
    EXPECT_TRUE(spec.is_ok()) << text;
    PatternSpec out = spec.is_ok() ? *spec : PatternSpec{};
    if (!with_tail) out.tail = 0;
    patterns.heads.push_back(out);
  }
  return patterns;
}

void check_tail(const TailCase& c) {
  ref::SyntheticConfig config;
  config.shape = c.shape;
  Result<ref::SyntheticInput> input = ref::make_synthetic_input(config);
  ASSERT_TRUE(input.is_ok()) << input.status().to_string();
  IndexGeometry geometry = test::index_geometry_of(c.shape, c.shared);
  GpuPlanResult tailed, captured, plain;
  run_gpu_plan(input->qkv, patterns_of(c, true), geometry, /*capture=*/false, &tailed);
  run_gpu_plan(input->qkv, patterns_of(c, true), geometry, /*capture=*/true, &captured);
  run_gpu_plan(input->qkv, patterns_of(c, false), geometry, false, &plain);
  if (::testing::Test::HasFatalFailure()) return;
  const Status valid = tailed.index.validate();
  EXPECT_TRUE(valid.is_ok()) << valid.to_string();
  EXPECT_EQ(captured.index.block_ids, tailed.index.block_ids);
  EXPECT_EQ(captured.index.column_ids, tailed.index.column_ids);
  const LayerPatterns specs = patterns_of(c, true);
  int64_t grew = 0;
  for (int64_t slot = 0; slot < geometry.num_heads * geometry.num_q_blocks(); ++slot) {
    const int64_t qb = slot % geometry.num_q_blocks();
    const int64_t last_row = std::min(geometry.seq_len, (qb + 1) * geometry.block_q) - 1;
    const int64_t tail = specs.heads[slot / geometry.num_q_blocks()].tail;
    if (in_dense_tail(last_row, geometry.seq_len, tail)) {
      std::vector<int32_t> all(static_cast<size_t>(geometry.last_causal_k_block(qb) + 1));
      for (size_t kb = 0; kb < all.size(); ++kb) all[kb] = static_cast<int32_t>(kb);
      EXPECT_EQ(slot_blocks(tailed.index, slot), all) << "slot " << slot;
      EXPECT_TRUE(slot_columns(tailed.index, slot).empty()) << "slot " << slot;
      grew += static_cast<int64_t>(all.size() - slot_blocks(plain.index, slot).size());
    } else {
      EXPECT_EQ(slot_blocks(tailed.index, slot), slot_blocks(plain.index, slot)) << "slot " << slot;
      EXPECT_EQ(slot_columns(tailed.index, slot), slot_columns(plain.index, slot)) << "slot " << slot;
    }
  }
  EXPECT_GT(grew, 0) << "the tail added no block: the test does not exercise it";
}

TEST(PlanTail, EveryKindOfPattern) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  TailCase c;
  c.patterns = {"block-cluster:3@0.9+tail:200", "interval-slash:40,60@0.9+block-cluster:4@0.9+tail:81",
                "interval-slash:30,50|block-cluster:3+tail:300", "triangular:10,100+tail:1"};
  check_tail(c);
}

TEST(PlanTail, SharedPerGroupMixedTails) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  TailCase c;
  c.shape = {1100, 6, 2, 64};
  c.shared = true;
  c.patterns = {"interval-slash:20,40@0.95+block-cluster:3@0.9+tail:129", "block-cluster:2+tail:5000"};
  check_tail(c);
}

}  // namespace
}  // namespace sacc::plan_test
