// The attention benchmark (issue 3 item 7): types shared by its parts.
//   attention_bench.cpp          options, the sweep, timing
//   attention_bench_methods.cpp  what each row runs: baselines, our dense, sparse patterns (equal-cost
//   budgets) attention_bench_verify.cpp   correctness gates: oracle on a small shape, dense vs cuDNN on every
//   timed shape attention_bench_report.cpp   Markdown + JSON
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "attention/attention_params.h"

namespace sacc::bench {

enum class Method { EAGER, DENSE, CUDNN, TRIANGULAR, INTERVAL_SLASH, BLOCK_CLUSTER, ADAPTIVE };

const char* method_name(Method method);  // "eager", "dense", "cudnn", "triangular", ...
bool is_sparse(Method method);

struct BenchShape {
  std::string name;  // "llama-3.1-8b", "d64"
  int num_q_heads = 0, num_kv_heads = 0, head_dim = 0;
  AttentionShape at(int64_t seq_len) const { return {seq_len, num_q_heads, num_kv_heads, head_dim}; }
};

// Causal dense attention FLOPs: 2 GEMMs x 2 flops per MAC over the L(L+1)/2 causal pairs of every query head.
inline double causal_flops(const AttentionShape& s) {
  const double L = static_cast<double>(s.seq_len);
  return 4.0 * s.num_q_heads * s.head_dim * L * (L + 1.0) / 2.0;
}

// One row of the results table.
struct Row {
  std::string shape;
  int64_t seq_len = 0;
  Method method = Method::DENSE;
  std::string pattern;        // what the row ran, e.g. "layer 14 budgets", "triangular:128,9472"
  std::string status = "ok";  // "ok", or why no time is given (OOM, unsupported, failed check, out of time)
  std::vector<double> total_ms;  // per timed repetition: plan + run
  std::vector<double> plan_ms;   // per timed repetition: estimation + indexing (sparse rows)
  double median_ms = 0.0;
  double median_plan_ms = 0.0;
  double tflops = 0.0;  // causal dense FLOPs / median time ("effective" for sparse rows)
  double visited_tflops =
      0.0;               // sparse: FLOPs of the visited tiles and columns / median run time (without plan)
  double density = 1.0;  // tiles computed / causal tiles (1 for dense methods)
  double estimation_share = 0.0;  // median plan time / median total time
  double speedup_vs_cudnn = 0.0;  // cuDNN median / this median, same shape and L
  double check_error = -1.0;   // relative L2 error of O against cuDNN on this shape (dense rows), -1 if none
  double workspace_mib = 0.0;  // device memory the method allocated beyond Q/K/V/O (allocator peak)
};

struct RunInfo {
  std::string gpu, driver, cuda_runtime, cudnn, commit, date, command, inputs;
  std::vector<std::string> verification;  // one line per small-shape oracle check
};

}  // namespace sacc::bench
