// Sparse indices the host can build without looking at Q/K (for the CPU backend): dense ("all blocks") and
// triangular heads. Estimated patterns (interval-slash, block-cluster) need the GPU planner.
#pragma once

#include "attention/attention_params.h"
#include "attention/sparse_index.h"

namespace sacc {

// The index of one layer at length L; UNSUPPORTED naming the first head whose pattern needs estimation.
Result<SparseIndex> build_host_index(const LayerPatterns& patterns, const IndexGeometry& geometry);

}  // namespace sacc
