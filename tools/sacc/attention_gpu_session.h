// Q/K/V resident on one GPU, and one pattern at a time planned and run over them: the device half of
// `sacc attention --device cuda`. Defined only in CUDA builds (callers guard with #ifdef SACC_WITH_CUDA); the
// header itself needs no CUDA.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "attention/attention_params.h"
#include "attention/pattern.h"
#include "attention/sparse_index.h"
#include "core/cuda/device_memory.h"
#include "core/status.h"
#include "core/tensor.h"
#include "tools/sacc/attention_io.h"

namespace sacc::cli {

// Makes `device` current after checking it exists; errors say what to do instead (--device cpu).
Status select_cuda_device(Device device);

// The CUDA kernels' limits on an input, checked before anything is uploaded.
Status check_cuda_supports(const AttentionShape& shape, const IndexGeometry& geometry,
                           const PatternSpec& spec);

// The oracle's refusal of budgets larger than the input (without --clamp-budgets), applied before plan(),
// which would clamp them silently: the CPU and CUDA paths accept the same commands.
Status check_budgets_fit(const PatternSpec& spec, const IndexGeometry& geometry);

// The fp32 values rounded to bf16 (RNE): what the GPU reads.
std::vector<uint16_t> to_bf16_bits(const std::vector<float>& values);

struct GpuPatternRun {
  SparseIndex index;       // the index the kernel read, copied back (dense: the causal-dense index)
  AttentionOutput output;  // o [L, Hq, d] bf16, lse [Hq, L]
  float plan_ms = 0.0f;    // estimation + index build on the GPU (0 for dense)
  float attention_ms = 0.0f;
};

class GpuAttention {
 public:
  // Uploads q [L, Hq, d], k and v [L, Hkv, d] (bf16 bits, contiguous) to the current device.
  static Result<GpuAttention> create(const AttentionShape& shape, const std::vector<uint16_t>& q,
                                     const std::vector<uint16_t>& k, const std::vector<uint16_t>& v,
                                     double softmax_scale);

  // Plans (sparse patterns: plan() on the GPU) and runs one pattern for all heads, then downloads O, LSE and
  // the index. One untimed warm-up pass first (lazy module loading would otherwise land in the timed one);
  // the second pass is timed with CUDA events, with no host synchronisation between plan and run.
  Result<GpuPatternRun> run(const PatternSpec& spec, const IndexGeometry& geometry,
                            const EstimationConfig& estimation);

 private:
  AttentionShape shape_;
  float softmax_scale_ = 0.0f;  // 0: 1/sqrt(d)
  int device_ = 0;
  DeviceBuffer q_, k_, v_;  // [L, Hq, d], [L, Hkv, d], [L, Hkv, d] bf16
  DeviceBuffer o_;          // [L, Hq, d] bf16
  DeviceBuffer lse_;        // [Hq, L] fp32
};

// "cuda:0 (NVIDIA H200)".
std::string cuda_device_label(Device device);

}  // namespace sacc::cli
