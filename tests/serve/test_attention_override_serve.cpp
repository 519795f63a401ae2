// `sacc serve`'s per-request attention settings ("sparse_accelerate": {"attention", "pattern"};
// tools/sacc/serve_attention.h) end to end on the real SmolLM2-135M model, CPU backend: an override is
// honoured (sparse and dense prefills on the same server), it keys the prefix cache (a snapshot made under
// one setting is never restored under another), and bad values get OpenAI's 400 with the server still
// healthy. Skipped when scripts/fetch_models.sh has not installed the model.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <sstream>

#include "serve/serve_process.h"
#include "serve/serve_test_text.h"
#include "serve/smol_cpu_server_test.h"

namespace sacc::test {
namespace {

using nlohmann::json;

// A document of about 32 tokens an entry: 40 entries span five whole prefix-cache blocks (256 tokens), 12
// several query blocks (128).
std::string document(int entries) {
  return field_notes("Hallam moor", entries);
}

// The server runs the default attention (auto): dense at every length SmolLM2 holds, so sparse comes only
// from a request.
class AttentionOverrideServe : public SmolCpuServerTest {
 protected:
  AttentionOverrideServe() : SmolCpuServerTest("sacc_attention_override_test.log") {}

  // A greedy completion with `override` as "sparse_accelerate" (null: none): the response.
  httplib::Result complete(const std::string& prompt, const json& override) {
    json body = {{"model", kSmolModelId}, {"prompt", prompt}, {"max_tokens", 4}, {"temperature", 0}};
    if (!override.is_null()) body["sparse_accelerate"] = override;
    httplib::Client c("127.0.0.1", process_.port());
    c.set_read_timeout(600, 0);
    return c.Post("/v1/completions", body.dump(), "application/json");
  }
  void expect_ok(const std::string& prompt, const json& override) {
    auto res = complete(prompt, override);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200) << override.dump() << ": " << res->body;
  }
  std::string metrics() {
    httplib::Client c("127.0.0.1", process_.port());
    auto res = c.Get("/metrics");
    return res ? res->body : "";
  }
};

TEST_F(AttentionOverrideServe, ARequestsSettingsChooseItsPrefill) {
  // Over 256 tokens: the last query block's window of 128 keys leaves out key block 1 (keys 64-127).
  const std::string prompt = document(16) + "Question: what was counted?\nAnswer:";
  expect_ok(prompt, {{"attention", "sparse"}, {"pattern", "triangular:64,128"}});
  std::string m = metrics();
  EXPECT_EQ(metric(m, "sacc_last_prefill_sparse"), 1);
  EXPECT_GT(metric(m, "sacc_last_prefill_density"), 0.0) << m;
  EXPECT_LT(metric(m, "sacc_last_prefill_density"), 1.0) << m;
  expect_ok(prompt, {{"attention", "dense"}});
  m = metrics();
  EXPECT_EQ(metric(m, "sacc_last_prefill_sparse"), 0);
  EXPECT_EQ(metric(m, "sacc_last_prefill_density"), 1.0) << m;
  expect_ok(prompt, {{"attention", "sparse"}});  // the default sparse pattern
  EXPECT_EQ(metric(metrics(), "sacc_last_prefill_sparse"), 1);
  expect_ok(prompt, nullptr);  // the server's own again: auto, dense here
  m = metrics();
  EXPECT_EQ(metric(m, "sacc_last_prefill_sparse"), 0);
  // One density per request; the triangular one is below 1, the dense ones at 1.
  EXPECT_EQ(metric(m, "sacc_prefill_density_count"), 4) << m;
  EXPECT_GE(metric(m, "sacc_prefill_density_bucket{le=\"0.8\"}"), 1) << m;
  EXPECT_EQ(metric(m, "sacc_prefill_density_bucket{le=\"1\"}"), 4) << m;
}

TEST_F(AttentionOverrideServe, ThePrefixCacheRestoresOnlyUnderTheSameSettings) {
  const std::string doc = document(40);
  const std::string a = doc + "Question: how many birds at marker 30?\nAnswer:";
  const std::string b = doc + "Question: was the water cold at entry 9?\nAnswer:";
  const json dense = {{"attention", "dense"}};
  expect_ok(a, dense);    // miss; stored under dense
  expect_ok(b, nullptr);  // the server's auto: another key, so a miss
  std::string m = metrics();
  EXPECT_EQ(metric(m, "sacc_prefix_cache_hits_total"), 0) << m;
  EXPECT_EQ(metric(m, "sacc_prefix_cache_misses_total"), 2) << m;
  expect_ok(b, dense);  // dense again: the first snapshot's document
  m = metrics();
  EXPECT_EQ(metric(m, "sacc_prefix_cache_hits_total"), 1) << m;
}

TEST_F(AttentionOverrideServe, BadSettingsGet400AndTheServerStaysHealthy) {
  const std::vector<std::pair<json, std::string>> bad = {
      {{{"attention", "fast"}}, "sparse_accelerate.attention"},
      {{{"attention", "cudnn"}}, "sparse_accelerate.attention"},
      {{{"pattern", "bogus:1,2"}}, "sparse_accelerate.pattern"},
      {{{"attention", "sparse"}, {"pattern", "triangular:64"}}, "sparse_accelerate.pattern"},
      {{{"attention", "sparse"}, {"chunk", "4"}}, "sparse_accelerate.chunk"},
      {{{"attention", 1}}, "sparse_accelerate.attention"},
      {json("sparse"), "sparse_accelerate"},
  };
  for (const auto& [override, param] : bad) {
    auto res = complete("Hello", override);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 400) << override.dump() << ": " << res->body;
    const json error = json::parse(res->body, nullptr, false);
    ASSERT_TRUE(error.contains("error")) << res->body;
    EXPECT_EQ(error["error"]["type"], "invalid_request_error") << res->body;
    EXPECT_EQ(error["error"]["param"], param) << res->body;
    EXPECT_FALSE(error["error"]["message"].get<std::string>().empty());
  }
  httplib::Client c("127.0.0.1", process_.port());
  auto health = c.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  expect_ok("Hello", {{"attention", "sparse"}, {"pattern", "triangular:64,256"}});
  EXPECT_EQ(metric(metrics(), "sacc_requests_total{code=\"400\"}"), static_cast<double>(bad.size()));
}

}  // namespace
}  // namespace sacc::test
