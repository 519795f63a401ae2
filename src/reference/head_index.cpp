#include "reference/head_index.h"

#include <algorithm>

namespace sacc::ref {

Result<SparseIndex> assemble_index(const IndexGeometry& geometry, const std::vector<HeadIndex>& heads) {
  SACC_RETURN_IF_ERROR(geometry.validate());
  const int64_t num_q_blocks = geometry.num_q_blocks();
  if (static_cast<int64_t>(heads.size()) != geometry.num_heads) {
    return make_error(StatusCode::INTERNAL, "index assembly: {} head lists for {} index heads", heads.size(),
                      geometry.num_heads);
  }
  SparseIndex index;
  index.geometry = geometry;
  index.block_offsets.reserve(geometry.num_slots() + 1);
  index.column_offsets.reserve(geometry.num_slots() + 1);
  index.block_offsets.push_back(0);
  index.column_offsets.push_back(0);
  for (const HeadIndex& head : heads) {
    if (static_cast<int64_t>(head.blocks.size()) != num_q_blocks ||
        static_cast<int64_t>(head.columns.size()) != num_q_blocks) {
      return make_error(StatusCode::INTERNAL, "index assembly: a head has {}/{} query blocks, expected {}",
                        head.blocks.size(), head.columns.size(), num_q_blocks);
    }
    for (int64_t qb = 0; qb < num_q_blocks; ++qb) {
      index.block_ids.insert(index.block_ids.end(), head.blocks[qb].begin(), head.blocks[qb].end());
      index.column_ids.insert(index.column_ids.end(), head.columns[qb].begin(), head.columns[qb].end());
      index.block_offsets.push_back(static_cast<int32_t>(index.block_ids.size()));
      index.column_offsets.push_back(static_cast<int32_t>(index.column_ids.size()));
    }
  }
  Status valid = index.validate();
  if (!valid.is_ok()) return Status(StatusCode::INTERNAL, "built an invalid index: " + valid.message());
  return index;
}

std::vector<int32_t> slot_keys(const SparseIndex& index, int64_t slot, int64_t last_key) {
  const IndexGeometry& g = index.geometry;
  std::vector<int32_t> keys;
  for (int32_t n = index.block_offsets[slot]; n < index.block_offsets[slot + 1]; ++n) {
    const int64_t begin = static_cast<int64_t>(index.block_ids[n]) * g.block_k;
    const int64_t end = std::min<int64_t>(begin + g.block_k, last_key + 1);
    for (int64_t j = begin; j < end; ++j) keys.push_back(static_cast<int32_t>(j));
  }
  for (int32_t n = index.column_offsets[slot]; n < index.column_offsets[slot + 1]; ++n) {
    if (index.column_ids[n] <= last_key) keys.push_back(index.column_ids[n]);
  }
  std::sort(keys.begin(), keys.end());
  return keys;
}

std::vector<int32_t> keys_of_row(const SparseIndex& index, int index_head, int64_t row) {
  return slot_keys(index, index_head * index.geometry.num_q_blocks() + row / index.geometry.block_q, row);
}

}  // namespace sacc::ref
