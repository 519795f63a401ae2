// The CUDA backend's elementwise kernels (runtime/cuda/cuda_kernels.h) against host references: SwiGLU and
// RMSNorm in their vector and scalar forms, bias + RoPE over row counts that do not fill the last block.
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

std::vector<uint16_t> random_bf16(int64_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.0f, 3.0f);
  std::vector<uint16_t> v(static_cast<size_t>(n));
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
    const std::vector<uint16_t> in = random_bf16(rows * 2 * ffn, static_cast<uint32_t>(ffn));
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
  const std::vector<uint16_t> in = random_bf16(rows * 2 * ffn, 7);
  const std::vector<uint16_t> out = run_swiglu(in, rows, ffn, 0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < ffn; ++j) {
      const size_t g = static_cast<size_t>(r * 2 * ffn + j);
      const double gate = bf16_to_float(in[g]), up = bf16_to_float(in[g + ffn]);
      const double want = gate / (1.0 + std::exp(-gate)) * up;
      ASSERT_NEAR(bf16_to_float(out[g]), want, 1e-2 * std::abs(want) + 1e-6);
    }
}

template <typename T>
T* at_offset(const DeviceBuffer& buffer, size_t byte_offset) {
  return reinterpret_cast<T*>(static_cast<char*>(buffer.data()) + byte_offset);
}

// x [rows, width] (row stride `stride`) normalised on the device, its input and output `byte_offset` bytes
// into their buffers (2: the scalar form).
std::vector<uint16_t> run_rms_norm(const std::vector<uint16_t>& x, const std::vector<uint16_t>& weight,
                                   int64_t rows, int64_t width, int64_t stride, size_t byte_offset) {
  Result<DeviceBuffer> in = DeviceBuffer::create(0, x.size() * 2 + 16, "rms test x");
  Result<DeviceBuffer> w = DeviceBuffer::create(0, weight.size() * 2 + 16, "rms test weight");
  Result<DeviceBuffer> out =
      DeviceBuffer::create(0, static_cast<size_t>(rows * width) * 2 + 16, "rms test out");
  EXPECT_TRUE(in.is_ok() && w.is_ok() && out.is_ok());
  cudaMemcpy(at_offset<char>(*in, byte_offset), x.data(), x.size() * 2, cudaMemcpyHostToDevice);
  cudaMemcpy(at_offset<char>(*w, byte_offset), weight.data(), weight.size() * 2, cudaMemcpyHostToDevice);
  EXPECT_EQ(
      cuda_rt::rms_norm(at_offset<uint16_t>(*in, byte_offset), stride, at_offset<uint16_t>(*w, byte_offset),
                        at_offset<uint16_t>(*out, byte_offset), rows, width, 1e-6f, nullptr),
      cudaSuccess);
  std::vector<uint16_t> host(static_cast<size_t>(rows * width));
  cudaMemcpy(host.data(), at_offset<char>(*out, byte_offset), host.size() * 2, cudaMemcpyDeviceToHost);
  return host;
}

TEST_F(CudaKernels, RmsNormMatchesTheHostInBothForms) {
  const int64_t rows = 19, width = 896, stride = 1152;  // a strided view, as the layer's residual rows are
  const std::vector<uint16_t> x = random_bf16(rows * stride, 3);
  const std::vector<uint16_t> weight = random_bf16(width, 4);
  for (const size_t offset : {size_t{0}, size_t{2}}) {
    const std::vector<uint16_t> out = run_rms_norm(x, weight, rows, width, stride, offset);
    for (int64_t r = 0; r < rows; ++r) {
      double ss = 0.0;
      for (int64_t c = 0; c < width; ++c) ss += std::pow(bf16_to_float(x[r * stride + c]), 2);
      const double inv = 1.0 / std::sqrt(ss / width + 1e-6);
      for (int64_t c = 0; c < width; ++c) {
        const double want = bf16_to_float(x[r * stride + c]) * inv * bf16_to_float(weight[c]);
        ASSERT_NEAR(bf16_to_float(out[r * width + c]), want, 1e-2 * std::abs(want) + 1e-5)
            << "offset " << offset << " row " << r << " col " << c;
      }
    }
  }
}

TEST_F(CudaKernels, BiasRopeRotatesEveryRowOfAPartialLastBlock) {
  const int heads = 3, head_dim = 64, half = head_dim / 2;
  const int64_t rows = 13, first_position = 1000, width = heads * head_dim;  // 13: not a multiple of 8 rows
  const std::vector<uint16_t> x = random_bf16(rows * width, 5);
  const std::vector<uint16_t> bias = random_bf16(width, 6);
  std::vector<double> inv_freq(half);
  for (int i = 0; i < half; ++i) inv_freq[i] = std::pow(10000.0, -2.0 * i / head_dim);
  Result<DeviceBuffer> dx = DeviceBuffer::create(0, x.size() * 2, "rope test x");
  Result<DeviceBuffer> db = DeviceBuffer::create(0, bias.size() * 2, "rope test bias");
  Result<DeviceBuffer> df = DeviceBuffer::create(0, inv_freq.size() * 8, "rope test freq");
  ASSERT_TRUE(dx.is_ok() && db.is_ok() && df.is_ok());
  cudaMemcpy(dx->data(), x.data(), x.size() * 2, cudaMemcpyHostToDevice);
  cudaMemcpy(db->data(), bias.data(), bias.size() * 2, cudaMemcpyHostToDevice);
  cudaMemcpy(df->data(), inv_freq.data(), inv_freq.size() * 8, cudaMemcpyHostToDevice);
  ASSERT_EQ(cuda_rt::bias_rope(static_cast<uint16_t*>(dx->data()), width, rows, heads, head_dim,
                               static_cast<const uint16_t*>(db->data()),
                               static_cast<const double*>(df->data()), first_position, nullptr),
            cudaSuccess);
  std::vector<uint16_t> out(x.size());
  cudaMemcpy(out.data(), dx->data(), out.size() * 2, cudaMemcpyDeviceToHost);
  for (int64_t r = 0; r < rows; ++r)
    for (int h = 0; h < heads; ++h)
      for (int i = 0; i < half; ++i) {
        const int64_t lo = r * width + h * head_dim + i, hi = lo + half;
        // The kernel adds the bias in float and rounds nothing before the rotation.
        const double a = bf16_to_float(x[lo]) + bf16_to_float(bias[lo - r * width]);
        const double b = bf16_to_float(x[hi]) + bf16_to_float(bias[hi - r * width]);
        const double angle = static_cast<double>(first_position + r) * inv_freq[i];
        const double want_lo = a * std::cos(angle) - b * std::sin(angle);
        const double want_hi = b * std::cos(angle) + a * std::sin(angle);
        ASSERT_NEAR(bf16_to_float(out[lo]), want_lo, 1e-2 * std::abs(want_lo) + 1e-3) << "row " << r;
        ASSERT_NEAR(bf16_to_float(out[hi]), want_hi, 1e-2 * std::abs(want_hi) + 1e-3) << "row " << r;
      }
}

}  // namespace
}  // namespace sacc
