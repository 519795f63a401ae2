#include "attention/attention_validation.h"

#include "attention/attention_params.h"

namespace sacc {

Status validate_pattern_spec(const PatternSpec& spec, int head) {
  switch (spec.kind) {
    case PatternKind::DENSE:
    case PatternKind::TRIANGULAR:
    case PatternKind::INTERVAL_SLASH:
    case PatternKind::BLOCK_CLUSTER:
      break;
    default:
      return make_error(StatusCode::INVALID_ARGUMENT, "index head {} has an unknown pattern kind {}", head,
                        static_cast<int>(spec.kind));
  }
  if (spec.has_alternative() && spec.kind != PatternKind::INTERVAL_SLASH) {
    return make_error(StatusCode::INVALID_ARGUMENT,
                      "index head {}: only Interval-Slash offers a Block-Cluster alternative ({})", head,
                      to_string(spec));
  }
  if (spec.sink < 0 || spec.window < 0 || spec.vertical < 0 || spec.slash < 0 || spec.blocks < 0 ||
      spec.alternative_blocks < 0 || spec.tail < 0) {
    return make_error(StatusCode::INVALID_ARGUMENT, "index head {} has a negative budget ({})", head,
                      to_string(spec));
  }
  if (!(spec.gamma >= 0.0 && spec.gamma <= 1.0) ||
      !(spec.alternative_gamma >= 0.0 && spec.alternative_gamma <= 1.0)) {
    return make_error(StatusCode::INVALID_ARGUMENT,
                      "index head {}: adaptive gamma {} or {} is outside (0, 1] (0: fixed budget)", head,
                      spec.gamma, spec.alternative_gamma);
  }
  return Status::ok();
}

Status validate_plan_arguments(std::string_view caller, const AttentionShape& shape,
                               std::span<const PatternSpec> heads, const EstimationConfig& estimation,
                               const IndexGeometry& geometry) {
  auto with_caller = [&](const Status& status) {
    return make_error(status.code(), "{}: {}", caller, status.message());
  };
  if (Status valid = shape.validate(); !valid) return with_caller(valid);
  if (Status valid = geometry.validate(); !valid) return with_caller(valid);
  if (geometry.seq_len != shape.seq_len) {
    return make_error(StatusCode::INVALID_ARGUMENT, "{}: index geometry length {} != attention length {}",
                      caller, geometry.seq_len, shape.seq_len);
  }
  if (shape.seq_len > kMaxAttentionSeqLen) {
    return make_error(StatusCode::UNSUPPORTED, "{}: sequence length {} exceeds the limit of 2^30", caller,
                      shape.seq_len);
  }
  const int expected_heads = geometry.shared_per_kv_group ? shape.num_kv_heads : shape.num_q_heads;
  if (geometry.num_heads != expected_heads) {
    return make_error(StatusCode::INVALID_ARGUMENT, "{}: index geometry has {} heads, expected {} ({})",
                      caller, geometry.num_heads, expected_heads,
                      geometry.shared_per_kv_group ? "one per KV group" : "one per query head");
  }
  if (heads.size() != 1 && heads.size() != static_cast<size_t>(expected_heads)) {
    return make_error(StatusCode::INVALID_ARGUMENT, "{}: {} head patterns for {} index heads (give 1 or {})",
                      caller, heads.size(), expected_heads, expected_heads);
  }
  for (size_t h = 0; h < heads.size(); ++h) {
    if (Status valid = validate_pattern_spec(heads[h], static_cast<int>(h)); !valid)
      return with_caller(valid);
  }
  if (estimation.last_queries < 1 || estimation.sink_keys < 0 || estimation.local_diagonals < 0) {
    return make_error(StatusCode::INVALID_ARGUMENT,
                      "{}: estimation needs last_queries >= 1 and non-negative sink / local counts "
                      "(got {}, {}, {})",
                      caller, estimation.last_queries, estimation.sink_keys, estimation.local_diagonals);
  }
  return Status::ok();
}

}  // namespace sacc
