// Owning page-locked host buffer: the host side of copies that must not wait on the host (cudaMemcpyAsync
// from pageable memory is staged synchronously) and of copies inside a CUDA graph (a captured memcpy node
// may only name pinned host memory). Move-only.
#pragma once

#include <cstddef>
#include <utility>

#include "core/status.h"

namespace sacc {

class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  static Result<PinnedBuffer> create(size_t bytes, const char* what);
  PinnedBuffer(PinnedBuffer&& other) noexcept { *this = std::move(other); }
  PinnedBuffer& operator=(PinnedBuffer&& other) noexcept;
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  ~PinnedBuffer() { reset(); }

  // Frees the memory; no copy from or into it may still be in flight.
  void reset();
  void* data() const { return data_; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(data_);
  }
  size_t size() const { return bytes_; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace sacc
