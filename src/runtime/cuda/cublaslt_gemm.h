// Row-major linear layers on cuBLASLt: Y[rows, out] (+)= X[rows, in] · W[out, in]^T with bf16 inputs, fp32
// accumulation, and a bf16 or fp32 output; or with e4m3 inputs scaled per row of X and per row of W (FP8
// linear layers, run_fp8). The heuristic's choice is cached per shape (bf16: per power-of-two bucket of the
// row count), so chunked prefill, suffix prefills and decode pay the algorithm search once. A call on a
// stream being captured into a CUDA graph never searches or allocates: a shape not run before (un-captured)
// is an error there, which abandons the capture (decode_graphs.h).
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

// Y[rows, out] (+)= (sx[r] * sw[o]) * sum_k X8[r, k] W8[o, k]: e4m3 operands with fp32 scales, fp32
// accumulation, bf16 output.
struct Fp8GemmArgs {
  const uint8_t* x = nullptr;      // [rows, in] e4m3, contiguous
  const float* x_scale = nullptr;  // [rows] per-token scales
  const uint8_t* w = nullptr;      // [out, in] e4m3, contiguous
  const float* w_scale = nullptr;  // [out] per-output-channel scales
  uint16_t* y = nullptr;           // [rows, out] bf16, row stride ldy (>= out)
  int64_t rows = 0, in = 0, out = 0;
  int64_t ldy = 0;  // 0: contiguous
  bool accumulate = false;
};

class GemmRunner {
 public:
  static Result<GemmRunner*> create(int device);  // owned by the caller (delete)
  ~GemmRunner();
  Status run(const GemmArgs& args, cudaStream_t stream);
  // in a multiple of 16 (cuBLASLt's FP8 rule), pointers 16-byte aligned. The scales go to cuBLASLt's epilogue
  // (outer-vector scale mode) where it has an algorithm for the shape; otherwise the GEMM writes the unscaled
  // product into a scratch buffer of the runner and dequantize_outer applies the scales (and the residual).
  Status run_fp8(const Fp8GemmArgs& args, cudaStream_t stream);
  // Tests: false forces the separate dequantisation kernel for shapes not run yet.
  void allow_fp8_epilogue_scales(bool allow) { fp8_epilogue_allowed_ = allow; }
  // How the FP8 GEMMs run so far applied their scales: "epilogue", "kernel", "mixed" or "none" (none yet).
  const char* fp8_scaling() const;
  // cuBLASLt heuristic searches the bf16 GEMMs have run so far (tests: row counts of one bucket share one).
  int64_t algorithm_searches() const { return algorithm_searches_; }
  // The device buffers the GEMMs write besides Y (a captured step bakes their addresses in): cuBLASLt's
  // workspace and the FP8 products' scratch (null until needed; it grows, and moves, with a larger shape).
  const void* workspace() const { return workspace_.data(); }
  const void* fp8_scratch() const { return fp8_raw_.data(); }
  // Times the FP8 scratch was allocated anew (possibly at its old address).
  uint64_t fp8_scratch_allocations() const { return fp8_raw_allocations_; }

 private:
  GemmRunner() = default;
  using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, bool, bool>;
  struct Fp8Plan {
    bool epilogue_scales = false;
    cublasLtMatmulAlgo_t algo{};
  };
  using Fp8Key = std::tuple<int64_t, int64_t, int64_t, int64_t, bool>;
  Result<Fp8Plan> plan_fp8(const Fp8GemmArgs& args, bool epilogue_scales);
  Status launch_fp8(const Fp8GemmArgs& args, const Fp8Plan& plan, cudaStream_t stream);

  int device_ = 0;
  cublasLtHandle_t handle_ = nullptr;
  DeviceBuffer workspace_;
  // Keyed by the row count's bucket (or the exact count where the bucket's algorithm refuses it); FP8 plans
  // by exact shape.
  std::map<Key, cublasLtMatmulAlgo_t> algos_;
  std::map<Fp8Key, Fp8Plan> fp8_plans_;
  DeviceBuffer fp8_raw_;  // [rows, out] bf16 unscaled products (only the separate-kernel path)
  uint64_t fp8_raw_allocations_ = 0;
  bool fp8_epilogue_allowed_ = true;
  int64_t algorithm_searches_ = 0;
};

}  // namespace sacc::cuda_rt
