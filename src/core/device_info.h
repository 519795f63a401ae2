// What GPUs this process can use. Compiles without CUDA: then no device is ever reported.
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"

namespace sacc {

struct GpuInfo {
  int ordinal = 0;
  std::string name;
  int sm_major = 0, sm_minor = 0;
  int multiprocessors = 0;
  uint64_t total_memory = 0;
  uint64_t free_memory = 0;
  int driver_version = 0;
};

// Number of usable CUDA devices; 0 when built without CUDA or when no driver/device is present.
int cuda_device_count();
bool built_with_cuda();
Result<GpuInfo> query_gpu(int ordinal);

}  // namespace sacc
