// Device allocation with a per-device budget (so a 24 GiB card can be emulated on a larger one) and peak
// tracking.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

#include "core/status.h"

namespace sacc {

struct DeviceMemoryStats {
  uint64_t in_use = 0;  // bytes currently allocated through DeviceAllocator
  uint64_t peak = 0;    // high-water mark of in_use since the last reset_peak()
  uint64_t budget = 0;  // 0: no cap beyond the card's own memory
};

// Process-wide accounting per CUDA ordinal (up to 16 devices).
class DeviceAllocator {
 public:
  static Result<void*> allocate(int device, size_t bytes, const char* what);
  static void release(int device, void* pointer, size_t bytes);
  static void set_budget(int device, uint64_t bytes);
  static DeviceMemoryStats stats(int device);
  static void reset_peak(int device);
};

// Owning device buffer; move-only.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  static Result<DeviceBuffer> create(int device, size_t bytes, const char* what);
  DeviceBuffer(DeviceBuffer&& other) noexcept { *this = std::move(other); }
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() { reset(); }

  void reset();
  void* data() const { return data_; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(data_);
  }
  size_t size() const { return bytes_; }
  int device() const { return device_; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
  int device_ = 0;
};

}  // namespace sacc
