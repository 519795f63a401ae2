// Eager attention (score matrix materialised through cuBLAS) against the CPU fp64 oracle, and its
// out-of-memory path. Skips where no GPU is visible.
#include <gtest/gtest.h>

#include "attention/cuda/eager_attention.h"
#include "baseline_checks.h"
#include "core/cuda/device_memory.h"

namespace sacc::test {
namespace {

class EagerAttentionTest : public testing::TestWithParam<BaselineCase> {};

TEST_P(EagerAttentionTest, MatchesOracle) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  check_against_oracle(GetParam(), [](const AttentionParams& params) -> Status {
    Result<DeviceBuffer> workspace = eager_attention_allocate_workspace(params.shape, 0);
    if (!workspace.is_ok()) return workspace.status();
    SACC_RETURN_IF_ERROR(eager_attention_run(params, workspace->data(), workspace->size(), nullptr));
    // The workspace is freed on return; finish the work that reads it first.
    return cudaDeviceSynchronize() == cudaSuccess ? Status::ok()
                                                  : Status(StatusCode::CUDA_ERROR, "eager attention failed");
  });
}

INSTANTIATE_TEST_SUITE_P(Shapes, EagerAttentionTest, testing::ValuesIn(baseline_cases()), case_name);

TEST(EagerAttention, WorkspaceIsTheFp32ScoreMatrix) {
  EXPECT_EQ(eager_attention_workspace_bytes({16384, 32, 8, 128}), 32ull * 16384 * 16384 * 4);
  EXPECT_EQ(eager_attention_workspace_bytes({1, 1, 1, 64}), 4u);
}

TEST(EagerAttention, TooLongForTheDeviceIsOutOfMemory) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  // 32 heads x 1M x 1M fp32 = 128 TiB: no GPU has that.
  Result<DeviceBuffer> workspace = eager_attention_allocate_workspace({1 << 20, 32, 8, 128}, 0);
  ASSERT_FALSE(workspace.is_ok());
  EXPECT_EQ(workspace.status().code(), StatusCode::OUT_OF_MEMORY);
  const std::string& message = workspace.status().message();
  EXPECT_NE(message.find("eager attention at L=1048576 needs 128.00 TiB for the score matrix"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("free on cuda:0"), std::string::npos) << message;
}

TEST(EagerAttention, OverTheAllocatorBudgetIsOutOfMemory) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  DeviceAllocator::set_budget(0, 1 << 20);
  Result<DeviceBuffer> workspace = eager_attention_allocate_workspace({1023, 8, 2, 64}, 0);
  DeviceAllocator::set_budget(0, 0);
  ASSERT_FALSE(workspace.is_ok());
  EXPECT_EQ(workspace.status().code(), StatusCode::OUT_OF_MEMORY);
  EXPECT_NE(workspace.status().message().find("budget"), std::string::npos) << workspace.status().message();
}

TEST(EagerAttention, RejectsAShortWorkspace) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  AttentionParams params;
  params.shape = {64, 2, 2, 64};
  int dummy = 0;
  params.q = params.k = params.v = &dummy;
  params.o = &dummy;
  const Status status = eager_attention_run(params, &dummy, 64, nullptr);
  EXPECT_EQ(status.code(), StatusCode::INVALID_ARGUMENT) << status.to_string();
}

}  // namespace
}  // namespace sacc::test
