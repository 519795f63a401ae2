// The multi-GPU placement planner (runtime/multi_gpu_plan.h) on the host: layer ranges under caps, the
// shortfall message, tensor-parallel divisibility and the slicing of per-head patterns.
#include <gtest/gtest.h>

#include "model/model_config.h"
#include "runtime/memory_plan.h"
#include "runtime/multi_gpu_plan.h"

namespace sacc {
namespace {

constexpr uint64_t kGiB = 1ull << 30;

ModelConfig llama8b() {
  Result<ModelConfig> c = builtin_model_config("llama-3.1-8b");
  EXPECT_TRUE(c.is_ok());
  return *c;
}

ShardSizing sizing_for(int64_t tokens) {
  ShardSizing s;
  s.tokens = tokens;
  s.attention_workspace = 256ull << 20;
  return s;
}

void expect_contiguous_cover(const std::vector<ShardSpec>& shards, int layers) {
  ASSERT_FALSE(shards.empty());
  EXPECT_EQ(shards.front().layer_begin, 0);
  EXPECT_EQ(shards.back().layer_end, layers);
  for (size_t i = 0; i + 1 < shards.size(); ++i)
    EXPECT_EQ(shards[i].layer_end, shards[i + 1].layer_begin) << i;
  for (const ShardSpec& s : shards) EXPECT_LE(s.layer_begin, s.layer_end);
  EXPECT_TRUE(shards.front().embeds);
  EXPECT_TRUE(shards.back().has_lm_head);
}

TEST(MultiGpuPlan, ParsesGpuListsAndSplitModes) {
  Result<std::vector<int>> gpus = parse_gpu_list("0,1,3");
  ASSERT_TRUE(gpus.is_ok());
  EXPECT_EQ(*gpus, (std::vector<int>{0, 1, 3}));
  EXPECT_FALSE(parse_gpu_list("").is_ok());
  EXPECT_FALSE(parse_gpu_list("0,x").is_ok());
  EXPECT_FALSE(parse_gpu_list("1,1").is_ok());
  EXPECT_FALSE(parse_gpu_list("-1").is_ok());
  EXPECT_EQ(*parse_split_mode("tensor"), SplitMode::TENSOR);
  EXPECT_EQ(*parse_split_mode("layer"), SplitMode::LAYER);
  EXPECT_FALSE(parse_split_mode("pipeline").is_ok());
}

// The paper's setting: Llama-3.1-8B, 128K tokens, two 24 GiB cards (it needed 34.7 GB in all).
TEST(MultiGpuPlan, EightBillionAt128KFitsTwo24GiBCards) {
  const ModelConfig c = llama8b();
  const ShardSizing sizing = sizing_for(128000);
  Result<std::vector<ShardSpec>> shards = plan_layer_split(c, {0, 1}, {24 * kGiB, 24 * kGiB}, sizing);
  ASSERT_TRUE(shards.is_ok()) << shards.status().to_string();
  ASSERT_EQ(shards->size(), 2u);
  expect_contiguous_cover(*shards, c.num_layers);
  EXPECT_FALSE((*shards)[0].has_lm_head);
  EXPECT_FALSE((*shards)[1].embeds);
  // Even when the caps allow: 16 + 16.
  EXPECT_EQ((*shards)[0].num_layers(), 16);
  for (const ShardSpec& s : *shards) EXPECT_LE(shard_memory(c, s, sizing).total(), 24 * kGiB);
}

TEST(MultiGpuPlan, UnevenCapsShiftLayersToTheLargerCard) {
  const ModelConfig c = llama8b();
  const ShardSizing sizing = sizing_for(32768);
  Result<std::vector<ShardSpec>> shards =
      plan_layer_split(c, {0, 1, 2}, {6 * kGiB, 40 * kGiB, 6 * kGiB}, sizing);
  ASSERT_TRUE(shards.is_ok()) << shards.status().to_string();
  expect_contiguous_cover(*shards, c.num_layers);
  const std::vector<uint64_t> caps = {6 * kGiB, 40 * kGiB, 6 * kGiB};
  for (size_t i = 0; i < shards->size(); ++i)
    EXPECT_LE(shard_memory(c, (*shards)[i], sizing).total(), caps[i]) << i;
  EXPECT_GT((*shards)[1].num_layers(), (*shards)[0].num_layers());
  EXPECT_GT((*shards)[1].num_layers(), (*shards)[2].num_layers());
}

TEST(MultiGpuPlan, UncappedSplitIsEvenAndCoversOddLayerCounts) {
  ModelConfig c = llama8b();
  c.num_layers = 7;
  Result<std::vector<ShardSpec>> shards = plan_layer_split(c, {3, 1, 0}, {0, 0, 0}, sizing_for(1000));
  ASSERT_TRUE(shards.is_ok()) << shards.status().to_string();
  expect_contiguous_cover(*shards, 7);
  EXPECT_EQ((*shards)[0].device, 3);
  EXPECT_EQ((*shards)[2].device, 0);
  for (const ShardSpec& s : *shards) {
    EXPECT_GE(s.num_layers(), 2);
    EXPECT_LE(s.num_layers(), 3);
  }
}

TEST(MultiGpuPlan, NoFitNamesEveryGpuAndTheShortfall) {
  const ModelConfig c = llama8b();
  Result<std::vector<ShardSpec>> shards =
      plan_layer_split(c, {0, 1}, {12 * kGiB, 12 * kGiB}, sizing_for(128000));
  ASSERT_FALSE(shards.is_ok());
  EXPECT_EQ(shards.status().code(), StatusCode::OUT_OF_MEMORY);
  const std::string message = shards.status().message();
  EXPECT_NE(message.find("cuda:0"), std::string::npos) << message;
  EXPECT_NE(message.find("cuda:1"), std::string::npos) << message;
  EXPECT_NE(message.find("short"), std::string::npos) << message;
  EXPECT_NE(message.find("--gpu-mem"), std::string::npos) << message;
}

TEST(MultiGpuPlan, FixedPartsAloneTooLargeIsNamed) {
  const ModelConfig c = llama8b();
  // 1 GiB cannot even hold the embeddings (~0.98 GiB) plus a 128K workspace.
  Result<std::vector<ShardSpec>> shards =
      plan_layer_split(c, {0, 1}, {1 * kGiB, 80 * kGiB}, sizing_for(128000));
  ASSERT_FALSE(shards.is_ok());
  EXPECT_NE(shards.status().message().find("before any layer"), std::string::npos)
      << shards.status().message();
}

TEST(MultiGpuPlan, TensorParallelSplitsHeadsAndColumns) {
  const ModelConfig c = llama8b();
  Result<std::vector<ShardSpec>> shards = plan_tensor_parallel(c, {0, 1});
  ASSERT_TRUE(shards.is_ok()) << shards.status().to_string();
  ASSERT_EQ(shards->size(), 2u);
  EXPECT_EQ((*shards)[0].kv_heads, 4);
  EXPECT_EQ((*shards)[1].kv_head_begin, 4);
  EXPECT_EQ((*shards)[1].ffn_begin, c.ffn / 2);
  EXPECT_TRUE((*shards)[0].has_lm_head);
  EXPECT_FALSE((*shards)[1].has_lm_head);
  for (const ShardSpec& s : *shards) {
    EXPECT_TRUE(s.embeds);
    EXPECT_EQ(s.layer_begin, 0);
    EXPECT_EQ(s.layer_end, c.num_layers);
    const ModelConfig view = shard_config(c, s);
    EXPECT_EQ(view.num_heads, 16);
    EXPECT_EQ(view.num_kv_heads, 4);
  }
  // Half the KV cache each; the LM head only on rank 0.
  const ShardSizing sizing = sizing_for(128000);
  const ShardMemory m0 = shard_memory(c, (*shards)[0], sizing), m1 = shard_memory(c, (*shards)[1], sizing);
  EXPECT_EQ(m0.kv_cache, m1.kv_cache);
  EXPECT_EQ(2 * m0.kv_cache, 2ull * c.num_layers * 128000 * c.kv_dim() * 2);
  EXPECT_GT(m0.fixed_weights, m1.fixed_weights);
  EXPECT_TRUE(check_shards_fit(c, *shards, {24 * kGiB, 24 * kGiB}, sizing).is_ok());
}

// Several prefill logit rows (sacc eval ppl) enlarge only the workspace of the GPU with the LM head, by the
// fp32 rows of one LM-head step beyond the single row.
TEST(MultiGpuPlan, LogitRowsWorkspaceOnlyWhereTheLmHeadIs) {
  const ModelConfig c = llama8b();
  Result<std::vector<ShardSpec>> shards = plan_layer_split(c, {0, 1}, {0, 0}, sizing_for(32768));
  ASSERT_TRUE(shards.is_ok()) << shards.status().to_string();
  ShardSizing rows = sizing_for(32768);
  rows.logit_rows = 4096;
  const ShardMemory first = shard_memory(c, (*shards)[0], sizing_for(32768));
  const ShardMemory last = shard_memory(c, (*shards)[1], sizing_for(32768));
  EXPECT_EQ(shard_memory(c, (*shards)[0], rows).workspace, first.workspace);
  EXPECT_EQ(shard_memory(c, (*shards)[1], rows).workspace - last.workspace,
            static_cast<uint64_t>(kMaxLogitRowsPerStep - 1) * c.vocab * 4);
  // The GPU without the LM head holds no logits buffer at all (the other: a prefill's row, a decode step's).
  EXPECT_EQ(last.workspace - first.workspace, 2 * static_cast<uint64_t>(c.vocab) * 4);
}

TEST(MultiGpuPlan, TensorParallelDivisibilityErrors) {
  const ModelConfig c = llama8b();  // 8 KV heads
  Result<std::vector<ShardSpec>> three = plan_tensor_parallel(c, {0, 1, 2});
  ASSERT_FALSE(three.is_ok());
  EXPECT_EQ(three.status().code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(three.status().message().find("8 KV heads"), std::string::npos) << three.status().message();
  ModelConfig odd_ffn = c;
  odd_ffn.ffn = 14335;
  Result<std::vector<ShardSpec>> two = plan_tensor_parallel(odd_ffn, {0, 1});
  ASSERT_FALSE(two.is_ok());
  EXPECT_NE(two.status().message().find("MLP"), std::string::npos) << two.status().message();
}

TEST(MultiGpuPlan, TensorParallelShortfallNamesTheGpu) {
  const ModelConfig c = llama8b();
  Result<std::vector<ShardSpec>> shards = plan_tensor_parallel(c, {0, 1});
  ASSERT_TRUE(shards.is_ok());
  // Rank 0 also holds the LM head: a cap between the two shards' needs fails on cuda:0 alone.
  const ShardSizing sizing = sizing_for(128000);
  const uint64_t between =
      (shard_memory(c, (*shards)[0], sizing).total() + shard_memory(c, (*shards)[1], sizing).total()) / 2;
  const Status s = check_shards_fit(c, *shards, {between, between}, sizing);
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.code(), StatusCode::OUT_OF_MEMORY);
  EXPECT_NE(s.message().find("cuda:0"), std::string::npos) << s.message();
  EXPECT_EQ(s.message().find("cuda:1"), std::string::npos) << s.message();
}

PatternSpec numbered(int i) {
  PatternSpec p;
  p.kind = PatternKind::TRIANGULAR;
  p.sink = i;
  return p;
}

TEST(MultiGpuPlan, SlicesPerQueryHeadPatternsByKvGroup) {
  ModelConfig c = llama8b();
  c.num_heads = 6;
  c.num_kv_heads = 2;  // groups of 3
  LayerPatterns layer;
  for (int h = 0; h < 6; ++h) layer.heads.push_back(numbered(h));
  const LayerPatterns second = slice_layer_patterns(layer, c, 1, 1);
  ASSERT_EQ(second.heads.size(), 3u);
  EXPECT_EQ(second.heads[0].sink, 3);
  EXPECT_EQ(second.heads[2].sink, 5);
  EXPECT_FALSE(second.shared_per_kv_group);
}

TEST(MultiGpuPlan, SlicesSharedPatternsByKvHeadAndLayerRange) {
  ModelConfig c = llama8b();
  c.num_layers = 4;
  c.num_heads = 8;
  c.num_kv_heads = 4;
  std::vector<LayerPatterns> patterns(4);
  for (int l = 0; l < 4; ++l) {
    patterns[l].shared_per_kv_group = true;
    for (int k = 0; k < 4; ++k) patterns[l].heads.push_back(numbered(10 * l + k));
  }
  ShardSpec shard = whole_model_shard(c, 1);
  shard.layer_begin = 1;
  shard.layer_end = 3;
  shard.kv_head_begin = 2;
  shard.kv_heads = 2;
  const std::vector<LayerPatterns> sliced = shard_patterns(patterns, c, shard);
  ASSERT_EQ(sliced.size(), 2u);
  ASSERT_EQ(sliced[0].heads.size(), 2u);
  EXPECT_TRUE(sliced[0].shared_per_kv_group);
  EXPECT_EQ(sliced[0].heads[0].sink, 12);
  EXPECT_EQ(sliced[1].heads[1].sink, 23);
  EXPECT_TRUE(shard_patterns({}, c, shard).empty());
}

}  // namespace
}  // namespace sacc
