// DeviceShard's batch steps (Backend::decode_batch): the device table that tells each row of a step where its
// own sequence's KV cache is, at which position its token goes and which token it is, uploaded once per step
// and read by the embedding, the per-row RoPE, the KV store and the batched decode attention
// (device_shard_layer.cpp). Nothing else a step's launches take changes from step to step: a step can be
// captured into a CUDA graph and replayed with a new table (decode_graphs.h).
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstring>

#include "core/cuda/cuda_check.h"
#include "runtime/cuda/cuda_kernels.h"
#include "runtime/cuda/device_shard.h"

namespace sacc::cuda_rt {
namespace {

// The table of a `rows`-row step over `layers` local layers: [layers][K, V][rows] cache pointers, then
// [rows] int32 positions, then [rows] int32 token ids.
size_t pointer_bytes(int layers, int64_t rows) {
  return static_cast<size_t>(layers) * 2 * rows * sizeof(uint16_t*);
}

size_t table_bytes(int layers, int64_t rows) {
  return pointer_bytes(layers, rows) + static_cast<size_t>(2 * rows) * sizeof(int32_t);
}

}  // namespace

Status DeviceShard::begin_batch(std::span<const int> slots, std::span<const int32_t> positions,
                                std::span<const int32_t> tokens) {
  const auto rows = static_cast<int64_t>(slots.size());
  const auto max_rows = static_cast<int64_t>(slots_.size());
  if (rows == 0 || rows > max_rows || positions.size() != slots.size() || tokens.size() != slots.size())
    return make_error(StatusCode::INTERNAL, "begin_batch: {} slots, {} positions, {} tokens, {} slots held",
                      slots.size(), positions.size(), tokens.size(), max_rows);
  SACC_CUDA_TRY(cudaSetDevice(spec_.device));
  SACC_RETURN_IF_ERROR(ensure_step_workspace());
  const int layers = config_.num_layers;
  // Sized for a batch of every slot (a few KiB): the same addresses for every B, so a step captured for one
  // batch size is not invalidated by a step of another.
  if (batch_table_.size() < table_bytes(layers, max_rows)) {
    SACC_CUDA_TRY(cudaStreamSynchronize(stream_));  // the last table copy may still read the host image
    ++reallocations_;
    batch_table_ = {};
    host_batch_table_ = {};
    SACC_ASSIGN_OR_RETURN(batch_table_,
                          DeviceBuffer::create(spec_.device, table_bytes(layers, max_rows), "batch table"));
    SACC_ASSIGN_OR_RETURN(host_batch_table_,
                          PinnedBuffer::create(table_bytes(layers, max_rows), "batch table"));
  }
  const size_t staged_kv = static_cast<size_t>(2 * max_rows * config_.kv_dim()) * sizeof(uint16_t);
  if (batch_kv_.size() < staged_kv) {
    ++reallocations_;
    batch_kv_ = {};
    SACC_ASSIGN_OR_RETURN(batch_kv_, DeviceBuffer::create(spec_.device, staged_kv, "batch K/V rows"));
  }
  // The decode grid covers the longest reserved cache, not this step's keys: it changes when a slot is
  // reserved, not every few hundred tokens of decoding.
  const int64_t key_bound = longest_slot();
  SACC_RETURN_IF_ERROR(ensure_decode_scratch(decode_attention_batch_scratch_bytes(
      static_cast<int>(max_rows), config_.num_heads, config_.head_dim, key_bound)));
  // The host image: the previous step's copy from it finished at that step's synchronize().
  char* host = host_batch_table_.as<char>();
  auto* pointers = reinterpret_cast<uint16_t**>(host);
  for (int64_t r = 0; r < rows; ++r) {
    const int slot = slots[r];
    if (slot < 0 || slot >= max_rows || positions[r] >= slots_[static_cast<size_t>(slot)].capacity ||
        positions[r] < 0)
      return make_error(StatusCode::INTERNAL, "begin_batch: slot {} position {}", slot, positions[r]);
    for (int l = 0; l < layers; ++l) {
      pointers[(2 * l) * rows + r] = k_cache(slot, l);
      pointers[(2 * l + 1) * rows + r] = v_cache(slot, l);
    }
  }
  std::memcpy(host + pointer_bytes(layers, rows), positions.data(), positions.size() * sizeof(int32_t));
  std::memcpy(host + pointer_bytes(layers, rows) + rows * sizeof(int32_t), tokens.data(),
              tokens.size() * sizeof(int32_t));
  SACC_CUDA_TRY(
      cudaMemcpyAsync(batch_table_.data(), host, table_bytes(layers, rows), cudaMemcpyHostToDevice, stream_));
  batch_rows_ = rows;
  batch_key_bound_ = key_bound;
  ws_ = &step_ws_;
  return Status::ok();
}

int64_t DeviceShard::longest_slot() const {
  int64_t longest = 1;
  for (const SlotKv& s : slots_) longest = std::max(longest, s.capacity);
  return longest;
}

std::vector<uint64_t> DeviceShard::batch_step_signature() const {
  const auto address = [](const void* p) { return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(p)); };
  const Workspace& w = step_ws_;
  return {address(w.hidden.data()),
          address(w.q_or_mlp.data()),
          address(w.attn_out.data()),
          address(w.scratch.data()),
          address(w.logits.data()),
          address(w.fp8_input.data()),
          address(w.fp8_input_scales),
          address(batch_table_.data()),
          address(batch_kv_.data()),
          address(decode_scratch_.data()),
          decode_scratch_.size(),
          static_cast<uint64_t>(batch_rows_),
          static_cast<uint64_t>(batch_key_bound_),
          static_cast<uint64_t>(w.logit_step_rows),
          static_cast<uint64_t>(chunk_rows(batch_rows_)),
          address(gemm_->workspace()),
          address(gemm_->fp8_scratch()),
          gemm_->fp8_scratch_allocations(),
          reallocations_};
}

uint16_t* const* DeviceShard::batch_k_rows(int local) const {
  return batch_table_.as<uint16_t*>() + static_cast<size_t>(2 * local) * batch_rows_;
}

uint16_t* const* DeviceShard::batch_v_rows(int local) const {
  return batch_table_.as<uint16_t*>() + static_cast<size_t>(2 * local + 1) * batch_rows_;
}

const int32_t* DeviceShard::batch_positions() const {
  return reinterpret_cast<const int32_t*>(batch_table_.as<char>() +
                                          pointer_bytes(config_.num_layers, batch_rows_));
}

const int32_t* DeviceShard::batch_tokens() const {
  return batch_positions() + batch_rows_;
}

}  // namespace sacc::cuda_rt
