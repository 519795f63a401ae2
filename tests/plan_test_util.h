// Shared by the plan tests (CPU and GPU): parsing the test's own pattern strings, and the index geometry of a
// shape.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "attention/attention_params.h"
#include "attention/pattern.h"
#include "attention/sparse_index.h"

namespace sacc::test {

// A pattern string the test itself wrote must parse; a failure is reported at the caller's test and gives the
// default (dense) spec, so the test fails rather than crashes.
inline PatternSpec parse_or_fail(const std::string& text) {
  Result<PatternSpec> spec = parse_pattern(text);
  EXPECT_TRUE(spec.is_ok()) << text << ": " << spec.status().to_string();
  return spec.is_ok() ? *spec : PatternSpec{};
}

// The kernel tile's geometry for `shape`: one index head per query head, or per KV group when `shared`.
inline IndexGeometry index_geometry_of(const AttentionShape& shape, bool shared) {
  IndexGeometry geometry;
  geometry.seq_len = shape.seq_len;
  geometry.num_heads = shared ? shape.num_kv_heads : shape.num_q_heads;
  geometry.shared_per_kv_group = shared;
  return geometry;
}

}  // namespace sacc::test
