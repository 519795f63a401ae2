#include "reference/qkv.h"

#include <cmath>

namespace sacc::ref {

double QkvView::scale() const {
  return softmax_scale != 0.0 ? softmax_scale : 1.0 / std::sqrt(static_cast<double>(shape.head_dim));
}

Status QkvView::validate() const {
  SACC_RETURN_IF_ERROR(shape.validate());
  if (!q || !k || !v) return make_error(StatusCode::INVALID_ARGUMENT, "attention: Q, K or V is missing");
  return Status::ok();
}

namespace {

Status check_tensor(const char* name, const TensorView& t, int64_t seq_len, int64_t heads, int64_t head_dim,
                    const char* heads_name) {
  if (!t.device.is_cpu()) {
    return make_error(StatusCode::INVALID_ARGUMENT, "tensor '{}' is on {}, the CPU oracle needs host memory",
                      name, t.device.to_string());
  }
  if (t.dtype != DType::F32 && t.dtype != DType::F16 && t.dtype != DType::BF16) {
    return make_error(StatusCode::INVALID_ARGUMENT,
                      "tensor '{}' has dtype {}; attention takes BF16, F16 or F32", name,
                      dtype_name(t.dtype));
  }
  if (t.shape.ndim != 3) {
    return make_error(StatusCode::INVALID_ARGUMENT, "tensor '{}' has shape {}; expected 3 dims [L, {}, d]",
                      name, t.shape.to_string(), heads_name);
  }
  if (t.shape[0] != seq_len || t.shape[1] != heads || t.shape[2] != head_dim) {
    return make_error(StatusCode::INVALID_ARGUMENT,
                      "tensor '{}' has shape {}; expected [{}, {}, {}] ([L, {}, d])", name,
                      t.shape.to_string(), seq_len, heads, head_dim, heads_name);
  }
  return Status::ok();
}

std::vector<float> widen(const TensorView& t) {
  std::vector<float> out(static_cast<size_t>(t.numel()));
  size_t flat = 0;
  for (int64_t a = 0; a < t.shape[0]; ++a) {
    for (int64_t b = 0; b < t.shape[1]; ++b) {
      const int64_t base = a * t.strides[0] + b * t.strides[1];
      for (int64_t c = 0; c < t.shape[2]; ++c) {
        out[flat++] = load_as_float(t.data, t.dtype, static_cast<size_t>(base + c * t.strides[2]));
      }
    }
  }
  return out;
}

}  // namespace

Result<HostQkv> qkv_from_tensors(const TensorView& q, const TensorView& k, const TensorView& v) {
  if (q.shape.ndim != 3) {
    return make_error(StatusCode::INVALID_ARGUMENT, "tensor 'q' has shape {}; expected 3 dims [L, Hq, d]",
                      q.shape.to_string());
  }
  if (k.shape.ndim != 3) {
    return make_error(StatusCode::INVALID_ARGUMENT, "tensor 'k' has shape {}; expected 3 dims [L, Hkv, d]",
                      k.shape.to_string());
  }
  HostQkv out;
  out.shape.seq_len = q.shape[0];
  out.shape.num_q_heads = static_cast<int>(q.shape[1]);
  out.shape.num_kv_heads = static_cast<int>(k.shape[1]);
  out.shape.head_dim = static_cast<int>(q.shape[2]);
  SACC_RETURN_IF_ERROR(
      check_tensor("q", q, out.shape.seq_len, out.shape.num_q_heads, out.shape.head_dim, "Hq"));
  SACC_RETURN_IF_ERROR(
      check_tensor("k", k, out.shape.seq_len, out.shape.num_kv_heads, out.shape.head_dim, "Hkv"));
  SACC_RETURN_IF_ERROR(
      check_tensor("v", v, out.shape.seq_len, out.shape.num_kv_heads, out.shape.head_dim, "Hkv"));
  SACC_RETURN_IF_ERROR(out.shape.validate());
  out.q = widen(q);
  out.k = widen(k);
  out.v = widen(v);
  return out;
}

}  // namespace sacc::ref
