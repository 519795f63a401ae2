// Exact causal attention probabilities, row by row in fp64, for the oracle's measures (recall, the best block
// index): computed once here so every measure reads the same softmax.
#pragma once

#include <cstdint>
#include <functional>

#include "reference/qkv.h"

namespace sacc::ref {

// Rows handed to one call of a ProbabilityVisitor: at most this many consecutive rows of one query head.
constexpr int kProbabilityRowChunk = 4;

// visit(q_head, item, row0, rows, p, stride): rows [row0, row0 + rows) of query head q_head, all inside work
// item `item` = row0 / rows_per_item; p[r * stride + j] is row (row0 + r)'s probability of key j for
// j <= row0 + r (entries past the diagonal are unspecified).
using ProbabilityVisitor =
    std::function<void(int q_head, int64_t item, int64_t row0, int rows, const double* p, int64_t stride)>;

// Calls `visit` for every row of every query head. Work items (query head, `rows_per_item` consecutive rows)
// run in parallel; one item's chunks run on one thread in ascending row order, so a visitor that writes only
// to its item's own accumulators gives results independent of the thread count.
Status visit_attention_probabilities(const QkvView& qkv, int64_t rows_per_item,
                                     const ProbabilityVisitor& visit);

}  // namespace sacc::ref
