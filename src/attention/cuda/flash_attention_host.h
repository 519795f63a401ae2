// Host-memory convenience around attention_run_cuda for the CLI and tests: uploads bf16 Q/K/V and an optional
// host SparseIndex, runs the flash kernel on the current CUDA device, downloads O and the LSE.
// Defined only in CUDA builds (callers guard with #ifdef SACC_WITH_CUDA); the header itself needs no CUDA.
#pragma once

#include <cstdint>
#include <vector>

#include "attention/attention_params.h"
#include "attention/flash_choice.h"
#include "attention/sparse_index.h"
#include "core/status.h"

namespace sacc {

struct FlashHostOutput {
  std::vector<uint16_t> o;  // [L, Hq, d] bf16 bits, contiguous
  std::vector<float> lse;   // [Hq, L] natural log
  float kernel_ms = 0.0f;   // one run, CUDA events, index upload excluded (not a benchmark)
};

// q: [L, Hq, d], k and v: [L, Hkv, d], bf16 bits, contiguous. maybe_index null = dense causal. `kernel`: the
// selector's choice (runtime/attention_selector.h). softmax_scale 0 = 1/sqrt(d).
Result<FlashHostOutput> flash_attention_host(const AttentionShape& shape, const uint16_t* q,
                                             const uint16_t* k, const uint16_t* v,
                                             const SparseIndex* maybe_index, FlashKernelChoice kernel,
                                             float softmax_scale = 0.0f);

}  // namespace sacc
