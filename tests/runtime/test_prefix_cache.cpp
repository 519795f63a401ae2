// The serve prefix cache (runtime/prefix_cache.h) on fake snapshots: longest-prefix lookup at block
// granularity, LRU eviction order, byte accounting, settings isolation; then the CPU backend's export_kv /
// import_kv / extend against a fresh prefill of the same prompt on a tiny random model.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "model/hf_checkpoint.h"
#include "runtime/backend.h"
#include "runtime/engine.h"
#include "runtime/prefix_cache.h"
#include "runtime/tiny_model.h"

namespace sacc {
namespace {

constexpr uint64_t kBytesPerToken = 10;

class FakeSnapshot final : public KvSnapshot {
 public:
  explicit FakeSnapshot(int64_t tokens) : tokens_(tokens) {}
  int64_t tokens() const override { return tokens_; }
  uint64_t bytes() const override { return static_cast<uint64_t>(tokens_) * kBytesPerToken; }

 private:
  int64_t tokens_;
};

std::vector<int32_t> seq(int length, int salt = 0) {
  std::vector<int32_t> t(length);
  std::iota(t.begin(), t.end(), salt * 1000);
  return t;
}

std::vector<int32_t> concat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

bool put(PrefixCache& cache, const std::vector<int32_t>& tokens, const std::string& settings = "s",
         uint64_t limit = UINT64_MAX) {
  return cache.insert(settings, tokens, std::make_unique<FakeSnapshot>(static_cast<int64_t>(tokens.size())),
                      limit);
}

TEST(PrefixCache, LongestPrefixWinsRoundedDownToTheBlock) {
  PrefixCache cache({1'000'000, 4});
  const std::vector<int32_t> doc = seq(16);
  put(cache, concat(doc, seq(4, 1)));  // the document + question A (20 tokens)
  put(cache, seq(8));                  // a shorter prefix of the document, more recently used
  put(cache, seq(12, 2));              // unrelated
  const std::vector<int32_t> b = concat(concat(doc, {7}), seq(6, 3));  // the document + question B
  const PrefixMatch m = cache.acquire("s", b);
  ASSERT_NE(m.maybe_snapshot, nullptr);
  EXPECT_EQ(m.maybe_snapshot->tokens(), 20);  // the doc + A entry, not the 8-token one
  EXPECT_EQ(m.tokens, 16);                    // common 16, a multiple of 4
  // 3 shared tokens are under one block: a miss.
  EXPECT_EQ(cache.acquire("s", concat(seq(3), {999, 998})).maybe_snapshot, nullptr);
  EXPECT_EQ(cache.stats().hits, 1u);
  EXPECT_EQ(cache.stats().misses, 1u);
  EXPECT_EQ(cache.stats().reused_tokens, 16u);
}

TEST(PrefixCache, LeavesTheLastPromptTokenToCompute) {
  PrefixCache cache({1'000'000, 4});
  put(cache, seq(8));
  // The prompt is exactly the cached 8 tokens: 7 usable, 4 after rounding.
  EXPECT_EQ(cache.acquire("s", seq(8)).tokens, 4);
  EXPECT_EQ(cache.acquire("s", seq(9)).tokens, 8);
}

TEST(PrefixCache, OtherSettingsNeverMatch) {
  PrefixCache cache({1'000'000, 4});
  put(cache, seq(16), "model=a|attention=dense");
  EXPECT_EQ(cache.acquire("model=a|attention=sparse", seq(20)).maybe_snapshot, nullptr);
  EXPECT_EQ(cache.acquire("model=b|attention=dense", seq(20)).maybe_snapshot, nullptr);
  EXPECT_EQ(cache.acquire("model=a|attention=dense", seq(20)).tokens, 16);
  // snapshot_length sees only its own settings' entries.
  EXPECT_EQ(cache.snapshot_length("model=a|attention=dense", seq(16)), 0);
  EXPECT_EQ(cache.snapshot_length("model=b|attention=dense", seq(16)), 16);
}

TEST(PrefixCache, EvictsLeastRecentlyUsedFirstAndCountsBytes) {
  PrefixCache cache({400, 4});  // room for 40 tokens
  ASSERT_TRUE(put(cache, seq(16, 1)));
  ASSERT_TRUE(put(cache, seq(16, 2)));
  EXPECT_EQ(cache.bytes(), 320u);
  EXPECT_EQ(cache.acquire("s", seq(17, 1)).tokens, 16);  // entry 1 is now the most recent
  ASSERT_TRUE(put(cache, seq(8, 3)));                    // 400: fits exactly
  EXPECT_EQ(cache.bytes(), 400u);
  ASSERT_TRUE(put(cache, seq(12, 4)));  // needs 120: evicts entry 2 (least recent), not 1
  EXPECT_EQ(cache.entries(), 3u);
  EXPECT_EQ(cache.bytes(), 160u + 80u + 120u);
  EXPECT_EQ(cache.stats().evictions, 1u);
  EXPECT_EQ(cache.acquire("s", seq(17, 2)).maybe_snapshot, nullptr);
  EXPECT_NE(cache.acquire("s", seq(17, 1)).maybe_snapshot, nullptr);
  // Larger than the capacity: refused, nothing evicted.
  EXPECT_FALSE(put(cache, seq(48, 5)));
  EXPECT_EQ(cache.entries(), 3u);
  cache.shrink_to(0);
  EXPECT_EQ(cache.entries(), 0u);
  EXPECT_EQ(cache.bytes(), 0u);
}

TEST(PrefixCache, ALongerEntryReplacesThePrefixesItCovers) {
  PrefixCache cache({1'000'000, 4});
  put(cache, seq(8));
  put(cache, seq(12));
  put(cache, seq(16));
  EXPECT_EQ(cache.entries(), 1u);
  EXPECT_EQ(cache.bytes(), 160u);
  EXPECT_EQ(cache.stats().evictions, 0u);
  EXPECT_EQ(cache.snapshot_length("s", seq(18)), 0);  // 16 after rounding: already held
  EXPECT_EQ(cache.snapshot_length("s", seq(21)), 20);
  EXPECT_EQ(cache.snapshot_length("s", seq(3)), 0);  // under one block
}

TEST(PrefixCache, AcquireMakesRoomAndKeepsTheMatchWhenItFits) {
  PrefixCache cache({1000, 4});
  put(cache, seq(16, 1));  // 160
  put(cache, seq(16, 2));  // 160
  put(cache, seq(16, 3));  // 160, the most recent
  // The request's own buffers leave 200 bytes: the match (entry 1, least recent) stays, the others go.
  const PrefixMatch m = cache.acquire("s", seq(20, 1), 200);
  ASSERT_NE(m.maybe_snapshot, nullptr);
  EXPECT_EQ(cache.entries(), 1u);
  EXPECT_EQ(cache.bytes(), 160u);
  // A match larger than the room is dropped too: a miss, and an empty cache.
  EXPECT_EQ(cache.acquire("s", seq(20, 1), 100).maybe_snapshot, nullptr);
  EXPECT_EQ(cache.bytes(), 0u);
  EXPECT_EQ(cache.stats().evictions, 3u);
}

TEST(PrefixCache, ZeroCapacityStoresNothing) {
  PrefixCache cache({0, 4});
  EXPECT_FALSE(cache.enabled());
  EXPECT_EQ(cache.snapshot_length("s", seq(16)), 0);
  EXPECT_FALSE(put(cache, seq(16)));
}

// The CPU backend: restoring a prefix and extending gives the logits of a fresh prefill, and decoding goes on
// identically.
struct TinyBackend {
  std::string dir;
  LlamaWeights weights;
  std::unique_ptr<Backend> backend;
};

TinyBackend tiny_cpu_backend() {
  TinyBackend t;
  test::TinySpec spec;
  spec.layers = 3;
  t.dir = test::make_temp_dir("prefix");
  test::write_hf_dir(test::make_tiny_weights(spec), t.dir);
  Result<HfCheckpoint> ckpt = HfCheckpoint::open(t.dir, false);
  EXPECT_TRUE(ckpt.is_ok()) << ckpt.status().to_string();
  t.weights = std::move(ckpt->weights()).value();
  BackendOptions options;
  options.show_progress = false;
  options.attention = AttentionMode::DENSE;
  t.backend = std::move(make_cpu_backend(t.weights, options)).value();
  return t;
}

std::vector<int32_t> tokens_of(int length, int vocab, int salt) {
  std::vector<int32_t> t(length);
  for (int i = 0; i < length; ++i) t[i] = (i * 31 + 7 + salt * 13) % vocab;
  return t;
}

TEST(CpuBackendPrefixReuse, RestoredPrefixPlusSuffixEqualsAFreshPrefill) {
  TinyBackend t = tiny_cpu_backend();
  Backend& b = *t.backend;
  const int vocab = t.weights.config.vocab;
  const std::vector<int32_t> doc = tokens_of(113, vocab, 1);  // not a tile multiple
  const std::vector<int32_t> a = concat(doc, tokens_of(9, vocab, 2));
  const std::vector<int32_t> q = concat(doc, tokens_of(17, vocab, 3));
  std::vector<float> logits;
  ASSERT_TRUE(b.reserve(200).is_ok());
  ASSERT_TRUE(b.prefill(a, logits).is_ok());
  Result<std::unique_ptr<KvSnapshot>> snapshot = b.export_kv(112);
  ASSERT_TRUE(snapshot.is_ok()) << snapshot.status().to_string();
  EXPECT_EQ((*snapshot)->tokens(), 112);
  EXPECT_EQ((*snapshot)->bytes(), 2ull * 3 * 112 * t.weights.config.kv_dim() * 2);

  GenerateOptions options;
  options.max_new_tokens = 6;
  auto run = [&](const KvSnapshot* maybe_reuse, int64_t reuse) {
    options.maybe_reuse = maybe_reuse;
    options.reuse_tokens = reuse;
    Result<GenerationMetrics> m = generate(b, q, options, [](int32_t) {});
    EXPECT_TRUE(m.is_ok()) << m.status().to_string();
    return std::move(m).value();
  };
  const GenerationMetrics fresh = run(nullptr, 0);
  std::vector<float> fresh_logits;
  ASSERT_TRUE(b.reserve(200).is_ok());
  ASSERT_TRUE(b.prefill(q, fresh_logits).is_ok());
  const GenerationMetrics reused = run(snapshot->get(), 112);
  EXPECT_EQ(reused.reused_tokens, 112);
  EXPECT_EQ(reused.tokens, fresh.tokens);
  // The logits themselves. This model's fp32 weights go through OpenBLAS, whose GEMM may sum a row in another
  // order for 17 rows than for 130 (a few fp32 ulps per layer); the GGUF quantised dot products the serve
  // tests use are row-independent and match bit for bit (tests/serve/test_prefix_cache_serve.cpp).
  std::vector<float> reused_logits;
  ASSERT_TRUE(b.reserve(200).is_ok());
  ASSERT_TRUE(b.import_kv(**snapshot, 112).is_ok());
  EXPECT_EQ(b.position(), 112);
  ASSERT_TRUE(b.extend(std::span<const int32_t>(q).subspan(112), reused_logits).is_ok());
  EXPECT_EQ(b.position(), static_cast<int64_t>(q.size()));
  ASSERT_EQ(reused_logits.size(), fresh_logits.size());
  double scale = 0.0, max_err = 0.0;
  for (size_t i = 0; i < fresh_logits.size(); ++i) {
    scale = std::max(scale, std::abs(static_cast<double>(fresh_logits[i])));
    max_err = std::max(max_err, std::abs(static_cast<double>(reused_logits[i]) - fresh_logits[i]));
  }
  EXPECT_LE(max_err, 1e-5 * scale) << "max error " << max_err << " at logit scale " << scale;
}

TEST(CpuBackendPrefixReuse, RefusesBadRequests) {
  TinyBackend t = tiny_cpu_backend();
  Backend& b = *t.backend;
  std::vector<float> logits;
  ASSERT_TRUE(b.reserve(64).is_ok());
  ASSERT_TRUE(b.prefill(tokens_of(40, t.weights.config.vocab, 1), logits).is_ok());
  EXPECT_FALSE(b.export_kv(41).is_ok());
  Result<std::unique_ptr<KvSnapshot>> s = b.export_kv(32);
  ASSERT_TRUE(s.is_ok());
  EXPECT_FALSE(b.import_kv(**s, 33).is_ok());
  FakeSnapshot foreign(16);
  EXPECT_FALSE(b.import_kv(foreign, 16).is_ok());
  ASSERT_TRUE(b.reserve(16).is_ok());
  EXPECT_FALSE(b.import_kv(**s, 32).is_ok());  // the cache is smaller than the restore
}

}  // namespace
}  // namespace sacc
