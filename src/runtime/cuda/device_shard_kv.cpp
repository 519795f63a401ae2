// DeviceShard's KV copies for prefix reuse (Backend::export_kv / import_kv), apart from the layer code. The
// cache is [2 * layers, capacity, kv] (k_cache / v_cache) and a snapshot [2 * layers, n, kv]: one strided
// copy of 2 * layers rows, device to device on the shard's stream.
#include <cuda_runtime_api.h>

#include <algorithm>

#include "core/cuda/cuda_check.h"
#include "runtime/cuda/device_shard.h"

namespace sacc::cuda_rt {

uint64_t DeviceShard::kv_bytes(int64_t n) const {
  return static_cast<uint64_t>(2 * config_.num_layers) * n * config_.kv_dim() * sizeof(uint16_t);
}

Result<DeviceBuffer> DeviceShard::copy_kv_out(int64_t n) const {
  if (n < 0 || n > capacity_)
    return make_error(StatusCode::INVALID_ARGUMENT, "copy_kv_out({}): cuda:{} caches {} positions", n,
                      spec_.device, capacity_);
  SACC_CUDA_TRY(cudaSetDevice(spec_.device));
  SACC_ASSIGN_OR_RETURN(
      DeviceBuffer snapshot,
      DeviceBuffer::create(spec_.device, std::max<uint64_t>(kv_bytes(n), 1), "prefix cache"));
  const size_t row = static_cast<size_t>(config_.kv_dim()) * sizeof(uint16_t);
  if (n > 0 && config_.num_layers > 0)
    SACC_CUDA_TRY(cudaMemcpy2DAsync(snapshot.data(), n * row, kv_.data(), capacity_ * row, n * row,
                                    2 * config_.num_layers, cudaMemcpyDeviceToDevice, stream_));
  return snapshot;
}

Status DeviceShard::copy_kv_in(const DeviceBuffer& snapshot, int64_t tokens, int64_t n) {
  if (n < 0 || n > tokens || n > capacity_ || snapshot.size() < kv_bytes(tokens))
    return make_error(StatusCode::INVALID_ARGUMENT,
                      "copy_kv_in: {} of a {}-position snapshot into cuda:{}'s cache of {} positions", n,
                      tokens, spec_.device, capacity_);
  SACC_CUDA_TRY(cudaSetDevice(spec_.device));
  const size_t row = static_cast<size_t>(config_.kv_dim()) * sizeof(uint16_t);
  if (n > 0 && config_.num_layers > 0)
    SACC_CUDA_TRY(cudaMemcpy2DAsync(kv_.data(), capacity_ * row, snapshot.data(), tokens * row, n * row,
                                    2 * config_.num_layers, cudaMemcpyDeviceToDevice, stream_));
  return Status::ok();
}

}  // namespace sacc::cuda_rt
