#ifdef SACC_WITH_CUDA
#include "tools/sacc/attention_gpu_session.h"

#include <cuda_runtime_api.h>

#include "attention/attention.h"
#include "attention/plan.h"
#include "core/cuda/cuda_check.h"
#include "core/device_info.h"
#include "core/dtype.h"
#include "runtime/attention_selector.h"

namespace sacc::cli {
namespace {

// All three events released on every return path.
struct EventTriple {
  cudaEvent_t start = nullptr, planned = nullptr, done = nullptr;
  ~EventTriple() {
    for (cudaEvent_t event : {start, planned, done})
      if (event) cudaEventDestroy(event);
  }
};

Result<DeviceBuffer> upload(int device, const std::vector<uint16_t>& host, const char* what) {
  SACC_ASSIGN_OR_RETURN(DeviceBuffer buffer, DeviceBuffer::create(device, host.size() * 2, what));
  if (!host.empty())
    SACC_CUDA_TRY(cudaMemcpy(buffer.data(), host.data(), host.size() * 2, cudaMemcpyHostToDevice));
  return buffer;
}

template <typename T>
Status download(std::vector<T>& host, const void* device, size_t count) {
  host.resize(count);
  if (count) SACC_CUDA_TRY(cudaMemcpy(host.data(), device, count * sizeof(T), cudaMemcpyDeviceToHost));
  return Status::ok();
}

// The index plan() wrote: offsets first (their last entries size the id arrays), then the ids.
Result<SparseIndex> download_index(const SparseIndexView& view) {
  SparseIndex index;
  index.geometry = view.geometry;
  const size_t offsets = static_cast<size_t>(view.geometry.num_slots()) + 1;
  SACC_RETURN_IF_ERROR(download(index.block_offsets, view.block_offsets, offsets));
  SACC_RETURN_IF_ERROR(download(index.column_offsets, view.column_offsets, offsets));
  if (index.block_offsets.back() < 0 || index.column_offsets.back() < 0) {
    return make_error(StatusCode::INTERNAL, "the GPU index has negative totals ({} blocks, {} columns)",
                      index.block_offsets.back(), index.column_offsets.back());
  }
  SACC_RETURN_IF_ERROR(download(index.block_ids, view.block_ids, index.block_offsets.back()));
  SACC_RETURN_IF_ERROR(download(index.column_ids, view.column_ids, index.column_offsets.back()));
  SACC_RETURN_IF_ERROR(index.validate().with_context("the index built on the GPU"));
  return index;
}

}  // namespace

Status select_cuda_device(Device device) {
  const int count = cuda_device_count();
  if (count == 0) {
    return make_error(StatusCode::UNSUPPORTED,
                      "--device cuda:{}: no CUDA device is visible to this process (no GPU, no driver, or "
                      "CUDA_VISIBLE_DEVICES hides it); use --device cpu",
                      device.index);
  }
  if (device.index >= count) {
    return make_error(
        StatusCode::INVALID_ARGUMENT,
        "--device cuda:{}: only {} CUDA device(s) visible (cuda:0 to cuda:{}); pick one of them "
        "or use --device cpu",
        device.index, count, count - 1);
  }
  SACC_CUDA_TRY(cudaSetDevice(device.index));
  return Status::ok();
}

Status check_cuda_supports(const AttentionShape& shape, const IndexGeometry& geometry,
                           const PatternSpec& spec) {
  if (shape.head_dim != 64 && shape.head_dim != 128) {
    return make_error(StatusCode::UNSUPPORTED,
                      "--device cuda: the CUDA kernels support head dim 64 or 128, this input has d={}; use "
                      "--device cpu",
                      shape.head_dim);
  }
  if (spec.kind != PatternKind::DENSE &&
      (geometry.block_q != kTileBlockQ || geometry.block_k != kTileBlockK)) {
    return make_error(StatusCode::UNSUPPORTED,
                      "--device cuda: the CUDA sparse kernels read indices with Bq={} and Bk={}, not "
                      "--block-q {} --block-k {}; drop those options or use --device cpu",
                      kTileBlockQ, kTileBlockK, geometry.block_q, geometry.block_k);
  }
  return Status::ok();
}

Status check_budgets_fit(const PatternSpec& spec, const IndexGeometry& geometry) {
  if (spec.kind == PatternKind::INTERVAL_SLASH &&
      (spec.vertical > geometry.seq_len || spec.slash > geometry.seq_len)) {
    return make_error(
        StatusCode::INVALID_ARGUMENT,
        "pattern {}: budget larger than the sequence (L = {} keys and {} diagonals); use budgets "
        "<= L or --clamp-budgets",
        to_string(spec), geometry.seq_len, geometry.seq_len);
  }
  if (spec.kind == PatternKind::BLOCK_CLUSTER && spec.blocks > geometry.num_k_blocks()) {
    return make_error(
        StatusCode::INVALID_ARGUMENT,
        "pattern {}: {} key blocks requested but the sequence has only {} (L = {}, block {}); use "
        "a budget <= {} or --clamp-budgets",
        to_string(spec), spec.blocks, geometry.num_k_blocks(), geometry.seq_len, geometry.block_k,
        geometry.num_k_blocks());
  }
  return Status::ok();
}

std::vector<uint16_t> to_bf16_bits(const std::vector<float>& values) {
  std::vector<uint16_t> bits(values.size());
  for (size_t n = 0; n < values.size(); ++n) bits[n] = float_to_bf16(values[n]);
  return bits;
}

std::string cuda_device_label(Device device) {
  Result<GpuInfo> info = query_gpu(device.index);
  return info.is_ok() ? fmt::format("cuda:{} ({})", device.index, info->name)
                      : fmt::format("cuda:{}", device.index);
}

Result<GpuAttention> GpuAttention::create(const AttentionShape& shape, const std::vector<uint16_t>& q,
                                          const std::vector<uint16_t>& k, const std::vector<uint16_t>& v,
                                          double softmax_scale) {
  GpuAttention session;
  session.shape_ = shape;
  session.softmax_scale_ = static_cast<float>(softmax_scale);
  SACC_CUDA_TRY(cudaGetDevice(&session.device_));
  const int device = session.device_;
  SACC_ASSIGN_OR_RETURN(session.q_, upload(device, q, "attention Q"));
  SACC_ASSIGN_OR_RETURN(session.k_, upload(device, k, "attention K"));
  SACC_ASSIGN_OR_RETURN(session.v_, upload(device, v, "attention V"));
  SACC_ASSIGN_OR_RETURN(session.o_, DeviceBuffer::create(device, q.size() * 2, "attention O"));
  const size_t lse_count = static_cast<size_t>(shape.seq_len) * shape.num_q_heads;
  SACC_ASSIGN_OR_RETURN(session.lse_,
                        DeviceBuffer::create(device, lse_count * sizeof(float), "attention LSE"));
  return session;
}

Result<GpuPatternRun> GpuAttention::run(const PatternSpec& spec, const IndexGeometry& geometry,
                                        const EstimationConfig& estimation) {
  const bool dense = spec.kind == PatternKind::DENSE;
  LayerPatterns patterns;
  patterns.heads.assign(geometry.num_heads, spec);
  patterns.shared_per_kv_group = geometry.shared_per_kv_group;
  patterns.estimation = estimation;
  size_t plan_bytes = 0;
  if (!dense) {
    SACC_ASSIGN_OR_RETURN(plan_bytes, plan_workspace_bytes(shape_, patterns, geometry));
  }
  SACC_ASSIGN_OR_RETURN(const AttentionSelection selection,
                        attention_select_cuda(shape_, dense ? nullptr : &geometry));
  SACC_ASSIGN_OR_RETURN(const FlashKernelChoice kernel,
                        flash_kernel_for_device(device_, dense ? nullptr : &geometry, shape_.group_size()));
  SACC_ASSIGN_OR_RETURN(DeviceBuffer plan_workspace,
                        DeviceBuffer::create(device_, plan_bytes, "sparse index (plan workspace)"));
  SACC_ASSIGN_OR_RETURN(DeviceBuffer run_workspace,
                        DeviceBuffer::create(device_, selection.workspace_bytes, "attention workspace"));

  AttentionParams params;
  params.shape = shape_;
  params.q = q_.data();
  params.k = k_.data();
  params.v = v_.data();
  params.o = o_.data();
  params.maybe_lse = lse_.as<float>();
  params.softmax_scale = softmax_scale_;

  EventTriple events;
  SACC_CUDA_TRY(cudaEventCreate(&events.start));
  SACC_CUDA_TRY(cudaEventCreate(&events.planned));
  SACC_CUDA_TRY(cudaEventCreate(&events.done));
  SparseIndexView view;
  for (int pass = 0; pass < 2; ++pass) {
    SACC_CUDA_TRY(cudaEventRecord(events.start));
    if (!dense) {
      SACC_ASSIGN_OR_RETURN(view,
                            plan(params, patterns, geometry, plan_workspace.data(), plan_bytes, nullptr));
    }
    SACC_CUDA_TRY(cudaEventRecord(events.planned));
    SACC_RETURN_IF_ERROR(attention_run_cuda(params, dense ? nullptr : &view, kernel, run_workspace.data(),
                                            run_workspace.size(), nullptr));
    SACC_CUDA_TRY(cudaEventRecord(events.done));
    SACC_CUDA_TRY(cudaEventSynchronize(events.done));
  }
  SACC_CUDA_TRY(cudaGetLastError());

  GpuPatternRun out;
  SACC_CUDA_TRY(cudaEventElapsedTime(&out.plan_ms, events.start, events.planned));
  SACC_CUDA_TRY(cudaEventElapsedTime(&out.attention_ms, events.planned, events.done));
  out.output.shape = shape_;
  SACC_RETURN_IF_ERROR(download(out.output.o, o_.data(), o_.size() / 2));
  SACC_RETURN_IF_ERROR(download(out.output.lse, lse_.data(), lse_.size() / sizeof(float)));
  if (dense) {
    out.index = SparseIndex::dense(geometry);
  } else {
    SACC_ASSIGN_OR_RETURN(out.index, download_index(view));
  }
  return out;
}

}  // namespace sacc::cli
#endif  // SACC_WITH_CUDA
