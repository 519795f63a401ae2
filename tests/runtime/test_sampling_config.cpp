// Sampling (greedy, temperature, top-p, seeds), built-in configs, llama3 RoPE frequencies, HF config parsing,
// the memory plan and the auto attention threshold.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <map>

#include "model/model_config.h"
#include "runtime/attention_policy.h"
#include "runtime/memory_plan.h"
#include "runtime/sampling.h"

namespace sacc {
namespace {

std::vector<float> logits_of(std::initializer_list<float> values) {
  return std::vector<float>(values);
}

TEST(Sampling, GreedyIsArgmaxFirstOnTies) {
  Sampler s({0.0f, 1.0f, 1});
  auto l = logits_of({0.1f, 3.0f, -1.0f, 3.0f});
  EXPECT_EQ(s.sample(l), 1);
}

TEST(Sampling, SameSeedSameSequenceDifferentSeedDiffers) {
  auto draw = [](uint64_t seed) {
    Sampler s({1.0f, 0.95f, seed});
    std::vector<int32_t> ids;
    for (int i = 0; i < 64; ++i) {
      std::vector<float> l(50);
      for (int j = 0; j < 50; ++j) l[j] = std::sin(j * 0.7f + i);
      ids.push_back(s.sample(l));
    }
    return ids;
  };
  EXPECT_EQ(draw(5), draw(5));
  EXPECT_NE(draw(5), draw(6));
}

TEST(Sampling, TopPKeepsOnlyTheNucleus) {
  // Probabilities ~ [0.84, 0.11, 0.04, 0.01]: top_p 0.5 leaves only token 0; top_p 0.9 tokens 0 and 1.
  std::map<int, int> seen_small, seen_mid;
  Sampler small({1.0f, 0.5f, 3}), mid({1.0f, 0.9f, 3});
  for (int i = 0; i < 2000; ++i) {
    auto a = logits_of({4.0f, 2.0f, 1.0f, -0.5f}), b = a;
    ++seen_small[small.sample(a)];
    ++seen_mid[mid.sample(b)];
  }
  EXPECT_EQ(seen_small.size(), 1u);
  EXPECT_EQ(seen_small[0], 2000);
  EXPECT_EQ(seen_mid.size(), 2u);
  // Token 1 renormalised within the nucleus: 0.11 / 0.95 ~ 0.12 of draws.
  EXPECT_NEAR(seen_mid[1] / 2000.0, 0.117, 0.03);
}

TEST(Sampling, InvalidOptions) {
  EXPECT_FALSE(SamplingOptions({-1.0f, 1.0f, 0}).validate().is_ok());
  EXPECT_FALSE(SamplingOptions({1.0f, 0.0f, 0}).validate().is_ok());
  EXPECT_FALSE(SamplingOptions({1.0f, 1.5f, 0}).validate().is_ok());
}

TEST(ModelConfig, BuiltinsAreValidAndSized) {
  for (const std::string& name : builtin_model_names()) {
    Result<ModelConfig> c = builtin_model_config(name);
    ASSERT_TRUE(c.is_ok()) << name;
    EXPECT_TRUE(c->validate().is_ok()) << name;
  }
  // Published parameter counts: 8.03 B, 1.24 B, 135 M, 494 M.
  EXPECT_NEAR(builtin_model_config("llama-3.1-8b")->parameter_count() / 1e9, 8.03, 0.01);
  EXPECT_NEAR(builtin_model_config("llama-3.2-1b")->parameter_count() / 1e9, 1.236, 0.01);
  EXPECT_NEAR(builtin_model_config("smollm2-135m")->parameter_count() / 1e6, 134.5, 1.0);
  EXPECT_NEAR(builtin_model_config("qwen2.5-0.5b")->parameter_count() / 1e6, 494.0, 1.0);
}

TEST(ModelConfig, Llama3RopeScalingBands) {
  ModelConfig c = *builtin_model_config("llama-3.1-8b");
  const std::vector<double> scaled = rope_inverse_frequencies(c);
  c.rope_scaling.enabled = false;
  const std::vector<double> plain = rope_inverse_frequencies(c);
  ASSERT_EQ(scaled.size(), 64u);
  // High frequencies (wavelength < 8192 / 4 = 2048) are kept, low ones (> 8192) divided by 8, a ramp between.
  for (size_t i = 0; i < plain.size(); ++i) {
    const double wavelen = 2 * M_PI / plain[i];
    if (wavelen < 2048) {
      EXPECT_DOUBLE_EQ(scaled[i], plain[i]) << i;
    }
    if (wavelen > 8192) {
      EXPECT_DOUBLE_EQ(scaled[i], plain[i] / 8) << i;
    }
    if (wavelen >= 2048 && wavelen <= 8192) {
      EXPECT_LE(scaled[i], plain[i]) << i;
      EXPECT_GE(scaled[i], plain[i] / 8) << i;
    }
  }
  EXPECT_DOUBLE_EQ(plain[1], std::pow(500000.0, -2.0 / 128));
}

TEST(ModelConfig, ParsesHfJson) {
  const nlohmann::json j = nlohmann::json::parse(R"({
    "model_type": "qwen2", "hidden_size": 896, "num_hidden_layers": 24, "num_attention_heads": 14,
    "num_key_value_heads": 2, "intermediate_size": 4864, "vocab_size": 151936, "rope_theta": 1000000.0,
    "rms_norm_eps": 1e-06, "tie_word_embeddings": true, "max_position_embeddings": 32768,
    "eos_token_id": [151645, 151643], "rope_scaling": null})");
  Result<ModelConfig> c = model_config_from_hf_json(j, "config.json");
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_TRUE(c->qkv_bias);
  EXPECT_EQ(c->head_dim, 64);
  EXPECT_EQ(c->eos_tokens, (std::vector<int32_t>{151645, 151643}));
  EXPECT_EQ(c->parameter_count(), builtin_model_config("qwen2.5-0.5b")->parameter_count());
  nlohmann::json bad = j;
  bad["num_key_value_heads"] = 3;
  EXPECT_EQ(model_config_from_hf_json(bad, "config.json").status().code(), StatusCode::CORRUPT_DATA);
  bad = j;
  bad["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  EXPECT_EQ(model_config_from_hf_json(bad, "config.json").status().code(), StatusCode::UNSUPPORTED);
}

TEST(MemoryPlan, KvCacheAndWeightsOfLlama8bAt128k) {
  const ModelConfig c = *builtin_model_config("llama-3.1-8b");
  const MemoryPlan plan = plan_memory(c, 131072, 8192, Device::cuda(0));
  EXPECT_EQ(plan.kv_cache, 2ull * 32 * 131072 * 1024 * 2);  // 16 GiB
  EXPECT_EQ(plan.weights, static_cast<uint64_t>(c.parameter_count()) * 2);
  // DESIGN §3: activations stay within a few GiB of weights + KV at 128K: the residual stream and the
  // queries (attention writes over them), 1 GiB each, plus chunk buffers.
  EXPECT_LT(plan.workspace, 2.5 * (1ull << 30));
  // The cuDNN and eager baselines need one more [L, Hq*d] bf16 buffer for their output.
  const MemoryPlan baseline = plan_memory(c, 131072, 8192, Device::cuda(0), 0, /*separate_output=*/true);
  EXPECT_EQ(baseline.workspace - plan.workspace, 131072ull * 4096 * 2);
  MemoryPlan small = plan;
  small.available = 20ull << 30;
  const Status s = check_plan(small, c);
  EXPECT_EQ(s.code(), StatusCode::OUT_OF_MEMORY);
  EXPECT_NE(s.message().find("short by"), std::string::npos) << s.message();
  MemoryPlan too_long = plan_memory(c, 131073, 8192, Device::cuda(0));
  too_long.available = 0;
  EXPECT_EQ(check_plan(too_long, c).code(), StatusCode::INVALID_ARGUMENT);
}

// prefill_logit_rows on the GPU: the LM head runs kMaxLogitRowsPerStep rows at a time, so 4096 rows of a
// 32K prompt with a 151936-token vocabulary add [256, V] fp32 (148 MiB) to the workspace, never [4096, V]
// (2.3 GiB) or [n, V]; a GPU without the LM head holds no logits at all.
TEST(MemoryPlan, LogitRowsAreChunkedOnTheDevice) {
  const ModelConfig c = *builtin_model_config("qwen2.5-0.5b");
  const uint64_t V = static_cast<uint64_t>(c.vocab);
  const CudaWorkspaceSizes one = cuda_workspace_sizes(c, 32768, 8192, 0, false);
  const CudaWorkspaceSizes many = cuda_workspace_sizes(c, 32768, 8192, 0, false, 4096);
  EXPECT_EQ(one.logits, V * 4);
  EXPECT_EQ(many.logits, static_cast<uint64_t>(kMaxLogitRowsPerStep) * V * 4);
  EXPECT_EQ(many.total() - one.total(), (kMaxLogitRowsPerStep - 1) * V * 4);
  EXPECT_EQ(cuda_workspace_sizes(c, 32768, 8192, 0, false, 0).logits, 0u);
  // A step's normed rows live in the [chunk, D] buffer: never more rows than a chunk, nor than the prompt.
  EXPECT_EQ(logit_rows_per_step(4096, 32768, 64), 64);
  EXPECT_EQ(logit_rows_per_step(4096, 100, 8192), 100);
  EXPECT_EQ(logit_rows_per_step(1, 32768, 8192), 1);
  EXPECT_EQ(logit_rows_per_step(0, 32768, 8192), 0);
  const MemoryPlan plan_one = plan_memory(c, 32768, 8192, Device::cuda(0));
  const MemoryPlan plan_many = plan_memory(c, 32768, 8192, Device::cuda(0), 0, false, 4096);
  EXPECT_EQ(plan_many.workspace - plan_one.workspace, (kMaxLogitRowsPerStep - 1) * V * 4);
  // The CPU backend computes all the rows at once: normed rows [R, D] and logits [R, V] in fp32.
  const MemoryPlan cpu_one = plan_memory(c, 32768, 8192, Device::cpu());
  const MemoryPlan cpu_many = plan_memory(c, 32768, 8192, Device::cpu(), 0, false, 4096);
  EXPECT_EQ(cpu_many.workspace - cpu_one.workspace, 4095ull * (c.hidden + V) * 4);
}

TEST(AttentionPolicy, AutoStaysDenseForShortPrompts) {
  const ModelConfig c = *builtin_model_config("llama-3.1-8b");
  BackendOptions options;
  ASSERT_TRUE(configure_attention(c, AttentionMode::AUTO, "", "", options).is_ok());
  EXPECT_EQ(options.patterns.size(), 32u);
  EXPECT_GE(options.sparse_min_length, kMinSparseLength);
  // 64 of 1024 causal key blocks per query block at 128K pays long before; at 4K (32 causal blocks) it
  // cannot.
  ASSERT_TRUE(configure_attention(c, AttentionMode::AUTO, "block-cluster:64", "", options).is_ok());
  EXPECT_GT(options.sparse_min_length, kMinSparseLength);
  EXPECT_LE(options.sparse_min_length, 32768);
  // A budget as large as the prompt never pays.
  ASSERT_TRUE(configure_attention(c, AttentionMode::AUTO, "triangular:64,1000000", "", options).is_ok());
  EXPECT_GT(options.sparse_min_length, c.max_context);
  ASSERT_TRUE(configure_attention(c, AttentionMode::DENSE, "", "", options).is_ok());
  EXPECT_TRUE(options.patterns.empty());
}

TEST(AttentionPolicy, GroupPrefixSharesOneIndexPerKvGroup) {
  const ModelConfig c = *builtin_model_config("llama-3.1-8b");
  Result<std::vector<LayerPatterns>> grouped = uniform_patterns(c, "group:interval-slash:1000,6096@0.9");
  ASSERT_TRUE(grouped.is_ok()) << grouped.status().to_string();
  ASSERT_EQ(grouped->size(), 32u);
  EXPECT_TRUE((*grouped)[0].shared_per_kv_group);
  ASSERT_EQ((*grouped)[0].heads.size(), 8u);
  EXPECT_EQ(to_string((*grouped)[0].heads[0]), "interval-slash:1000,6096@0.9");
  // Without GQA a group is one head: a per-head index.
  ModelConfig mha = c;
  mha.num_kv_heads = mha.num_heads;
  grouped = uniform_patterns(mha, "group:block-cluster:8");
  ASSERT_TRUE(grouped.is_ok());
  EXPECT_FALSE((*grouped)[0].shared_per_kv_group);
  EXPECT_EQ((*grouped)[0].heads.size(), 32u);
  EXPECT_FALSE(uniform_patterns(c, "group:").is_ok());
  EXPECT_FALSE(uniform_patterns(c, "group:group:dense").is_ok());
}

// The break-even is found to a query block, not to a power of two: a 128000-token prompt whose break-even
// lies between 64K and 128K goes sparse.
TEST(AttentionPolicy, BreakEvenBetweenPowersOfTwo) {
  const ModelConfig c = *builtin_model_config("llama-3.1-8b");
  const auto patterns = uniform_patterns(c, "interval-slash:100,800");
  ASSERT_TRUE(patterns.is_ok());
  const int64_t even = sparse_break_even_length(c, *patterns);
  ASSERT_GT(even, kMinSparseLength);
  ASSERT_LE(even, c.max_context);
  EXPECT_NE(even & (even - 1), 0) << even << " is a power of two: the bisection did not run";
  // The found length pays and one query block less does not (the predicted ratio falls with length).
  const auto ratio_pays = [&](int64_t length) {
    ModelConfig at = c;
    at.max_context = length;
    return sparse_break_even_length(at, *patterns) <= length;
  };
  EXPECT_TRUE(ratio_pays(even));
  EXPECT_FALSE(ratio_pays(even - 128));
}

TEST(AttentionPolicy, ReadsMInferenceConfig) {
  const ModelConfig c = *builtin_model_config("llama-3.1-8b");
  BackendOptions options;
  const std::string path =
      std::string(SACC_SHARED_DATA_DIR) + "/minference/Llama_3.1_8B_Instruct_128k_heads.json";
  const Status s = configure_attention(c, AttentionMode::SPARSE, "", path, options);
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  ASSERT_EQ(options.patterns.size(), 32u);
  ASSERT_EQ(options.patterns[0].heads.size(), 32u);
  EXPECT_EQ(options.patterns[0].heads[0].kind, PatternKind::INTERVAL_SLASH);
  const ModelConfig small = *builtin_model_config("smollm2-135m");
  EXPECT_EQ(configure_attention(small, AttentionMode::SPARSE, "", path, options).code(),
            StatusCode::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace sacc
