// The oracle block index: the fewest key blocks per query block reaching a share of the exact attention.
#include <gtest/gtest.h>

#include <algorithm>

#include "reference/head_index.h"
#include "reference/metrics.h"
#include "reference/oracle_index.h"
#include "test_util.h"

namespace sacc::ref {
namespace {

std::vector<int32_t> slot_blocks(const SparseIndex& index, int64_t slot) {
  return {index.block_ids.begin() + index.block_offsets[slot],
          index.block_ids.begin() + index.block_offsets[slot + 1]};
}

// Every query looks for dimension 0; only the keys of key block 3 carry it, so past that block nearly all of
// the attention sits there: each query block's oracle index is the sink, block 3 and its own diagonal blocks.
TEST(OracleIndex, KeepsTheBlockThatHoldsTheAttention) {
  const AttentionShape shape{256, 2, 1, 8};
  HostQkv qkv = testing::random_qkv(shape, 3, 0.1f);
  const IndexGeometry geometry{256, 2, 64, 32, false};
  for (int64_t i = 0; i < 256; ++i) {
    for (int h = 0; h < 2; ++h) qkv.q[(i * 2 + h) * 8] = 4.0f;
    if (i / 32 == 3) qkv.k[i * 8] = 4.0f;
  }
  const SparseIndex index = oracle_block_index(qkv.view(), 0.9, geometry).value();
  for (int h = 0; h < 2; ++h) {
    EXPECT_EQ(slot_blocks(index, h * 4 + 2), (std::vector<int32_t>{0, 3, 4, 5}));
    EXPECT_EQ(slot_blocks(index, h * 4 + 3), (std::vector<int32_t>{0, 3, 6, 7}));
  }
}

// Recall at least gamma on every head; a larger gamma lists a superset; gamma 1 lists every causal block.
TEST(OracleIndex, ReachesGammaGrowsWithItAndIsDenseAtOne) {
  const AttentionShape shape{300, 4, 2, 16};
  const HostQkv qkv = testing::random_qkv(shape, 11, 2.5f);
  const IndexGeometry geometry{300, 4, 64, 32, false};
  const SparseIndex low = oracle_block_index(qkv.view(), 0.6, geometry).value();
  const SparseIndex high = oracle_block_index(qkv.view(), 0.9, geometry).value();
  const SparseIndex full = oracle_block_index(qkv.view(), 1.0, geometry).value();
  const SparseIndex dense = SparseIndex::dense(geometry);
  EXPECT_EQ(full.block_ids, dense.block_ids);
  EXPECT_LT(low.block_ids.size(), high.block_ids.size());
  EXPECT_LT(high.block_ids.size(), dense.block_ids.size());
  for (int64_t slot = 0; slot < geometry.num_slots(); ++slot) {
    const std::vector<int32_t> a = slot_blocks(low, slot), b = slot_blocks(high, slot);
    EXPECT_TRUE(std::includes(b.begin(), b.end(), a.begin(), a.end())) << "slot " << slot;
  }
  const std::vector<RecallReport> recall = attention_recall(qkv.view(), {&low, &high}).value();
  for (int h = 0; h < 4; ++h) {
    EXPECT_GE(recall[0].per_head[h], 0.6 - 1e-6);
    EXPECT_GE(recall[1].per_head[h], 0.9 - 1e-6);
  }
}

TEST(OracleIndex, RejectsBadArguments) {
  const AttentionShape shape{128, 4, 2, 16};
  const HostQkv qkv = testing::random_qkv(shape, 5);
  EXPECT_FALSE(oracle_block_index(qkv.view(), 0.0, {128, 4, 64, 32, false}).is_ok());
  EXPECT_FALSE(oracle_block_index(qkv.view(), 1.5, {128, 4, 64, 32, false}).is_ok());
  EXPECT_FALSE(oracle_block_index(qkv.view(), 0.9, {128, 2, 64, 32, true}).is_ok());
  EXPECT_FALSE(oracle_block_index(qkv.view(), 0.9, {100, 4, 64, 32, false}).is_ok());
}

}  // namespace
}  // namespace sacc::ref
