// Options `sacc attention` shares between running on a file and the synthetic demo.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "attention/pattern.h"
#include "attention/sparse_index.h"
#include "core/status.h"

namespace sacc::cli {

struct IndexOptions {
  int block_q = 128;  // Bq
  int block_k = 64;   // Bk
  bool shared_per_kv_group = false;
  bool clamp_budgets = false;  // reduce budgets larger than the input instead of failing
  EstimationConfig estimation;

  IndexGeometry geometry(int64_t seq_len, int num_q_heads, int num_kv_heads) const;
};

struct DemoOptions {
  int64_t seq_len = 8192;
  int num_q_heads = 4;  // one Llama-like KV group (4 query heads per KV head) keeps the demo quick on 2 cores
  int num_kv_heads = 1;
  int head_dim = 128;
  uint64_t seed = 1;
  std::vector<std::string>
      patterns;  // empty: one pattern per kind at `target_density`, and adaptive variants
  double target_density = 0.15;
};

// Runs every pattern on a synthetic long-context input and prints density, attention recall, relative error
// of O against dense and time per pattern.
Status run_attention_demo(const DemoOptions& demo, const IndexOptions& options);

}  // namespace sacc::cli
