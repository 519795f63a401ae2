// Counter-based random weights: value = f(seed, tensor, element), identical on host and device, so the CPU
// and CUDA backends of a `random:` model hold the same numbers without copying them.
#pragma once

#include <cstdint>

#include "core/host_device.h"

namespace sacc {

// How one tensor's random values are drawn: center + scale * u, u uniform in [-1, 1).
struct RandomFill {
  uint64_t stream = 0;  // hash of (seed, tensor ordinal)
  float center = 0.0f;
  float scale = 0.0f;
};

SACC_HOST_DEVICE inline uint64_t mix64(uint64_t x) {
  // splitmix64 finaliser: every input bit affects every output bit.
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  x ^= x >> 31;
  return x;
}

SACC_HOST_DEVICE inline float random_value(const RandomFill& fill, uint64_t index) {
  const uint64_t bits = mix64(fill.stream ^ mix64(index + 0x9E3779B97F4A7C15ull));
  const float u = static_cast<float>(bits >> 40) * (2.0f / 16777216.0f) - 1.0f;
  return fill.center + fill.scale * u;
}

}  // namespace sacc
