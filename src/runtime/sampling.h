// Next-token choice from the last position's logits: greedy (temperature 0), or temperature + top-p (nucleus)
// sampling from a seeded generator, so a run with the same seed repeats exactly.
#pragma once

#include <cstdint>
#include <random>
#include <span>

#include "core/status.h"

namespace sacc {

struct SamplingOptions {
  float temperature = 0.0f;  // 0: greedy
  float top_p = 1.0f;        // (0, 1]: smallest set of tokens whose probability reaches top_p
  uint64_t seed = 0;

  Status validate() const;
};

class Sampler {
 public:
  explicit Sampler(const SamplingOptions& options) : options_(options), rng_(options.seed) {}
  // logits [V] (modified: scaled in place when sampling).
  int32_t sample(std::span<float> logits);

 private:
  SamplingOptions options_;
  std::mt19937_64 rng_;
};

// Index of the largest logit (the first one on ties).
int32_t argmax(std::span<const float> logits);

}  // namespace sacc
