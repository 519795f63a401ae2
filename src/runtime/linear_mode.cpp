#include "runtime/linear_mode.h"

namespace sacc {

Result<LinearMode> parse_linear_mode(const std::string& text) {
  if (text == "bf16") return LinearMode::BF16;
  if (text == "fp8") return LinearMode::FP8;
  return make_error(StatusCode::INVALID_ARGUMENT, "--linear '{}': expected bf16 or fp8", text);
}

const char* linear_mode_name(LinearMode mode) {
  return mode == LinearMode::FP8 ? "fp8" : "bf16";
}

uint64_t layer_weight_bytes(const ModelConfig& c, LinearMode mode) {
  const uint64_t D = c.hidden, q = c.q_dim(), kv = c.kv_dim(), F = c.ffn;
  const uint64_t small = 2 * D + (c.qkv_bias ? q + 2 * kv : 0);  // norms, biases
  const uint64_t linear = D * (q + 2 * kv) + q * D + 3 * D * F;
  const uint64_t output_channels = (q + 2 * kv) + D + 2 * F + D;  // Q, K, V, O, gate/up, down
  if (mode == LinearMode::FP8) return small * 2 + linear + output_channels * 4;
  return (small + linear) * 2;
}

}  // namespace sacc
