// Status conversion and descriptor RAII shared by the bf16 and FP8 cuBLASLt GEMMs (internal to runtime/cuda).
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include "core/status.h"

namespace sacc::cuda_rt {

inline Status lt_status(cublasStatus_t status, const char* what) {
  if (status == CUBLAS_STATUS_SUCCESS) return Status::ok();
  return make_error(StatusCode::CUDA_ERROR, "{}: cuBLASLt status {}", what, static_cast<int>(status));
}

#define SACC_LT_TRY(expr) SACC_RETURN_IF_ERROR(::sacc::cuda_rt::lt_status((expr), #expr))

// An error while `stream` is being captured into a CUDA graph: `what` (an algorithm search, an allocation)
// would run once at capture time and never on replay, or is not allowed there at all. The caller runs the
// shape un-captured first.
inline Status refuse_during_capture(cudaStream_t stream, const char* what) {
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(stream, &capture) != cudaSuccess)
    return make_error(StatusCode::CUDA_ERROR, "cudaStreamIsCapturing failed before {}", what);
  if (capture != cudaStreamCaptureStatusNone)
    return make_error(StatusCode::INTERNAL, "{} while a CUDA graph is being captured", what);
  return Status::ok();
}

// The descriptors of one call.
struct LtDescriptors {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  LtDescriptors() = default;
  LtDescriptors(const LtDescriptors&) = delete;
  LtDescriptors& operator=(const LtDescriptors&) = delete;
  ~LtDescriptors() {
    if (op) cublasLtMatmulDescDestroy(op);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (c) cublasLtMatrixLayoutDestroy(c);
  }
};

// cuBLASLt's best algorithm for the call `d` within `workspace_bytes`; false when it offers none.
inline Result<bool> find_algo(cublasLtHandle_t handle, const LtDescriptors& d, size_t workspace_bytes,
                              cublasLtMatmulAlgo_t* algo) {
  cublasLtMatmulPreference_t pref = nullptr;
  SACC_LT_TRY(cublasLtMatmulPreferenceCreate(&pref));
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace_bytes,
                                       sizeof(workspace_bytes));
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  const cublasStatus_t st =
      cublasLtMatmulAlgoGetHeuristic(handle, d.op, d.a, d.b, d.c, d.c, pref, 1, &result, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  SACC_LT_TRY(st);
  if (found != 0) *algo = result.algo;
  return found != 0;
}

}  // namespace sacc::cuda_rt
