// The bf16 GEMM runner's algorithm cache: row counts of one power-of-two bucket share one cuBLASLt heuristic
// search, and every row count still gets the right product (against an fp64 reference).
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <random>
#include <vector>

#include "bf16_test_data.h"
#include "core/cuda/device_memory.h"
#include "core/device_info.h"
#include "core/dtype.h"
#include "runtime/cuda/cublaslt_gemm.h"

namespace sacc {
namespace {

using test::random_bf16;

class GemmBuckets : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
    cudaSetDevice(0);
    Result<cuda_rt::GemmRunner*> created = cuda_rt::GemmRunner::create(0);
    ASSERT_TRUE(created.is_ok()) << created.status().to_string();
    runner_.reset(*created);
  }

  // Y[rows, out] (+)= X[rows, in] W[out, in]^T on the GPU, checked element by element against fp64. The
  // inputs are bf16 and the products exact in fp32; fp32 accumulation over `in` terms adds at most in * 2^-24
  // of sum |x_k w_k|, and the bf16 output (and the bf16 residual it is added to) 2^-8 of the value each.
  void check(int64_t rows, int64_t in, int64_t out, bool accumulate) {
    SCOPED_TRACE(testing::Message() << rows << "x" << out << "x" << in << (accumulate ? " +=" : ""));
    const std::vector<uint16_t> x = random_bf16(rows * in, 3 + rows, 1.0f);
    const std::vector<uint16_t> w = random_bf16(out * in, 5 + out, 0.05f);
    const std::vector<uint16_t> y0 = random_bf16(rows * out, 7, 0.5f);
    Result<DeviceBuffer> dx = DeviceBuffer::create(0, x.size() * 2, "x"),
                         dw = DeviceBuffer::create(0, w.size() * 2, "w"),
                         dy = DeviceBuffer::create(0, y0.size() * 2, "y");
    ASSERT_TRUE(dx.is_ok() && dw.is_ok() && dy.is_ok());
    cudaMemcpy(dx->data(), x.data(), x.size() * 2, cudaMemcpyHostToDevice);
    cudaMemcpy(dw->data(), w.data(), w.size() * 2, cudaMemcpyHostToDevice);
    cudaMemcpy(dy->data(), y0.data(), y0.size() * 2, cudaMemcpyHostToDevice);
    cuda_rt::GemmArgs g;
    g.x = dx->as<uint16_t>();
    g.w = dw->as<uint16_t>();
    g.y = dy->data();
    g.rows = rows;
    g.in = in;
    g.out = out;
    g.accumulate = accumulate;
    const Status s = runner_->run(g, nullptr);
    ASSERT_TRUE(s.is_ok()) << s.to_string();
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    std::vector<uint16_t> y(y0.size());
    cudaMemcpy(y.data(), dy->data(), y.size() * 2, cudaMemcpyDeviceToHost);
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t o = 0; o < out; ++o) {
        double ref = accumulate ? bf16_to_float(y0[r * out + o]) : 0.0, magnitude = 0.0;
        for (int64_t k = 0; k < in; ++k) {
          const double term = double(bf16_to_float(x[r * in + k])) * bf16_to_float(w[o * in + k]);
          ref += term;
          magnitude += std::fabs(term);
        }
        const double bound = std::ldexp(magnitude, -24) * in + std::ldexp(std::fabs(ref) + magnitude, -7);
        ASSERT_LE(std::fabs(bf16_to_float(y[r * out + o]) - ref), bound) << "at " << r << "," << o;
      }
    }
  }

  std::unique_ptr<cuda_rt::GemmRunner> runner_;
};

TEST_F(GemmBuckets, RowCountsOfOneBucketShareOneSearchAndStayExact) {
  // 129..256 rows: one bucket; searched at its top whichever row count comes first.
  check(160, 256, 384, false);
  const int64_t after_first = runner_->algorithm_searches();
  EXPECT_EQ(after_first, 1);
  for (int64_t rows : {129, 200, 256, 255}) check(rows, 256, 384, false);
  EXPECT_EQ(runner_->algorithm_searches(), after_first);
  // Another bucket, another shape or the residual add: a search each.
  check(300, 256, 384, false);
  check(160, 256, 384, true);
  check(160, 512, 128, false);
  EXPECT_EQ(runner_->algorithm_searches(), after_first + 3);
  // Decode-sized row counts: buckets 1, 2, 4.
  for (int64_t rows : {1, 2, 3, 4}) check(rows, 256, 384, false);
  EXPECT_EQ(runner_->algorithm_searches(), after_first + 6);
}

}  // namespace
}  // namespace sacc
