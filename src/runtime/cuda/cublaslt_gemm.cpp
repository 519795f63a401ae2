#include "runtime/cuda/cublaslt_gemm.h"

#include <chrono>
#include <memory>

#include "core/log.h"

#include "runtime/cuda/cublaslt_util.h"

namespace sacc::cuda_rt {
namespace {

constexpr size_t kWorkspaceBytes = 32ull << 20;

// Row counts share an algorithm within a power-of-two bucket, searched for at the bucket's top: a server's
// suffix prefills (140, 161, 190 rows, ...) and a prefill's last, shorter chunk then pay cuBLASLt's heuristic
// (a host-side cost of the order of a millisecond per shape) once per bucket, not once per row count.
int64_t row_bucket(int64_t rows) {
  int64_t bucket = 1;
  while (bucket < rows) bucket *= 2;
  return bucket;
}

}  // namespace

Result<GemmRunner*> GemmRunner::create(int device) {
  std::unique_ptr<GemmRunner> runner(new GemmRunner());
  runner->device_ = device;
  SACC_LT_TRY(cublasLtCreate(&runner->handle_));
  SACC_ASSIGN_OR_RETURN(runner->workspace_,
                        DeviceBuffer::create(device, kWorkspaceBytes, "cuBLASLt workspace"));
  return runner.release();
}

GemmRunner::~GemmRunner() {
  if (handle_) cublasLtDestroy(handle_);
}

Status GemmRunner::run(const GemmArgs& g, cudaStream_t stream) {
  if (g.rows == 0) return Status::ok();
  const int64_t ldx = g.ldx ? g.ldx : g.in, ldy = g.ldy ? g.ldy : g.out;
  // Column-major view: Y^T [out, rows] = W [in, out]^T · X^T [in, rows]  ("TN").
  auto describe = [&](int64_t rows, LtDescriptors& d) -> Status {
    SACC_LT_TRY(cublasLtMatmulDescCreate(&d.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const cublasOperation_t trans = CUBLAS_OP_T, no_trans = CUBLAS_OP_N;
    SACC_LT_TRY(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSA, &trans, sizeof(trans)));
    SACC_LT_TRY(
        cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSB, &no_trans, sizeof(no_trans)));
    const cudaDataType_t y_type = g.y_f32 ? CUDA_R_32F : CUDA_R_16BF;
    SACC_LT_TRY(cublasLtMatrixLayoutCreate(&d.a, CUDA_R_16BF, g.in, g.out, g.in));
    SACC_LT_TRY(cublasLtMatrixLayoutCreate(&d.b, CUDA_R_16BF, g.in, rows, ldx));
    SACC_LT_TRY(cublasLtMatrixLayoutCreate(&d.c, y_type, g.out, rows, ldy));
    return Status::ok();
  };
  auto search = [&](int64_t rows) -> Result<cublasLtMatmulAlgo_t> {
    LtDescriptors d;
    SACC_RETURN_IF_ERROR(describe(rows, d));
    const auto started = std::chrono::steady_clock::now();
    cublasLtMatmulAlgo_t algo{};
    SACC_ASSIGN_OR_RETURN(const bool found, find_algo(handle_, d, workspace_.size(), &algo));
    ++algorithm_searches_;
    SACC_LOG_DEBUG(
        "cuBLASLt algorithm search for a {}x{}x{} bf16 GEMM: {:.3f} ms", rows, g.out, g.in,
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count());
    if (!found)
      return make_error(StatusCode::UNSUPPORTED, "cuBLASLt has no algorithm for a {}x{}x{} bf16 GEMM", rows,
                        g.out, g.in);
    return algo;
  };
  const int64_t bucket = row_bucket(g.rows);
  const Key key{bucket, g.in, g.out, ldx, ldy, g.y_f32, g.accumulate};
  auto it = algos_.find(key);
  if (it == algos_.end()) {
    SACC_RETURN_IF_ERROR(refuse_during_capture(stream, "a cuBLASLt algorithm search"));
    SACC_ASSIGN_OR_RETURN(const cublasLtMatmulAlgo_t algo, search(bucket));
    it = algos_.emplace(key, algo).first;
  }
  LtDescriptors d;
  SACC_RETURN_IF_ERROR(describe(g.rows, d));
  const float alpha = 1.0f, beta = g.accumulate ? 1.0f : 0.0f;
  cublasStatus_t status = cublasLtMatmul(handle_, d.op, &alpha, g.w, d.a, g.x, d.b, &beta, g.y, d.c, g.y, d.c,
                                         &it->second, workspace_.data(), workspace_.size(), stream);
  if (status == CUBLAS_STATUS_NOT_SUPPORTED && bucket != g.rows) {
    // The bucket's algorithm refuses this row count (a host-side check; nothing was enqueued): the exact
    // shape's, searched once (a count that is not a power of two cannot collide with a bucket's key).
    const Key exact_key{g.rows, g.in, g.out, ldx, ldy, g.y_f32, g.accumulate};
    auto exact = algos_.find(exact_key);
    if (exact == algos_.end()) {
      SACC_RETURN_IF_ERROR(refuse_during_capture(stream, "a cuBLASLt algorithm search"));
      SACC_ASSIGN_OR_RETURN(const cublasLtMatmulAlgo_t algo, search(g.rows));
      exact = algos_.emplace(exact_key, algo).first;
    }
    status = cublasLtMatmul(handle_, d.op, &alpha, g.w, d.a, g.x, d.b, &beta, g.y, d.c, g.y, d.c,
                            &exact->second, workspace_.data(), workspace_.size(), stream);
  }
  return lt_status(status, "cublasLtMatmul");
}

}  // namespace sacc::cuda_rt
