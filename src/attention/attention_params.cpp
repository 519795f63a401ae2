#include "attention/attention_params.h"

#include <cmath>

namespace sacc {

Status AttentionShape::validate() const {
  if (seq_len < 1)
    return make_error(StatusCode::INVALID_ARGUMENT, "attention: sequence length {} < 1", seq_len);
  if (num_q_heads < 1 || num_kv_heads < 1) {
    return make_error(StatusCode::INVALID_ARGUMENT,
                      "attention: need >= 1 query and KV head (got Hq={}, Hkv={})", num_q_heads,
                      num_kv_heads);
  }
  if (num_q_heads % num_kv_heads != 0) {
    return make_error(
        StatusCode::INVALID_ARGUMENT,
        "attention: query heads ({}) must be a multiple of KV heads ({}) for grouped-query attention",
        num_q_heads, num_kv_heads);
  }
  if (head_dim < 1) return make_error(StatusCode::INVALID_ARGUMENT, "attention: head dim {} < 1", head_dim);
  return Status::ok();
}

AttentionParams AttentionParams::with_defaults() const {
  AttentionParams p = *this;
  const int64_t d = shape.head_dim;
  if (!p.q_token_stride) p.q_token_stride = static_cast<int64_t>(shape.num_q_heads) * d;
  if (!p.q_head_stride) p.q_head_stride = d;
  if (!p.kv_token_stride) p.kv_token_stride = static_cast<int64_t>(shape.num_kv_heads) * d;
  if (!p.kv_head_stride) p.kv_head_stride = d;
  if (!p.o_token_stride) p.o_token_stride = static_cast<int64_t>(shape.num_q_heads) * d;
  if (!p.o_head_stride) p.o_head_stride = d;
  if (p.softmax_scale == 0.0f) p.softmax_scale = 1.0f / std::sqrt(static_cast<float>(d));
  return p;
}

Status AttentionParams::require_whole_prompt(const char* who) const {
  if (q_begin == 0) return Status::ok();
  return make_error(StatusCode::UNSUPPORTED,
                    "{}: queries from row {} (only the dense flash kernels take the rest of a prompt)", who,
                    q_begin);
}

}  // namespace sacc
