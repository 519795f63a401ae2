// plan() never synchronises with the host: it can be captured into a CUDA graph (global capture mode turns
// any host synchronisation or synchronous copy into an error), and the replayed graph builds the same index
// as an eager call.
#include <gtest/gtest.h>

#include "core/device_info.h"
#include "reference/synthetic.h"
#include "test_plan_support.h"

namespace sacc::plan_test {
namespace {

TEST(PlanGraph, CapturedPlanMatchesEagerPlan) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  ref::SyntheticConfig config;
  config.shape = {2500, 8, 2, 128};
  config.seed = 11;
  Result<ref::SyntheticInput> input = ref::make_synthetic_input(config);
  ASSERT_TRUE(input.is_ok());
  IndexGeometry geometry{config.shape.seq_len, 8, 128, 64, false};
  LayerPatterns patterns;
  for (const char* text :
       {"dense", "triangular:64,512", "interval-slash:100,300", "interval-slash:500,200@0.9",
        "block-cluster:8", "block-cluster:16@0.9", "interval-slash:30,800", "triangular:0,128"}) {
    Result<PatternSpec> spec = parse_pattern(text);
    ASSERT_TRUE(spec.is_ok());
    patterns.heads.push_back(*spec);
  }
  GpuPlanResult eager, captured;
  run_gpu_plan(input->qkv, patterns, geometry, /*capture=*/false, &eager);
  if (HasFatalFailure()) return;
  run_gpu_plan(input->qkv, patterns, geometry, /*capture=*/true, &captured);
  if (HasFatalFailure()) return;
  ASSERT_TRUE(captured.index.validate().is_ok());
  EXPECT_EQ(captured.index.block_offsets, eager.index.block_offsets);
  EXPECT_EQ(captured.index.block_ids, eager.index.block_ids);
  EXPECT_EQ(captured.index.column_offsets, eager.index.column_offsets);
  EXPECT_EQ(captured.index.column_ids, eager.index.column_ids);
}

}  // namespace
}  // namespace sacc::plan_test
