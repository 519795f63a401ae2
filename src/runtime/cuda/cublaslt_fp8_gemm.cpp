// GemmRunner::run_fp8: e4m3 x e4m3 -> bf16 linear layers on cuBLASLt with per-token and per-output-channel
// scales. cuBLASLt's FP8 rules on Hopper: the "TN" layout (A transposed, B not), which our row-major
// Y^T [out, rows] = W [in, out]^T · X^T [in, rows] view already is; the inner dimension and leading
// dimensions multiples of 16 bytes; fp32 compute and scale type. The scales are vectors
// (CUBLASLT_MATMUL_MATRIX_SCALE_ OUTER_VEC_32F: A's over its M = out rows, B's over its N = rows columns)
// applied in the epilogue, with the residual (beta = 1) added there too. Where cuBLASLt answers no algorithm
// (or rejects the call) for a shape, the GEMM runs unscaled into a bf16 scratch and dequantize_outer applies
// both scales and the residual in one small kernel.
#include "core/cuda/cuda_check.h"
#include "runtime/cuda/cublaslt_gemm.h"
#include "runtime/cuda/cublaslt_util.h"
#include "runtime/cuda/fp8_kernels.h"

namespace sacc::cuda_rt {
namespace {

// The descriptors of one FP8 call; `epilogue_scales` sets the outer-vector scales and writes Y (with the
// residual when accumulating), otherwise D is the contiguous unscaled product [rows, out].
Status make_fp8_descriptors(const Fp8GemmArgs& g, bool epilogue_scales, LtDescriptors& d) {
  const int64_t ldy = g.ldy ? g.ldy : g.out;
  SACC_LT_TRY(cublasLtMatmulDescCreate(&d.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t trans = CUBLAS_OP_T, no_trans = CUBLAS_OP_N;
  SACC_LT_TRY(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSA, &trans, sizeof(trans)));
  SACC_LT_TRY(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSB, &no_trans, sizeof(no_trans)));
  if (epilogue_scales) {
    const cublasLtMatmulMatrixScale_t mode = CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F;
    SACC_LT_TRY(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &mode, sizeof(mode)));
    SACC_LT_TRY(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &mode, sizeof(mode)));
    SACC_LT_TRY(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &g.w_scale,
                                               sizeof(g.w_scale)));
    SACC_LT_TRY(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &g.x_scale,
                                               sizeof(g.x_scale)));
  }
  SACC_LT_TRY(cublasLtMatrixLayoutCreate(&d.a, CUDA_R_8F_E4M3, g.in, g.out, g.in));   // W^T view
  SACC_LT_TRY(cublasLtMatrixLayoutCreate(&d.b, CUDA_R_8F_E4M3, g.in, g.rows, g.in));  // X^T view
  SACC_LT_TRY(cublasLtMatrixLayoutCreate(&d.c, CUDA_R_16BF, g.out, g.rows, epilogue_scales ? ldy : g.out));
  return Status::ok();
}

}  // namespace

Result<GemmRunner::Fp8Plan> GemmRunner::plan_fp8(const Fp8GemmArgs& g, bool epilogue_scales) {
  LtDescriptors d;
  SACC_RETURN_IF_ERROR(make_fp8_descriptors(g, epilogue_scales, d));
  cublasLtMatmulAlgo_t algo{};
  SACC_ASSIGN_OR_RETURN(const bool found, find_algo(handle_, d, workspace_.size(), &algo));
  if (!found)
    return make_error(StatusCode::UNSUPPORTED, "cuBLASLt has no algorithm for a {}x{}x{} FP8 GEMM{}", g.rows,
                      g.out, g.in, epilogue_scales ? " with outer-vector scales" : "");
  return Fp8Plan{epilogue_scales, algo};
}

Status GemmRunner::launch_fp8(const Fp8GemmArgs& g, const Fp8Plan& plan, cudaStream_t stream) {
  LtDescriptors d;
  SACC_RETURN_IF_ERROR(make_fp8_descriptors(g, plan.epilogue_scales, d));
  const float alpha = 1.0f;
  if (plan.epilogue_scales) {
    const float beta = g.accumulate ? 1.0f : 0.0f;
    SACC_LT_TRY(cublasLtMatmul(handle_, d.op, &alpha, g.w, d.a, g.x, d.b, &beta, g.y, d.c, g.y, d.c,
                               &plan.algo, workspace_.data(), workspace_.size(), stream));
    return Status::ok();
  }
  const size_t raw_bytes = static_cast<size_t>(g.rows * g.out) * 2;
  if (fp8_raw_.size() < raw_bytes) {
    SACC_RETURN_IF_ERROR(refuse_during_capture(stream, "growing the FP8 GEMM scratch"));
    SACC_CUDA_TRY(cudaStreamSynchronize(stream));  // the old scratch may still be read
    fp8_raw_.reset();
    ++fp8_raw_allocations_;
    SACC_ASSIGN_OR_RETURN(fp8_raw_, DeviceBuffer::create(device_, raw_bytes, "FP8 GEMM product"));
  }
  const float beta = 0.0f;
  auto* raw = fp8_raw_.as<uint16_t>();  // [rows, out]
  SACC_LT_TRY(cublasLtMatmul(handle_, d.op, &alpha, g.w, d.a, g.x, d.b, &beta, raw, d.c, raw, d.c, &plan.algo,
                             workspace_.data(), workspace_.size(), stream));
  return cuda_status(dequantize_outer(raw, g.x_scale, g.w_scale, g.y, g.ldy ? g.ldy : g.out, g.rows, g.out,
                                      g.accumulate, stream),
                     "FP8 dequantisation");
}

Status GemmRunner::run_fp8(const Fp8GemmArgs& g, cudaStream_t stream) {
  if (g.rows == 0) return Status::ok();
  if (g.in % 16 != 0 || g.out % 8 != 0 || (g.ldy && g.ldy % 8 != 0))
    return make_error(StatusCode::UNSUPPORTED,
                      "FP8 GEMM needs the inner dimension a multiple of 16 and the output's of 8 ({}x{}x{})",
                      g.rows, g.out, g.in);
  const Fp8Key key{g.rows, g.in, g.out, g.ldy ? g.ldy : g.out, g.accumulate};
  if (auto it = fp8_plans_.find(key); it != fp8_plans_.end()) return launch_fp8(g, it->second, stream);
  SACC_RETURN_IF_ERROR(refuse_during_capture(stream, "a cuBLASLt FP8 algorithm search"));
  // First call of this shape: the epilogue scales where cuBLASLt takes them, else the separate kernel.
  if (fp8_epilogue_allowed_) {
    if (Result<Fp8Plan> fused = plan_fp8(g, true); fused && launch_fp8(g, *fused, stream)) {
      fp8_plans_.emplace(key, *fused);
      return Status::ok();
    }
  }
  SACC_ASSIGN_OR_RETURN(Fp8Plan plan, plan_fp8(g, false));
  fp8_plans_.emplace(key, plan);
  return launch_fp8(g, plan, stream);
}

const char* GemmRunner::fp8_scaling() const {
  bool epilogue = false, kernel = false;
  for (const auto& [key, plan] : fp8_plans_) (plan.epilogue_scales ? epilogue : kernel) = true;
  if (epilogue && kernel) return "mixed";
  return epilogue ? "epilogue" : kernel ? "kernel" : "none";
}

}  // namespace sacc::cuda_rt
