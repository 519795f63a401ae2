#include "core/device_info.h"

#ifdef SACC_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace sacc {

bool built_with_cuda() {
#ifdef SACC_WITH_CUDA
  return true;
#else
  return false;
#endif
}

int cuda_device_count() {
#ifdef SACC_WITH_CUDA
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error so later calls start clean
    return 0;
  }
  return count;
#else
  return 0;
#endif
}

Result<GpuInfo> query_gpu(int ordinal) {
#ifdef SACC_WITH_CUDA
  if (ordinal < 0 || ordinal >= cuda_device_count()) {
    return make_error(StatusCode::INVALID_ARGUMENT, "no CUDA device {} (this machine has {})", ordinal,
                      cuda_device_count());
  }
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, ordinal) != cudaSuccess) {
    return make_error(StatusCode::CUDA_ERROR, "cudaGetDeviceProperties({}) failed", ordinal);
  }
  GpuInfo info;
  info.ordinal = ordinal;
  info.name = prop.name;
  info.sm_major = prop.major;
  info.sm_minor = prop.minor;
  info.multiprocessors = prop.multiProcessorCount;
  info.total_memory = prop.totalGlobalMem;
  int previous = 0;
  cudaGetDevice(&previous);
  cudaSetDevice(ordinal);
  size_t free_bytes = 0, total_bytes = 0;
  if (cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess) info.free_memory = free_bytes;
  cudaSetDevice(previous);
  cudaDriverGetVersion(&info.driver_version);
  return info;
#else
  return make_error(StatusCode::UNSUPPORTED,
                    "this build has no CUDA support (rebuild with the CUDA toolkit installed)");
#endif
}

}  // namespace sacc
