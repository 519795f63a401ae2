// --linear bf16|fp8: parsing, the FP8 weight and workspace bytes of the memory plan, and the CPU backend's
// refusal of FP8.
#include <gtest/gtest.h>

#include "model/model_loader.h"
#include "runtime/backend.h"
#include "runtime/memory_plan.h"
#include "runtime/multi_gpu_plan.h"

namespace sacc {
namespace {

TEST(LinearMode, ParsesBf16AndFp8AndNamesTheChoicesOtherwise) {
  EXPECT_EQ(*parse_linear_mode("bf16"), LinearMode::BF16);
  EXPECT_EQ(*parse_linear_mode("fp8"), LinearMode::FP8);
  EXPECT_STREQ(linear_mode_name(LinearMode::FP8), "fp8");
  EXPECT_STREQ(linear_mode_name(LinearMode::BF16), "bf16");
  for (const char* bad : {"", "FP8", "fp16", "e4m3", "int8"}) {
    const Result<LinearMode> mode = parse_linear_mode(bad);
    ASSERT_FALSE(mode.is_ok()) << bad;
    EXPECT_EQ(mode.status().code(), StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(mode.status().message().find("expected bf16 or fp8"), std::string::npos)
        << mode.status().message();
  }
  EXPECT_EQ(BackendOptions{}.linear, LinearMode::BF16);
}

// Llama-3.1-8B: the layers' linear weights drop from 2 bytes to 1 byte a parameter plus one fp32 scale per
// output channel; embeddings, LM head and norms stay bf16. The FP8 workspace adds the chunk's e4m3 input.
TEST(LinearMode, MemoryPlanCountsFp8WeightsAndScales) {
  const ModelConfig c = *builtin_model_config("llama-3.1-8b");
  const uint64_t D = c.hidden, q = c.q_dim(), kv = c.kv_dim(), F = c.ffn, N = c.num_layers;
  const uint64_t linear = D * (q + 2 * kv) + q * D + 3 * D * F;
  const uint64_t channels = q + 2 * kv + D + 2 * F + D;
  EXPECT_EQ(layer_weight_bytes(c, LinearMode::BF16), (2 * D + linear) * 2);
  EXPECT_EQ(layer_weight_bytes(c, LinearMode::FP8), 2 * D * 2 + linear + channels * 4);

  const MemoryPlan bf16 = plan_memory(c, 131072, 8192, Device::cuda(0));
  const MemoryPlan fp8 = plan_memory(c, 131072, 8192, Device::cuda(0), 0, false, 1, LinearMode::FP8);
  EXPECT_EQ(bf16.weights, static_cast<uint64_t>(c.parameter_count()) * 2);
  EXPECT_EQ(bf16.weights - fp8.weights, N * (linear - channels * 4));
  EXPECT_EQ(fp8.kv_cache, bf16.kv_cache);
  // About 6.5 GiB less at 8B (the 0.5 B embedding parameters and the LM head stay bf16).
  EXPECT_GT(bf16.weights - fp8.weights, 6ull << 30);
  // [chunk, F] e4m3 + [chunk] fp32, and a decode step's [1, F] + [1] (each part 256-byte aligned).
  EXPECT_EQ(fp8.workspace - bf16.workspace, 8192 * F + 8192 * 4 + F + 256);
  EXPECT_EQ(cuda_step_workspace_sizes(c, 1, 8192, true, LinearMode::FP8).fp8_input, F + 256);
  EXPECT_EQ(cuda_workspace_sizes(c, 131072, 8192, 0, false).fp8_input, 0u);

  // Several GPUs: each shard's layer bytes follow the same rule.
  ShardSizing sizing;
  sizing.tokens = 4096;
  sizing.linear = LinearMode::FP8;
  const ShardMemory m = shard_memory(c, whole_model_shard(c, 0), sizing);
  EXPECT_EQ(m.layer_weights, N * layer_weight_bytes(c, LinearMode::FP8));
}

// Chunk 0 is each device's default: 512 rows on the CPU; on a GPU the most rows, a power of two from 8192,
// whose gate/up activations fit kGpuChunkActivationBytes — in the memory plan as in the backends.
TEST(LinearMode, ChunkZeroIsEachDevicesDefault) {
  const ModelConfig smol = *builtin_model_config("smollm2-135m");   // F 1536
  const ModelConfig qwen = *builtin_model_config("qwen2.5-0.5b");   // F 4864
  const ModelConfig llama = *builtin_model_config("llama-3.1-8b");  // F 14336
  EXPECT_EQ(linear_chunk_rows(0, true, qwen), kCpuLinearChunk);
  EXPECT_EQ(linear_chunk_rows(100, true, qwen), 100);
  EXPECT_EQ(linear_chunk_rows(100, false, qwen), 100);
  EXPECT_EQ(linear_chunk_rows(0, false, llama), kGpuLinearChunk);  // 16384 rows would take 896 MiB
  EXPECT_EQ(linear_chunk_rows(0, false, qwen), 16384);             // 304 MiB; 32768 would take 608
  EXPECT_EQ(linear_chunk_rows(0, false, smol), 65536);             // 384 MiB
  for (const ModelConfig* c : {&smol, &qwen, &llama}) {
    const int64_t rows = linear_chunk_rows(0, false, *c);
    EXPECT_LE(static_cast<uint64_t>(rows) * 4 * static_cast<uint64_t>(c->ffn), kGpuChunkActivationBytes);
  }
  EXPECT_EQ(plan_memory(smol, 8192, 0, Device::cpu()).workspace,
            plan_memory(smol, 8192, kCpuLinearChunk, Device::cpu()).workspace);
  EXPECT_LT(plan_memory(smol, 8192, 0, Device::cpu()).workspace,
            plan_memory(smol, 8192, 8192, Device::cpu()).workspace);
  EXPECT_EQ(plan_memory(qwen, 32768, 0, Device::cuda(0)).workspace,
            plan_memory(qwen, 32768, 16384, Device::cuda(0)).workspace);
  EXPECT_GT(plan_memory(qwen, 32768, 0, Device::cuda(0)).workspace,
            plan_memory(qwen, 32768, kGpuLinearChunk, Device::cuda(0)).workspace);
  BackendOptions options;
  EXPECT_EQ(with_linear_chunk(options, true, qwen).chunk, kCpuLinearChunk);
  EXPECT_EQ(with_linear_chunk(options, false, qwen).chunk, 16384);
}

TEST(LinearMode, CpuBackendRefusesFp8) {
  Result<LoadedModel> model = load_model("random:smollm2-135m", {});
  ASSERT_TRUE(model.is_ok()) << model.status().to_string();
  BackendOptions options;
  options.device = Device::cpu();
  options.linear = LinearMode::FP8;
  const Result<std::unique_ptr<Backend>> backend = make_cpu_backend(model->weights, options);
  ASSERT_FALSE(backend.is_ok());
  EXPECT_EQ(backend.status().code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(backend.status().message().find("CUDA backend only"), std::string::npos)
      << backend.status().message();
}

}  // namespace
}  // namespace sacc
