// The benchmark's correctness gates (BENCH.md rule 1: correct before fast). A method that fails a gate gets
// no time in the results.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "attention_bench.h"
#include "attention_bench_methods.h"

namespace sacc::bench {

// Small shape: the bench shape's heads at an awkward length (not a tile multiple), structured synthetic input
// so the estimators find real verticals, slashes and blocks.
constexpr int64_t kCheckLength = 2113;

// Large shapes: relative L2 error allowed between our dense (or eager) and cuDNN on the same input. Each
// implementation rounds P and O to bf16 (unit roundoff 2^-8, so a few 1e-3 between two of them); a masking or
// indexing error moves O by 0.1 or more.
constexpr double kLargeShapeTolerance = 0.02;

struct SmallShapeCheck {
  std::vector<std::string> lines;  // one per method, for the results file
  std::set<Method> failed;
};

// Every method against the CPU fp64 oracle on the same input: dense methods against dense attention; sparse
// ones against the oracle's attention over exactly the index the GPU built (dense with the equivalent mask).
// O must be within 2u * max|V| elementwise (u = 2^-8: P and O are rounded to bf16 once each), LSE within
// 1e-3.
SmallShapeCheck check_small_shape(const BenchShape& shape, const LayerBudgets& budgets,
                                  const std::vector<Method>& methods, int device);

}  // namespace sacc::bench
