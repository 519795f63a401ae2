// Row-major linear layers on cuBLASLt: Y[rows, out] (+)= X[rows, in] · W[out, in]^T with bf16 inputs, fp32
// accumulation, and a bf16 or fp32 output. The heuristic's choice is cached per shape, so chunked prefill and
// decode pay the algorithm search once.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <map>
#include <tuple>

#include "core/cuda/device_memory.h"
#include "core/status.h"

namespace sacc::cuda_rt {

struct GemmArgs {
  const uint16_t* x = nullptr;  // [rows, in] bf16, row stride ldx (>= in)
  const uint16_t* w = nullptr;  // [out, in] bf16, contiguous
  void* y = nullptr;            // [rows, out], row stride ldy (>= out); bf16, or fp32 when y_f32
  int64_t rows = 0, in = 0, out = 0;
  int64_t ldx = 0, ldy = 0;  // 0: contiguous
  bool y_f32 = false;
  bool accumulate = false;  // Y += X W^T (the residual add in the epilogue)
};

class GemmRunner {
 public:
  static Result<GemmRunner*> create(int device);  // owned by the caller (delete)
  ~GemmRunner();
  Status run(const GemmArgs& args, cudaStream_t stream);

 private:
  GemmRunner() = default;
  using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, bool, bool>;
  cublasLtHandle_t handle_ = nullptr;
  DeviceBuffer workspace_;
  std::map<Key, cublasLtMatmulAlgo_t> algos_;
};

}  // namespace sacc::cuda_rt
