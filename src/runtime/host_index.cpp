#include "runtime/host_index.h"

#include <algorithm>

namespace sacc {

Result<SparseIndex> build_host_index(const LayerPatterns& patterns, const IndexGeometry& geometry) {
  SACC_RETURN_IF_ERROR(geometry.validate());
  if (static_cast<int>(patterns.heads.size()) != geometry.num_heads)
    return make_error(StatusCode::INVALID_ARGUMENT,
                      "pattern config has {} heads for a layer, the model needs {}", patterns.heads.size(),
                      geometry.num_heads);
  SparseIndex index;
  index.geometry = geometry;
  index.block_offsets.push_back(0);
  index.column_offsets.assign(geometry.num_slots() + 1, 0);
  for (int h = 0; h < geometry.num_heads; ++h) {
    const PatternSpec& spec = patterns.heads[h];
    if (spec.kind != PatternKind::DENSE && spec.kind != PatternKind::TRIANGULAR)
      return make_error(
          StatusCode::UNSUPPORTED,
          "head {}: pattern '{}' needs online estimation, which runs on the GPU (use --device cuda, "
          "or dense/triangular patterns on the CPU)",
          h, to_string(spec));
    for (int64_t qb = 0; qb < geometry.num_q_blocks(); ++qb) {
      const int64_t last = geometry.last_causal_k_block(qb);
      int64_t window_first = 0;
      int64_t sink_last = -1;
      if (spec.kind == PatternKind::TRIANGULAR) {
        // Keys j with i - j < W for some row i of the block start at first_row - W + 1.
        window_first = std::max<int64_t>(0, (qb * geometry.block_q - spec.window + 1) / geometry.block_k);
        sink_last = spec.sink > 0 ? (spec.sink - 1) / geometry.block_k : -1;
      }
      for (int64_t kb = 0; kb <= last; ++kb)
        if (kb <= sink_last || kb >= window_first) index.block_ids.push_back(static_cast<int32_t>(kb));
      index.block_offsets.push_back(static_cast<int32_t>(index.block_ids.size()));
    }
  }
  SACC_RETURN_IF_ERROR(index.validate());
  return index;
}

}  // namespace sacc
