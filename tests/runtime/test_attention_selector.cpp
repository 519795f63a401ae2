// The attention selector's decisions as pure functions, on the CPU: environment overrides, kernel body, GQA
// packing, method (dense / sparse / AUTO's break-even / baselines) and the per-layer index geometry.
#include <gtest/gtest.h>

#include "attention/kernel_tile.h"
#include "runtime/attention_selector.h"

namespace sacc {
namespace {

ModelConfig gqa_config(int heads, int kv_heads, int layers) {
  ModelConfig c = builtin_model_config("llama-3.2-1b").value();
  c.num_heads = heads;
  c.num_kv_heads = kv_heads;
  c.num_layers = layers;
  return c;
}

BackendOptions with_patterns(AttentionMode mode, int layers, bool shared, int64_t min_length = 0) {
  BackendOptions o;
  o.attention = mode;
  o.sparse_min_length = min_length;
  o.patterns.resize(layers);
  for (LayerPatterns& p : o.patterns) p.shared_per_kv_group = shared;
  return o;
}

IndexGeometry shared_geometry() {
  IndexGeometry g;
  g.seq_len = 4096;
  g.num_heads = 8;
  g.shared_per_kv_group = true;
  return g;
}

TEST(AttentionSelector, ParsesOverrides) {
  Result<AttentionOverrides> none = parse_attention_overrides(nullptr, nullptr);
  ASSERT_TRUE(none.is_ok());
  EXPECT_FALSE(none->flash_body.has_value());
  EXPECT_TRUE(none->gqa_pack);
  Result<AttentionOverrides> empty = parse_attention_overrides("", "");
  ASSERT_TRUE(empty.is_ok());
  EXPECT_FALSE(empty->flash_body.has_value());
  Result<AttentionOverrides> mma = parse_attention_overrides("mma", "0");
  ASSERT_TRUE(mma.is_ok());
  EXPECT_EQ(mma->flash_body, FlashBody::MMA);
  EXPECT_FALSE(mma->gqa_pack);
  EXPECT_EQ(parse_attention_overrides("sm90", "1")->flash_body, FlashBody::SM90);
  const Result<AttentionOverrides> bad_body = parse_attention_overrides("wgmma", nullptr);
  ASSERT_FALSE(bad_body.is_ok());
  EXPECT_NE(bad_body.status().message().find("SACC_FLASH_BODY=wgmma"), std::string::npos);
  EXPECT_FALSE(parse_attention_overrides(nullptr, "yes").is_ok());
}

TEST(AttentionSelector, PicksTheBodyFromTheDeviceAndTheOverride) {
  const AttentionOverrides none;
  EXPECT_EQ(choose_flash_kernel(9, nullptr, 4, none).body, FlashBody::SM90);
  EXPECT_EQ(choose_flash_kernel(8, nullptr, 4, none).body, FlashBody::MMA);
  EXPECT_EQ(choose_flash_kernel(10, nullptr, 4, none).body, FlashBody::MMA);
  AttentionOverrides mma;
  mma.flash_body = FlashBody::MMA;
  EXPECT_EQ(choose_flash_kernel(9, nullptr, 4, mma).body, FlashBody::MMA);
  // Forcing sm90 where the device has no wgmma still runs the portable body.
  AttentionOverrides sm90;
  sm90.flash_body = FlashBody::SM90;
  EXPECT_EQ(choose_flash_kernel(8, nullptr, 4, sm90).body, FlashBody::MMA);
}

TEST(AttentionSelector, PacksOnlyASharedIndexOfAnEvenGroupOnTheHopperBody) {
  const AttentionOverrides none;
  const IndexGeometry shared = shared_geometry();
  IndexGeometry per_head = shared;
  per_head.shared_per_kv_group = false;
  EXPECT_TRUE(choose_flash_kernel(9, &shared, 4, none).gqa_pack);
  EXPECT_FALSE(choose_flash_kernel(9, &shared, 3, none).gqa_pack);
  EXPECT_FALSE(choose_flash_kernel(9, &per_head, 4, none).gqa_pack);
  EXPECT_FALSE(choose_flash_kernel(9, nullptr, 4, none).gqa_pack);
  EXPECT_FALSE(choose_flash_kernel(8, &shared, 4, none).gqa_pack);
  AttentionOverrides off;
  off.gqa_pack = false;
  EXPECT_FALSE(choose_flash_kernel(9, &shared, 4, off).gqa_pack);
  AttentionOverrides mma;
  mma.flash_body = FlashBody::MMA;
  EXPECT_FALSE(choose_flash_kernel(9, &shared, 4, mma).gqa_pack);
}

TEST(AttentionSelector, SelectsTheMethod) {
  EXPECT_EQ(select_method(with_patterns(AttentionMode::DENSE, 2, false), 100000),
            AttentionMethod::FLASH_DENSE);
  EXPECT_EQ(select_method(with_patterns(AttentionMode::SPARSE, 2, false), 10), AttentionMethod::FLASH_SPARSE);
  EXPECT_EQ(select_method(with_patterns(AttentionMode::SPARSE, 0, false), 10), AttentionMethod::FLASH_DENSE);
  EXPECT_EQ(select_method(with_patterns(AttentionMode::CUDNN, 2, false), 10), AttentionMethod::CUDNN);
  EXPECT_EQ(select_method(with_patterns(AttentionMode::EAGER, 2, false), 10), AttentionMethod::EAGER);
  // AUTO: sparse from the break-even length on, dense below it and without patterns.
  const BackendOptions automatic = with_patterns(AttentionMode::AUTO, 2, false, 16384);
  EXPECT_EQ(select_method(automatic, 16383), AttentionMethod::FLASH_DENSE);
  EXPECT_EQ(select_method(automatic, 16384), AttentionMethod::FLASH_SPARSE);
  EXPECT_EQ(select_method(with_patterns(AttentionMode::AUTO, 0, false), 1 << 20),
            AttentionMethod::FLASH_DENSE);
  EXPECT_STREQ(attention_method_name(AttentionMethod::FLASH_SPARSE), "flash-sparse");
}

TEST(AttentionSelector, LayerGeometryUsesTheKernelTile) {
  const ModelConfig c = gqa_config(32, 8, 2);
  BackendOptions o = with_patterns(AttentionMode::SPARSE, 2, false);
  o.patterns[1].shared_per_kv_group = true;
  const IndexGeometry per_head = layer_geometry(c, o, 0, 5000);
  EXPECT_EQ(per_head.seq_len, 5000);
  EXPECT_EQ(per_head.num_heads, 32);
  EXPECT_EQ(per_head.block_q, kTileBlockQ);
  EXPECT_EQ(per_head.block_k, kTileBlockK);
  const IndexGeometry shared = layer_geometry(c, o, 1, 5000);
  EXPECT_TRUE(shared.shared_per_kv_group);
  EXPECT_EQ(shared.num_heads, 8);
}

TEST(AttentionSelector, DecidesEveryLayerKernel) {
  const ModelConfig c = gqa_config(32, 8, 3);
  BackendOptions o = with_patterns(AttentionMode::SPARSE, 3, false);
  o.patterns[2].shared_per_kv_group = true;
  const AttentionDecision sparse = decide_attention(c, o, 8192, 9, AttentionOverrides{});
  ASSERT_TRUE(sparse.sparse());
  ASSERT_EQ(sparse.kernels.size(), 3u);
  EXPECT_FALSE(sparse.kernel(0).gqa_pack);
  EXPECT_TRUE(sparse.kernel(2).gqa_pack);
  EXPECT_EQ(sparse.kernel(2).body, FlashBody::SM90);
  // Dense: one kernel for every layer, never packed.
  const AttentionDecision dense =
      decide_attention(c, with_patterns(AttentionMode::DENSE, 3, true), 8192, 9, AttentionOverrides{});
  ASSERT_FALSE(dense.sparse());
  ASSERT_EQ(dense.kernels.size(), 1u);
  EXPECT_FALSE(dense.kernel(2).gqa_pack);
  AttentionOverrides mma;
  mma.flash_body = FlashBody::MMA;
  EXPECT_EQ(decide_attention(c, o, 8192, 9, mma).kernel(2).body, FlashBody::MMA);
  EXPECT_FALSE(decide_attention(c, o, 8192, 9, mma).kernel(2).gqa_pack);
}

}  // namespace
}  // namespace sacc
