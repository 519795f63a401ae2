// Backend::decode_batch on the CPU backend: sequences in their own slots, at different positions, stepped
// together, give each sequence the logits it gets alone (and the fp64 reference's); slots are independent
// and the batch's arguments are checked.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "runtime/backend.h"
#include "runtime/tiny_model.h"

namespace sacc {
namespace {

std::vector<int32_t> prompt_of(int length, int vocab, int salt) {
  std::vector<int32_t> t(length);
  for (int i = 0; i < length; ++i) t[i] = (i * 31 + 7 + salt * 13) % vocab;
  return t;
}

class CpuDecodeBatch : public ::testing::Test {
 protected:
  void SetUp() override {
    tiny_ = test::make_tiny_weights(test::TinySpec{});
    dir_ = test::make_temp_dir("batch");
    test::write_hf_dir(tiny_, dir_, 1);
    Result<LlamaWeights> w = test::load_hf_dir(dir_);
    ASSERT_TRUE(w.is_ok()) << w.status().to_string();
    weights_ = std::move(w).value();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<Backend> backend() const {
    BackendOptions options;
    options.show_progress = false;
    Result<std::unique_ptr<Backend>> b = make_cpu_backend(weights_, options);
    EXPECT_TRUE(b.is_ok()) << b.status().to_string();
    return std::move(b).value();
  }

  test::TinyWeights tiny_;
  std::string dir_;
  LlamaWeights weights_;
};

// A batch's GEMM blocks its rows differently from a one-row call: a last-ulp fp32 difference can flip a K/V
// element's bf16 rounding (2^-8 relative), which moves logits by ~1e-4 of their scale (as chunked against
// whole prefills in test_cpu_forward.cpp); 5e-4 of the scale bounds it. Against the fp64 reference the
// tolerance is test::cpu_logit_tolerance(), as in test_cpu_forward.cpp.
void expect_rows_near(std::span<const float> got, std::span<const float> want, double relative,
                      const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double scale = 0.0, max_err = 0.0;
  for (size_t i = 0; i < want.size(); ++i) {
    scale = std::max(scale, std::abs(double{want[i]}));
    max_err = std::max(max_err, std::abs(double{got[i]} - double{want[i]}));
  }
  EXPECT_GT(scale, 0.0) << what;
  EXPECT_LT(max_err, relative * scale) << what << ": max error " << max_err << " at logit scale " << scale;
}

TEST_F(CpuDecodeBatch, RowsEqualEachSequenceDecodedAlone) {
  const int V = tiny_.spec.vocab;
  // Three sequences of different lengths, so the batch's rows sit at different positions.
  std::vector<std::vector<int32_t>> sequences = {prompt_of(20, V, 0), prompt_of(33, V, 1),
                                                 prompt_of(7, V, 2)};
  const int steps = 4;
  auto batched = backend();
  ASSERT_TRUE(batched->set_slot_count(4).is_ok());
  std::vector<float> logits;
  // Slot 3 stays empty: the batch names slots 2, 0 and 1, out of order.
  const std::vector<int> slots = {2, 0, 1};
  for (int s = 0; s < 3; ++s) {
    ASSERT_TRUE(batched->reserve_slot(s, 64).is_ok());
    ASSERT_TRUE(batched->prefill(s, sequences[static_cast<size_t>(s)], logits).is_ok());
  }
  std::vector<std::vector<float>> alone_logits(3);
  std::vector<std::unique_ptr<Backend>> alone(3);
  for (int s = 0; s < 3; ++s) {
    alone[static_cast<size_t>(s)] = backend();
    ASSERT_TRUE(alone[static_cast<size_t>(s)]->reserve(64).is_ok());
    ASSERT_TRUE(alone[static_cast<size_t>(s)]->prefill(sequences[static_cast<size_t>(s)], logits).is_ok());
  }
  for (int step = 0; step < steps; ++step) {
    std::vector<int32_t> tokens;
    for (const int s : slots) {
      const int32_t token = (step * 17 + s * 5 + 3) % V;
      tokens.push_back(token);
      sequences[static_cast<size_t>(s)].push_back(token);
    }
    std::vector<float> rows;
    ASSERT_TRUE(batched->decode_batch(tokens, slots, rows).is_ok());
    ASSERT_EQ(rows.size(), slots.size() * static_cast<size_t>(V));
    for (size_t r = 0; r < slots.size(); ++r) {
      const auto s = static_cast<size_t>(slots[r]);
      std::vector<float> one;
      ASSERT_TRUE(alone[s]->decode(tokens[r], one).is_ok());
      const std::span<const float> row = std::span<const float>(rows).subspan(r * V, static_cast<size_t>(V));
      const std::string what = "step " + std::to_string(step) + " slot " + std::to_string(s);
      expect_rows_near(row, one, 5e-4, what + " vs alone");
      const std::vector<double> reference = test::reference_logits(tiny_, sequences[s]);
      const std::vector<float> reference_f(reference.begin(), reference.end());
      expect_rows_near(row, reference_f, test::cpu_logit_tolerance(), what + " vs fp64 reference");
      EXPECT_EQ(batched->position(slots[r]), static_cast<int64_t>(sequences[s].size()));
    }
  }
}

TEST_F(CpuDecodeBatch, ReleasedSlotLeavesTheOthersAndIsReusable) {
  const int V = tiny_.spec.vocab;
  auto b = backend();
  ASSERT_TRUE(b->set_slot_count(2).is_ok());
  std::vector<int32_t> kept = prompt_of(15, V, 3);
  std::vector<float> logits, rows;
  ASSERT_TRUE(b->reserve_slot(0, 32).is_ok());
  ASSERT_TRUE(b->prefill(0, kept, logits).is_ok());
  ASSERT_TRUE(b->reserve_slot(1, 32).is_ok());
  ASSERT_TRUE(b->prefill(1, prompt_of(9, V, 4), logits).is_ok());
  ASSERT_TRUE(b->release_slot(1).is_ok());
  EXPECT_EQ(b->position(1), 0);
  // The released slot cannot decode; the kept one is as it was.
  const std::vector<int32_t> token = {5};
  EXPECT_FALSE(b->decode_batch(token, std::vector<int>{1}, rows).is_ok());
  ASSERT_TRUE(b->decode_batch(token, std::vector<int>{0}, rows).is_ok());
  kept.push_back(5);
  const std::vector<double> reference = test::reference_logits(tiny_, kept);
  expect_rows_near(rows, std::vector<float>(reference.begin(), reference.end()), test::cpu_logit_tolerance(),
                   "kept slot");
  // Reused for a new sequence.
  const std::vector<int32_t> fresh = prompt_of(11, V, 5);
  ASSERT_TRUE(b->reserve_slot(1, 16).is_ok());
  ASSERT_TRUE(b->prefill(1, fresh, logits).is_ok());
  const std::vector<double> fresh_reference = test::reference_logits(tiny_, fresh);
  expect_rows_near(logits, std::vector<float>(fresh_reference.begin(), fresh_reference.end()),
                   test::cpu_logit_tolerance(), "reused slot");
}

// The CPU backend with Backend's own decode_batch (row after row through decode(): what a backend without a
// batched step, such as the CUDA backend over several GPUs, runs).
class RowByRow final : public Backend {
 public:
  explicit RowByRow(std::unique_ptr<Backend> inner) : inner_(std::move(inner)) {}
  Status set_slot_count(int slots) override { return inner_->set_slot_count(slots); }
  int slot_count() const override { return inner_->slot_count(); }
  Status reserve_slot(int slot, int64_t max_tokens) override {
    return inner_->reserve_slot(slot, max_tokens);
  }
  Status release_slot(int slot) override { return inner_->release_slot(slot); }
  Status prefill(int slot, std::span<const int32_t> tokens, std::vector<float>& logits) override {
    return inner_->prefill(slot, tokens, logits);
  }
  Status decode(int slot, int32_t token, std::vector<float>& logits) override {
    return inner_->decode(slot, token, logits);
  }
  int64_t position(int slot) const override { return inner_->position(slot); }
  Status set_attention(const BackendOptions& options) override { return inner_->set_attention(options); }
  std::vector<DeviceMemoryReport> memory() const override { return inner_->memory(); }
  PrefillAttentionStats last_prefill_attention() const override { return inner_->last_prefill_attention(); }

 private:
  std::unique_ptr<Backend> inner_;
};

TEST_F(CpuDecodeBatch, RowByRowDefaultEqualsTheBatchStep) {
  const int V = tiny_.spec.vocab;
  auto batched = backend();
  RowByRow rows(backend());
  const std::vector<int> slots = {1, 0};
  std::vector<float> logits, a, b;
  for (Backend* x : {static_cast<Backend*>(batched.get()), static_cast<Backend*>(&rows)}) {
    ASSERT_TRUE(x->set_slot_count(2).is_ok());
    for (int s = 0; s < 2; ++s) {
      ASSERT_TRUE(x->reserve_slot(s, 32).is_ok());
      ASSERT_TRUE(x->prefill(s, prompt_of(10 + 7 * s, V, 7 + s), logits).is_ok());
    }
  }
  const std::vector<int32_t> tokens = {3, 4};
  ASSERT_TRUE(batched->decode_batch(tokens, slots, a).is_ok());
  ASSERT_TRUE(rows.decode_batch(tokens, slots, b).is_ok());
  ASSERT_EQ(b.size(), 2u * static_cast<size_t>(V));
  const auto vocab = static_cast<size_t>(V);
  for (size_t r = 0; r < slots.size(); ++r)
    expect_rows_near(std::span<const float>(a).subspan(r * vocab, vocab),
                     std::span<const float>(b).subspan(r * vocab, vocab), 5e-4, "row " + std::to_string(r));
  EXPECT_EQ(rows.position(1), 18);
  EXPECT_EQ(rows.decode_batch(tokens, std::vector<int>{0, 0}, b).code(), StatusCode::INVALID_ARGUMENT);
}

TEST_F(CpuDecodeBatch, BadBatchesAreRefused) {
  auto b = backend();
  ASSERT_TRUE(b->set_slot_count(2).is_ok());
  std::vector<float> logits;
  ASSERT_TRUE(b->reserve_slot(0, 8).is_ok());
  ASSERT_TRUE(b->prefill(0, prompt_of(7, tiny_.spec.vocab, 6), logits).is_ok());
  const std::vector<int32_t> two = {1, 2}, one = {1};
  EXPECT_EQ(b->decode_batch(two, std::vector<int>{0, 0}, logits).code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(b->decode_batch(one, std::vector<int>{2}, logits).code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(b->decode_batch(two, std::vector<int>{0}, logits).code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(b->decode_batch(std::vector<int32_t>{tiny_.spec.vocab}, std::vector<int>{0}, logits).code(),
            StatusCode::INVALID_ARGUMENT);
  // Position 7 takes the cache's last row; an eighth token has none.
  ASSERT_TRUE(b->decode_batch(one, std::vector<int>{0}, logits).is_ok());
  EXPECT_EQ(b->decode_batch(one, std::vector<int>{0}, logits).code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(b->set_slot_count(0).code(), StatusCode::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace sacc
