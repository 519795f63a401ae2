// The CUDA backend's elementwise kernels (runtime/cuda/cuda_kernels.h) against host references: SwiGLU's
// vector and scalar forms.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/cuda/device_memory.h"
#include "core/device_info.h"
#include "core/dtype.h"
#include "runtime/cuda/cuda_kernels.h"

namespace sacc {
namespace {

class CudaKernels : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  }
};

std::vector<uint16_t> random_gate_up(int64_t rows, int64_t ffn, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.0f, 3.0f);
  std::vector<uint16_t> v(static_cast<size_t>(rows * 2 * ffn));
  for (auto& x : v) x = float_to_bf16(dist(gen));
  return v;
}

// gate_up [rows, 2F] placed `byte_offset` bytes into a device buffer (an offset of 2 takes the scalar form),
// run through cuda_rt::swiglu and brought back.
std::vector<uint16_t> run_swiglu(const std::vector<uint16_t>& gate_up, int64_t rows, int64_t ffn,
                                 size_t byte_offset) {
  const size_t bytes = gate_up.size() * sizeof(uint16_t);
  Result<DeviceBuffer> buffer = DeviceBuffer::create(0, bytes + 16, "swiglu test");
  EXPECT_TRUE(buffer.is_ok());
  auto* base = static_cast<char*>(buffer->data()) + byte_offset;
  EXPECT_EQ(cudaMemcpy(base, gate_up.data(), bytes, cudaMemcpyHostToDevice), cudaSuccess);
  EXPECT_EQ(cuda_rt::swiglu(reinterpret_cast<uint16_t*>(base), rows, ffn, nullptr), cudaSuccess);
  std::vector<uint16_t> out(gate_up.size());
  EXPECT_EQ(cudaMemcpy(out.data(), base, bytes, cudaMemcpyDeviceToHost), cudaSuccess);
  return out;
}

TEST_F(CudaKernels, SwigluMatchesTheHostAndBothFormsAgree) {
  for (const int64_t ffn : {8, 64, 4864}) {
    const int64_t rows = 37;
    const std::vector<uint16_t> in = random_gate_up(rows, ffn, static_cast<uint32_t>(ffn));
    const std::vector<uint16_t> vec = run_swiglu(in, rows, ffn, 0);
    const std::vector<uint16_t> scalar = run_swiglu(in, rows, ffn, 2);
    ASSERT_EQ(std::memcmp(vec.data(), scalar.data(), vec.size() * sizeof(uint16_t)), 0) << "F " << ffn;
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t j = 0; j < ffn; ++j) {
        const size_t g = static_cast<size_t>(r * 2 * ffn + j);
        const double gate = bf16_to_float(in[g]), up = bf16_to_float(in[g + ffn]);
        const double want = gate / (1.0 + std::exp(-gate)) * up;
        // One bf16 rounding (2^-8 relative) plus the fast exponential's few ulps of float.
        ASSERT_NEAR(bf16_to_float(vec[g]), want, 1e-2 * std::abs(want) + 1e-6) << "row " << r << " col " << j;
        ASSERT_EQ(vec[g + ffn], in[g + ffn]) << "the up half is left as it was";
      }
    }
  }
}

TEST_F(CudaKernels, SwigluTakesWidthsThatAreNotAMultipleOfEight) {
  const int64_t rows = 5, ffn = 13;
  const std::vector<uint16_t> in = random_gate_up(rows, ffn, 7);
  const std::vector<uint16_t> out = run_swiglu(in, rows, ffn, 0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < ffn; ++j) {
      const size_t g = static_cast<size_t>(r * 2 * ffn + j);
      const double gate = bf16_to_float(in[g]), up = bf16_to_float(in[g + ffn]);
      const double want = gate / (1.0 + std::exp(-gate)) * up;
      ASSERT_NEAR(bf16_to_float(out[g]), want, 1e-2 * std::abs(want) + 1e-6);
    }
}

}  // namespace
}  // namespace sacc
