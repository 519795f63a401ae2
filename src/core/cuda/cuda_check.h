// CUDA error handling as Status values. Include only from CUDA-enabled translation units.
#pragma once

#include <cuda_runtime_api.h>

#include "core/out_of_memory.h"
#include "core/status.h"

namespace sacc {

inline Status cuda_status(cudaError_t error, const char* what) {
  if (error == cudaSuccess) return Status::ok();
  if (error == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    return allocation_failed(what, 0, "the GPU", 0, cudaGetErrorString(error));
  }
  return make_error(StatusCode::CUDA_ERROR, "{}: {} ({})", what, cudaGetErrorString(error),
                    cudaGetErrorName(error));
}

}  // namespace sacc

// SACC_CUDA_TRY(cudaMemcpy(...)); returns a Status from the enclosing function on failure.
#define SACC_CUDA_TRY(expr) SACC_RETURN_IF_ERROR(::sacc::cuda_status((expr), #expr))
// After a kernel launch: checks the launch configuration error.
#define SACC_CUDA_TRY_LAUNCH(name) SACC_RETURN_IF_ERROR(::sacc::cuda_status(cudaGetLastError(), name))
