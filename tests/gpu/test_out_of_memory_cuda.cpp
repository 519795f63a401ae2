// Out of GPU memory in the CUDA backend: with most of the device's free memory held by the test, a prefill
// whose workspace cannot fit and a generation whose KV cache (prompt + decode positions) cannot fit fail with
// an OUT_OF_MEMORY Status naming the buffer, its size and the device, never a crash; once the memory is given
// back the same backend runs the same request.
#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <vector>

#include "core/device_info.h"
#include "model/llama_weights.h"
#include "runtime/backend.h"
#include "runtime/engine.h"
#include "tiny_cuda_models.h"

namespace sacc {
namespace {

constexpr size_t kMiB = size_t{1} << 20;

// Holds the device's free memory down to about `leave` bytes with raw cudaMalloc (outside DeviceAllocator, as
// another process would), in steps from 1 GiB down to 2 MiB so fragmentation cannot stop it short.
class MemoryHog {
 public:
  explicit MemoryHog(size_t leave) {
    for (size_t step = size_t{1} << 30; step >= 2 * kMiB; step /= 2) {
      for (;;) {
        size_t free_bytes = 0, total = 0;
        if (cudaMemGetInfo(&free_bytes, &total) != cudaSuccess || free_bytes < leave + step) break;
        void* p = nullptr;
        if (cudaMalloc(&p, step) != cudaSuccess) {
          cudaGetLastError();
          break;
        }
        held_.push_back(p);
      }
    }
  }
  ~MemoryHog() { release(); }
  void release() {
    for (void* p : held_) cudaFree(p);
    held_.clear();
  }
  static size_t free_now() {
    size_t free_bytes = 0, total = 0;
    cudaMemGetInfo(&free_bytes, &total);
    return free_bytes;
  }

 private:
  std::vector<void*> held_;
};

bool contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

class OutOfMemoryCuda : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
    ModelConfig config = test::tiny_cuda_config(false, 3);
    config.max_context = 1 << 20;
    weights_ = llama_weights_random(config, 45);
    BackendOptions options;
    options.device = Device::cuda(0);
    options.attention = AttentionMode::DENSE;
    options.show_progress = false;
    Result<std::unique_ptr<Backend>> backend = make_cuda_backend(weights_, options);
    ASSERT_TRUE(backend.is_ok()) << backend.status().to_string();
    backend_ = std::move(backend).value();
    // A short run first, so kernels are loaded (lazily, into device memory) before the memory is held.
    ASSERT_TRUE(backend_->reserve(64).is_ok());
    std::vector<float> logits;
    ASSERT_TRUE(backend_->prefill(test::fixed_prompt(32, 1000), logits).is_ok());
    ASSERT_TRUE(backend_->decode(7, logits).is_ok());
  }

  LlamaWeights weights_;
  std::unique_ptr<Backend> backend_;
};

// 32768 tokens: the KV cache (3 layers x 2 x 32768 x 128 x bf16 = 48 MiB) is reserved while memory is free;
// the prefill's hidden states and queries (16 MiB each) then meet a device with about 4 MiB left.
TEST_F(OutOfMemoryCuda, PrefillWorkspaceThatCannotFitIsAnError) {
  constexpr int kTokens = 32768;
  ASSERT_TRUE(backend_->reserve(kTokens).is_ok());
  const std::vector<int32_t> prompt = test::fixed_prompt(kTokens, 1000);
  std::vector<float> logits;
  {
    MemoryHog hog(4 * kMiB);
    ASSERT_LT(MemoryHog::free_now(), 16 * kMiB) << "could not hold the device's memory";
    const Status s = backend_->prefill(prompt, logits);
    EXPECT_EQ(s.code(), StatusCode::OUT_OF_MEMORY) << s.to_string();
    EXPECT_TRUE(contains(s.message(), "cannot allocate")) << s.message();
    EXPECT_TRUE(contains(s.message(), "on cuda:0") || contains(s.message(), "on the GPU")) << s.message();
  }
  ASSERT_TRUE(backend_->reserve(kTokens).is_ok());
  const Status again = backend_->prefill(prompt, logits);
  EXPECT_TRUE(again.is_ok()) << again.to_string();
  EXPECT_EQ(static_cast<int64_t>(logits.size()), weights_.config.vocab);
}

// A 16-token prompt and 100000 new tokens: the KV cache for every decode position (146 MiB) cannot fit in
// the 32 MiB left, and generate() says so before the prefill.
TEST_F(OutOfMemoryCuda, DecodeKvCacheThatCannotFitIsAnError) {
  const std::vector<int32_t> prompt = test::fixed_prompt(16, 1000);
  GenerateOptions options;
  options.max_new_tokens = 100000;
  {
    MemoryHog hog(32 * kMiB);
    ASSERT_LT(MemoryHog::free_now(), 100 * kMiB) << "could not hold the device's memory";
    Result<GenerationMetrics> m = generate(*backend_, prompt, options, [](int32_t) {});
    ASSERT_FALSE(m.is_ok());
    EXPECT_EQ(m.status().code(), StatusCode::OUT_OF_MEMORY) << m.status().to_string();
    EXPECT_TRUE(contains(m.status().message(), "KV cache: cannot allocate")) << m.status().message();
    EXPECT_TRUE(contains(m.status().message(), "on cuda:0")) << m.status().message();
  }
  options.max_new_tokens = 4;
  Result<GenerationMetrics> ok = generate(*backend_, prompt, options, [](int32_t) {});
  ASSERT_TRUE(ok.is_ok()) << ok.status().to_string();
  EXPECT_EQ(ok->generated_tokens, 4);
}

}  // namespace
}  // namespace sacc
