// The CUDA backend against the CPU backend on the same random weights (the counter-based generator gives both
// backends identical bf16 values), plus GPU-only properties: all-blocks sparse == dense, chunking, budgets.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <span>

#include "core/cuda/device_memory.h"
#include "core/device_info.h"
#include "core/log.h"
#include "model/llama_weights.h"
#include "runtime/backend.h"
#include "runtime/backend_warmup.h"
#include "tiny_cuda_models.h"

namespace sacc {
namespace {

struct RunResult {
  std::vector<float> prefill;
  std::vector<std::vector<float>> decode;
  PrefillAttentionStats attention;  // the prefill's
};

RunResult run_model(const LlamaWeights& w, BackendOptions options, int length, int decode_steps) {
  options.show_progress = false;
  Result<std::unique_ptr<Backend>> backend =
      options.device.is_cpu() ? make_cpu_backend(w, options) : make_cuda_backend(w, options);
  EXPECT_TRUE(backend.is_ok()) << backend.status().to_string();
  RunResult r;
  if (!backend) return r;
  EXPECT_TRUE((*backend)->reserve(length + decode_steps).is_ok());
  const std::vector<int32_t> tokens = test::fixed_prompt(length, static_cast<int>(w.config.vocab));
  Status s = (*backend)->prefill(tokens, r.prefill);
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  r.attention = (*backend)->last_prefill_attention();
  for (int i = 0; i < decode_steps; ++i) {
    r.decode.emplace_back();
    s = (*backend)->decode((i * 7 + 3) % 1000, r.decode.back());
    EXPECT_TRUE(s.is_ok()) << s.to_string();
  }
  return r;
}

class RuntimeCuda : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  }
};

// The GPU keeps activations and the residual stream in bf16 (8 mantissa bits, ~2^-9 relative rounding per op)
// where the CPU keeps fp32; over 3 layers the logits differ by ~1 % of their norm. 4 % bounds that and still
// catches any real bug (a wrong RoPE, mask or head mapping moves logits by tens of percent).
TEST_P(RuntimeCuda, LogitsMatchCpuBackend) {
  const LlamaWeights w = llama_weights_random(test::tiny_cuda_config(GetParam(), 3), 42);
  BackendOptions cpu_options, gpu_options;
  gpu_options.device = Device::cuda(0);
  gpu_options.attention = AttentionMode::DENSE;
  const RunResult cpu = run_model(w, cpu_options, 333, 3);
  const RunResult gpu = run_model(w, gpu_options, 333, 3);
  ASSERT_EQ(gpu.prefill.size(), cpu.prefill.size());
  EXPECT_LT(test::relative_error(gpu.prefill, cpu.prefill), 4e-2);
  for (size_t i = 0; i < cpu.decode.size(); ++i)
    EXPECT_LT(test::relative_error(gpu.decode[i], cpu.decode[i]), 4e-2) << i;
}

// Sparse prefill on cuda:0 with `every_head` for every head of every layer.
BackendOptions sparse_on_gpu(const ModelConfig& config, PatternSpec every_head) {
  BackendOptions options;
  options.device = Device::cuda(0);
  options.attention = AttentionMode::SPARSE;
  LayerPatterns layer;
  layer.heads.assign(config.num_heads, every_head);
  options.patterns.assign(config.num_layers, layer);
  return options;
}

TEST_P(RuntimeCuda, AllBlocksSparseEqualsDenseAndChunkingAgrees) {
  const ModelConfig config = test::tiny_cuda_config(GetParam(), 3);
  const LlamaWeights w = llama_weights_random(config, 43);
  const BackendOptions sparse = sparse_on_gpu(config, PatternSpec{});  // every block
  BackendOptions dense = sparse;
  dense.attention = AttentionMode::DENSE;
  dense.patterns.clear();
  BackendOptions chunked = dense;
  chunked.chunk = 100;  // 1000 = 10 chunks
  const RunResult a = run_model(w, dense, 1000, 1), b = run_model(w, sparse, 1000, 1),
                  c = run_model(w, chunked, 1000, 1);
  // The same kernel visiting the same key blocks: identical up to the order of nothing.
  EXPECT_LT(test::relative_error(b.prefill, a.prefill), 1e-3);
  EXPECT_FALSE(a.attention.sparse);
  EXPECT_TRUE(b.attention.sparse);
  EXPECT_DOUBLE_EQ(b.attention.density, 1.0);  // every causal tile listed
  // Different GEMM shapes pick different cuBLASLt kernels (different fp32 summation order), then bf16
  // rounding.
  EXPECT_LT(test::relative_error(c.prefill, a.prefill), 2e-2);
}

// The density the CUDA backend reads back from its device-built indices is the CPU backend's, counted on its
// host index: a fixed pattern (no estimation) gives both the same index.
TEST_P(RuntimeCuda, PrefillDensityMatchesCpuBackend) {
  const ModelConfig config = test::tiny_cuda_config(GetParam(), 3);
  const LlamaWeights w = llama_weights_random(config, 45);
  const BackendOptions gpu = sparse_on_gpu(config, PatternSpec{PatternKind::TRIANGULAR, 64, 256});
  BackendOptions cpu = gpu;
  cpu.device = Device::cpu();
  const RunResult on_gpu = run_model(w, gpu, 1000, 0), on_cpu = run_model(w, cpu, 1000, 0);
  ASSERT_TRUE(on_gpu.attention.sparse);
  ASSERT_TRUE(on_cpu.attention.sparse);
  EXPECT_GT(on_gpu.attention.density, 0.0);
  EXPECT_LT(on_gpu.attention.density, 0.8);  // ~47 of 72 causal tiles per head
  EXPECT_DOUBLE_EQ(on_gpu.attention.density, on_cpu.attention.density);
}

// A prompt prefilled in chunks as a server does (prefill, then extends of 256, 256 and 100 tokens): with the
// workspace kept for chunks of up to 512 tokens (BackendOptions::prefill_workspace_tokens) the device memory
// in use stays where the first chunk put it, and every chunk's logits are those of per-chunk workspaces, bit
// for bit; without it, the 100-token chunk's smaller workspace shows in the memory in use.
TEST_P(RuntimeCuda, KeptPrefillWorkspaceServesEveryChunk) {
  const LlamaWeights w = llama_weights_random(test::tiny_cuda_config(GetParam(), 3), 46);
  const std::vector<int32_t> prompt = test::fixed_prompt(868, static_cast<int>(w.config.vocab));
  const std::vector<int64_t> ends = {256, 512, 768, 868};
  struct Chunked {
    std::vector<std::vector<float>> logits;  // per chunk
    std::vector<uint64_t> in_use;            // device bytes after each chunk
  };
  const auto run = [&](int64_t kept) {
    Chunked out;
    BackendOptions options;
    options.device = Device::cuda(0);
    options.attention = AttentionMode::DENSE;
    options.show_progress = false;
    options.prefill_workspace_tokens = kept;
    Result<std::unique_ptr<Backend>> backend = make_cuda_backend(w, options);
    EXPECT_TRUE(backend.is_ok()) << backend.status().to_string();
    if (!backend) return out;
    EXPECT_TRUE((*backend)->reserve(1000).is_ok());
    int64_t begin = 0;
    for (const int64_t end : ends) {
      const auto chunk = std::span<const int32_t>(prompt).subspan(begin, end - begin);
      out.logits.emplace_back();
      const Status s = begin == 0 ? (*backend)->prefill(chunk, out.logits.back())
                                  : (*backend)->extend(0, chunk, out.logits.back());
      EXPECT_TRUE(s.is_ok()) << s.to_string();
      out.in_use.push_back(DeviceAllocator::stats(0).in_use);
      begin = end;
    }
    return out;
  };
  const Chunked kept = run(512), each = run(0);
  ASSERT_EQ(kept.logits.size(), ends.size());
  ASSERT_EQ(each.logits.size(), ends.size());
  for (size_t c = 0; c < ends.size(); ++c) {
    ASSERT_EQ(kept.logits[c].size(), each.logits[c].size());
    EXPECT_EQ(
        std::memcmp(kept.logits[c].data(), each.logits[c].data(), kept.logits[c].size() * sizeof(float)), 0)
        << "chunk " << c;
    EXPECT_EQ(kept.in_use[c], kept.in_use[0]) << "chunk " << c;
  }
  EXPECT_LT(each.in_use[3], each.in_use[2]);
  EXPECT_GT(kept.in_use[0], each.in_use[0]);  // sized for 512 tokens, not 256
}

// After a server's warm-up, the chunks and steps of a request meet no GEMM shape for the first time: no
// cuBLASLt heuristic search (each also loads kernels: ~10 ms per new row bucket on the H200 during serving).
TEST_P(RuntimeCuda, WarmedBackendSearchesNoGemmAlgorithmWhileServing) {
  const LlamaWeights w = llama_weights_random(test::tiny_cuda_config(GetParam(), 2), 47);
  const std::vector<int32_t> prompt = test::fixed_prompt(856, static_cast<int>(w.config.vocab));
  BackendOptions options;
  options.device = Device::cuda(0);
  options.show_progress = false;
  options.prefill_workspace_tokens = 512;
  Result<std::unique_ptr<Backend>> backend = make_cuda_backend(w, options);
  ASSERT_TRUE(backend.is_ok()) << backend.status().to_string();
  Backend& b = **backend;
  ASSERT_TRUE(b.set_slot_count(4).is_ok());
  const Status warmed = warm_row_buckets(b, 512);
  ASSERT_TRUE(warmed.is_ok()) << warmed.to_string();

  const LogLevel level = log_level();
  set_log_level(LogLevel::DEBUG);
  testing::internal::CaptureStderr();
  std::vector<float> logits;
  Status s = b.reserve_slot(2, 1000);
  // Chunks of 88, 256 and 512 rows (a prompt's tail, the first chunks, a grown budget), then a step of two.
  if (s) s = b.prefill(2, std::span<const int32_t>(prompt).first(88), logits);
  if (s) s = b.extend(2, std::span<const int32_t>(prompt).subspan(88, 256), logits);
  if (s) s = b.extend(2, std::span<const int32_t>(prompt).subspan(344, 512), logits);
  if (s) s = b.reserve_slot(3, 8);
  if (s) s = b.prefill(3, std::span<const int32_t>(prompt).first(3), logits);
  const std::vector<int32_t> step_tokens = {7, 9};
  const std::vector<int> step_slots = {2, 3};
  if (s) s = b.decode_batch(step_tokens, step_slots, logits);
  const std::string log = testing::internal::GetCapturedStderr();
  set_log_level(level);
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  EXPECT_NE(log.find("forward of 512 rows"), std::string::npos) << log;  // the debug log was captured
  EXPECT_EQ(log.find("algorithm search"), std::string::npos) << log;
}

TEST_P(RuntimeCuda, BudgetTooSmallIsAnOutOfMemoryError) {
  const LlamaWeights w = llama_weights_random(test::tiny_cuda_config(GetParam(), 3), 44);
  DeviceAllocator::set_budget(0, DeviceAllocator::stats(0).in_use + (1 << 20));
  BackendOptions options;
  options.device = Device::cuda(0);
  options.show_progress = false;
  Result<std::unique_ptr<Backend>> backend = make_cuda_backend(w, options);
  DeviceAllocator::set_budget(0, 0);
  ASSERT_FALSE(backend.is_ok());
  EXPECT_EQ(backend.status().code(), StatusCode::OUT_OF_MEMORY) << backend.status().to_string();
}

INSTANTIATE_TEST_SUITE_P(Models, RuntimeCuda, ::testing::Values(false, true),
                         [](const auto& info) { return std::string(info.param ? "qwen2" : "llama3"); });

}  // namespace
}  // namespace sacc
