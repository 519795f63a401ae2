// cuDNN SDPA (the dense baseline loaded at run time) against the CPU fp64 oracle. Skips where no GPU is
// visible and where cuDNN 9 cannot be loaded (set SACC_CUDNN_PATH; see src/attention/cuda/cudnn_sdpa.h).
#include <gtest/gtest.h>

#include "attention/cuda/cudnn_sdpa.h"
#include "baseline_checks.h"

namespace sacc::test {
namespace {

void skip_without_cudnn() {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  const Status available = cudnn_sdpa_available();
  if (!available.is_ok()) GTEST_SKIP() << available.to_string();
}

class CudnnSdpaTest : public testing::TestWithParam<BaselineCase> {};

TEST_P(CudnnSdpaTest, MatchesOracle) {
  skip_without_cudnn();
  if (IsSkipped()) return;
  check_against_oracle(GetParam(),
                       [](const AttentionParams& params) { return cudnn_sdpa_run(params, nullptr); });
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudnnSdpaTest, testing::ValuesIn(baseline_cases()), case_name);

TEST(CudnnSdpa, ReportsLoadedVersion) {
  skip_without_cudnn();
  if (IsSkipped()) return;
  EXPECT_EQ(cudnn_loaded_version() / 10000, 9);
  EXPECT_FALSE(cudnn_loaded_path().empty());
}

TEST(CudnnSdpa, WorksWithoutLse) {
  skip_without_cudnn();
  if (IsSkipped()) return;
  // Same shape with and without the LSE output builds two graphs; O must agree bit for bit.
  const int64_t L = 257, hq = 4, hkv = 2, d = 64;
  std::vector<uint16_t> host(L * (hq + 2 * hkv) * d);
  for (size_t e = 0; e < host.size(); ++e)
    host[e] = float_to_bf16(static_cast<float>((e * 37) % 101) / 50.0f - 1.0f);
  DeviceBytes qkv(host.size() * 2), o1(L * hq * d * 2), o2(L * hq * d * 2), lse(hq * L * 4);
  ASSERT_EQ(cudaMemcpy(qkv.data, host.data(), host.size() * 2, cudaMemcpyHostToDevice), cudaSuccess);
  AttentionParams params;
  params.shape = {L, static_cast<int>(hq), static_cast<int>(hkv), static_cast<int>(d)};
  auto* base = static_cast<uint16_t*>(qkv.data);
  params.q = base;
  params.k = base + L * hq * d;
  params.v = base + L * (hq + hkv) * d;
  params.o = o1.data;
  ASSERT_TRUE(cudnn_sdpa_run(params, nullptr).is_ok());
  params.o = o2.data;
  params.maybe_lse = static_cast<float*>(lse.data);
  ASSERT_TRUE(cudnn_sdpa_run(params, nullptr).is_ok());
  std::vector<uint16_t> a(L * hq * d), b(L * hq * d);
  ASSERT_EQ(cudaMemcpy(a.data(), o1.data, a.size() * 2, cudaMemcpyDeviceToHost), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(b.data(), o2.data, b.size() * 2, cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(a, b);
}

TEST(CudnnSdpa, RejectsBadShapeWithoutCrashing) {
  skip_without_cudnn();
  if (IsSkipped()) return;
  AttentionParams params;
  params.shape = {16, 6, 4, 64};  // 6 query heads cannot share 4 KV heads
  int dummy = 0;
  params.q = params.k = params.v = &dummy;
  params.o = &dummy;
  const Status status = cudnn_sdpa_run(params, nullptr);
  EXPECT_EQ(status.code(), StatusCode::INVALID_ARGUMENT) << status.to_string();
}

}  // namespace
}  // namespace sacc::test
