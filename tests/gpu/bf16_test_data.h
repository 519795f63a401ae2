// Host test data for the GPU tests: normally distributed bf16 values and their upload to device 0.
#pragma once

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "core/cuda/device_memory.h"
#include "core/dtype.h"

namespace sacc::test {

inline std::vector<uint16_t> random_bf16(size_t n, uint32_t seed, float spread) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.0f, spread);
  std::vector<uint16_t> v(n);
  for (auto& x : v) x = float_to_bf16(dist(gen));
  return v;
}

// A device copy of `host` (at least 256 bytes, so an empty vector still gets a buffer).
template <typename T>
DeviceBuffer upload(const std::vector<T>& host) {
  Result<DeviceBuffer> b =
      DeviceBuffer::create(0, std::max<size_t>(host.size() * sizeof(T), 256), "test data");
  EXPECT_TRUE(b.is_ok());
  EXPECT_EQ(cudaMemcpy(b->data(), host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
  return std::move(b).value();
}

}  // namespace sacc::test
