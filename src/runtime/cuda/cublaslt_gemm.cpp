#include "runtime/cuda/cublaslt_gemm.h"

#include <memory>

#include "runtime/cuda/cublaslt_util.h"

namespace sacc::cuda_rt {
namespace {

constexpr size_t kWorkspaceBytes = 32ull << 20;

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
  LtDescriptors d;
  SACC_LT_TRY(cublasLtMatmulDescCreate(&d.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t trans = CUBLAS_OP_T, no_trans = CUBLAS_OP_N;
  SACC_LT_TRY(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSA, &trans, sizeof(trans)));
  SACC_LT_TRY(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSB, &no_trans, sizeof(no_trans)));
  const cudaDataType_t y_type = g.y_f32 ? CUDA_R_32F : CUDA_R_16BF;
  SACC_LT_TRY(cublasLtMatrixLayoutCreate(&d.a, CUDA_R_16BF, g.in, g.out, g.in));
  SACC_LT_TRY(cublasLtMatrixLayoutCreate(&d.b, CUDA_R_16BF, g.in, g.rows, ldx));
  SACC_LT_TRY(cublasLtMatrixLayoutCreate(&d.c, y_type, g.out, g.rows, ldy));
  const Key key{g.rows, g.in, g.out, ldx, ldy, g.y_f32, g.accumulate};
  auto it = algos_.find(key);
  if (it == algos_.end()) {
    cublasLtMatmulAlgo_t algo{};
    SACC_ASSIGN_OR_RETURN(const bool found, find_algo(handle_, d, workspace_.size(), &algo));
    if (!found)
      return make_error(StatusCode::UNSUPPORTED, "cuBLASLt has no algorithm for a {}x{}x{} bf16 GEMM", g.rows,
                        g.out, g.in);
    it = algos_.emplace(key, algo).first;
  }
  const float alpha = 1.0f, beta = g.accumulate ? 1.0f : 0.0f;
  SACC_LT_TRY(cublasLtMatmul(handle_, d.op, &alpha, g.w, d.a, g.x, d.b, &beta, g.y, d.c, g.y, d.c,
                             &it->second, workspace_.data(), workspace_.size(), stream));
  return Status::ok();
}

}  // namespace sacc::cuda_rt
