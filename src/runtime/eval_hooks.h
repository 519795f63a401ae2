// The evaluation hooks of BackendOptions (maybe_qkv_observer, prefill_logit_rows) as every backend applies
// them, so the CPU and CUDA backends cannot disagree on which steps they touch or on what the observer sees.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "runtime/backend.h"

namespace sacc {

// Rows of logits a step over n tokens from position `start` returns: options.prefill_logit_rows (clamped to
// [1, n]) for a prefill from position 0, 1 for anything else (decode).
int64_t step_logit_rows(const BackendOptions& options, int64_t n, int64_t start);

// Widths of one layer's attention inputs as the backend stores them, per row: q = Hq * d, kv = Hkv * d.
struct QkvWidths {
  int64_t q = 0, kv = 0;
};

// Hands one layer's Q/K/V of a prefill to options.maybe_qkv_observer in fp32, widening bf16 on the host; the
// fp32 buffers are reused from layer to layer (O(n) per layer, never O(n^2)).
class QkvObserverFeed {
 public:
  explicit QkvObserverFeed(QkvObserver observer) : observer_(std::move(observer)) {}

  // Whether a step from position `start` reports its layers: an observer is set and the step is a prefill.
  bool active(int64_t start) const { return observer_ && start == 0; }

  // n rows: q [n, widths.q] fp32 as the CPU's attention reads it; k, v [n, widths.kv] bf16 as the KV cache
  // holds them.
  void deliver(int layer, int64_t n, QkvWidths widths, const float* q, const uint16_t* k, const uint16_t* v);
  // The same with q in bf16 too (the GPU's activations, copied to the host).
  void deliver(int layer, int64_t n, QkvWidths widths, const uint16_t* q, const uint16_t* k,
               const uint16_t* v);

 private:
  QkvObserver observer_;
  std::vector<float> q_, k_, v_;  // [n, widths.q], [n, widths.kv] x 2
};

}  // namespace sacc
