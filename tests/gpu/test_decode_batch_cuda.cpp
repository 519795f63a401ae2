// Batched decode on the CUDA backend: the batched decode attention kernel (one launch, each row against its
// own cache at its own length) equals the per-row kernel bit for bit and a host reference within bf16
// rounding; the per-row RoPE and KV store equal their sequence forms; Backend::decode_batch over sequences in
// their own slots gives each the logits of its own decode, and over two GPUs those of one.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/cuda/device_memory.h"
#include "core/device_info.h"
#include "core/dtype.h"
#include "model/llama_weights.h"
#include "runtime/backend.h"
#include "runtime/cuda/cuda_kernels.h"
#include "tiny_cuda_models.h"

namespace sacc {
namespace {

class DecodeBatchCuda : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  }
};

std::vector<uint16_t> random_bf16(int64_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<uint16_t> v(static_cast<size_t>(n));
  for (auto& x : v) x = float_to_bf16(dist(gen));
  return v;
}

DeviceBuffer upload(const void* data, size_t bytes) {
  Result<DeviceBuffer> b = DeviceBuffer::create(0, std::max<size_t>(bytes, 1), "decode batch test");
  EXPECT_TRUE(b.is_ok());
  EXPECT_EQ(cudaMemcpy(b->data(), data, bytes, cudaMemcpyHostToDevice), cudaSuccess);
  return std::move(b).value();
}

template <typename T>
std::vector<T> download(const DeviceBuffer& b, size_t count) {
  std::vector<T> out(count);
  EXPECT_EQ(cudaMemcpy(out.data(), b.data(), count * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
  return out;
}

// Rows at positions that end inside the first key split, on a split boundary and several splits in (512 keys
// per split), each with its own cache of its own capacity.
TEST_F(DecodeBatchCuda, BatchedAttentionEqualsPerRowKernelAndHostReference) {
  const int heads = 8, kv_heads = 2;
  const std::vector<int32_t> positions = {0, 16, 511, 512, 1500, 4100};
  for (const int d : {64, 128}) {
    const int rows = static_cast<int>(positions.size());
    const int64_t q_width = int64_t{heads} * d, kv_width = int64_t{kv_heads} * d;
    const std::vector<uint16_t> q = random_bf16(rows * q_width, 1u + d);
    DeviceBuffer dq = upload(q.data(), q.size() * 2);
    std::vector<std::vector<uint16_t>> k(rows), v(rows);
    std::vector<DeviceBuffer> dk, dv;
    std::vector<const uint16_t*> k_ptrs, v_ptrs;
    int64_t max_keys = 0;
    for (int r = 0; r < rows; ++r) {
      const int64_t capacity = positions[r] + 1 + r * 7;  // room past the row's keys
      k[r] = random_bf16(capacity * kv_width, 100u + r);
      v[r] = random_bf16(capacity * kv_width, 200u + r);
      dk.push_back(upload(k[r].data(), k[r].size() * 2));
      dv.push_back(upload(v[r].data(), v[r].size() * 2));
      k_ptrs.push_back(dk.back().as<uint16_t>());
      v_ptrs.push_back(dv.back().as<uint16_t>());
      max_keys = std::max<int64_t>(max_keys, positions[r] + 1);
    }
    DeviceBuffer dk_ptrs = upload(k_ptrs.data(), rows * sizeof(void*));
    DeviceBuffer dv_ptrs = upload(v_ptrs.data(), rows * sizeof(void*));
    DeviceBuffer dpos = upload(positions.data(), rows * sizeof(int32_t));
    Result<DeviceBuffer> out = DeviceBuffer::create(0, rows * q_width * 2, "batched out");
    Result<DeviceBuffer> one = DeviceBuffer::create(0, q_width * 2, "per-row out");
    const size_t scratch_bytes = cuda_rt::decode_attention_batch_scratch_bytes(rows, heads, d, max_keys);
    Result<DeviceBuffer> scratch = DeviceBuffer::create(0, scratch_bytes, "scratch");
    ASSERT_TRUE(out.is_ok() && one.is_ok() && scratch.is_ok());
    ASSERT_EQ(cuda_rt::decode_attention_batch(dq.as<uint16_t>(), dk_ptrs.as<const uint16_t* const>(),
                                              dv_ptrs.as<const uint16_t* const>(), dpos.as<int32_t>(),
                                              out->as<uint16_t>(), rows, heads, kv_heads, d, max_keys,
                                              scratch->data(), scratch_bytes, nullptr),
              cudaSuccess);
    const std::vector<uint16_t> batched = download<uint16_t>(*out, static_cast<size_t>(rows * q_width));
    for (int r = 0; r < rows; ++r) {
      // The per-row kernel over the same keys: the same partials, combined in the same order.
      ASSERT_EQ(cuda_rt::decode_attention(dq.as<uint16_t>() + r * q_width, k_ptrs[r], v_ptrs[r],
                                          one->as<uint16_t>(), heads, kv_heads, d, positions[r] + 1,
                                          scratch->data(), scratch_bytes, nullptr),
                cudaSuccess);
      const std::vector<uint16_t> single = download<uint16_t>(*one, static_cast<size_t>(q_width));
      for (int64_t i = 0; i < q_width; ++i)
        ASSERT_EQ(batched[r * q_width + i], single[i]) << "d " << d << " row " << r << " element " << i;
      // fp64 softmax(q k^T / sqrt(d)) v over keys [0, position]: the kernel's only rounding is the bf16
      // output (2^-9 relative) on fp32 sums, so 1e-2 of the output's scale bounds it.
      for (int h = 0; h < heads; ++h) {
        const int kvh = h / (heads / kv_heads);
        const int64_t n = positions[r] + 1;
        std::vector<double> s(static_cast<size_t>(n));
        double m = -INFINITY;
        for (int64_t j = 0; j < n; ++j) {
          double dot = 0.0;
          for (int e = 0; e < d; ++e)
            dot +=
                bf16_to_float(q[r * q_width + h * d + e]) * bf16_to_float(k[r][j * kv_width + kvh * d + e]);
          s[j] = dot / std::sqrt(double(d));
          m = std::max(m, s[j]);
        }
        double sum = 0.0;
        for (double& x : s) sum += (x = std::exp(x - m));
        for (int e = 0; e < d; ++e) {
          double o = 0.0;
          for (int64_t j = 0; j < n; ++j) o += s[j] * bf16_to_float(v[r][j * kv_width + kvh * d + e]);
          EXPECT_NEAR(bf16_to_float(batched[r * q_width + h * d + e]), o / sum, 1e-2)
              << "d " << d << " row " << r << " head " << h;
        }
      }
    }
  }
}

// bias_rope with per-row positions equals the sequence form row by row; store_rows puts each row at its
// position of its own cache.
TEST_F(DecodeBatchCuda, PerRowRopeAndStoreEqualTheirSequenceForms) {
  const int heads = 2, d = 64, rows = 4;
  const int64_t width = int64_t{heads} * d;
  const std::vector<int32_t> positions = {3, 0, 1000, 77};
  const std::vector<uint16_t> x = random_bf16(rows * width, 9);
  const std::vector<uint16_t> bias = random_bf16(width, 10);
  std::vector<double> inv_freq(d / 2);
  for (int i = 0; i < d / 2; ++i) inv_freq[i] = std::pow(10000.0, -2.0 * i / d);
  DeviceBuffer dx = upload(x.data(), x.size() * 2), dbias = upload(bias.data(), bias.size() * 2);
  DeviceBuffer dfreq = upload(inv_freq.data(), inv_freq.size() * sizeof(double));
  DeviceBuffer dpos = upload(positions.data(), rows * sizeof(int32_t));
  ASSERT_EQ(cuda_rt::bias_rope(dx.as<uint16_t>(), width, rows, heads, d, dbias.as<uint16_t>(),
                               dfreq.as<double>(), 0, nullptr, dpos.as<int32_t>()),
            cudaSuccess);
  const std::vector<uint16_t> batched = download<uint16_t>(dx, x.size());
  for (int r = 0; r < rows; ++r) {
    DeviceBuffer row = upload(x.data() + r * width, width * 2);
    ASSERT_EQ(cuda_rt::bias_rope(row.as<uint16_t>(), width, 1, heads, d, dbias.as<uint16_t>(),
                                 dfreq.as<double>(), positions[r], nullptr),
              cudaSuccess);
    const std::vector<uint16_t> single = download<uint16_t>(row, static_cast<size_t>(width));
    for (int64_t i = 0; i < width; ++i) ASSERT_EQ(batched[r * width + i], single[i]) << r << " " << i;
  }
  // Each row into its own cache of 1001 positions.
  std::vector<DeviceBuffer> caches;
  std::vector<uint16_t*> pointers;
  const std::vector<uint16_t> zeros(1001 * width, 0);
  for (int r = 0; r < rows; ++r) {
    caches.push_back(upload(zeros.data(), zeros.size() * 2));
    pointers.push_back(caches.back().as<uint16_t>());
  }
  DeviceBuffer dptrs = upload(pointers.data(), rows * sizeof(void*));
  ASSERT_EQ(cuda_rt::store_rows(dx.as<uint16_t>(), width, dptrs.as<uint16_t* const>(), dpos.as<int32_t>(),
                                rows, nullptr),
            cudaSuccess);
  for (int r = 0; r < rows; ++r) {
    const std::vector<uint16_t> cache = download<uint16_t>(caches[r], zeros.size());
    for (int64_t p = 0; p < 1001; ++p)
      for (int64_t i = 0; i < width; ++i)
        ASSERT_EQ(cache[p * width + i], p == positions[r] ? batched[r * width + i] : 0) << r << " " << p;
  }
}

// Three sequences of different lengths in slots 2, 0, 1 of one backend, stepped together, against each
// decoded alone in a one-slot backend. The batch's GEMMs have 3 rows where the single decode's have 1:
// cuBLASLt may pick another algorithm, so the bf16 outputs differ by rounding (as in
// test_prefix_reuse_cuda.cpp), far under what a wrong slot, position or mask would move them.
TEST_F(DecodeBatchCuda, DecodeBatchRowsMatchEachSequenceAlone) {
  for (const bool qwen : {false, true}) {
    const LlamaWeights w = llama_weights_random(test::tiny_cuda_config(qwen, 3), 42);
    BackendOptions options;
    options.device = Device::cuda(0);
    options.attention = AttentionMode::DENSE;
    options.show_progress = false;
    Result<std::unique_ptr<Backend>> batched = make_cuda_backend(w, options);
    ASSERT_TRUE(batched.is_ok()) << batched.status().to_string();
    ASSERT_TRUE((*batched)->set_slot_count(3).is_ok());
    const std::vector<int> slots = {2, 0, 1};
    const std::vector<int> lengths = {700, 37, 1};
    std::vector<std::unique_ptr<Backend>> alone;
    std::vector<float> logits;
    for (size_t i = 0; i < slots.size(); ++i) {
      const std::vector<int32_t> prompt = test::fixed_prompt(lengths[i], 1000);
      ASSERT_TRUE((*batched)->reserve_slot(slots[i], 800).is_ok());
      ASSERT_TRUE((*batched)->prefill(slots[i], prompt, logits).is_ok());
      Result<std::unique_ptr<Backend>> one = make_cuda_backend(w, options);
      ASSERT_TRUE(one.is_ok());
      ASSERT_TRUE((*one)->reserve(800).is_ok());
      ASSERT_TRUE((*one)->prefill(prompt, logits).is_ok());
      alone.push_back(std::move(one).value());
    }
    for (int step = 0; step < 3; ++step) {
      const std::vector<int32_t> tokens = {int32_t(5 + step), int32_t(17 * step + 1), int32_t(999 - step)};
      std::vector<float> rows;
      Status s = (*batched)->decode_batch(tokens, slots, rows);
      ASSERT_TRUE(s.is_ok()) << s.to_string();
      ASSERT_EQ(rows.size(), 3u * 1000);
      for (size_t i = 0; i < slots.size(); ++i) {
        std::vector<float> single;
        ASSERT_TRUE(alone[i]->decode(tokens[i], single).is_ok());
        const std::vector<float> row(rows.begin() + i * 1000, rows.begin() + (i + 1) * 1000);
        EXPECT_LT(test::relative_error(row, single), 1e-2)
            << (qwen ? "qwen2" : "llama3") << " step " << step << " slot " << slots[i];
        EXPECT_EQ((*batched)->position(slots[i]), lengths[i] + step + 1);
      }
    }
  }
}

// Three sequences stepped together on `options`' GPUs: each step's rows [3, V].
std::vector<std::vector<float>> batch_steps(const LlamaWeights& w, BackendOptions options) {
  constexpr int64_t kCapacity = 800;
  options.attention = AttentionMode::DENSE;
  options.show_progress = false;
  options.max_tokens = kCapacity;
  Result<std::unique_ptr<Backend>> b = make_cuda_backend(w, options);
  EXPECT_TRUE(b.is_ok()) << b.status().to_string();
  if (!b) return {};
  EXPECT_TRUE((*b)->set_slot_count(3).is_ok());
  const std::vector<int> slots = {2, 0, 1}, lengths = {700, 37, 1};
  std::vector<float> logits;
  for (size_t i = 0; i < slots.size(); ++i) {
    EXPECT_TRUE((*b)->reserve_slot(slots[i], kCapacity).is_ok());
    EXPECT_TRUE((*b)->prefill(slots[i], test::fixed_prompt(lengths[i], 1000), logits).is_ok());
  }
  std::vector<std::vector<float>> steps;
  for (int step = 0; step < 3; ++step) {
    const std::vector<int32_t> tokens = {int32_t(5 + step), int32_t(17 * step + 1), int32_t(999 - step)};
    steps.emplace_back();
    const Status s = (*b)->decode_batch(tokens, slots, steps.back());
    EXPECT_TRUE(s.is_ok()) << s.to_string();
  }
  return steps;
}

// Layer split and tensor parallel over two GPUs against one, with the bounds of test_multi_gpu.cpp (layer
// split: the same kernels on other GPUs, 2e-3; tensor parallel: bf16 partial sums added over NCCL, 2e-2).
TEST_F(DecodeBatchCuda, TwoGpusMatchOne) {
  if (cuda_device_count() < 2) GTEST_SKIP() << "needs 2 CUDA devices, " << cuda_device_count() << " visible";
  const LlamaWeights w = llama_weights_random(test::tiny_cuda_config(true, 4), 43);
  BackendOptions one;
  one.device = Device::cuda(0);
  const std::vector<std::vector<float>> want = batch_steps(w, one);
  for (const SplitMode split : {SplitMode::LAYER, SplitMode::TENSOR}) {
    BackendOptions two = one;
    two.gpus = {0, 1};
    two.split = split;
    const std::vector<std::vector<float>> got = batch_steps(w, two);
    ASSERT_EQ(got.size(), want.size());
    for (size_t step = 0; step < want.size(); ++step) {
      ASSERT_EQ(got[step].size(), want[step].size());
      EXPECT_LT(test::relative_error(got[step], want[step]), split == SplitMode::LAYER ? 2e-3 : 2e-2)
          << (split == SplitMode::LAYER ? "layer split" : "tensor parallel") << " step " << step;
    }
  }
}

}  // namespace
}  // namespace sacc
