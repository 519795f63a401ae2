// One index head's key lists per query block, before they are packed into the CSR SparseIndex. Every builder
// (triangular, interval-slash, block-cluster) produces this; assemble_index() packs and validates.
#pragma once

#include <cstdint>
#include <vector>

#include "attention/sparse_index.h"

namespace sacc::ref {

struct HeadIndex {
  std::vector<std::vector<int32_t>> blocks;  // [num_q_blocks][...] ascending key-block ids
  std::vector<std::vector<int32_t>>
      columns;  // [num_q_blocks][...] ascending single keys outside those blocks
};

// Packs heads [num_heads] in index-head order and checks SparseIndex::validate().
Result<SparseIndex> assemble_index(const IndexGeometry& geometry, const std::vector<HeadIndex>& heads);

// The keys slot `slot` lists that are <= last_key, ascending (listed blocks expanded, plus the columns).
std::vector<int32_t> slot_keys(const SparseIndex& index, int64_t slot, int64_t last_key);
// The keys the index grants query `row` of an index head (causal), ascending.
std::vector<int32_t> keys_of_row(const SparseIndex& index, int index_head, int64_t row);

}  // namespace sacc::ref
