// DeviceShard's batch steps (Backend::decode_batch): the device table that tells each row of a step where its
// own sequence's KV cache is and at which position its token goes, uploaded once per step and read by the
// per-row RoPE, the KV store and the batched decode attention (device_shard_layer.cpp).
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstring>

#include "core/cuda/cuda_check.h"
#include "runtime/cuda/cuda_kernels.h"
#include "runtime/cuda/device_shard.h"

namespace sacc::cuda_rt {

Status DeviceShard::begin_batch(std::span<const int> slots, std::span<const int32_t> positions) {
  const auto rows = static_cast<int64_t>(slots.size());
  if (rows == 0 || positions.size() != slots.size())
    return make_error(StatusCode::INTERNAL, "begin_batch: {} slots, {} positions", slots.size(),
                      positions.size());
  if (rows > tokens_)
    return make_error(StatusCode::INTERNAL, "workspace sized for {} tokens, batch has {} rows", tokens_,
                      rows);
  SACC_CUDA_TRY(cudaSetDevice(spec_.device));
  const int layers = config_.num_layers;
  // [layers][K, V][rows] pointers, then [rows] int32 positions.
  const size_t pointer_bytes = static_cast<size_t>(layers) * 2 * rows * sizeof(uint16_t*);
  const size_t table_bytes = pointer_bytes + static_cast<size_t>(rows) * sizeof(int32_t);
  host_batch_table_.resize(table_bytes);
  auto* pointers = reinterpret_cast<uint16_t**>(host_batch_table_.data());
  int64_t max_keys = 0, max_capacity = 1;
  for (int64_t r = 0; r < rows; ++r) {
    const int slot = slots[r];
    if (slot < 0 || slot >= static_cast<int>(slots_.size()) ||
        positions[r] >= slots_[static_cast<size_t>(slot)].capacity || positions[r] < 0)
      return make_error(StatusCode::INTERNAL, "begin_batch: slot {} position {}", slot, positions[r]);
    for (int l = 0; l < layers; ++l) {
      pointers[(2 * l) * rows + r] = k_cache(slot, l);
      pointers[(2 * l + 1) * rows + r] = v_cache(slot, l);
    }
    max_keys = std::max<int64_t>(max_keys, int64_t{positions[r]} + 1);
    max_capacity = std::max(max_capacity, slots_[static_cast<size_t>(slot)].capacity);
  }
  std::memcpy(host_batch_table_.data() + pointer_bytes, positions.data(), positions.size() * sizeof(int32_t));
  if (batch_table_.size() < table_bytes) {
    batch_table_ = {};
    SACC_ASSIGN_OR_RETURN(batch_table_, DeviceBuffer::create(spec_.device, table_bytes, "batch table"));
  }
  const size_t staged_kv = static_cast<size_t>(2 * rows * config_.kv_dim()) * sizeof(uint16_t);
  if (batch_kv_.size() < staged_kv) {
    batch_kv_ = {};
    SACC_ASSIGN_OR_RETURN(batch_kv_, DeviceBuffer::create(spec_.device, staged_kv, "batch K/V rows"));
  }
  // Sized for the rows' whole caches, not this step's keys: it grows when the batch does, not every few
  // hundred tokens of decoding.
  SACC_RETURN_IF_ERROR(ensure_decode_scratch(decode_attention_batch_scratch_bytes(
      static_cast<int>(rows), config_.num_heads, config_.head_dim, max_capacity)));
  SACC_CUDA_TRY(cudaMemcpyAsync(batch_table_.data(), host_batch_table_.data(), table_bytes,
                                cudaMemcpyHostToDevice, stream_));
  batch_rows_ = rows;
  batch_max_keys_ = max_keys;
  return Status::ok();
}

uint16_t* const* DeviceShard::batch_k_rows(int local) const {
  return batch_table_.as<uint16_t*>() + static_cast<size_t>(2 * local) * batch_rows_;
}

uint16_t* const* DeviceShard::batch_v_rows(int local) const {
  return batch_table_.as<uint16_t*>() + static_cast<size_t>(2 * local + 1) * batch_rows_;
}

const int32_t* DeviceShard::batch_positions() const {
  return reinterpret_cast<const int32_t*>(batch_table_.as<char>() + static_cast<size_t>(config_.num_layers) *
                                                                        2 * batch_rows_ * sizeof(uint16_t*));
}

}  // namespace sacc::cuda_rt
