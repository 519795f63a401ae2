// Status conversion and descriptor RAII shared by the bf16 and FP8 cuBLASLt GEMMs (internal to runtime/cuda).
#pragma once

#include <cublasLt.h>

#include "core/status.h"

namespace sacc::cuda_rt {

inline Status lt_status(cublasStatus_t status, const char* what) {
  if (status == CUBLAS_STATUS_SUCCESS) return Status::ok();
  return make_error(StatusCode::CUDA_ERROR, "{}: cuBLASLt status {}", what, static_cast<int>(status));
}

#define SACC_LT_TRY(expr) SACC_RETURN_IF_ERROR(::sacc::cuda_rt::lt_status((expr), #expr))

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

}  // namespace sacc::cuda_rt
