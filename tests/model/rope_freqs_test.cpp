// RoPE frequencies from a GGUF: llama3 scaling given as metadata keys, as the tensor rope_freqs.weight
// (per-frequency divisors, how llama.cpp stores Llama 3.1's scaling), or neither.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <span>
#include <string>
#include <vector>

#include "model/gguf.h"
#include "model/model_loader.h"
#include "runtime/backend.h"
#include "tests/cli/run_sacc.h"
#include "tests/model/gguf_writer.h"

namespace sacc {
namespace {

using testing_gguf::Bytes;
using testing_gguf::GgufWriter;
using testing_gguf::write_temp_file;

constexpr uint32_t kGgmlF32 = 0;
constexpr uint32_t kGgmlF16 = 1;

struct Dims {
  int64_t hidden, heads, kv_heads, ffn, vocab;
  double theta;
};
// Llama-3.1-8B's attention geometry (d = 128): only metadata, no weights, is written with it.
constexpr Dims kLlama31{4096, 32, 8, 14336, 4, 500000.0};

struct Llama3 {
  double factor, low, high;
  int64_t original;
};
constexpr Llama3 kLlama31Scaling{8.0, 1.0, 4.0, 8192};

GgufWriter llama_metadata(const Dims& dims, int64_t layers) {
  GgufWriter w;
  w.add_string("general.architecture", "llama");
  w.add_u32("llama.context_length", 131072);
  w.add_u32("llama.embedding_length", static_cast<uint32_t>(dims.hidden));
  w.add_u32("llama.block_count", static_cast<uint32_t>(layers));
  w.add_u32("llama.feed_forward_length", static_cast<uint32_t>(dims.ffn));
  w.add_u32("llama.attention.head_count", static_cast<uint32_t>(dims.heads));
  w.add_u32("llama.attention.head_count_kv", static_cast<uint32_t>(dims.kv_heads));
  w.add_f32("llama.rope.freq_base", static_cast<float>(dims.theta));
  std::vector<std::string> tokens;
  for (int64_t i = 0; i < dims.vocab; ++i) tokens.push_back(std::string(1, static_cast<char>('a' + i)));
  w.add_string_array("tokenizer.ggml.tokens", tokens);
  return w;
}

void add_llama3_keys(GgufWriter& w, const Llama3& s) {
  w.add_string("llama.rope.scaling.type", "llama3");
  w.add_f32("llama.rope.scaling.factor", static_cast<float>(s.factor));
  w.add_f32("llama.rope.scaling.low_freq_factor", static_cast<float>(s.low));
  w.add_f32("llama.rope.scaling.high_freq_factor", static_cast<float>(s.high));
  w.add_u32("llama.rope.scaling.original_context_length", static_cast<uint32_t>(s.original));
}

std::string f32_bytes(const std::vector<float>& values) {
  Bytes b;
  for (float v : values) b.pod(v);
  return b.data();
}

// What a converter stores for llama3 scaling, written here from the published rule (independently of
// rope_inverse_frequencies): wavelengths below original/high keep their frequency, those above original/low
// are divided by `factor`, and in between the frequency is the smooth mix (1-s)/factor + s of the two.
std::vector<float> llama3_divisors(const Dims& dims, const Llama3& s) {
  const int64_t d = dims.hidden / dims.heads;
  std::vector<float> out;
  for (int64_t i = 0; i < d / 2; ++i) {
    const double wavelen = 2.0 * std::numbers::pi * std::pow(dims.theta, 2.0 * i / d);
    const double ramp = (s.original / wavelen - s.low) / (s.high - s.low);
    const double divisor = wavelen < s.original / s.high  ? 1.0
                           : wavelen > s.original / s.low ? s.factor
                                                          : 1.0 / ((1.0 - ramp) / s.factor + ramp);
    out.push_back(static_cast<float>(divisor));
  }
  return out;
}

Result<ModelConfig> config_of(const std::string& name, const GgufWriter& w) {
  Result<GgufFile> file = GgufFile::open(write_temp_file(name, w.build()));
  if (!file) return file.status();
  return model_config_from_gguf(*file);
}

std::vector<double> plain_frequencies(const Dims& dims) {
  const int64_t d = dims.hidden / dims.heads;
  std::vector<double> out;
  for (int64_t i = 0; i < d / 2; ++i) out.push_back(1.0 / std::pow(dims.theta, 2.0 * i / d));
  return out;
}

// The divisors are stored as fp32: each carries a relative rounding error up to 2^-24, which the division
// passes on; twice that bounds it with the double arithmetic around it.
constexpr double kFp32Divisor = 2.0 * 5.960464477539063e-8;

TEST(RopeFreqs, TensorMatchesLlama3Metadata) {
  GgufWriter with_keys = llama_metadata(kLlama31, 1);
  add_llama3_keys(with_keys, kLlama31Scaling);
  Result<ModelConfig> from_keys = config_of("rope_keys.gguf", with_keys);
  ASSERT_TRUE(from_keys.is_ok()) << from_keys.status().to_string();
  EXPECT_TRUE(from_keys->rope_scaling.enabled);
  EXPECT_TRUE(from_keys->rope_freq_divisors.empty());

  GgufWriter with_tensor = llama_metadata(kLlama31, 1);
  with_tensor.add_tensor("rope_freqs.weight", kGgmlF32, {64},
                         f32_bytes(llama3_divisors(kLlama31, kLlama31Scaling)));
  Result<ModelConfig> from_tensor = config_of("rope_tensor.gguf", with_tensor);
  ASSERT_TRUE(from_tensor.is_ok()) << from_tensor.status().to_string();
  EXPECT_FALSE(from_tensor->rope_scaling.enabled);
  ASSERT_EQ(from_tensor->rope_freq_divisors.size(), 64u);

  const std::vector<double> want = rope_inverse_frequencies(*from_keys);
  const std::vector<double> got = rope_inverse_frequencies(*from_tensor);
  const std::vector<double> plain = plain_frequencies(kLlama31);
  ASSERT_EQ(got.size(), want.size());
  int scaled = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_NEAR(got[i], want[i], kFp32Divisor * want[i]) << i;
    if (got[i] < 0.99 * plain[i]) ++scaled;
  }
  // Llama 3.1 keeps its highest frequencies and scales the rest: both bands must be present.
  EXPECT_GT(scaled, 10);
  EXPECT_LT(scaled, 60);
  // The same as the built-in config, which comes from config.json's rope_scaling.
  const std::vector<double> builtin = rope_inverse_frequencies(*builtin_model_config("llama-3.1-8b"));
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], builtin[i], kFp32Divisor * builtin[i]) << i;
  EXPECT_NE(from_tensor->summary().find("rope freqs   64 per-frequency divisors"), std::string::npos)
      << from_tensor->summary();
}

TEST(RopeFreqs, AbsentLeavesFrequenciesUnchanged) {
  Result<ModelConfig> c = config_of("rope_none.gguf", llama_metadata(kLlama31, 1));
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_TRUE(c->rope_freq_divisors.empty());
  EXPECT_FALSE(c->rope_scaling.enabled);
  const std::vector<double> got = rope_inverse_frequencies(*c);
  const std::vector<double> plain = plain_frequencies(kLlama31);
  ASSERT_EQ(got.size(), plain.size());
  // theta is written as fp32 (500000 is exact in fp32), so the frequencies are the double-precision ones.
  for (size_t i = 0; i < plain.size(); ++i) EXPECT_DOUBLE_EQ(got[i], plain[i]) << i;
  EXPECT_EQ(c->summary().find("rope freqs"), std::string::npos);
}

TEST(RopeFreqs, TensorTakesPrecedenceOverKeys) {
  // The converter's divisors already are the llama3 scaling; applying the formula again would scale twice.
  GgufWriter w = llama_metadata(kLlama31, 1);
  add_llama3_keys(w, kLlama31Scaling);
  w.add_tensor("rope_freqs.weight", kGgmlF32, {64}, f32_bytes(std::vector<float>(64, 2.0f)));
  Result<ModelConfig> c = config_of("rope_both.gguf", w);
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  const std::vector<double> got = rope_inverse_frequencies(*c);
  const std::vector<double> plain = plain_frequencies(kLlama31);
  for (size_t i = 0; i < plain.size(); ++i) EXPECT_DOUBLE_EQ(got[i], plain[i] / 2.0) << i;
  EXPECT_NE(c->summary().find("used instead of the llama3 formula"), std::string::npos) << c->summary();
}

void expect_corrupt(const Result<ModelConfig>& c, const std::string& fragment) {
  ASSERT_FALSE(c.is_ok());
  EXPECT_EQ(c.status().code(), StatusCode::CORRUPT_DATA) << c.status().to_string();
  EXPECT_NE(c.status().message().find(fragment), std::string::npos) << c.status().to_string();
}

TEST(RopeFreqs, MalformedTensorIsCorruptData) {
  GgufWriter short_one = llama_metadata(kLlama31, 1);
  short_one.add_tensor("rope_freqs.weight", kGgmlF32, {63}, f32_bytes(std::vector<float>(63, 1.0f)));
  expect_corrupt(config_of("rope_short.gguf", short_one), "rope_freqs.weight' has shape [63], expected [64]");

  GgufWriter long_one = llama_metadata(kLlama31, 1);
  long_one.add_tensor("rope_freqs.weight", kGgmlF32, {128}, f32_bytes(std::vector<float>(128, 1.0f)));
  expect_corrupt(config_of("rope_long.gguf", long_one), "expected [64]");

  GgufWriter matrix = llama_metadata(kLlama31, 1);
  matrix.add_tensor("rope_freqs.weight", kGgmlF32, {32, 2}, f32_bytes(std::vector<float>(64, 1.0f)));
  expect_corrupt(config_of("rope_matrix.gguf", matrix), "has shape [2, 32]");

  GgufWriter half = llama_metadata(kLlama31, 1);
  half.add_tensor("rope_freqs.weight", kGgmlF16, {64}, std::string(128, '\0'));
  expect_corrupt(config_of("rope_f16.gguf", half), "has type F16, expected F32");

  std::vector<float> values(64, 1.0f);
  values[17] = 0.0f;
  GgufWriter zero = llama_metadata(kLlama31, 1);
  zero.add_tensor("rope_freqs.weight", kGgmlF32, {64}, f32_bytes(values));
  expect_corrupt(config_of("rope_zero.gguf", zero), "element 17 is 0");

  values[17] = NAN;
  GgufWriter nan = llama_metadata(kLlama31, 1);
  nan.add_tensor("rope_freqs.weight", kGgmlF32, {64}, f32_bytes(values));
  expect_corrupt(config_of("rope_nan.gguf", nan), "element 17");
}

TEST(RopeFreqs, Llama3KeysTakeLlama31DefaultsAndAreChecked) {
  GgufWriter type_only = llama_metadata(kLlama31, 1);
  type_only.add_string("llama.rope.scaling.type", "llama3");
  type_only.add_f32("llama.rope.scaling.factor", 8.0f);
  Result<ModelConfig> c = config_of("rope_type_only.gguf", type_only);
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_TRUE(c->rope_scaling.enabled);
  EXPECT_EQ(c->rope_scaling.factor, 8.0);
  EXPECT_EQ(c->rope_scaling.low_freq_factor, 1.0);
  EXPECT_EQ(c->rope_scaling.high_freq_factor, 4.0);
  EXPECT_EQ(c->rope_scaling.original_max_position, 8192);

  GgufWriter custom = llama_metadata(kLlama31, 1);
  add_llama3_keys(custom, {32.0, 2.0, 8.0, 4096});
  c = config_of("rope_custom.gguf", custom);
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->rope_scaling.factor, 32.0);
  EXPECT_EQ(c->rope_scaling.low_freq_factor, 2.0);
  EXPECT_EQ(c->rope_scaling.high_freq_factor, 8.0);
  EXPECT_EQ(c->rope_scaling.original_max_position, 4096);
  EXPECT_NE(c->summary().find("rope scaling llama3 (factor 32, low 2, high 8, original 4096)"),
            std::string::npos)
      << c->summary();

  GgufWriter inverted = llama_metadata(kLlama31, 1);
  add_llama3_keys(inverted, {8.0, 4.0, 1.0, 8192});
  expect_corrupt(config_of("rope_inverted.gguf", inverted), "low_freq_factor < high_freq_factor");
}

TEST(RopeFreqs, SaccInfoPrintsTheRopeSetup) {
  const std::string none = write_temp_file("info_rope_none.gguf", llama_metadata(kLlama31, 1).build());
  GgufWriter keys = llama_metadata(kLlama31, 1);
  add_llama3_keys(keys, kLlama31Scaling);
  const std::string with_keys = write_temp_file("info_rope_keys.gguf", keys.build());
  GgufWriter tensor = llama_metadata(kLlama31, 1);
  tensor.add_tensor("rope_freqs.weight", kGgmlF32, {64},
                    f32_bytes(llama3_divisors(kLlama31, kLlama31Scaling)));
  const std::string with_tensor = write_temp_file("info_rope_tensor.gguf", tensor.build());

  test::SaccRun run = test::run_sacc_binary("info -m " + none);
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("rope theta   500000\nrope scaling none\n"), std::string::npos) << run.output;
  run = test::run_sacc_binary("info -m " + with_keys);
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("rope scaling llama3 (factor 8, low 1, high 4, original 8192)"),
            std::string::npos)
      << run.output;
  run = test::run_sacc_binary("info -m " + with_tensor);
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("rope freqs   64 per-frequency divisors in [1, 8]\n"), std::string::npos)
      << run.output;
  EXPECT_EQ(run.output.find("rope scaling"), std::string::npos) << run.output;

  GgufWriter bad = llama_metadata(kLlama31, 1);
  bad.add_tensor("rope_freqs.weight", kGgmlF32, {32}, f32_bytes(std::vector<float>(32, 1.0f)));
  run = test::run_sacc_binary("info -m " + write_temp_file("info_rope_bad.gguf", bad.build()));
  EXPECT_NE(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("rope_freqs.weight' has shape [32], expected [64]"), std::string::npos)
      << run.output;
}

// A whole model, one layer: the CPU backend must run with the tensor's frequencies. Small theta and a short
// original context put most frequencies in the scaled bands, so a few positions already tell the cases apart.
constexpr Dims kTiny{64, 4, 2, 96, 11, 100.0};
constexpr Llama3 kTinyScaling{8.0, 1.0, 4.0, 16};

void add_tiny_weights(GgufWriter& w) {
  const int64_t D = kTiny.hidden, d = D / kTiny.heads, KV = kTiny.kv_heads * d, F = kTiny.ffn;
  uint64_t state = 12345;
  auto tensor = [&](const std::string& name, int64_t rows, int64_t cols, float center, float scale) {
    std::vector<float> v(static_cast<size_t>(rows * cols));
    for (float& x : v) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      x = center + scale * (static_cast<float>(state >> 40) / static_cast<float>(1 << 24) - 0.5f);
    }
    const std::vector<uint64_t> dims =
        rows == 1 ? std::vector<uint64_t>{static_cast<uint64_t>(cols)}
                  : std::vector<uint64_t>{static_cast<uint64_t>(cols), static_cast<uint64_t>(rows)};
    w.add_tensor(name, kGgmlF32, dims, f32_bytes(v));
  };
  tensor("token_embd.weight", kTiny.vocab, D, 0.0f, 2.0f);
  tensor("output_norm.weight", 1, D, 1.0f, 0.2f);
  tensor("blk.0.attn_norm.weight", 1, D, 1.0f, 0.2f);
  tensor("blk.0.attn_q.weight", D, D, 0.0f, 1.0f);
  tensor("blk.0.attn_k.weight", KV, D, 0.0f, 1.0f);
  tensor("blk.0.attn_v.weight", KV, D, 0.0f, 0.5f);
  tensor("blk.0.attn_output.weight", D, D, 0.0f, 0.5f);
  tensor("blk.0.ffn_norm.weight", 1, D, 1.0f, 0.2f);
  tensor("blk.0.ffn_gate.weight", F, D, 0.0f, 0.5f);
  tensor("blk.0.ffn_up.weight", F, D, 0.0f, 0.5f);
  tensor("blk.0.ffn_down.weight", D, F, 0.0f, 0.5f);
}

std::vector<float> tiny_logits(const std::string& name, GgufWriter w) {
  add_tiny_weights(w);
  ModelLoadOptions load;
  load.load_tokenizer = false;
  load.show_progress = false;
  Result<LoadedModel> model = load_model(write_temp_file(name, w.build()), load);
  EXPECT_TRUE(model.is_ok()) << model.status().to_string();
  if (!model) return {};
  BackendOptions options;
  options.show_progress = false;
  Result<std::unique_ptr<Backend>> backend = make_cpu_backend(model->weights, options);
  EXPECT_TRUE(backend.is_ok()) << backend.status().to_string();
  if (!backend) return {};
  const std::vector<int32_t> prompt{3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8};
  std::vector<float> logits;
  EXPECT_TRUE((*backend)->reserve(static_cast<int64_t>(prompt.size())).is_ok());
  Status status = (*backend)->prefill(prompt, logits);
  EXPECT_TRUE(status.is_ok()) << status.to_string();
  return logits;
}

double max_abs_diff(std::span<const float> a, std::span<const float> b) {
  double m = 0.0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(static_cast<double>(a[i]) - b[i]));
  return m;
}

TEST(RopeFreqs, CpuBackendUsesTheTensor) {
  GgufWriter with_keys = llama_metadata(kTiny, 1);
  add_llama3_keys(with_keys, kTinyScaling);
  GgufWriter with_tensor = llama_metadata(kTiny, 1);
  with_tensor.add_tensor("rope_freqs.weight", kGgmlF32, {8}, f32_bytes(llama3_divisors(kTiny, kTinyScaling)));
  const std::vector<float> keys = tiny_logits("tiny_rope_keys.gguf", with_keys);
  const std::vector<float> tensor = tiny_logits("tiny_rope_tensor.gguf", with_tensor);
  const std::vector<float> plain = tiny_logits("tiny_rope_plain.gguf", llama_metadata(kTiny, 1));
  ASSERT_EQ(keys.size(), static_cast<size_t>(kTiny.vocab));
  ASSERT_EQ(tensor.size(), keys.size());
  ASSERT_EQ(plain.size(), keys.size());
  double scale = 0.0;
  for (float x : keys) scale = std::max(scale, std::abs(static_cast<double>(x)));
  // Same weights and code path; only the fp32 rounding of the divisors differs (angles up to 11 rad off by a
  // relative 1e-7): 1e-4 of the logit scale leaves room for the fp32 forward pass around it.
  EXPECT_LT(max_abs_diff(tensor, keys), 1e-4 * scale);
  // Scaling moves the logits far beyond that, so the comparison above could not pass by ignoring it.
  EXPECT_GT(max_abs_diff(plain, keys), 1e-2 * scale);
}

}  // namespace
}  // namespace sacc
