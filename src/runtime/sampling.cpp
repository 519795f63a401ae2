#include "runtime/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace sacc {

Status SamplingOptions::validate() const {
  if (!(temperature >= 0.0f) || !std::isfinite(temperature))
    return make_error(StatusCode::INVALID_ARGUMENT, "--temperature {} must be >= 0", temperature);
  if (!(top_p > 0.0f && top_p <= 1.0f))
    return make_error(StatusCode::INVALID_ARGUMENT, "--top-p {} must be in (0, 1]", top_p);
  return Status::ok();
}

int32_t argmax(std::span<const float> logits) {
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

int32_t Sampler::sample(std::span<float> logits) {
  if (options_.temperature <= 0.0f || logits.size() == 1) return argmax(logits);
  const float max_logit = *std::max_element(logits.begin(), logits.end());
  std::vector<int32_t> order(logits.size());
  double total = 0.0;
  for (size_t i = 0; i < logits.size(); ++i) {
    logits[i] = std::exp((logits[i] - max_logit) / options_.temperature);
    total += logits[i];
  }
  std::iota(order.begin(), order.end(), 0);
  // Nucleus: keep the most probable tokens until their mass reaches top_p (ties broken by id, so the kept set
  // does not depend on the sort's stability).
  size_t kept = order.size();
  if (options_.top_p < 1.0f) {
    std::sort(order.begin(), order.end(),
              [&](int32_t a, int32_t b) { return logits[a] != logits[b] ? logits[a] > logits[b] : a < b; });
    double mass = 0.0;
    kept = 0;
    while (kept < order.size()) {
      mass += logits[order[kept++]] / total;
      if (mass >= options_.top_p) break;
    }
  }
  double kept_total = 0.0;
  for (size_t i = 0; i < kept; ++i) kept_total += logits[order[i]];
  const double target = std::uniform_real_distribution<double>(0.0, kept_total)(rng_);
  double running = 0.0;
  for (size_t i = 0; i < kept; ++i) {
    running += logits[order[i]];
    if (running > target) return order[i];
  }
  return order[kept - 1];
}

}  // namespace sacc
