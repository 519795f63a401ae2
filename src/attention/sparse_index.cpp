#include "attention/sparse_index.h"

namespace sacc {

Status IndexGeometry::validate() const {
  if (seq_len < 1)
    return make_error(StatusCode::INVALID_ARGUMENT, "sequence length must be >= 1, got {}", seq_len);
  if (num_heads < 1)
    return make_error(StatusCode::INVALID_ARGUMENT, "index needs >= 1 head, got {}", num_heads);
  if (block_q < 1 || block_k < 1) {
    return make_error(StatusCode::INVALID_ARGUMENT, "block sizes must be >= 1 (Bq={}, Bk={})", block_q,
                      block_k);
  }
  return Status::ok();
}

Status check_kernel_tile(int block_q, int block_k, const std::string& origin) {
  if (block_q == kTileBlockQ && block_k == kTileBlockK) return Status::ok();
  return make_error(
      StatusCode::INVALID_ARGUMENT,
      "{}: built for tile Bq={} Bk={}, but the kernels run Bq={} Bk={}; rebuild it (sacc search)", origin,
      block_q, block_k, kTileBlockQ, kTileBlockK);
}

Status SparseIndex::validate() const {
  SACC_RETURN_IF_ERROR(geometry.validate());
  const int64_t slots = geometry.num_slots();
  const int64_t nqb = geometry.num_q_blocks();
  if (static_cast<int64_t>(block_offsets.size()) != slots + 1 ||
      static_cast<int64_t>(column_offsets.size()) != slots + 1) {
    return make_error(StatusCode::INVALID_ARGUMENT, "index offsets have {}/{} entries, expected {}",
                      block_offsets.size(), column_offsets.size(), slots + 1);
  }
  if (block_offsets[0] != 0 || column_offsets[0] != 0 ||
      block_offsets.back() != static_cast<int64_t>(block_ids.size()) ||
      column_offsets.back() != static_cast<int64_t>(column_ids.size())) {
    return make_error(StatusCode::INVALID_ARGUMENT, "index offsets do not span their id arrays");
  }
  for (int64_t slot = 0; slot < slots; ++slot) {
    const int64_t q_block = slot % nqb;
    const int64_t last_block = geometry.last_causal_k_block(q_block);
    const int64_t last_key = std::min(geometry.seq_len, (q_block + 1) * geometry.block_q) - 1;
    if (block_offsets[slot + 1] < block_offsets[slot] || column_offsets[slot + 1] < column_offsets[slot]) {
      return make_error(StatusCode::INVALID_ARGUMENT, "index slot {}: offsets decrease", slot);
    }
    int64_t previous = -1;
    for (int32_t i = block_offsets[slot]; i < block_offsets[slot + 1]; ++i) {
      if (block_ids[i] <= previous || block_ids[i] > last_block) {
        return make_error(StatusCode::INVALID_ARGUMENT,
                          "index slot {}: key block {} is unsorted, repeated or beyond the causal limit {}",
                          slot, block_ids[i], last_block);
      }
      previous = block_ids[i];
    }
    previous = -1;
    int32_t block_cursor = block_offsets[slot];
    for (int32_t i = column_offsets[slot]; i < column_offsets[slot + 1]; ++i) {
      const int32_t column = column_ids[i];
      if (column <= previous || column > last_key) {
        return make_error(StatusCode::INVALID_ARGUMENT,
                          "index slot {}: column {} is unsorted, repeated or beyond the causal limit {}",
                          slot, column, last_key);
      }
      previous = column;
      const int32_t column_block = column / geometry.block_k;
      while (block_cursor < block_offsets[slot + 1] && block_ids[block_cursor] < column_block) ++block_cursor;
      if (block_cursor < block_offsets[slot + 1] && block_ids[block_cursor] == column_block) {
        return make_error(StatusCode::INVALID_ARGUMENT,
                          "index slot {}: column {} lies inside listed key block {}", slot, column,
                          column_block);
      }
    }
  }
  return Status::ok();
}

SparseIndex SparseIndex::dense(const IndexGeometry& geometry) {
  SparseIndex index;
  index.geometry = geometry;
  const int64_t nqb = geometry.num_q_blocks();
  index.block_offsets.reserve(geometry.num_slots() + 1);
  index.block_offsets.push_back(0);
  for (int h = 0; h < geometry.num_heads; ++h) {
    for (int64_t qb = 0; qb < nqb; ++qb) {
      for (int64_t kb = 0; kb <= geometry.last_causal_k_block(qb); ++kb) {
        index.block_ids.push_back(static_cast<int32_t>(kb));
      }
      index.block_offsets.push_back(static_cast<int32_t>(index.block_ids.size()));
    }
  }
  index.column_offsets.assign(geometry.num_slots() + 1, 0);
  return index;
}

}  // namespace sacc
