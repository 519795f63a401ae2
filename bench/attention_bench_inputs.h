// Structured long-context inputs for the attention benchmark, generated on the device before every
// repetition.
//
// Uniform random Q/K/V make attention nearly uniform: every estimator then picks noise, Interval-Slash's
// slashes land at random offsets and their key blocks cover almost everything, so sparse rows measure a
// degenerate case. These inputs plant what real heads show (the same recipe as reference/synthetic.h, built
// for any length at memory speed): sink keys, a few vertical columns, a few slash offsets, and local
// attention that decays with distance (rotary pairs with geometrically spaced frequencies from 1 down to 1/L,
// as RoPE's long-range decay). The planted positions are fixed per (shape, L, seed); the noise on every
// element is fresh per repetition.
#pragma once

#include <cstdint>

#include "attention/attention_params.h"
#include "attention_bench_fill.h"
#include "core/cuda/device_memory.h"

namespace sacc::bench {

class StructuredInput {
 public:
  static Result<StructuredInput> create(const AttentionShape& shape, uint64_t seed, int device);
  const StructuredTables& tables() const { return tables_; }

 private:
  DeviceBuffer theta_, k_rotary_, q_weights_, column_weight_;
  StructuredTables tables_;
};

}  // namespace sacc::bench
