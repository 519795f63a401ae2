// Out of memory in the CPU backend and the engine: a KV cache or workspace that cannot be allocated is an
// OUT_OF_MEMORY Status naming it, never std::bad_alloc, and the backend stays usable for a smaller request.
// The requests are past any address space, so the allocation fails at once without touching memory.
#include <gtest/gtest.h>

#include <filesystem>

#include "address_sanitizer.h"
#include "model/hf_checkpoint.h"
#include "runtime/backend.h"
#include "runtime/engine.h"
#include "runtime/tiny_model.h"

namespace sacc {
namespace {

// 2^46 positions of the tiny model's KV cache is petabytes: more than a 47- or 57-bit address space maps.
constexpr int64_t kImpossibleTokens = int64_t{1} << 46;

struct TinyBackend {
  std::string dir = test::make_temp_dir("oom");
  LlamaWeights weights;
  std::unique_ptr<Backend> backend;

  TinyBackend() {
    test::write_hf_dir(test::make_tiny_weights({}), dir);
    Result<HfCheckpoint> ckpt = HfCheckpoint::open(dir, false);
    EXPECT_TRUE(ckpt.is_ok()) << ckpt.status().to_string();
    Result<LlamaWeights> w = ckpt->weights();
    EXPECT_TRUE(w.is_ok()) << w.status().to_string();
    weights = std::move(w).value();
    weights.config.max_context = kImpossibleTokens * 2;  // the context check must not refuse first
    BackendOptions options;
    options.show_progress = false;
    Result<std::unique_ptr<Backend>> b = make_cpu_backend(weights, options);
    EXPECT_TRUE(b.is_ok()) << b.status().to_string();
    backend = std::move(b).value();
  }
  ~TinyBackend() { std::filesystem::remove_all(dir); }
};

bool contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

TEST(CpuOutOfMemory, KvCacheReserveIsStatusAndBackendStaysUsable) {
  if (test::kUnderAddressSanitizer) GTEST_SKIP() << "ASan aborts on an impossible allocation";
  TinyBackend t;
  const Status s = t.backend->reserve(kImpossibleTokens);
  EXPECT_EQ(s.code(), StatusCode::OUT_OF_MEMORY) << s.to_string();
  EXPECT_TRUE(
      contains(s.message(), fmt::format("KV cache for {} tokens: cannot allocate", kImpossibleTokens)))
      << s.message();
  EXPECT_TRUE(contains(s.message(), "on the host")) << s.message();

  ASSERT_TRUE(t.backend->reserve(16).is_ok());
  std::vector<float> logits;
  const std::vector<int32_t> prompt = {1, 2, 3, 4};
  ASSERT_TRUE(t.backend->prefill(prompt, logits).is_ok());
  EXPECT_EQ(static_cast<int64_t>(logits.size()), t.weights.config.vocab);
  EXPECT_TRUE(t.backend->decode(5, logits).is_ok());
}

TEST(CpuOutOfMemory, GenerateReportsKvGrowthForDecode) {
  if (test::kUnderAddressSanitizer) GTEST_SKIP() << "ASan aborts on an impossible allocation";
  TinyBackend t;
  GenerateOptions options;
  options.max_new_tokens = kImpossibleTokens;  // the KV cache must hold every generated position
  const std::vector<int32_t> prompt = {1, 2, 3};
  Result<GenerationMetrics> m = generate(*t.backend, prompt, options, [](int32_t) {});
  ASSERT_FALSE(m.is_ok());
  EXPECT_EQ(m.status().code(), StatusCode::OUT_OF_MEMORY) << m.status().to_string();
  EXPECT_TRUE(contains(m.status().message(), "KV cache for")) << m.status().message();

  options.max_new_tokens = 2;
  Result<GenerationMetrics> ok = generate(*t.backend, prompt, options, [](int32_t) {});
  ASSERT_TRUE(ok.is_ok()) << ok.status().to_string();
  EXPECT_EQ(ok->generated_tokens, 2);
}

TEST(EngineOutOfMemory, BadAllocInTheRunIsStatus) {
  // Any std::bad_alloc during a run (here: from the token callback) ends it with OUT_OF_MEMORY.
  TinyBackend t;
  GenerateOptions options;
  options.max_new_tokens = 4;
  const std::vector<int32_t> prompt = {1, 2, 3};
  Result<GenerationMetrics> m =
      generate(*t.backend, prompt, options, [](int32_t) { throw std::bad_alloc(); });
  ASSERT_FALSE(m.is_ok());
  EXPECT_EQ(m.status().code(), StatusCode::OUT_OF_MEMORY);
  EXPECT_TRUE(contains(m.status().message(), "generating after a prompt of 3 tokens: cannot allocate"))
      << m.status().message();
}

}  // namespace
}  // namespace sacc
