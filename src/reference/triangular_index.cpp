#include "reference/triangular_index.h"

#include <algorithm>

namespace sacc::ref {

HeadIndex triangular_head_index(const PatternSpec& spec, const IndexGeometry& geometry) {
  const int64_t num_q_blocks = geometry.num_q_blocks();
  const int64_t block_k = geometry.block_k;
  const int64_t full_sink_blocks = spec.sink / block_k;  // blocks lying entirely inside [0, S)
  HeadIndex head;
  head.blocks.resize(num_q_blocks);
  head.columns.resize(num_q_blocks);
  for (int64_t qb = 0; qb < num_q_blocks; ++qb) {
    const int64_t first_row = qb * geometry.block_q;
    const int64_t last_row = std::min(geometry.seq_len, first_row + geometry.block_q) - 1;
    const int64_t last_block = last_row / block_k;
    const int64_t window_first_block = std::max<int64_t>(0, first_row - spec.window + 1) / block_k;
    std::vector<int32_t>& blocks = head.blocks[qb];
    for (int64_t kb = 0; kb < std::min(full_sink_blocks, window_first_block); ++kb) {
      blocks.push_back(static_cast<int32_t>(kb));
    }
    for (int64_t kb = window_first_block; kb <= last_block; ++kb) blocks.push_back(static_cast<int32_t>(kb));
    // Sink keys of a partial block, unless the window already lists that block.
    const int64_t partial_block = full_sink_blocks;
    if (partial_block < window_first_block) {
      const int64_t end = std::min(spec.sink, last_row + 1);
      for (int64_t j = partial_block * block_k; j < end; ++j)
        head.columns[qb].push_back(static_cast<int32_t>(j));
    }
  }
  return head;
}

}  // namespace sacc::ref
