// The block index an estimator could at best produce: per query head and query block, the sink block and the
// diagonal blocks (what every Block-Cluster index keeps), then the remaining key blocks in descending exact
// attention mass (the mean over the block's rows) until gamma of the block's mass is covered. Within one
// query block no set of whole key blocks reaches that mass with fewer blocks, so an estimator's density over
// the oracle's at equal recall is what a better estimate could still save (`sacc eval recall --sparse
// oracle@0.99`). Costs a dense attention pass.
#pragma once

#include "attention/sparse_index.h"
#include "reference/qkv.h"

namespace sacc::ref {

// geometry: one index head per query head (not shared per KV group), seq_len = the input's. gamma in (0, 1].
Result<SparseIndex> oracle_block_index(const QkvView& qkv, double gamma, const IndexGeometry& geometry);

}  // namespace sacc::ref
