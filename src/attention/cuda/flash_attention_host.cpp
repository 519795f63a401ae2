#include "attention/cuda/flash_attention_host.h"

#include <cuda_runtime.h>

#include "attention/attention.h"
#include "core/cuda/cuda_check.h"
#include "core/cuda/device_memory.h"

namespace sacc {
namespace {

Result<DeviceBuffer> upload(int device, const void* host, size_t bytes, const char* what) {
  SACC_ASSIGN_OR_RETURN(DeviceBuffer buffer, DeviceBuffer::create(device, bytes, what));
  if (bytes) SACC_CUDA_TRY(cudaMemcpy(buffer.data(), host, bytes, cudaMemcpyHostToDevice));
  return buffer;
}

// cudaEvent_t owner so every early return releases both events.
struct EventPair {
  cudaEvent_t start = nullptr, stop = nullptr;
  ~EventPair() {
    if (start) cudaEventDestroy(start);
    if (stop) cudaEventDestroy(stop);
  }
};

}  // namespace

Result<FlashHostOutput> flash_attention_host(const AttentionShape& shape, const uint16_t* q,
                                             const uint16_t* k, const uint16_t* v,
                                             const SparseIndex* maybe_index, FlashKernelChoice kernel,
                                             float softmax_scale) {
  SACC_ASSIGN_OR_RETURN(const AttentionSelection selection,
                        attention_select_cuda(shape, maybe_index ? &maybe_index->geometry : nullptr));
  if (maybe_index != nullptr) SACC_RETURN_IF_ERROR(maybe_index->validate().with_context("attention index"));
  int device = 0;
  SACC_CUDA_TRY(cudaGetDevice(&device));

  const size_t q_bytes = static_cast<size_t>(shape.seq_len) * shape.num_q_heads * shape.head_dim * 2;
  const size_t kv_bytes = static_cast<size_t>(shape.seq_len) * shape.num_kv_heads * shape.head_dim * 2;
  const size_t lse_bytes = static_cast<size_t>(shape.seq_len) * shape.num_q_heads * sizeof(float);
  SACC_ASSIGN_OR_RETURN(DeviceBuffer d_q, upload(device, q, q_bytes, "attention Q"));
  SACC_ASSIGN_OR_RETURN(DeviceBuffer d_k, upload(device, k, kv_bytes, "attention K"));
  SACC_ASSIGN_OR_RETURN(DeviceBuffer d_v, upload(device, v, kv_bytes, "attention V"));
  SACC_ASSIGN_OR_RETURN(DeviceBuffer d_o, DeviceBuffer::create(device, q_bytes, "attention O"));
  SACC_ASSIGN_OR_RETURN(DeviceBuffer d_lse, DeviceBuffer::create(device, lse_bytes, "attention LSE"));
  SACC_ASSIGN_OR_RETURN(DeviceBuffer workspace,
                        DeviceBuffer::create(device, selection.workspace_bytes, "attention workspace"));

  SparseIndexView view;
  DeviceBuffer d_block_offsets, d_block_ids, d_column_offsets, d_column_ids;
  if (maybe_index != nullptr) {
    const SparseIndex& index = *maybe_index;
    auto bytes = [](const std::vector<int32_t>& a) { return a.size() * sizeof(int32_t); };
    SACC_ASSIGN_OR_RETURN(d_block_offsets, upload(device, index.block_offsets.data(),
                                                  bytes(index.block_offsets), "index block offsets"));
    SACC_ASSIGN_OR_RETURN(d_block_ids,
                          upload(device, index.block_ids.data(), bytes(index.block_ids), "index block ids"));
    SACC_ASSIGN_OR_RETURN(d_column_offsets, upload(device, index.column_offsets.data(),
                                                   bytes(index.column_offsets), "index column offsets"));
    SACC_ASSIGN_OR_RETURN(
        d_column_ids, upload(device, index.column_ids.data(), bytes(index.column_ids), "index column ids"));
    view.geometry = index.geometry;
    view.block_offsets = d_block_offsets.as<int32_t>();
    view.block_ids = d_block_ids.as<int32_t>();
    view.column_offsets = d_column_offsets.as<int32_t>();
    view.column_ids = d_column_ids.as<int32_t>();
  }

  AttentionParams params;
  params.shape = shape;
  params.q = d_q.data();
  params.k = d_k.data();
  params.v = d_v.data();
  params.o = d_o.data();
  params.maybe_lse = d_lse.as<float>();
  params.softmax_scale = softmax_scale;

  EventPair events;
  SACC_CUDA_TRY(cudaEventCreate(&events.start));
  SACC_CUDA_TRY(cudaEventCreate(&events.stop));
  SACC_CUDA_TRY(cudaEventRecord(events.start));
  SACC_RETURN_IF_ERROR(attention_run_cuda(params, maybe_index ? &view : nullptr, kernel, workspace.data(),
                                          workspace.size(), nullptr));
  SACC_CUDA_TRY(cudaEventRecord(events.stop));
  SACC_CUDA_TRY(cudaEventSynchronize(events.stop));

  FlashHostOutput out;
  SACC_CUDA_TRY(cudaEventElapsedTime(&out.kernel_ms, events.start, events.stop));
  out.o.resize(q_bytes / 2);
  out.lse.resize(lse_bytes / sizeof(float));
  SACC_CUDA_TRY(cudaMemcpy(out.o.data(), d_o.data(), q_bytes, cudaMemcpyDeviceToHost));
  SACC_CUDA_TRY(cudaMemcpy(out.lse.data(), d_lse.data(), lse_bytes, cudaMemcpyDeviceToHost));
  return out;
}

}  // namespace sacc
