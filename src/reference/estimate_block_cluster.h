// Block-Cluster online estimation, DESIGN.md §4: mean-pool Q over query blocks (Bq rows) and K over key
// blocks (Bk keys), P = softmax(Qbar Kbar^T * scale) causal over blocks (key block kb is allowed for query
// block qb iff kb <= last causal key block), in fp32; keep the top-kb key blocks per query block. The first
// key block and the diagonal key blocks (those intersecting the query block's own rows) are always kept and
// count inside kb.
#pragma once

#include <cstdint>
#include <vector>

#include "attention/pattern.h"
#include "reference/head_index.h"
#include "reference/qkv.h"

namespace sacc::ref {

struct BlockScores {
  int64_t num_q_blocks = 0;
  int64_t num_k_blocks = 0;
  std::vector<float> prob;  // [num_q_blocks, num_k_blocks] pooled causal softmax; 0 beyond the causal limit
};

// Scores of one query head under the geometry's block sizes.
Result<BlockScores> block_cluster_scores(const QkvView& qkv, int q_head, const IndexGeometry& geometry);
void accumulate_scores(BlockScores& sum, const BlockScores& other);

// The key blocks every Block-Cluster index keeps for query block `q_block`: block 0 and the diagonal blocks
// (those meeting the query block's own rows), ascending.
std::vector<int32_t> block_cluster_forced_blocks(const IndexGeometry& geometry, int64_t q_block);

// Per query block: the chosen key blocks, ascending. Adaptive (gamma > 0): the fewest blocks (forced first,
// then by score) whose pooled mass reaches gamma of the row's mass, capped by kb. INVALID_ARGUMENT when kb
// exceeds the number of key blocks.
Result<HeadIndex> select_block_cluster(const BlockScores& scores, const PatternSpec& spec,
                                       const IndexGeometry& geometry);

}  // namespace sacc::ref
