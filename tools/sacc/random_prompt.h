// Seeded random prompts for benchmarks (`sacc generate --prompt-tokens`, `sacc bench`): speed and memory do
// not depend on which ids a prompt holds, only on how many.
#pragma once

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "model/model_config.h"

namespace sacc::cli {

// `length` ids drawn from the first 32000 of the vocabulary, BOS first when the model has one.
inline std::vector<int32_t> random_prompt(int64_t length, const ModelConfig& config, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> pick(
      0, static_cast<int32_t>(std::min<int64_t>(config.vocab, 32000) - 1));
  std::vector<int32_t> ids(length);
  for (int32_t& id : ids) id = pick(rng);
  if (config.bos_token >= 0 && !ids.empty()) ids[0] = config.bos_token;
  return ids;
}

}  // namespace sacc::cli
