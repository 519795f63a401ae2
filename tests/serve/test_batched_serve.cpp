// `sacc serve`'s continuous batching end to end on the CPU backend: requests decoded together give the greedy
// text each gives alone; a prompt prefilled in chunks between another stream's decode steps gives the text of
// a whole prefill; a client that hangs up frees its sequence slot for the next request. Real SmolLM2-135M
// (skipped when scripts/fetch_models.sh has not installed it) and a random model (it never stops on its own,
// so a stream runs for as long as a test needs it).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

#include "serve/serve_process.h"
#include "serve/serve_test_text.h"

namespace sacc::test {
namespace {

using nlohmann::json;

const std::string kSmol = std::string(SACC_SOURCE_DIR) + "/.models/SmolLM2-135M-Instruct.Q4_1.gguf";
const std::string kSmolId = "SmolLM2-135M-Instruct.Q4_1";
const std::string kRandom = "random:smollm2-135m";
// A stream's max_tokens that no test waits for (a random model never stops on its own); within --max-context
// 8192 with its prompt.
constexpr int kLongRun = 8000;

std::string log_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("sacc_batch_test_" + name + ".log")).string();
}

// Polls `done` (bounded; a hang guard, not a timing assertion).
template <typename Done>
bool eventually(Done done) {
  constexpr int kAttempts = 3000;
  for (int i = 0; i < kAttempts; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

class Server {
 public:
  Server(const std::string& model, const std::vector<std::string>& extra, const std::string& name)
      : model_(model), log_(log_path(name)) {
    std::vector<std::string> args = {"-m", model, "--device", "cpu", "--prefix-cache", "0"};
    args.insert(args.end(), extra.begin(), extra.end());
    EXPECT_TRUE(process_.start(args, log_));
    healthy_ = process_.wait_healthy();
    EXPECT_TRUE(healthy_) << "see " << log_;
  }
  ~Server() { EXPECT_EQ(process_.stop(), 0) << "see " << log_; }
  bool healthy() const { return healthy_; }
  const std::string& log() const { return log_; }
  int port() const { return process_.port(); }

  json body(const std::string& prompt, int max_tokens, bool stream) const {
    return {{"model", model_ == kSmol ? kSmolId : model_},
            {"prompt", prompt},
            {"max_tokens", max_tokens},
            {"temperature", 0},
            {"stream", stream}};
  }
  // Greedy text of a plain completion ("" and a failed expectation when it is not a 200).
  std::string text(const std::string& prompt, int max_tokens) const {
    httplib::Client c("127.0.0.1", port());
    c.set_read_timeout(600, 0);
    auto res = c.Post("/v1/completions", body(prompt, max_tokens, false).dump(), "application/json");
    EXPECT_TRUE(res) << "see " << log_;
    if (!res) return "";
    EXPECT_EQ(res->status, 200) << res->body;
    if (res->status != 200) return "";
    return json::parse(res->body)["choices"][0]["text"];
  }
  std::string metrics() const {
    httplib::Client c("127.0.0.1", port());
    auto res = c.Get("/metrics");
    return res ? res->body : std::string();
  }

 private:
  std::string model_, log_;
  ServeProcess process_;
  bool healthy_ = false;
};

// A stream of `max_tokens` (far more than a test waits for) that hangs up once told to; started() after its
// first chunk.
class HeldStream {
 public:
  HeldStream(const Server& server, int max_tokens)
      : thread_([this, &server, max_tokens] {
          httplib::Client c("127.0.0.1", server.port());
          c.set_read_timeout(600, 0);
          httplib::Request req;
          req.method = "POST";
          req.path = "/v1/completions";
          req.set_header("Content-Type", "application/json");
          req.body = server.body("hello", max_tokens, true).dump();
          req.content_receiver = [this](const char*, size_t, uint64_t, uint64_t) {
            started_ = true;
            return !hang_up_;
          };
          c.send(req);
        }) {}
  ~HeldStream() {
    hang_up_ = true;
    thread_.join();
  }
  bool started() const { return started_; }
  void hang_up() { hang_up_ = true; }

 private:
  std::atomic<bool> started_{false}, hang_up_{false};
  std::thread thread_;
};

TEST(BatchedServe, ConcurrentGreedyTextEqualsEachAlone) {
  if (!std::filesystem::exists(kSmol)) GTEST_SKIP() << kSmol << " is absent (run scripts/fetch_models.sh)";
  Server server(kSmol, {"--max-batch", "4"}, "concurrent");
  ASSERT_TRUE(server.healthy());
  const std::vector<std::string> prompts = {"The capital of France is", "Once upon a time, a small robot",
                                            "The three primary colours are", "def fibonacci(n):"};
  constexpr int kTokens = 24;
  // One after another: each runs alone in the server.
  std::vector<std::string> alone;
  for (const std::string& p : prompts) alone.push_back(server.text(p, kTokens));
  // All at once: their decode steps share the batch (their rows differ only in where each attends; the
  // quantised dot products of a row do not depend on the other rows, so greedy ids are the same).
  std::vector<std::string> together(prompts.size());
  std::vector<std::thread> clients;
  for (size_t i = 0; i < prompts.size(); ++i)
    clients.emplace_back([&, i] { together[i] = server.text(prompts[i], kTokens); });
  for (std::thread& t : clients) t.join();
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_FALSE(alone[i].empty()) << prompts[i];
    EXPECT_EQ(together[i], alone[i]) << prompts[i];
  }
  const std::string m = server.metrics();
  EXPECT_GE(metric(m, "sacc_decode_rows_total"), metric(m, "sacc_decode_steps_total")) << m;
  EXPECT_EQ(metric(m, "sacc_active_sequences"), 0) << m;
}

// While stream A decodes, B's 700-token prompt is prefilled 256 tokens per step between A's decode steps,
// then decoded beside A: B's text is that of B alone (one whole prefill, decoded alone).
TEST(BatchedServe, ChunkedPrefillBesideAStreamEqualsWholePrefill) {
  Server server(kRandom, {"--max-batch", "2", "--prefill-chunk", "256", "--max-context", "8192"}, "chunked");
  ASSERT_TRUE(server.healthy());
  const std::string prompt = field_notes("the north shore", 7).substr(0, 700);  // 701 ids with BOS
  constexpr int kTokens = 8;
  const std::string alone = server.text(prompt, kTokens);
  ASSERT_FALSE(alone.empty());
  EXPECT_EQ(metric(server.metrics(), "sacc_prefill_chunks_total"), 0);
  std::string beside;
  {
    HeldStream a(server, kLongRun);
    ASSERT_TRUE(eventually([&] { return a.started(); })) << "see " << server.log();
    beside = server.text(prompt, kTokens);
  }
  EXPECT_EQ(beside, alone);
  const std::string m = server.metrics();
  // 701 positions in steps ending at 256, 512, 701: B's prefill really ran in chunks beside A.
  EXPECT_EQ(metric(m, "sacc_prefill_chunks_total"), 3) << m;
  // B's decode steps had A's row beside its own.
  EXPECT_GT(metric(m, "sacc_decode_rows_total"), metric(m, "sacc_decode_steps_total")) << m;
}

// --max-batch 1: B can only run once A's slot is free, which A's client hanging up does (long before A's
// max_tokens).
TEST(BatchedServe, HangUpFreesTheSlotForTheNextRequest) {
  Server server(kRandom, {"--max-batch", "1", "--max-context", "8192"}, "cancel");
  ASSERT_TRUE(server.healthy());
  {
    HeldStream a(server, kLongRun);
    ASSERT_TRUE(eventually([&] { return a.started(); })) << "see " << server.log();
    ASSERT_TRUE(eventually([&] { return metric(server.metrics(), "sacc_active_sequences") == 1; }));
    EXPECT_GT(metric(server.metrics(), "sacc_kv_cache_bytes"), 0);  // A's slot, sized for kLongRun tokens
    a.hang_up();
  }
  EXPECT_FALSE(server.text("hello", 4).empty());
  const std::string m = server.metrics();
  EXPECT_EQ(metric(m, "sacc_active_sequences"), 0) << m;
  EXPECT_EQ(metric(m, "sacc_kv_cache_bytes"), 0) << m;
  EXPECT_LT(metric(m, "sacc_generation_tokens_total"), kLongRun) << m;
}

}  // namespace
}  // namespace sacc::test
