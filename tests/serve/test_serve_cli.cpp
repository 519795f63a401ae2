// `sacc serve` end to end on the real SmolLM2-135M model (skipped when scripts/fetch_models.sh has not
// installed it): the server is started on a free loopback port, driven with httplib's client, and stopped
// with SIGTERM. Greedy output is compared with `sacc generate` on the same prompt.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <sstream>
#include <thread>

#include "cli/run_sacc.h"
#include "serve/serve_process.h"
#include "serve/serve_test_text.h"

namespace sacc::test {
namespace {

using nlohmann::json;

const std::string kModel = std::string(SACC_SOURCE_DIR) + "/.models/SmolLM2-135M-Instruct.Q4_1.gguf";
const std::string kModelId = "SmolLM2-135M-Instruct.Q4_1";
const std::string kApiKey = "test-key";
const std::string kPrompt = "The capital of France is";

std::string log_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("sacc_serve_test_" + name + ".log")).string();
}

// Greedy text of `sacc generate` for the prompt (plain or as one chat user turn).
std::string generate_text(const std::string& prompt, int tokens, bool chat) {
  const SaccRun run =
      run_sacc_binary("-q generate --device cpu --json -m " + kModel + " -n " + std::to_string(tokens) +
                      (chat ? " --chat" : "") + " -p '" + prompt + "'");
  EXPECT_EQ(run.exit_code, 0) << run.output;
  std::istringstream lines(run.output);
  std::string line, last_json;
  while (std::getline(lines, line))
    if (!line.empty() && line[0] == '{') last_json = line;
  return json::parse(last_json)["text"].get<std::string>();
}

// A parsed server-sent-event stream: each data line's JSON, and whether it ended with [DONE].
struct EventStream {
  std::vector<json> chunks;
  bool done = false;
  bool well_formed = true;
};

EventStream parse_events(const std::string& body) {
  EventStream s;
  size_t at = 0;
  while (at < body.size()) {
    const size_t end = body.find("\n\n", at);
    if (end == std::string::npos) {
      s.well_formed = false;
      break;
    }
    const std::string event = body.substr(at, end - at);
    at = end + 2;
    if (event.rfind("data: ", 0) != 0 || s.done) {
      s.well_formed = false;
      continue;
    }
    const std::string data = event.substr(6);
    if (data == "[DONE]") {
      s.done = true;
      continue;
    }
    json chunk = json::parse(data, nullptr, false);
    if (chunk.is_discarded()) s.well_formed = false;
    s.chunks.push_back(chunk);
  }
  return s;
}

// The concatenated text deltas of a stream.
std::string stream_text(const EventStream& s, bool chat) {
  std::string text;
  for (const json& c : s.chunks) {
    const json& choice = c["choices"][0];
    if (chat) {
      if (choice["delta"].contains("content")) text += choice["delta"]["content"].get<std::string>();
    } else {
      text += choice["text"].get<std::string>();
    }
  }
  return text;
}

void expect_error_shape(const httplib::Result& res, int status) {
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, status) << res->body;
  const json body = json::parse(res->body, nullptr, false);
  ASSERT_TRUE(body.is_object()) << res->body;
  ASSERT_TRUE(body.contains("error")) << res->body;
  const json& e = body["error"];
  EXPECT_TRUE(e["message"].is_string());
  EXPECT_TRUE(e["type"].is_string());
  EXPECT_TRUE(e.contains("param"));
  EXPECT_TRUE(e.contains("code"));
}

class ServeCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!std::filesystem::exists(kModel)) return;
    server_ = std::make_unique<ServeProcess>();
    ASSERT_TRUE(server_->start({"-m", kModel, "--device", "cpu", "--api-key", kApiKey, "--max-queue", "32"},
                               log_path("suite")));
    ASSERT_TRUE(server_->wait_healthy()) << "see " << log_path("suite");
  }
  static void TearDownTestSuite() {
    if (server_) {
      EXPECT_EQ(server_->stop(), 0);
    }
    server_.reset();
  }
  void SetUp() override {
    if (!std::filesystem::exists(kModel))
      GTEST_SKIP() << kModel << " is absent (run scripts/fetch_models.sh)";
  }

  static std::unique_ptr<httplib::Client> client(const std::string& key = kApiKey) {
    auto c = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
    c->set_read_timeout(600, 0);
    if (!key.empty()) c->set_bearer_token_auth(key.c_str());
    return c;
  }
  static httplib::Result post(const std::string& path, const json& body, const std::string& key = kApiKey) {
    return client(key)->Post(path.c_str(), body.dump(), "application/json");
  }

  // A /metrics value once `want` is reached (a request is counted once its response has been written, which
  // can be just after the client has read it): polled at most 5 s; without `want`, read once.
  static double settled_metric(const std::string& name, double want = -1) {
    double value = -1;
    for (int attempt = 0; attempt < 50; ++attempt) {
      auto res = client()->Get("/metrics");
      if (!res || res->status != 200) return -1;
      value = metric(res->body, name);
      if (want < 0 || value >= want) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return value;
  }

  static std::unique_ptr<ServeProcess> server_;
};

std::unique_ptr<ServeProcess> ServeCli::server_;

json completion_body(bool stream) {
  return {
      {"model", kModelId}, {"prompt", kPrompt}, {"max_tokens", 8}, {"temperature", 0}, {"stream", stream}};
}

json chat_body(bool stream) {
  return {{"model", kModelId},
          {"messages", json::array({{{"role", "user"}, {"content", kPrompt}}})},
          {"max_tokens", 8},
          {"temperature", 0},
          {"stream", stream}};
}

TEST_F(ServeCli, CompletionMatchesGenerate) {
  auto res = post("/v1/completions", completion_body(false));
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const json body = json::parse(res->body);
  EXPECT_EQ(body["object"], "text_completion");
  EXPECT_EQ(body["model"], kModelId);
  EXPECT_EQ(body["choices"][0]["text"], generate_text(kPrompt, 8, false));
  EXPECT_TRUE(body["choices"][0]["finish_reason"] == "length" ||
              body["choices"][0]["finish_reason"] == "stop");
  EXPECT_GT(body["usage"]["prompt_tokens"].get<int>(), 0);
  EXPECT_GT(body["usage"]["completion_tokens"].get<int>(), 0);
  EXPECT_LE(body["usage"]["completion_tokens"].get<int>(), 8);
  EXPECT_EQ(body["usage"]["total_tokens"].get<int>(),
            body["usage"]["prompt_tokens"].get<int>() + body["usage"]["completion_tokens"].get<int>());
}

TEST_F(ServeCli, ChatCompletionMatchesGenerateChat) {
  auto res = post("/v1/chat/completions", chat_body(false));
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const json body = json::parse(res->body);
  EXPECT_EQ(body["object"], "chat.completion");
  EXPECT_EQ(body["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(body["choices"][0]["message"]["content"], generate_text(kPrompt, 8, true));
  EXPECT_GT(body["usage"]["prompt_tokens"].get<int>(), 0);
}

TEST_F(ServeCli, StreamEqualsPlain) {
  for (bool chat : {false, true}) {
    const std::string path = chat ? "/v1/chat/completions" : "/v1/completions";
    auto plain = post(path, chat ? chat_body(false) : completion_body(false));
    auto streamed = post(path, chat ? chat_body(true) : completion_body(true));
    ASSERT_TRUE(plain && streamed);
    ASSERT_EQ(streamed->status, 200) << streamed->body;
    EXPECT_EQ(streamed->get_header_value("Content-Type").rfind("text/event-stream", 0), 0u);
    const EventStream s = parse_events(streamed->body);
    EXPECT_TRUE(s.well_formed) << streamed->body;
    EXPECT_TRUE(s.done) << streamed->body;
    ASSERT_FALSE(s.chunks.empty());
    const json& last = s.chunks.back();
    EXPECT_FALSE(last["choices"][0]["finish_reason"].is_null());
    EXPECT_TRUE(last.contains("usage"));
    for (size_t i = 0; i + 1 < s.chunks.size(); ++i)
      EXPECT_TRUE(s.chunks[i]["choices"][0]["finish_reason"].is_null());
    const json p = json::parse(plain->body);
    EXPECT_EQ(stream_text(s, chat), chat ? p["choices"][0]["message"]["content"].get<std::string>()
                                         : p["choices"][0]["text"].get<std::string>());
    EXPECT_EQ(last["choices"][0]["finish_reason"], p["choices"][0]["finish_reason"]);
    EXPECT_EQ(last["usage"], p["usage"]);
  }
}

TEST_F(ServeCli, StopStringEndsWithStop) {
  const json plain = json::parse(post("/v1/completions", completion_body(false))->body);
  const std::string text = plain["choices"][0]["text"];
  ASSERT_GE(text.size(), 3u);
  json body = completion_body(false);
  body["stop"] = text.substr(2, 1);  // a character the greedy text holds
  auto res = post("/v1/completions", body);
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const json stopped = json::parse(res->body);
  EXPECT_EQ(stopped["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(stopped["choices"][0]["text"], text.substr(0, text.find(text.substr(2, 1))));
}

TEST_F(ServeCli, ErrorsInOpenAiShape) {
  expect_error_shape(client()->Post("/v1/completions", "{\"model\": ", "application/json"), 400);
  json wrong_type = completion_body(false);
  wrong_type["max_tokens"] = "eight";
  expect_error_shape(post("/v1/completions", wrong_type), 400);
  json two = completion_body(false);
  two["n"] = 2;
  expect_error_shape(post("/v1/completions", two), 400);
  json unknown = chat_body(false);
  unknown["model"] = "gpt-4";
  expect_error_shape(post("/v1/chat/completions", unknown), 404);
  json too_long = completion_body(false);
  too_long["max_tokens"] = 100'000'000;
  expect_error_shape(post("/v1/completions", too_long), 400);
  // A large JSON body sent as a form (curl -d's default type): the HTTP library's 8 KiB form cap, explained.
  json large = completion_body(false);
  large["prompt"] = std::string(20'000, 'a');
  const httplib::Result form =
      client()->Post("/v1/completions", large.dump(), "application/x-www-form-urlencoded");
  expect_error_shape(form, 413);
  EXPECT_NE(form->body.find("Content-Type: application/json"), std::string::npos) << form->body;
  EXPECT_EQ(client()->Get("/health")->status, 200);
}

TEST_F(ServeCli, ApiKeyRequired) {
  expect_error_shape(post("/v1/completions", completion_body(false), ""), 401);
  expect_error_shape(post("/v1/completions", completion_body(false), "wrong-key"), 401);
  auto models = client("")->Get("/v1/models");
  expect_error_shape(models, 401);
  auto listed = client()->Get("/v1/models");
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed->status, 200);
  EXPECT_EQ(json::parse(listed->body)["data"][0]["id"], kModelId);
  auto health = client("")->Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

TEST_F(ServeCli, MetricsCountRequests) {
  ASSERT_EQ(post("/v1/completions", completion_body(false))->status, 200);
  ASSERT_EQ(post("/v1/completions", completion_body(true))->status, 200);
  ASSERT_EQ(client()->Post("/v1/completions", "not json", "application/json")->status, 400);
  // A request is counted once its response has been written (the server's logger), which can be just after
  // the client has read it: poll until the 400 appears, at most 5 s.
  std::string m;
  for (int attempt = 0; attempt < 50; ++attempt) {
    auto res = client()->Get("/metrics");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200);
    m = res->body;
    if (metric(m, "sacc_requests_total{code=\"400\"}") >= 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_GE(metric(m, "sacc_requests_total{code=\"200\"}"), 2) << m;
  EXPECT_GE(metric(m, "sacc_requests_total{code=\"400\"}"), 1) << m;
  EXPECT_GT(metric(m, "sacc_prompt_tokens_total"), 0) << m;
  EXPECT_GT(metric(m, "sacc_generation_tokens_total"), 0) << m;
  EXPECT_GE(metric(m, "sacc_time_to_first_token_seconds_count"), 2) << m;
  EXPECT_GE(metric(m, "sacc_inter_token_latency_seconds_count"), 1) << m;
  EXPECT_GE(metric(m, "sacc_queue_depth"), 0) << m;
  const double sparse = metric(m, "sacc_last_prefill_sparse");
  EXPECT_TRUE(sparse == 0 || sparse == 1) << m;
}

// 32 streaming clients connecting at once: every stream complete, well-formed and the greedy text; /metrics
// then counts exactly those requests, their prompt and their generated tokens. (With the HTTP library's own
// listen backlog of 5, about one run in three lost some of these connections.)
TEST_F(ServeCli, ConcurrentStreamsAllCompleteAndMetricsAgree) {
  constexpr int kClients = 32;
  const json reference = json::parse(post("/v1/completions", completion_body(false))->body);
  const std::string expected = reference["choices"][0]["text"];
  const int prompt_tokens = reference["usage"]["prompt_tokens"];
  const int completion_tokens = reference["usage"]["completion_tokens"];
  // /metrics requests count among the 200s too: completions are counted exactly by the time-to-first-token
  // histogram and the token counters.
  const double ok_before = settled_metric("sacc_requests_total{code=\"200\"}");
  const double ttft_before = settled_metric("sacc_time_to_first_token_seconds_count");
  const double prompt_before = settled_metric("sacc_prompt_tokens_total");
  const double generated_before = settled_metric("sacc_generation_tokens_total");
  std::vector<std::string> bodies(kClients);
  std::vector<int> statuses(kClients, 0);
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      auto res = post("/v1/completions", completion_body(true));
      if (!res) {
        bodies[i] = "no response: " + httplib::to_string(res.error());
        return;
      }
      statuses[i] = res->status;
      bodies[i] = res->body;
    });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < kClients; ++i) {
    ASSERT_EQ(statuses[i], 200) << "client " << i << ": " << bodies[i];
    const EventStream s = parse_events(bodies[i]);
    EXPECT_TRUE(s.well_formed && s.done) << "client " << i << ": " << bodies[i];
    EXPECT_EQ(stream_text(s, false), expected) << "client " << i;
  }
  EXPECT_GE(settled_metric("sacc_requests_total{code=\"200\"}", ok_before + kClients), ok_before + kClients);
  EXPECT_EQ(settled_metric("sacc_time_to_first_token_seconds_count", ttft_before + kClients),
            ttft_before + kClients);
  EXPECT_EQ(settled_metric("sacc_prompt_tokens_total"), prompt_before + kClients * prompt_tokens);
  EXPECT_EQ(settled_metric("sacc_generation_tokens_total"), generated_before + kClients * completion_tokens);
  EXPECT_EQ(settled_metric("sacc_active_sequences"), 0);
  EXPECT_EQ(settled_metric("sacc_kv_cache_bytes"), 0);
}

// A second server on a port that is taken exits with an error instead of sharing the port.
TEST_F(ServeCli, SecondServerOnTakenPortFails) {
  const SaccRun run = run_sacc_binary("-q serve --device cpu -m " + kModel + " --host 127.0.0.1 --port " +
                                      std::to_string(server_->port()));
  EXPECT_NE(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("cannot listen on 127.0.0.1:" + std::to_string(server_->port())),
            std::string::npos)
      << run.output;
  EXPECT_EQ(client()->Get("/health")->status, 200);
}

// SIGTERM while a stream is being sent: the stream still ends with [DONE] and the server exits 0.
TEST(ServeCliShutdown, SigtermFinishesActiveRequestAndExitsZero) {
  if (!std::filesystem::exists(kModel)) GTEST_SKIP() << kModel << " is absent (run scripts/fetch_models.sh)";
  ServeProcess server;
  ASSERT_TRUE(server.start({"-m", kModel, "--device", "cpu"}, log_path("sigterm")));
  ASSERT_TRUE(server.wait_healthy()) << "see " << log_path("sigterm");
  httplib::Client c("127.0.0.1", server.port());
  c.set_read_timeout(600, 0);
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/completions";
  req.set_header("Content-Type", "application/json");
  json body = completion_body(true);
  body["max_tokens"] = 16;
  req.body = body.dump();
  std::string received;
  bool signalled = false;
  req.content_receiver = [&](const char* data, size_t size, uint64_t, uint64_t) {
    received.append(data, size);
    if (!signalled) {
      server.send_sigterm();  // the request is active: its first chunk arrived
      signalled = true;
    }
    return true;
  };
  auto res = c.send(req);
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  EXPECT_TRUE(signalled);
  const EventStream s = parse_events(received);
  EXPECT_TRUE(s.well_formed && s.done) << received;
  EXPECT_EQ(server.wait_exit(), 0) << "see " << log_path("sigterm");
}

}  // namespace
}  // namespace sacc::test

namespace sacc::test {
namespace {

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

// --max-queue 1 --max-batch 1 on a random model (no file needed; it runs to max_tokens): stream A holds the
// one sequence slot, B waits
// in the queue, C is refused with 429. A's client then hangs up, which cancels A, so B runs next and A's
// generated tokens stay far below its max_tokens.
TEST(ServeCliQueue, FullQueueGets429AndDisconnectCancels) {
  constexpr int kLongRun = 4000;
  const std::string model = "random:smollm2-135m";
  ServeProcess server;
  ASSERT_TRUE(server.start(
      {"-m", model, "--device", "cpu", "--max-queue", "1", "--max-batch", "1", "--max-context", "4096"},
      log_path("queue")));
  ASSERT_TRUE(server.wait_healthy()) << "see " << log_path("queue");
  auto body = [&](int max_tokens, bool stream) {
    return json{{"model", model},
                {"prompt", "hello"},
                {"max_tokens", max_tokens},
                {"temperature", 0},
                {"stream", stream}}
        .dump();
  };
  auto metrics = [&] {
    httplib::Client c("127.0.0.1", server.port());
    auto res = c.Get("/metrics");
    return res ? res->body : std::string();
  };

  std::atomic<bool> a_started{false}, a_hang_up{false};
  std::thread a([&] {
    httplib::Client c("127.0.0.1", server.port());
    c.set_read_timeout(600, 0);
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/completions";
    req.set_header("Content-Type", "application/json");
    req.body = body(kLongRun, true);
    req.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) {
      a_started = true;
      return !a_hang_up;
    };
    c.send(req);
  });
  ASSERT_TRUE(eventually([&] { return a_started.load(); }));

  int b_status = 0;
  std::thread b([&] {
    httplib::Client c("127.0.0.1", server.port());
    c.set_read_timeout(600, 0);
    auto res = c.Post("/v1/completions", body(1, false), "application/json");
    if (res) b_status = res->status;
  });
  ASSERT_TRUE(eventually([&] { return metric(metrics(), "sacc_queue_depth") == 1; }));

  httplib::Client c("127.0.0.1", server.port());
  auto refused = c.Post("/v1/completions", body(1, false), "application/json");
  expect_error_shape(refused, 429);
  EXPECT_FALSE(refused->get_header_value("Retry-After").empty());

  a_hang_up = true;
  a.join();
  b.join();
  EXPECT_EQ(b_status, 200);
  const std::string m = metrics();
  EXPECT_EQ(metric(m, "sacc_requests_total{code=\"429\"}"), 1) << m;
  EXPECT_LT(metric(m, "sacc_generation_tokens_total"), kLongRun) << m;
  EXPECT_EQ(server.stop(), 0) << "see " << log_path("queue");
}

}  // namespace
}  // namespace sacc::test
