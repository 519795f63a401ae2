#include "core/cuda/pinned_memory.h"

#include <cuda_runtime_api.h>

#include "core/cuda/cuda_check.h"

namespace sacc {

Result<PinnedBuffer> PinnedBuffer::create(size_t bytes, const char* what) {
  PinnedBuffer buffer;
  if (bytes == 0) return buffer;
  if (const cudaError_t error = cudaMallocHost(&buffer.data_, bytes); error != cudaSuccess) {
    buffer.data_ = nullptr;
    cudaGetLastError();
    return make_error(StatusCode::OUT_OF_MEMORY, "{}: {} bytes of pinned host memory: {}", what, bytes,
                      cudaGetErrorString(error));
  }
  buffer.bytes_ = bytes;
  return buffer;
}

PinnedBuffer& PinnedBuffer::operator=(PinnedBuffer&& other) noexcept {
  if (this != &other) {
    reset();
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

void PinnedBuffer::reset() {
  if (data_) cudaFreeHost(data_);
  data_ = nullptr;
  bytes_ = 0;
}

}  // namespace sacc
