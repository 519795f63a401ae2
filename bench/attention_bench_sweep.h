// `attention_bench --density-sweep`: the flash kernels on fixed-density indices (no plan step), so the time
// is the kernel's alone. For each pattern (triangular, interval-slash, block-cluster), density from 0.02 to
// 1.0, d128 and d64: median time, visited-tile TFLOP/s (kernel FLOPs of the listed tiles and gathered columns
// / time) and its ratio to our dense kernel's rate on the same shape and length.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "attention/sparse_index.h"
#include "attention_bench.h"

namespace sacc::bench {

enum class SweepPattern { TRIANGULAR, INTERVAL_SLASH, BLOCK_CLUSTER };
const char* sweep_pattern_name(SweepPattern pattern);

// An index of `geometry` (per query head, the kernel tile) whose every slot keeps about `density` of its
// causal key tiles, in the shape of `pattern`: triangular = block 0 and a window of blocks ending at the
// diagonal; interval-slash = half the budget as key blocks at slash distances spread from the diagonal, half
// as gathered single columns evenly spaced over the slot's keys; block-cluster = block 0, the diagonal and
// random others. Deterministic in `seed`. density >= 1 gives the causal-dense index.
SparseIndex fixed_density_index(const IndexGeometry& geometry, SweepPattern pattern, double density,
                                uint64_t seed);

struct SweepOptions {
  std::vector<std::string> shapes = {"llama-3.1-8b", "d64"};
  std::vector<int64_t> lengths = {32768, 131072};
  std::vector<double> densities = {0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0};
  int reps = 5, reps_long = 3;
  std::string out = "bench/results/density_sweep_h200";
  std::string commit = "unknown";
  int device = 0;
};

// Verifies (oracle at a small length, every pattern), times, prints and writes `out`.md; the exit code.
int run_density_sweep(const SweepOptions& options, const std::vector<BenchShape>& shapes,
                      const std::string& command);

}  // namespace sacc::bench
