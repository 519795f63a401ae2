#include "core/cuda/device_memory.h"

#include <array>
#include <mutex>

#include "core/cuda/cuda_check.h"
#include "core/out_of_memory.h"
#include "core/tensor.h"

namespace sacc {
namespace {

constexpr int kMaxDevices = 16;

struct Accounting {
  std::mutex mutex;
  std::array<DeviceMemoryStats, kMaxDevices> stats{};
};

Accounting& accounting() {
  static Accounting instance;
  return instance;
}

}  // namespace

Result<void*> DeviceAllocator::allocate(int device, size_t bytes, const char* what) {
  if (device < 0 || device >= kMaxDevices) {
    return make_error(StatusCode::INVALID_ARGUMENT, "CUDA device {} out of range", device);
  }
  Accounting& acc = accounting();
  {
    std::lock_guard lock(acc.mutex);
    DeviceMemoryStats& s = acc.stats[device];
    if (s.budget && s.in_use + bytes > s.budget) {
      return allocation_failed(what, bytes, fmt::format("cuda:{}", device), s.budget - s.in_use,
                               fmt::format("the device is capped at {} (raise --budget / --gpu-mem, or "
                                           "shorten the prompt)",
                                           format_bytes(s.budget)));
    }
  }
  int previous = 0;
  SACC_CUDA_TRY(cudaGetDevice(&previous));
  SACC_CUDA_TRY(cudaSetDevice(device));
  void* pointer = nullptr;
  cudaError_t error = bytes ? cudaMalloc(&pointer, bytes) : cudaSuccess;
  cudaSetDevice(previous);
  if (error != cudaSuccess) {
    cudaGetLastError();  // clear it, so the next CUDA call does not report it again
    if (error != cudaErrorMemoryAllocation) return cuda_status(error, what);
    size_t free_bytes = 0, total_bytes = 0;
    cudaSetDevice(device);
    cudaMemGetInfo(&free_bytes, &total_bytes);
    cudaSetDevice(previous);
    return allocation_failed(what, bytes, fmt::format("cuda:{}", device), free_bytes,
                             cudaGetErrorString(error));
  }
  std::lock_guard lock(acc.mutex);
  DeviceMemoryStats& s = acc.stats[device];
  s.in_use += bytes;
  if (s.in_use > s.peak) s.peak = s.in_use;
  return pointer;
}

void DeviceAllocator::release(int device, void* pointer, size_t bytes) {
  if (!pointer) return;
  int previous = 0;
  cudaGetDevice(&previous);
  cudaSetDevice(device);
  cudaFree(pointer);
  cudaSetDevice(previous);
  Accounting& acc = accounting();
  std::lock_guard lock(acc.mutex);
  acc.stats[device].in_use -= bytes;
}

void DeviceAllocator::set_budget(int device, uint64_t bytes) {
  Accounting& acc = accounting();
  std::lock_guard lock(acc.mutex);
  acc.stats[device].budget = bytes;
}

DeviceMemoryStats DeviceAllocator::stats(int device) {
  Accounting& acc = accounting();
  std::lock_guard lock(acc.mutex);
  return acc.stats[device];
}

void DeviceAllocator::reset_peak(int device) {
  Accounting& acc = accounting();
  std::lock_guard lock(acc.mutex);
  acc.stats[device].peak = acc.stats[device].in_use;
}

Result<DeviceBuffer> DeviceBuffer::create(int device, size_t bytes, const char* what) {
  DeviceBuffer buffer;
  SACC_ASSIGN_OR_RETURN(buffer.data_, DeviceAllocator::allocate(device, bytes, what));
  buffer.bytes_ = bytes;
  buffer.device_ = device;
  return buffer;
}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  if (this != &other) {
    reset();
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
    device_ = other.device_;
  }
  return *this;
}

void DeviceBuffer::reset() {
  if (data_) DeviceAllocator::release(device_, data_, bytes_);
  data_ = nullptr;
  bytes_ = 0;
}

}  // namespace sacc
