#include "attention/cuda/eager_attention.h"

#include <cublas_v2.h>

#include <algorithm>
#include <map>
#include <mutex>

#include "attention/cuda/eager_softmax.h"
#include "core/cuda/cuda_check.h"
#include "core/tensor.h"

namespace sacc {
namespace {

// Left free for cuBLAS's own workspace and the CUDA context's growth when sizing against free memory.
constexpr uint64_t kHeadroomBytes = 256ull << 20;

Status cublas_status(cublasStatus_t status, const char* what) {
  if (status == CUBLAS_STATUS_SUCCESS) return Status::ok();
  return make_error(status == CUBLAS_STATUS_ALLOC_FAILED ? StatusCode::OUT_OF_MEMORY : StatusCode::CUDA_ERROR,
                    "eager attention: {} failed: {}", what, cublasGetStatusString(status));
}

// One cuBLAS handle per device, created on first use; guarded because a handle's stream is per-handle state.
struct Blas {
  std::mutex mutex;
  std::map<int, cublasHandle_t> handles;
};

Blas& blas() {
  // Leaked on purpose: destroying handles after the CUDA runtime shut down at exit would fail.
  static Blas* b = new Blas;
  return *b;
}

Status validate(const AttentionParams& p, uint64_t workspace_bytes) {
  SACC_RETURN_IF_ERROR(p.shape.validate());
  if (!p.q || !p.k || !p.v || !p.o) {
    return make_error(StatusCode::INVALID_ARGUMENT, "eager attention: Q, K, V and O must be device pointers");
  }
  SACC_RETURN_IF_ERROR(p.require_whole_prompt("eager attention"));
  if (workspace_bytes < eager_attention_workspace_bytes(p.shape)) {
    return make_error(StatusCode::INVALID_ARGUMENT,
                      "eager attention: workspace of {} is smaller than the {} needed",
                      format_bytes(workspace_bytes), format_bytes(eager_attention_workspace_bytes(p.shape)));
  }
  // cuBLAS takes int dimensions; the grid takes one block per score row.
  if (p.shape.seq_len > (int64_t{1} << 30) / p.shape.num_q_heads) {
    return make_error(StatusCode::UNSUPPORTED,
                      "eager attention: L={} with {} query heads is beyond its limits", p.shape.seq_len,
                      p.shape.num_q_heads);
  }
  return Status::ok();
}

}  // namespace

uint64_t eager_attention_workspace_bytes(const AttentionShape& shape) {
  const uint64_t L = static_cast<uint64_t>(shape.seq_len);
  return static_cast<uint64_t>(shape.num_q_heads) * L * L * sizeof(float);
}

Result<DeviceBuffer> eager_attention_allocate_workspace(const AttentionShape& shape, int device) {
  SACC_RETURN_IF_ERROR(shape.validate());
  const uint64_t bytes = eager_attention_workspace_bytes(shape);
  int previous = 0;
  SACC_CUDA_TRY(cudaGetDevice(&previous));
  SACC_CUDA_TRY(cudaSetDevice(device));
  size_t free_bytes = 0, total_bytes = 0;
  const cudaError_t info = cudaMemGetInfo(&free_bytes, &total_bytes);
  cudaSetDevice(previous);
  SACC_RETURN_IF_ERROR(cuda_status(info, "cudaMemGetInfo"));
  const DeviceMemoryStats stats = DeviceAllocator::stats(device);
  uint64_t available = free_bytes > kHeadroomBytes ? free_bytes - kHeadroomBytes : 0;
  std::string limit =
      fmt::format("{} free on cuda:{} of {}", format_bytes(free_bytes), device, format_bytes(total_bytes));
  if (stats.budget && stats.budget - std::min(stats.budget, stats.in_use) < available) {
    available = stats.budget - std::min(stats.budget, stats.in_use);
    limit = fmt::format("{} left of the {} budget on cuda:{}", format_bytes(available),
                        format_bytes(stats.budget), device);
  }
  if (bytes > available) {
    return make_error(
        StatusCode::OUT_OF_MEMORY,
        "eager attention at L={} needs {} for the score matrix [{} heads, L, L] fp32; {}. Use a "
        "shorter prompt or a flash method (--attention dense or cudnn)",
        shape.seq_len, format_bytes(bytes), shape.num_q_heads, limit);
  }
  Result<DeviceBuffer> buffer = DeviceBuffer::create(device, bytes, "eager attention score matrix");
  if (!buffer.is_ok()) {
    return buffer.status().with_context(fmt::format("eager attention at L={}", shape.seq_len));
  }
  return buffer;
}

Status eager_attention_run(const AttentionParams& params, void* workspace, uint64_t workspace_bytes,
                           cudaStream_t stream) {
  const AttentionParams p = params.with_defaults();
  SACC_RETURN_IF_ERROR(validate(p, workspace_bytes));
  const int L = static_cast<int>(p.shape.seq_len), d = p.shape.head_dim, g = p.shape.group_size();
  const int64_t matrix = static_cast<int64_t>(L) * L;  // elements of one head's score matrix
  float* scores = static_cast<float*>(workspace);

  int device = 0;
  SACC_CUDA_TRY(cudaGetDevice(&device));
  Blas& b = blas();
  std::lock_guard<std::mutex> lock(b.mutex);
  cublasHandle_t& handle = b.handles[device];
  if (!handle) SACC_RETURN_IF_ERROR(cublas_status(cublasCreate(&handle), "cublasCreate"));
  SACC_RETURN_IF_ERROR(cublas_status(cublasSetStream(handle, stream), "cublasSetStream"));

  // bf16 elements, addressed as their 16-bit storage.
  const auto* q = static_cast<const uint16_t*>(p.q);
  const auto* k = static_cast<const uint16_t*>(p.k);
  const auto* v = static_cast<const uint16_t*>(p.v);
  auto* o = static_cast<uint16_t*>(p.o);
  const float scale = p.softmax_scale, one = 1.0f, zero = 0.0f;
  // cuBLAS is column-major: a row-major [rows, cols] matrix with row stride ld is its transpose.
  // Per KV head c, the g query heads that share it form one strided batch (K and V broadcast: stride 0).
  for (int c = 0; c < p.shape.num_kv_heads; ++c) {
    const int h0 = c * g;
    // Sᵀ[j, i] = k_j . q_i  ->  scores[h][i][j] row-major with row stride L.
    SACC_RETURN_IF_ERROR(cublas_status(
        cublasGemmStridedBatchedEx(
            handle, CUBLAS_OP_T, CUBLAS_OP_N, L, L, d, &scale, k + c * p.kv_head_stride, CUDA_R_16BF,
            static_cast<int>(p.kv_token_stride), 0, q + h0 * p.q_head_stride, CUDA_R_16BF,
            static_cast<int>(p.q_token_stride), p.q_head_stride, &zero, scores + h0 * matrix, CUDA_R_32F, L,
            matrix, g, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
        "Q Kᵀ GEMM"));
  }
  SACC_RETURN_IF_ERROR(
      cuda_status(launch_eager_causal_softmax(scores, L, p.shape.num_q_heads, p.maybe_lse, stream),
                  "eager attention softmax"));
  const auto* probabilities = reinterpret_cast<const uint16_t*>(scores);  // [Hq, L, 2L] bf16
  for (int c = 0; c < p.shape.num_kv_heads; ++c) {
    const int h0 = c * g;
    // Oᵀ[:, i] = Vᵀ P[i, :]ᵀ: A = V (d x L, ld = token stride), B = Pᵀ (L x L, ld = 2L).
    SACC_RETURN_IF_ERROR(cublas_status(
        cublasGemmStridedBatchedEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, d, L, L, &one, v + c * p.kv_head_stride,
                                   CUDA_R_16BF, static_cast<int>(p.kv_token_stride), 0,
                                   probabilities + h0 * 2 * matrix, CUDA_R_16BF, 2 * L, 2 * matrix, &zero,
                                   o + h0 * p.o_head_stride, CUDA_R_16BF, static_cast<int>(p.o_token_stride),
                                   p.o_head_stride, g, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
        "P V GEMM"));
  }
  return Status::ok();
}

}  // namespace sacc
