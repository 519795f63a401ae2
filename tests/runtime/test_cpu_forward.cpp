// The CPU forward pass against an independent fp64 reference, on tiny random models written as HF
// directories.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "core/dtype.h"
#include "model/hf_checkpoint.h"
#include "runtime/backend.h"
#include "runtime/tiny_model.h"

namespace sacc {
namespace {

std::vector<int32_t> prompt_of(int length, int vocab, int salt = 0) {
  std::vector<int32_t> t(length);
  for (int i = 0; i < length; ++i) t[i] = (i * 31 + 7 + salt * 13) % vocab;
  return t;
}

struct Loaded {
  LlamaWeights weights;
  std::string dir;
};

Loaded load(const test::TinyWeights& tiny, int shards = 1) {
  Loaded out;
  out.dir = test::make_temp_dir("fwd");
  test::write_hf_dir(tiny, out.dir, shards);
  Result<HfCheckpoint> ckpt = HfCheckpoint::open(out.dir, false);
  EXPECT_TRUE(ckpt.is_ok()) << ckpt.status().to_string();
  Result<LlamaWeights> w = ckpt->weights();
  EXPECT_TRUE(w.is_ok()) << w.status().to_string();
  out.weights = std::move(w).value();
  return out;
}

// Against fp64, relative to the logits' scale: test::cpu_logit_tolerance() (fp32 compute, and bf16 products
// in the attention where the CPU has them).
void expect_logits_near(const std::vector<float>& got, const std::vector<double>& want, const char* what) {
  ASSERT_EQ(got.size(), want.size());
  double scale = 0.0, max_err = 0.0;
  for (size_t i = 0; i < want.size(); ++i) {
    scale = std::max(scale, std::abs(want[i]));
    max_err = std::max(max_err, std::abs(got[i] - want[i]));
  }
  EXPECT_LT(max_err, test::cpu_logit_tolerance() * scale)
      << what << ": max error " << max_err << " at logit scale " << scale;
}

std::unique_ptr<Backend> cpu(const LlamaWeights& w, BackendOptions options = {}) {
  options.show_progress = false;
  Result<std::unique_ptr<Backend>> b = make_cpu_backend(w, options);
  EXPECT_TRUE(b.is_ok()) << b.status().to_string();
  return std::move(b).value();
}

struct Variant {
  const char* name;
  test::TinySpec spec;
};

class CpuForward : public ::testing::TestWithParam<Variant> {};

TEST_P(CpuForward, PrefillAndDecodeMatchFp64Reference) {
  const test::TinyWeights tiny = test::make_tiny_weights(GetParam().spec);
  Loaded m = load(tiny);
  auto backend = cpu(m.weights);
  std::vector<int32_t> tokens = prompt_of(45, tiny.spec.vocab);
  ASSERT_TRUE(backend->reserve(60).is_ok());
  std::vector<float> logits;
  ASSERT_TRUE(backend->prefill(tokens, logits).is_ok());
  expect_logits_near(logits, test::reference_logits(tiny, tokens), "prefill");
  for (int step = 0; step < 3; ++step) {
    tokens.push_back((step * 17 + 5) % tiny.spec.vocab);
    ASSERT_TRUE(backend->decode(tokens.back(), logits).is_ok());
    expect_logits_near(logits, test::reference_logits(tiny, tokens), "decode");
  }
  std::filesystem::remove_all(m.dir);
}

test::TinySpec spec_with(bool bias, bool tied, bool scaling, int heads, int kv_heads) {
  test::TinySpec s;
  s.qkv_bias = bias;
  s.tied = tied;
  s.llama3_scaling = scaling;
  s.heads = heads;
  s.kv_heads = kv_heads;
  return s;
}

INSTANTIATE_TEST_SUITE_P(Variants, CpuForward,
                         ::testing::Values(Variant{"llama3_gqa2", spec_with(false, false, true, 4, 2)},
                                           Variant{"qwen2_bias_tied", spec_with(true, true, false, 6, 2)},
                                           Variant{"mha", spec_with(false, true, true, 3, 3)},
                                           Variant{"gqa4_single_kv", spec_with(false, false, false, 4, 1)}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(CpuForwardChunks, ChunkedEqualsUnchunkedAndShardedEqualsSingleFile) {
  const test::TinyWeights tiny = test::make_tiny_weights(test::TinySpec{});
  Loaded single = load(tiny), sharded = load(tiny, 3);
  const std::vector<int32_t> tokens = prompt_of(37, tiny.spec.vocab, 1);
  std::vector<float> whole, chunked, from_shards;
  auto a = cpu(single.weights);
  ASSERT_TRUE(a->reserve(40).is_ok());
  ASSERT_TRUE(a->prefill(tokens, whole).is_ok());
  BackendOptions small_chunks;
  small_chunks.chunk = 5;  // 37 = 7 * 5 + 2: a ragged last chunk
  auto b = cpu(single.weights, small_chunks);
  ASSERT_TRUE(b->reserve(40).is_ok());
  ASSERT_TRUE(b->prefill(tokens, chunked).is_ok());
  auto c = cpu(sharded.weights);
  ASSERT_TRUE(c->reserve(40).is_ok());
  ASSERT_TRUE(c->prefill(tokens, from_shards).is_ok());
  // Rows of a GEMM do not interact, but BLAS blocks a 5-row call differently from a 37-row call; a last-ulp
  // fp32 difference can flip a K/V element's bf16 rounding (2^-8 relative), which moves logits by ~1e-4 of
  // their scale.
  float scale = 0.0f;
  for (float v : whole) scale = std::max(scale, std::abs(v));
  for (size_t i = 0; i < whole.size(); ++i) {
    EXPECT_NEAR(chunked[i], whole[i], 5e-4f * scale) << i;
    EXPECT_EQ(from_shards[i], whole[i]) << i;
  }
  std::filesystem::remove_all(single.dir);
  std::filesystem::remove_all(sharded.dir);
}

TEST(CpuForwardSparse, AllBlocksSparseEqualsDense) {
  test::TinySpec spec;
  spec.max_context = 1024;
  const test::TinyWeights tiny = test::make_tiny_weights(spec);
  Loaded m = load(tiny);
  // 300 tokens: three query blocks of 128, the last one ragged.
  const std::vector<int32_t> tokens = prompt_of(300, spec.vocab, 2);
  std::vector<float> dense, sparse;
  auto a = cpu(m.weights);
  ASSERT_TRUE(a->reserve(300).is_ok());
  ASSERT_TRUE(a->prefill(tokens, dense).is_ok());
  EXPECT_FALSE(a->last_prefill_attention().sparse);
  EXPECT_EQ(a->last_prefill_attention().density, 1.0);
  BackendOptions options;
  options.attention = AttentionMode::SPARSE;
  LayerPatterns all_blocks;
  all_blocks.heads.assign(spec.heads, PatternSpec{});
  options.patterns.assign(spec.layers, all_blocks);
  auto b = cpu(m.weights, options);
  ASSERT_TRUE(b->reserve(300).is_ok());
  ASSERT_TRUE(b->prefill(tokens, sparse).is_ok());
  EXPECT_TRUE(b->last_prefill_attention().sparse);
  // Every block of every head listed: the kernels ran what dense causal runs.
  EXPECT_DOUBLE_EQ(b->last_prefill_attention().density, 1.0);
  for (size_t i = 0; i < dense.size(); ++i) EXPECT_EQ(sparse[i], dense[i]) << i;
  // A real sparse pattern changes the answer (so the sparse path is not silently dense).
  LayerPatterns local;
  local.heads.assign(spec.heads, PatternSpec{PatternKind::TRIANGULAR, 16, 64});
  options.patterns.assign(spec.layers, local);
  auto c = cpu(m.weights, options);
  std::vector<float> triangular;
  ASSERT_TRUE(c->reserve(300).is_ok());
  ASSERT_TRUE(c->prefill(tokens, triangular).is_ok());
  double diff = 0.0;
  for (size_t i = 0; i < dense.size(); ++i)
    diff = std::max(diff, static_cast<double>(std::abs(triangular[i] - dense[i])));
  EXPECT_GT(diff, 1e-4);
  // The local pattern skips causal tiles: its density is below dense's.
  EXPECT_TRUE(c->last_prefill_attention().sparse);
  EXPECT_GT(c->last_prefill_attention().density, 0.0);
  EXPECT_LT(c->last_prefill_attention().density, 1.0);
  std::filesystem::remove_all(m.dir);
}

TEST(CpuForwardErrors, PromptLongerThanReservedOrContext) {
  test::TinySpec spec;
  spec.max_context = 64;
  const test::TinyWeights tiny = test::make_tiny_weights(spec);
  Loaded m = load(tiny);
  auto backend = cpu(m.weights);
  Status over = backend->reserve(65);
  EXPECT_EQ(over.code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(over.message().find("context of 64"), std::string::npos) << over.message();
  ASSERT_TRUE(backend->reserve(10).is_ok());
  std::vector<float> logits;
  Status too_long = backend->prefill(prompt_of(11, spec.vocab), logits);
  EXPECT_FALSE(too_long.is_ok());
  Status bad_token = backend->prefill(std::vector<int32_t>{1, 2, spec.vocab}, logits);
  EXPECT_EQ(bad_token.code(), StatusCode::INVALID_ARGUMENT);
  BackendOptions gpu_only;
  gpu_only.attention = AttentionMode::CUDNN;
  EXPECT_EQ(make_cpu_backend(m.weights, gpu_only).status().code(), StatusCode::INVALID_ARGUMENT);
  std::filesystem::remove_all(m.dir);
}

// prefill_logit_rows: row r of R is position n - R + r, the logits a prefill of the first n - R + r + 1
// tokens ends with; decode steps stay one row; R beyond the prompt gives one row per position.
TEST(CpuForwardEvalHooks, LogitRowsAreTheLastPositions) {
  const test::TinyWeights tiny = test::make_tiny_weights(test::TinySpec{});
  Loaded m = load(tiny);
  const int64_t V = tiny.spec.vocab, R = 6;
  const std::vector<int32_t> tokens = prompt_of(45, tiny.spec.vocab, 3);
  BackendOptions rows_options;
  rows_options.prefill_logit_rows = R;
  auto rows = cpu(m.weights, rows_options), one = cpu(m.weights);
  ASSERT_TRUE(rows->reserve(46).is_ok());
  ASSERT_TRUE(one->reserve(46).is_ok());
  std::vector<float> many, single;
  ASSERT_TRUE(rows->prefill(tokens, many).is_ok());
  ASSERT_TRUE(one->prefill(tokens, single).is_ok());
  ASSERT_EQ(static_cast<int64_t>(many.size()), R * V);
  for (int64_t r = 0; r < R; ++r) {
    const std::vector<int32_t> prefix(tokens.begin(), tokens.end() - (R - 1 - r));
    const std::vector<float> row(many.begin() + r * V, many.begin() + (r + 1) * V);
    expect_logits_near(row, test::reference_logits(tiny, prefix), "logit row");
  }
  // Same hidden states; only the LM head GEMM has 6 rows instead of 1 (another BLAS blocking, fp32 ulps).
  float scale = 0.0f;
  for (float v : single) scale = std::max(scale, std::abs(v));
  for (int64_t i = 0; i < V; ++i) EXPECT_NEAR(many[(R - 1) * V + i], single[i], 1e-5f * scale) << i;
  std::vector<float> step_rows, step_one;
  ASSERT_TRUE(rows->decode(5, step_rows).is_ok());
  ASSERT_TRUE(one->decode(5, step_one).is_ok());
  EXPECT_EQ(step_rows, step_one);
  BackendOptions beyond;
  beyond.prefill_logit_rows = 100;
  auto all = cpu(m.weights, beyond);
  ASSERT_TRUE(all->reserve(45).is_ok());
  ASSERT_TRUE(all->prefill(tokens, many).is_ok());
  EXPECT_EQ(static_cast<int64_t>(many.size()), 45 * V);
  std::filesystem::remove_all(m.dir);
}

// The observer sees each layer once, in order, during the prefill only: post-RoPE q as attention reads it
// (fp32) and k, v as the bf16 KV cache holds them, against the fp64 pass's own q, k, v.
TEST(CpuForwardEvalHooks, QkvObserverSeesPostRopeQAndTheBf16Cache) {
  const test::TinyWeights tiny = test::make_tiny_weights(spec_with(true, true, false, 6, 2));
  Loaded m = load(tiny);
  const test::TinySpec& s = tiny.spec;
  const int64_t L = 45, Q = s.heads * s.head_dim, KV = s.kv_heads * s.head_dim;
  const std::vector<int32_t> tokens = prompt_of(static_cast<int>(L), s.vocab, 4);
  std::vector<int> calls;
  std::vector<test::ReferenceQkv> seen;
  BackendOptions options;
  options.maybe_qkv_observer = [&](int layer, const float* q, const float* k, const float* v) {
    calls.push_back(layer);
    seen.push_back({std::vector<double>(q, q + L * Q), std::vector<double>(k, k + L * KV),
                    std::vector<double>(v, v + L * KV)});
  };
  auto backend = cpu(m.weights, options);
  ASSERT_TRUE(backend->reserve(L + 1).is_ok());
  std::vector<float> logits;
  ASSERT_TRUE(backend->prefill(tokens, logits).is_ok());
  ASSERT_TRUE(backend->decode(3, logits).is_ok());
  std::vector<int> in_order(s.layers);
  for (int l = 0; l < s.layers; ++l) in_order[l] = l;
  ASSERT_EQ(calls, in_order);
  const std::vector<test::ReferenceQkv> want = test::reference_qkv(tiny, tokens);
  ASSERT_EQ(want.size(), seen.size());
  // Against fp64 as for the logits (test::cpu_logit_tolerance() of the scale), plus one bf16 ulp (2^-8
  // relative) where an fp32 K/V value and its fp64 twin round to neighbouring bf16 values.
  auto expect_near = [](const std::vector<double>& got, const std::vector<double>& ref, bool bf16,
                        const std::string& what) {
    ASSERT_EQ(got.size(), ref.size()) << what;
    double scale = 0.0;
    for (double e : ref) scale = std::max(scale, std::abs(e));
    for (size_t i = 0; i < ref.size(); ++i) {
      EXPECT_NEAR(got[i], ref[i], test::cpu_logit_tolerance() * scale + (bf16 ? std::abs(ref[i]) / 128 : 0.0))
          << what << " " << i;
      if (bf16) {
        EXPECT_EQ(got[i], round_to_bf16(static_cast<float>(got[i]))) << what << " " << i;
      }
    }
  };
  for (int l = 0; l < s.layers; ++l) {
    expect_near(seen[l].q, want[l].q, false, "q of layer " + std::to_string(l));
    expect_near(seen[l].k, want[l].k, true, "k of layer " + std::to_string(l));
    expect_near(seen[l].v, want[l].v, true, "v of layer " + std::to_string(l));
  }
  std::filesystem::remove_all(m.dir);
}

}  // namespace
}  // namespace sacc
