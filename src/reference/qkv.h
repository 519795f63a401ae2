// Host Q/K/V for the CPU oracle: fp32 values (what bf16/fp16 inputs widen to exactly), contiguous row-major.
// Every oracle function takes a QkvView so callers can pass their own buffers without copying.
#pragma once

#include <vector>

#include "attention/attention_params.h"
#include "core/tensor.h"

namespace sacc::ref {

struct QkvView {
  AttentionShape shape;
  const float* q = nullptr;    // [L, Hq, d]
  const float* k = nullptr;    // [L, Hkv, d]
  const float* v = nullptr;    // [L, Hkv, d]
  double softmax_scale = 0.0;  // 0: 1/sqrt(d)

  double scale() const;
  Status validate() const;
};

// Owning variant (what the synthetic generator and the safetensors loader produce).
struct HostQkv {
  AttentionShape shape;
  std::vector<float> q;  // [L, Hq, d]
  std::vector<float> k;  // [L, Hkv, d]
  std::vector<float> v;  // [L, Hkv, d]

  QkvView view() const { return {shape, q.data(), k.data(), v.data(), 0.0}; }
};

// Widens host tensors q [L, Hq, d], k and v [L, Hkv, d] (F32, F16 or BF16, any strides) to fp32, checking
// that the shapes agree; errors name the offending tensor.
Result<HostQkv> qkv_from_tensors(const TensorView& q, const TensorView& k, const TensorView& v);

}  // namespace sacc::ref
