// Decode attention (runtime/cuda/cuda_kernels.h) against an fp64 host reference: GQA groups below, at and
// above the CTA's eight query heads, key counts that end inside a warp's tile and inside a chunk, both head
// dims; and the launches it refuses.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "bf16_test_data.h"
#include "core/cuda/device_memory.h"
#include "core/device_info.h"
#include "core/dtype.h"
#include "runtime/cuda/cuda_kernels.h"

namespace sacc {
namespace {

using test::random_bf16;
using test::upload;

struct DecodeCase {
  int q_heads, kv_heads, head_dim;
  int64_t keys;
};

class DecodeAttention : public ::testing::TestWithParam<DecodeCase> {
 protected:
  void SetUp() override {
    if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
    cudaSetDevice(0);
  }
};

// Softmax(q k^T / sqrt(d)) v per query head in fp64 from the bf16 inputs. The kernel computes in fp32 and
// rounds the output to bf16: at most 2^-8 of the value, plus fp32 accumulation and exp2f error, far below
// 1e-3 of the largest |v| for these key counts. A wrong head mapping, chunk bound or rescale moves outputs by
// a sizeable fraction of |v|.
TEST_P(DecodeAttention, MatchesTheFp64Reference) {
  const DecodeCase c = GetParam();
  const int d = c.head_dim, group = c.q_heads / c.kv_heads;
  const std::vector<uint16_t> q = random_bf16(static_cast<size_t>(c.q_heads) * d, 1, 2.0f);
  const std::vector<uint16_t> k = random_bf16(static_cast<size_t>(c.keys) * c.kv_heads * d, 2, 1.0f);
  const std::vector<uint16_t> v = random_bf16(static_cast<size_t>(c.keys) * c.kv_heads * d, 3, 1.0f);
  DeviceBuffer dq = upload(q), dk = upload(k), dv = upload(v);
  const size_t scratch_bytes = cuda_rt::decode_attention_scratch_bytes(c.q_heads, d, c.keys);
  Result<DeviceBuffer> scratch = DeviceBuffer::create(0, scratch_bytes, "decode scratch");
  Result<DeviceBuffer> out = DeviceBuffer::create(0, static_cast<size_t>(c.q_heads) * d * 2, "decode out");
  ASSERT_TRUE(scratch.is_ok() && out.is_ok());
  ASSERT_EQ(
      cuda_rt::decode_attention(dq.as<uint16_t>(), dk.as<uint16_t>(), dv.as<uint16_t>(), out->as<uint16_t>(),
                                c.q_heads, c.kv_heads, d, c.keys, scratch->data(), scratch_bytes, nullptr),
      cudaSuccess);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<uint16_t> got(static_cast<size_t>(c.q_heads) * d);
  ASSERT_EQ(cudaMemcpy(got.data(), out->data(), got.size() * 2, cudaMemcpyDeviceToHost), cudaSuccess);

  double v_max = 0.0;
  for (uint16_t x : v) v_max = std::max(v_max, std::fabs(static_cast<double>(bf16_to_float(x))));
  std::vector<double> score(static_cast<size_t>(c.keys));
  for (int h = 0; h < c.q_heads; ++h) {
    const int kvh = h / group;
    double top = -INFINITY;
    for (int64_t j = 0; j < c.keys; ++j) {
      double s = 0.0;
      for (int e = 0; e < d; ++e)
        s += double(bf16_to_float(q[h * d + e])) * bf16_to_float(k[(j * c.kv_heads + kvh) * d + e]);
      score[j] = s / std::sqrt(static_cast<double>(d));
      top = std::max(top, score[j]);
    }
    double total = 0.0;
    for (double& s : score) total += (s = std::exp(s - top));
    for (int e = 0; e < d; ++e) {
      double want = 0.0;
      for (int64_t j = 0; j < c.keys; ++j)
        want += score[j] * bf16_to_float(v[(j * c.kv_heads + kvh) * d + e]);
      want /= total;
      ASSERT_NEAR(bf16_to_float(got[h * d + e]), want, std::ldexp(std::fabs(want), -8) + 1e-3 * v_max)
          << "head " << h << " column " << e;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, DecodeAttention,
                         ::testing::Values(DecodeCase{14, 2, 64, 1}, DecodeCase{14, 2, 64, 31},
                                           DecodeCase{14, 2, 64, 2049}, DecodeCase{9, 3, 64, 777},
                                           DecodeCase{8, 8, 64, 300}, DecodeCase{32, 8, 128, 5000},
                                           DecodeCase{12, 1, 128, 257}, DecodeCase{16, 1, 64, 1000}),
                         [](const ::testing::TestParamInfo<DecodeCase>& info) {
                           const DecodeCase& c = info.param;
                           return "Hq" + std::to_string(c.q_heads) + "_Hkv" + std::to_string(c.kv_heads) +
                                  "_d" + std::to_string(c.head_dim) + "_keys" + std::to_string(c.keys);
                         });

TEST(DecodeAttentionErrors, RefusesHeadDimsItHasNoKernelForAndShortScratch) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  const size_t need = cuda_rt::decode_attention_scratch_bytes(4, 64, 1000);
  const std::vector<uint16_t> zeros(1000 * 2 * 64, 0);
  DeviceBuffer kv = upload(zeros), out = upload(zeros);
  Result<DeviceBuffer> scratch = DeviceBuffer::create(0, need, "decode scratch");
  ASSERT_TRUE(scratch.is_ok());
  const uint16_t* p = kv.as<uint16_t>();
  EXPECT_EQ(cuda_rt::decode_attention(p, p, p, out.as<uint16_t>(), 4, 2, 64, 1000, scratch->data(), need - 1,
                                      nullptr),
            cudaErrorInvalidValue);
  EXPECT_EQ(
      cuda_rt::decode_attention(p, p, p, out.as<uint16_t>(), 4, 2, 96, 10, scratch->data(), need, nullptr),
      cudaErrorInvalidValue);
  EXPECT_EQ(
      cuda_rt::decode_attention(p, p, p, out.as<uint16_t>(), 4, 2, 64, 1000, scratch->data(), need, nullptr),
      cudaSuccess);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
}

}  // namespace
}  // namespace sacc
