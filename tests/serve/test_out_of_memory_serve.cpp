// `sacc serve` when a request runs out of host memory: the server runs under a lowered address-space limit
// (RLIMIT_AS) and a request whose KV cache cannot be allocated gets a 503 JSON error naming it and the run's
// memory plan, plain and streamed; the server stays healthy and answers a small request next. Real
// SmolLM2-135M, skipped when scripts/fetch_models.sh has not installed it.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "address_sanitizer.h"
#include "serve/serve_process.h"

namespace sacc::test {
namespace {

using nlohmann::json;

const std::string kModel = std::string(SACC_SOURCE_DIR) + "/.models/SmolLM2-135M-Instruct.Q4_1.gguf";
const std::string kModelId = "SmolLM2-135M-Instruct.Q4_1";

uint64_t mem_available() {
  std::ifstream in("/proc/meminfo");
  std::string key, unit;
  uint64_t kib = 0;
  while (in >> key >> kib >> unit)
    if (key == "MemAvailable:") return kib * 1024;
  return 0;
}

std::string completion(int64_t max_tokens, bool stream) {
  return json{{"model", kModelId}, {"prompt", "hello"}, {"max_tokens", max_tokens}, {"stream", stream}}
      .dump();
}

TEST(ServeOutOfMemory, KvCacheFailureIs503AndServerStaysHealthy) {
  if (kUnderAddressSanitizer) GTEST_SKIP() << "ASan's shadow memory does not fit under RLIMIT_AS";
  if (!std::filesystem::exists(kModel)) GTEST_SKIP() << kModel << " is absent (run scripts/fetch_models.sh)";
  // The request plans ~2.6 GiB: the host must have that available or it is refused up front (400) instead.
  if (mem_available() < (4ull << 30))
    GTEST_SKIP() << "the request plans more than this machine has available";
  const std::string log = (std::filesystem::temp_directory_path() / "sacc_serve_oom_test.log").string();
  ServeProcess server;
  // 1.4 GiB holds the server (mapped model, two worker threads, a few HTTP threads) but not the 2.47 GiB KV
  // cache of 120000 positions.
  server.address_space_limit = 1400ull << 20;
  ASSERT_TRUE(server.start(
      {"-m", kModel, "--device", "cpu", "--threads", "2", "--max-queue", "2", "--max-context", "131072"},
      log));
  ASSERT_TRUE(server.wait_healthy()) << "see " << log;
  httplib::Client client("127.0.0.1", server.port());
  client.set_read_timeout(600, 0);

  auto plain = client.Post("/v1/completions", completion(120000, false), "application/json");
  ASSERT_TRUE(plain) << "no answer; see " << log;
  EXPECT_EQ(plain->status, 503) << plain->body;
  const json error = json::parse(plain->body, nullptr, false);
  ASSERT_TRUE(error.contains("error")) << plain->body;
  EXPECT_EQ(error["error"]["code"], "out_of_memory") << plain->body;
  const std::string message = error["error"]["message"].get<std::string>();
  EXPECT_NE(message.find("KV cache for 120000 tokens: cannot allocate"), std::string::npos) << message;
  EXPECT_NE(message.find("memory plan for 120000 tokens"), std::string::npos) << message;

  auto streamed = client.Post("/v1/completions", completion(120000, true), "application/json");
  ASSERT_TRUE(streamed) << "no answer; see " << log;
  EXPECT_NE(streamed->body.find("out_of_memory"), std::string::npos) << streamed->body;
  EXPECT_NE(streamed->body.find("[DONE]"), std::string::npos) << streamed->body;

  auto health = client.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  auto small = client.Post("/v1/completions", completion(2, false), "application/json");
  ASSERT_TRUE(small) << "no answer; see " << log;
  EXPECT_EQ(small->status, 200) << small->body;
  EXPECT_EQ(server.stop(), 0) << "see " << log;
}

}  // namespace
}  // namespace sacc::test
