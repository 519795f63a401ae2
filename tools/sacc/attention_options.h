// Options `sacc attention` shares between running on a file and the synthetic demo.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "attention/pattern.h"
#include "attention/sparse_index.h"
#include "core/status.h"
#include "reference/synthetic.h"

namespace sacc::cli {

struct IndexOptions {
  int block_q = kTileBlockQ;  // Bq
  int block_k = kTileBlockK;  // Bk
  bool shared_per_kv_group = false;
  bool clamp_budgets = false;  // reduce budgets larger than the input instead of failing
  EstimationConfig estimation;

  IndexGeometry geometry(int64_t seq_len, int num_q_heads, int num_kv_heads) const;
};

// A run on a Q/K/V file (`--in`).
struct FileOptions {
  std::string input;
  std::string output;
  std::vector<std::string> patterns;  // one for a file run; --demo takes several
  std::string device = "cpu";
  bool dump_index = false;
  bool compare = false;
  double softmax_scale = 0.0;
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

// Makes the demo's synthetic input (bf16-valued Q/K/V of the demo's shape and seed) and prints one line on
// what it planted.
Result<ref::SyntheticInput> make_demo_input(const DemoOptions& demo);

// The demo's patterns: demo.patterns if given, else one per kind at demo.target_density plus adaptive
// variants; budgets clamped with --clamp-budgets.
Result<std::vector<PatternSpec>> demo_patterns(const DemoOptions& demo, const IndexOptions& options,
                                               const IndexGeometry& geometry);

// Runs every pattern on a synthetic long-context input and prints density, attention recall, relative error
// of O against dense and time per pattern.
Status run_attention_demo(const DemoOptions& demo, const IndexOptions& options);

}  // namespace sacc::cli
