// `sacc serve --prefix-cache` end to end on the real SmolLM2-135M model: a second question about the same
// long document reuses the document's KV and answers exactly as a server without the cache does; a tiny cache
// evicts least recently used documents. Skipped when scripts/fetch_models.sh has not installed the model.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <memory>
#include <sstream>

#include "serve/serve_process.h"
#include "serve/serve_test_text.h"

namespace sacc::test {
namespace {

using nlohmann::json;

const std::string kModel = std::string(SACC_SOURCE_DIR) + "/.models/SmolLM2-135M-Instruct.Q4_1.gguf";
const std::string kModelId = "SmolLM2-135M-Instruct.Q4_1";
constexpr int64_t kBlock = 256;  // runtime/prefix_cache.h: kPrefixCacheBlock

std::string log_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("sacc_prefix_test_" + name + ".log")).string();
}

// A long document (about 1,300 tokens) that differs with `topic`.
std::string document(const std::string& topic) {
  std::ostringstream text;
  text << "Field notes on " << topic << ".\n";
  for (int i = 1; i <= 40; ++i)
    text << "Entry " << i << ": the " << topic << " survey counted " << (i * 37) % 101
         << " birds near marker " << i * 3 << ", and the water was " << (i % 3 == 0 ? "cold" : "clear")
         << " that morning.\n";
  return text.str();
}

class Server {
 public:
  explicit Server(const std::vector<std::string>& extra, const std::string& name) {
    std::vector<std::string> args = {"-m", kModel, "--device", "cpu"};
    args.insert(args.end(), extra.begin(), extra.end());
    EXPECT_TRUE(process_.start(args, log_path(name)));
    healthy_ = process_.wait_healthy();
    EXPECT_TRUE(healthy_) << "see " << log_path(name);
  }
  ~Server() { EXPECT_EQ(process_.stop(), 0); }
  bool healthy() const { return healthy_; }

  // Greedy completion of `prompt`: the response body.
  json complete(const std::string& prompt, int max_tokens = 16) {
    httplib::Client c("127.0.0.1", process_.port());
    c.set_read_timeout(600, 0);
    const json body = {
        {"model", kModelId}, {"prompt", prompt}, {"max_tokens", max_tokens}, {"temperature", 0}};
    auto res = c.Post("/v1/completions", body.dump(), "application/json");
    EXPECT_TRUE(res);
    if (!res) return json::object();
    EXPECT_EQ(res->status, 200) << res->body;
    return json::parse(res->body);
  }
  std::string text(const std::string& prompt) { return complete(prompt)["choices"][0]["text"]; }
  std::string metrics() {
    httplib::Client c("127.0.0.1", process_.port());
    auto res = c.Get("/metrics");
    return res ? res->body : "";
  }

 private:
  ServeProcess process_;
  bool healthy_ = false;
};

class PrefixCacheServe : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(kModel))
      GTEST_SKIP() << kModel << " is absent (run scripts/fetch_models.sh)";
  }
};

TEST_F(PrefixCacheServe, SecondQuestionReusesTheDocumentAndAnswersAsAFreshServer) {
  const std::string doc = document("the Alder estuary");
  const std::string a = doc + "Question: how many birds were counted at marker 30?\nAnswer:";
  const std::string b = doc + "Question: was the water cold at entry 9?\nAnswer:";
  Server fresh({"--prefix-cache", "0"}, "fresh");
  ASSERT_TRUE(fresh.healthy());
  const int64_t doc_tokens = fresh.complete(doc, 1)["usage"]["prompt_tokens"];
  ASSERT_GE(doc_tokens, 4 * kBlock) << "the document should span several blocks";
  const std::string want_a = fresh.text(a), want_b = fresh.text(b);
  const std::string fresh_metrics = fresh.metrics();
  EXPECT_EQ(metric(fresh_metrics, "sacc_prefix_cache_hits_total"), 0) << fresh_metrics;
  EXPECT_EQ(metric(fresh_metrics, "sacc_prefix_cache_bytes"), 0) << fresh_metrics;

  Server cached({}, "cached");  // the default capacity
  ASSERT_TRUE(cached.healthy());
  EXPECT_EQ(cached.text(a), want_a);
  std::string m = cached.metrics();
  EXPECT_EQ(metric(m, "sacc_prefix_cache_misses_total"), 1) << m;
  EXPECT_EQ(metric(m, "sacc_prefix_cache_hits_total"), 0) << m;
  EXPECT_EQ(metric(m, "sacc_prefix_cache_entries"), 1) << m;
  EXPECT_GT(metric(m, "sacc_prefix_cache_bytes"), 0) << m;

  EXPECT_EQ(cached.text(b), want_b);
  m = cached.metrics();
  EXPECT_EQ(metric(m, "sacc_prefix_cache_hits_total"), 1) << m;
  // The document's last token may merge with what follows it; every whole block before it is reused.
  EXPECT_GE(metric(m, "sacc_prefix_cache_reused_tokens_total"), (doc_tokens - 1) / kBlock * kBlock) << m;
  // The same question again reuses its own longer snapshot and still answers the same.
  EXPECT_EQ(cached.text(b), want_b);
  EXPECT_EQ(metric(cached.metrics(), "sacc_prefix_cache_hits_total"), 2);
}

TEST_F(PrefixCacheServe, ATinyCacheEvictsTheLeastRecentlyUsedDocument) {
  // SmolLM2-135M: 30 layers x 3 KV heads x 64 x 2 (K, V) x 2 bytes = 22.5 KiB per position, so a ~1,300-token
  // document's snapshot takes about 28 MiB: 40 MiB holds one document, never two.
  Server server({"--prefix-cache", "40MiB"}, "tiny");
  ASSERT_TRUE(server.healthy());
  const std::string x = document("the Alder estuary"), y = document("Hallam moor");
  const std::string q1 = "Question: what was counted?\nAnswer:", q2 = "Question: where?\nAnswer:";
  server.text(x + q1);  // miss; X stored
  server.text(y + q1);  // miss; Y stored, X evicted
  std::string m = server.metrics();
  EXPECT_EQ(metric(m, "sacc_prefix_cache_entries"), 1) << m;
  EXPECT_EQ(metric(m, "sacc_prefix_cache_evictions_total"), 1) << m;
  EXPECT_LE(metric(m, "sacc_prefix_cache_bytes"), 40.0 * (1 << 20)) << m;
  server.text(y + q2);  // hit on Y
  server.text(x + q2);  // miss: X was evicted; X stored, Y evicted
  server.text(x + q1);  // hit on X
  m = server.metrics();
  EXPECT_EQ(metric(m, "sacc_prefix_cache_hits_total"), 2) << m;
  EXPECT_EQ(metric(m, "sacc_prefix_cache_misses_total"), 3) << m;
  // Y's second question may store a snapshot of its own (when its blocks reach past the document).
  EXPECT_GE(metric(m, "sacc_prefix_cache_evictions_total"), 2) << m;
  EXPECT_LE(metric(m, "sacc_prefix_cache_bytes"), 40.0 * (1 << 20)) << m;
}

TEST_F(PrefixCacheServe, ACacheSmallerThanOneSnapshotStoresNothingAndServes) {
  Server server({"--prefix-cache", "1MiB"}, "small");
  ASSERT_TRUE(server.healthy());
  const std::string doc = document("the Alder estuary");
  const std::string first = server.text(doc + "Question: what?\nAnswer:");
  EXPECT_EQ(server.text(doc + "Question: what?\nAnswer:"), first);
  const std::string m = server.metrics();
  EXPECT_EQ(metric(m, "sacc_prefix_cache_bytes"), 0) << m;
  EXPECT_EQ(metric(m, "sacc_prefix_cache_hits_total"), 0) << m;
}

}  // namespace
}  // namespace sacc::test
