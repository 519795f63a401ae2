// Timing of plan_cpu() at L = 32K, 32 query / 8 KV heads, d = 128, with MInference's Llama-3.1-8B budget
// mix (../shared/data/minference/). Disabled by default (it needs a few seconds of setup); run with
//   sacc_plan_cpu_tests --gtest_also_run_disabled_tests --gtest_filter='*Timing*'
// It prints wall and CPU seconds per layer and fails when a layer takes more than SACC_PLAN_CPU_MAX_SECONDS
// CPU seconds (default 2; CPU time, unlike wall time, does not grow when other processes share the cores).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include "attention/cpu/parallel_for.h"
#include "attention/cpu/plan_cpu.h"
#include "model/minference_config.h"
#include "reference/synthetic.h"

namespace sacc {
namespace {

TEST(PlanCpuTiming, DISABLED_Llama8BMinferenceMix32K) {
  const std::string path =
      std::string(SACC_SHARED_DATA_DIR) + "/minference/Llama_3.1_8B_Instruct_128k_heads.json";
  Result<MinferenceConfig> config = load_minference_config(path);
  if (!config.is_ok()) GTEST_SKIP() << config.status().to_string();
  const char* env = std::getenv("SACC_PLAN_CPU_MAX_SECONDS");
  const double max_seconds = env != nullptr ? std::atof(env) : 2.0;

  ref::SyntheticConfig synthetic;
  synthetic.shape = {32768, 32, 8, 128};
  Result<ref::SyntheticInput> input = ref::make_synthetic_input(synthetic);
  ASSERT_TRUE(input.is_ok()) << input.status().to_string();
  // What the runtime's CPU backend holds: fp32 queries, bf16 keys.
  std::vector<uint16_t> k(input->qkv.k.size());
  for (size_t n = 0; n < k.size(); ++n) k[n] = float_to_bf16(input->qkv.k[n]);
  AttentionParams params;
  params.shape = synthetic.shape;
  params.q = input->qkv.q.data();
  params.k = k.data();
  IndexGeometry geometry{synthetic.shape.seq_len, synthetic.shape.num_q_heads, 128, 64, false};

  std::printf("threads %d\n", cpu_thread_count());
  for (size_t layer : {size_t{0}, size_t{1}, config->size() / 2, config->size() - 1}) {
    LayerPatterns patterns;
    patterns.heads = layer_patterns(*config, layer);
    ASSERT_EQ(patterns.heads.size(), 32u);
    int counts[4] = {};
    for (const PatternSpec& spec : patterns.heads) ++counts[static_cast<int>(spec.kind)];
    const std::clock_t cpu_start = std::clock();
    const auto start = std::chrono::steady_clock::now();
    Result<SparseIndex> index = plan_cpu(params, patterns, geometry, {DType::F32, DType::BF16});
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    // CPU seconds of all threads: the wall time above also counts waiting for cores others are using.
    const double cpu_seconds = static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC;
    ASSERT_TRUE(index.is_ok()) << index.status().to_string();
    const double density = static_cast<double>(index->block_ids.size()) /
                           static_cast<double>(SparseIndex::dense(geometry).block_ids.size());
    std::printf(
        "layer %2zu: %d triangular, %d interval-slash, %d block-cluster: %.3f s (%.3f CPU s), block density "
        "%.3f\n",
        layer, counts[1], counts[2], counts[3], seconds, cpu_seconds, density);
    EXPECT_LT(cpu_seconds, max_seconds) << "layer " << layer;
  }
}

// A small real model's shape (SmolLM2-135M: 9 query / 3 KV heads, d = 64) with a mix of every estimated kind,
// per head and shared per KV group.
TEST(PlanCpuTiming, DISABLED_SmallModelShape32K) {
  ref::SyntheticConfig synthetic;
  synthetic.shape = {32768, 9, 3, 64};
  Result<ref::SyntheticInput> input = ref::make_synthetic_input(synthetic);
  ASSERT_TRUE(input.is_ok()) << input.status().to_string();
  AttentionParams params;
  params.shape = synthetic.shape;
  params.q = input->qkv.q.data();
  params.k = input->qkv.k.data();
  for (bool shared : {false, true}) {
    LayerPatterns patterns;
    patterns.shared_per_kv_group = shared;
    const int heads = shared ? 3 : 9;
    for (int h = 0; h < heads; ++h) {
      patterns.heads.push_back(
          *parse_pattern(h % 3 == 2 ? "block-cluster:64@0.95" : "interval-slash:1000,6096"));
    }
    IndexGeometry geometry{synthetic.shape.seq_len, heads, 128, 64, shared};
    const std::clock_t cpu_start = std::clock();
    const auto start = std::chrono::steady_clock::now();
    Result<SparseIndex> index = plan_cpu(params, patterns, geometry, {DType::F32, DType::F32});
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double cpu_seconds = static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC;
    ASSERT_TRUE(index.is_ok()) << index.status().to_string();
    std::printf("9/3 heads, d 64, %s: %.3f s (%.3f CPU s)\n", shared ? "shared" : "per head", seconds,
                cpu_seconds);
  }
}

}  // namespace
}  // namespace sacc
