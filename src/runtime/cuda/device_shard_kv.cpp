// DeviceShard's KV copies for prefix reuse (Backend::export_kv / import_kv), apart from the layer code. A
// slot's cache is [2 * layers, capacity, kv] (k_cache / v_cache) and a snapshot [2 * layers, n, kv]: one
// strided copy of 2 * layers rows, device to device on the shard's stream.
#include <cuda_runtime_api.h>

#include <algorithm>

#include "core/cuda/cuda_check.h"
#include "runtime/cuda/device_shard.h"

namespace sacc::cuda_rt {

uint64_t DeviceShard::kv_bytes(int64_t n) const {
  return static_cast<uint64_t>(2 * config_.num_layers) * n * config_.kv_dim() * sizeof(uint16_t);
}

Result<DeviceBuffer> DeviceShard::copy_kv_out(int slot, int64_t n) const {
  if (slot < 0 || slot >= static_cast<int>(slots_.size()))
    return make_error(StatusCode::INVALID_ARGUMENT, "copy_kv_out: sequence slot {} outside [0, {})", slot,
                      slots_.size());
  const SlotKv& s = slots_[static_cast<size_t>(slot)];
  if (n < 0 || n > s.capacity)
    return make_error(StatusCode::INVALID_ARGUMENT, "copy_kv_out({}): cuda:{} caches {} positions", n,
                      spec_.device, s.capacity);
  SACC_CUDA_TRY(cudaSetDevice(spec_.device));
  SACC_ASSIGN_OR_RETURN(
      DeviceBuffer snapshot,
      DeviceBuffer::create(spec_.device, std::max<uint64_t>(kv_bytes(n), 1), "prefix cache"));
  const size_t row = static_cast<size_t>(config_.kv_dim()) * sizeof(uint16_t);
  if (n > 0 && config_.num_layers > 0)
    SACC_CUDA_TRY(cudaMemcpy2DAsync(snapshot.data(), n * row, s.kv.data(), s.capacity * row, n * row,
                                    2 * config_.num_layers, cudaMemcpyDeviceToDevice, stream_));
  return snapshot;
}

Status DeviceShard::copy_kv_in(int slot, const DeviceBuffer& snapshot, int64_t tokens, int64_t n) {
  if (slot < 0 || slot >= static_cast<int>(slots_.size()))
    return make_error(StatusCode::INVALID_ARGUMENT, "copy_kv_in: sequence slot {} outside [0, {})", slot,
                      slots_.size());
  SlotKv& s = slots_[static_cast<size_t>(slot)];
  if (n < 0 || n > tokens || n > s.capacity || snapshot.size() < kv_bytes(tokens))
    return make_error(StatusCode::INVALID_ARGUMENT,
                      "copy_kv_in: {} of a {}-position snapshot into cuda:{}'s cache of {} positions", n,
                      tokens, spec_.device, s.capacity);
  SACC_CUDA_TRY(cudaSetDevice(spec_.device));
  const size_t row = static_cast<size_t>(config_.kv_dim()) * sizeof(uint16_t);
  if (n > 0 && config_.num_layers > 0)
    SACC_CUDA_TRY(cudaMemcpy2DAsync(s.kv.data(), s.capacity * row, snapshot.data(), tokens * row, n * row,
                                    2 * config_.num_layers, cudaMemcpyDeviceToDevice, stream_));
  return Status::ok();
}

}  // namespace sacc::cuda_rt
