// CUDA graphs of the decode step (runtime/cuda/decode_graphs.h): greedy decoding with graphs on gives the
// logits of graphs off bit for bit at every step — one sequence (Backend::decode), and sequences of different
// lengths stepped together (Backend::decode_batch) while the batch's membership changes and a slot is
// reserved anew (its KV cache reallocated) — and the graphs were really captured and replayed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/device_info.h"
#include "model/llama_weights.h"
#include "runtime/backend.h"
#include "runtime/cuda/decode_graphs.h"
#include "tiny_cuda_models.h"

namespace sacc {
namespace {

using cuda_rt::DecodeGraphStats;

class DecodeGraphsCuda : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  }
};

// SACC_CUDA_GRAPHS as `on` says while it lives (the backend reads it when it is made), then as before.
class GraphSwitch {
 public:
  explicit GraphSwitch(bool on) {
    if (const char* old = std::getenv(kName)) previous_ = old;
    setenv(kName, on ? "1" : "0", 1);
  }
  ~GraphSwitch() {
    if (previous_)
      setenv(kName, previous_->c_str(), 1);
    else
      unsetenv(kName);
  }
  GraphSwitch(const GraphSwitch&) = delete;
  GraphSwitch& operator=(const GraphSwitch&) = delete;

 private:
  static constexpr const char* kName = "SACC_CUDA_GRAPHS";
  std::optional<std::string> previous_;
};

std::unique_ptr<Backend> make_backend(const LlamaWeights& w, bool graphs, LinearMode linear) {
  const GraphSwitch graph_switch(graphs);
  BackendOptions options;
  options.device = Device::cuda(0);
  options.attention = AttentionMode::DENSE;
  options.linear = linear;
  options.show_progress = false;
  Result<std::unique_ptr<Backend>> b = make_cuda_backend(w, options);
  EXPECT_TRUE(b.is_ok()) << b.status().to_string();
  return b ? std::move(b).value() : nullptr;
}

// Bitwise (NaN patterns included).
bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Row `row` of logits [rows, V]: the greedy token.
int32_t greedy_token(const std::vector<float>& logits, int64_t vocab, int64_t row = 0) {
  const auto first = logits.begin() + row * vocab;
  return static_cast<int32_t>(std::max_element(first, first + vocab) - first);
}

struct DecodeRun {
  std::vector<std::vector<float>> logits;  // the prefill's, then one per step
  DecodeGraphStats stats;
  // greedy_batches: the captures and replays while a prompt was prefilled in chunks between steps.
  DecodeGraphStats during_chunks;
};

// One sequence: a prompt of `prompt` tokens in a cache of `capacity`, then `steps` greedy decode steps.
DecodeRun greedy_sequence(const LlamaWeights& w, bool graphs, LinearMode linear, int prompt, int steps,
                          int64_t capacity) {
  DecodeRun run;
  const std::unique_ptr<Backend> b = make_backend(w, graphs, linear);
  if (!b) return run;
  EXPECT_TRUE(b->reserve(capacity).is_ok());
  std::vector<float> logits;
  const Status prefilled = b->prefill(test::fixed_prompt(prompt, static_cast<int>(w.config.vocab)), logits);
  EXPECT_TRUE(prefilled.is_ok()) << prefilled.to_string();
  run.logits.push_back(logits);
  for (int step = 0; step < steps; ++step) {
    const Status s = b->decode(greedy_token(logits, w.config.vocab), logits);
    EXPECT_TRUE(s.is_ok()) << s.to_string();
    if (!s) break;
    run.logits.push_back(logits);
  }
  Result<DecodeGraphStats> stats = cuda_rt::decode_graph_stats(*b);
  EXPECT_TRUE(stats.is_ok());
  if (stats) run.stats = *stats;
  return run;
}

void expect_same_steps(const DecodeRun& on, const DecodeRun& off, const std::string& what) {
  ASSERT_EQ(on.logits.size(), off.logits.size()) << what;
  for (size_t step = 0; step < on.logits.size(); ++step)
    EXPECT_TRUE(same_bits(on.logits[step], off.logits[step])) << what << ": step " << step << " differs";
}

// Every graph-capable step after a batch size's first (un-captured) one is captured or replayed.
void expect_graphs_used(const DecodeRun& on, const DecodeRun& off, int64_t min_captures, int64_t min_replays,
                        const std::string& what) {
  EXPECT_TRUE(on.stats.enabled) << what << ": a capture failed (see the warning above)";
  EXPECT_GE(on.stats.captures, min_captures) << what;
  EXPECT_GE(on.stats.replays, min_replays) << what;
  EXPECT_FALSE(off.stats.enabled) << what;
  EXPECT_EQ(off.stats.captures + off.stats.replays, 0) << what;
}

TEST(DecodeGraphsSwitch, ZeroTurnsGraphsOff) {
  EXPECT_TRUE(*cuda_rt::parse_cuda_graphs_switch(nullptr));
  EXPECT_TRUE(*cuda_rt::parse_cuda_graphs_switch(""));
  EXPECT_TRUE(*cuda_rt::parse_cuda_graphs_switch("1"));
  EXPECT_FALSE(*cuda_rt::parse_cuda_graphs_switch("0"));
  EXPECT_FALSE(cuda_rt::parse_cuda_graphs_switch("off").is_ok());
}

// The steps cross a 256-key split of the decode attention (positions 250..269) in a cache of 800 positions:
// the grid covers all 800, most of its CTAs past the row's keys.
TEST_F(DecodeGraphsCuda, SequenceDecodeEqualsPlainBitForBit) {
  constexpr int kPrompt = 250, kSteps = 20;
  constexpr int64_t kCapacity = 800;
  for (const bool qwen : {false, true}) {
    for (const LinearMode linear : {LinearMode::BF16, LinearMode::FP8}) {
      const std::string what =
          std::string(qwen ? "qwen2" : "llama3") + (linear == LinearMode::FP8 ? " fp8" : "");
      const LlamaWeights w = llama_weights_random(test::tiny_cuda_config(qwen, 3), 51);
      const DecodeRun off = greedy_sequence(w, false, linear, kPrompt, kSteps, kCapacity);
      // Two plain runs agree (cuBLASLt and our kernels are deterministic): a difference below is the graphs'.
      const DecodeRun again = greedy_sequence(w, false, linear, kPrompt, kSteps, kCapacity);
      expect_same_steps(again, off, what + " (plain twice)");
      const DecodeRun on = greedy_sequence(w, true, linear, kPrompt, kSteps, kCapacity);
      expect_same_steps(on, off, what);
      // Step 1 runs plain, step 2 is captured, the rest replay.
      expect_graphs_used(on, off, 1, kSteps - 2, what);
    }
  }
}

// The real model's shapes (Qwen2.5-0.5B: 24 layers, 14/2 heads, V = 151936) with random weights: the GEMM
// shapes, cuBLASLt algorithms and LM-head copy of the step the graphs are for.
TEST_F(DecodeGraphsCuda, Qwen05bShapesDecodeEqualsPlainBitForBit) {
  Result<ModelConfig> config = builtin_model_config("qwen2.5-0.5b");
  ASSERT_TRUE(config.is_ok());
  const LlamaWeights w = llama_weights_random(*config, 52);
  constexpr int kPrompt = 1000, kSteps = 12;
  for (const LinearMode linear : {LinearMode::BF16, LinearMode::FP8}) {
    const std::string what = linear == LinearMode::FP8 ? "qwen2.5-0.5b fp8" : "qwen2.5-0.5b";
    const DecodeRun off = greedy_sequence(w, false, linear, kPrompt, kSteps, 4096);
    const DecodeRun on = greedy_sequence(w, true, linear, kPrompt, kSteps, 4096);
    expect_same_steps(on, off, what);
    expect_graphs_used(on, off, 1, kSteps - 2, what);
  }
}

// Sequences in their own slots, stepped greedily in batches whose membership changes; slot 1 is reserved
// anew (its KV cache freed and reallocated, the prefill workspace freed) and given a new prompt between
// steps. Every step's logits [B, V].
DecodeRun greedy_batches(const LlamaWeights& w, bool graphs) {
  DecodeRun run;
  const std::unique_ptr<Backend> b = make_backend(w, graphs, LinearMode::BF16);
  if (!b) return run;
  const int vocab = static_cast<int>(w.config.vocab);
  EXPECT_TRUE(b->set_slot_count(3).is_ok());
  std::map<int, int32_t> next;  // slot -> its next token
  std::vector<float> logits;
  const auto start = [&](int slot, int length, int64_t capacity, int offset) {
    EXPECT_TRUE(b->reserve_slot(slot, capacity).is_ok());
    std::vector<int32_t> prompt = test::fixed_prompt(length, vocab);
    for (int32_t& t : prompt) t = (t + offset) % vocab;
    const Status s = b->prefill(slot, prompt, logits);
    EXPECT_TRUE(s.is_ok()) << s.to_string();
    run.logits.push_back(logits);
    next[slot] = greedy_token(logits, vocab);
  };
  const auto step = [&](const std::vector<int>& slots) {
    std::vector<int32_t> tokens;
    for (const int slot : slots) tokens.push_back(next[slot]);
    const Status s = b->decode_batch(tokens, slots, logits);
    EXPECT_TRUE(s.is_ok()) << s.to_string();
    run.logits.push_back(logits);
    for (size_t i = 0; i < slots.size(); ++i) next[slots[i]] = greedy_token(logits, vocab, i);
  };
  // Capacities 800, 300 and 1200: the decode grid covers the longest, 1200 keys.
  start(2, 700, 800, 0);
  start(0, 37, 300, 1);
  start(1, 1, 1200, 2);
  for (int i = 0; i < 3; ++i) step({2, 0, 1});  // B = 3: plain, captured, replayed
  for (int i = 0; i < 3; ++i) step({0, 2});     // B = 2: its own graph
  start(1, 500, 900, 3);                        // slot 1's cache reallocated: keys 1200 -> 900
  for (int i = 0; i < 3; ++i) step({1, 2, 0});  // B = 3 again, rows in another order
  for (int i = 0; i < 3; ++i) step({2});        // B = 1 (what decode() runs)
  // What a server does: slot 1 reserved anew (no longer than the longest cache: the decode grid holds) and
  // its prompt prefilled in chunks of 256 between decode steps of slot 2. Each chunk reallocates the
  // prefill's workspace, not the batch steps': the step of B = 1 captured above is replayed.
  EXPECT_TRUE(b->reserve_slot(1, 900).is_ok());
  Result<DecodeGraphStats> before = cuda_rt::decode_graph_stats(*b);
  EXPECT_TRUE(before.is_ok());
  std::vector<int32_t> chunked = test::fixed_prompt(768, vocab);
  for (int c = 0; c < 3; ++c) {
    const std::span<const int32_t> chunk = std::span<const int32_t>(chunked).subspan(c * 256, 256);
    const Status s = c == 0 ? b->prefill(1, chunk, logits) : b->extend(1, chunk, logits);
    EXPECT_TRUE(s.is_ok()) << s.to_string();
    run.logits.push_back(logits);
    next[1] = greedy_token(logits, vocab);
    for (int i = 0; i < 2; ++i) step({2});
  }
  Result<DecodeGraphStats> after = cuda_rt::decode_graph_stats(*b);
  EXPECT_TRUE(after.is_ok());
  if (after && before) {
    run.during_chunks.plain = after->plain - before->plain;
    run.during_chunks.captures = after->captures - before->captures;
    run.during_chunks.replays = after->replays - before->replays;
  }
  for (int i = 0; i < 3; ++i) step({1, 2});
  Result<DecodeGraphStats> stats = cuda_rt::decode_graph_stats(*b);
  EXPECT_TRUE(stats.is_ok());
  if (stats) run.stats = *stats;
  return run;
}

TEST_F(DecodeGraphsCuda, BatchDecodeEqualsPlainBitForBitAcrossMembershipAndReservation) {
  for (const bool qwen : {false, true}) {
    const std::string what = qwen ? "qwen2" : "llama3";
    const LlamaWeights w = llama_weights_random(test::tiny_cuda_config(qwen, 3), 53);
    const DecodeRun off = greedy_batches(w, false);
    const DecodeRun on = greedy_batches(w, true);
    expect_same_steps(on, off, what);
    // Captured: B = 3, B = 2, B = 1 (and B = 3 again: the reservation narrowed the decode grid); replayed:
    // one step of the first B = 3, of B = 2 and of B = 1, two after the reservation.
    expect_graphs_used(on, off, 3, 5, what);
    // The 6 steps of B = 1 between the chunks: all replays.
    EXPECT_EQ(on.during_chunks.plain + on.during_chunks.captures, 0) << what;
    EXPECT_EQ(on.during_chunks.replays, 6) << what;
  }
}

}  // namespace
}  // namespace sacc
