// `sacc serve`'s per-request phase timings (tools/sacc/serve_phases.h) end to end on the real SmolLM2-135M
// model, CPU backend: /metrics has one sacc_request_phase_seconds histogram per phase, each counts one
// observation per finished request, and for each request the phases before its first token sum to no more
// than its time to first token. Skipped when scripts/fetch_models.sh has not installed the model.
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

// tools/sacc/serve_phases.h, in order; all but "decode" come before the first token.
const std::vector<std::string> kPhases = {"parse",   "tokenize", "queue",  "lookup", "reserve",
                                          "restore", "prefill",  "sample", "decode"};

// A document of about 1,300 tokens: five whole prefix-cache blocks and more.
std::string document() {
  return field_notes("the Alder estuary", 40);
}

std::string phase_metric(const std::string& phase, const std::string& suffix) {
  return "sacc_request_phase_seconds_" + suffix + "{phase=\"" + phase + "\"}";
}

class RequestPhasesServe : public SmolCpuServerTest {
 protected:
  RequestPhasesServe() : SmolCpuServerTest("sacc_phases_test.log") {}

  httplib::Result post(const std::string& body) {
    httplib::Client c("127.0.0.1", process_.port());
    c.set_read_timeout(600, 0);
    return c.Post("/v1/completions", body, "application/json");
  }
  void complete(const std::string& prompt) {
    const json body = {{"model", kSmolModelId}, {"prompt", prompt}, {"max_tokens", 4}, {"temperature", 0}};
    auto res = post(body.dump());
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
  }
  std::string metrics() {
    httplib::Client c("127.0.0.1", process_.port());
    auto res = c.Get("/metrics");
    return res ? res->body : "";
  }
};

TEST_F(RequestPhasesServe, EveryPhaseCountsEachFinishedRequestAndTheyFitInItsTimeToFirstToken) {
  const std::string m0 = metrics();
  for (const std::string& phase : kPhases) {
    EXPECT_NE(m0.find("sacc_request_phase_seconds_bucket{phase=\"" + phase + "\",le=\"+Inf\"} 0"),
              std::string::npos)
        << phase << "\n"
        << m0;
    EXPECT_EQ(metric(m0, phase_metric(phase, "count")), 0) << phase;
  }

  const std::string doc = document();
  const std::vector<std::string> prompts = {
      doc + "Question: how many birds at marker 30?\nAnswer:",
      doc + "Question: was the water cold at entry 9?\nAnswer:", "A short prompt with no cached prefix:"};
  std::string before = m0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    complete(prompts[i]);
    const std::string after = metrics();
    const double ttft = metric(after, "sacc_time_to_first_token_seconds_sum") -
                        metric(before, "sacc_time_to_first_token_seconds_sum");
    double before_first_token = 0.0;
    for (const std::string& phase : kPhases) {
      EXPECT_EQ(metric(after, phase_metric(phase, "count")), static_cast<double>(i + 1)) << phase;
      const double seconds =
          metric(after, phase_metric(phase, "sum")) - metric(before, phase_metric(phase, "sum"));
      EXPECT_GE(seconds, 0.0) << phase;
      if (phase != "decode") before_first_token += seconds;
    }
    EXPECT_GT(ttft, 0.0) << "request " << i;
    // The sums are printed exactly (shortest round trip); the differences only round.
    EXPECT_LE(before_first_token, ttft + 1e-9) << "request " << i << "\n" << after;
    EXPECT_GT(metric(after, phase_metric("prefill", "sum")), metric(before, phase_metric("prefill", "sum")));
    before = after;
  }
  // The second request reused the first one's document: only it restored anything.
  EXPECT_EQ(metric(before, "sacc_prefix_cache_hits_total"), 1) << before;
  EXPECT_GT(metric(before, phase_metric("restore", "sum")), 0.0) << before;

  // A refused request is no finished request: no phase counts it.
  auto bad = post("{not json");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  const std::string last = metrics();
  for (const std::string& phase : kPhases)
    EXPECT_EQ(metric(last, phase_metric(phase, "count")), static_cast<double>(prompts.size())) << phase;
}

}  // namespace
}  // namespace sacc::test
