#include "runtime/eval_hooks.h"

#include <algorithm>

#include "core/dtype.h"

namespace sacc {
namespace {

void widen(const uint16_t* bf16, int64_t count, std::vector<float>& out) {
  out.resize(static_cast<size_t>(count));
  std::transform(bf16, bf16 + count, out.begin(), bf16_to_float);
}

}  // namespace

int64_t step_logit_rows(const BackendOptions& options, int64_t n, int64_t start) {
  return start == 0 ? std::clamp<int64_t>(options.prefill_logit_rows, 1, std::max<int64_t>(n, 1)) : 1;
}

void QkvObserverFeed::deliver(int layer, int64_t n, QkvWidths widths, const float* q, const uint16_t* k,
                              const uint16_t* v) {
  widen(k, n * widths.kv, k_);
  widen(v, n * widths.kv, v_);
  observer_(layer, q, k_.data(), v_.data());
}

void QkvObserverFeed::deliver(int layer, int64_t n, QkvWidths widths, const uint16_t* q, const uint16_t* k,
                              const uint16_t* v) {
  widen(q, n * widths.q, q_);
  deliver(layer, n, widths, q_.data(), k, v);
}

}  // namespace sacc
