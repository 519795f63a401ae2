// The dense tail of a pattern ("...+tail:T", attention/pattern.h): which query blocks it makes dense. One
// definition for the oracle, the CPU plan and the GPU index builder; plain constexpr, so nvcc includes it.
#pragma once

#include <cstdint>

namespace sacc {

// Whether the query block whose last row is `last_row` holds any of the last `tail` rows of an L-row prompt.
constexpr bool in_dense_tail(int64_t last_row, int64_t seq_len, int64_t tail) {
  return tail > 0 && last_row >= seq_len - tail;
}

}  // namespace sacc
