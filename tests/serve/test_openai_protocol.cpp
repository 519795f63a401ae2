// The OpenAI wire format of `sacc serve` (tools/sacc/openai_protocol.h): request parsing and validation,
// and the shape of responses, chunks and errors.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tools/sacc/openai_protocol.h"

namespace sacc::cli {
namespace {

using nlohmann::json;

ParsedRequest completion(const std::string& body) {
  return parse_completion_request(body, Endpoint::COMPLETIONS);
}
ParsedRequest chat(const std::string& body) {
  return parse_completion_request(body, Endpoint::CHAT_COMPLETIONS);
}

void expect_400(const ParsedRequest& p, const std::string& param) {
  ASSERT_FALSE(p.request.has_value());
  EXPECT_EQ(p.error.http_status, 400);
  EXPECT_EQ(p.error.type, "invalid_request_error");
  EXPECT_EQ(p.error.param, param) << p.error.message;
  EXPECT_FALSE(p.error.message.empty());
}

TEST(OpenAiProtocol, CompletionFields) {
  ParsedRequest p = completion(
      R"({"model":"m","prompt":"Hi","max_tokens":8,"temperature":0,"top_p":0.5,"seed":7,"stop":["\n","END"],)"
      R"("stream":true,"n":1,"user":"ignored","logit_bias":null})");
  ASSERT_TRUE(p.request.has_value()) << p.error.message;
  const CompletionRequest& r = *p.request;
  EXPECT_EQ(r.model, "m");
  EXPECT_EQ(r.prompt, "Hi");
  EXPECT_EQ(r.max_tokens, 8);
  EXPECT_EQ(r.temperature, 0.0f);
  EXPECT_EQ(r.top_p, 0.5f);
  EXPECT_EQ(r.seed, 7u);
  EXPECT_EQ(r.stop, (std::vector<std::string>{"\n", "END"}));
  EXPECT_TRUE(r.stream);
}

TEST(OpenAiProtocol, Defaults) {
  ParsedRequest p = completion(R"({"model":"m","prompt":["one string"],"max_tokens":null})");
  ASSERT_TRUE(p.request.has_value()) << p.error.message;
  EXPECT_EQ(p.request->prompt, "one string");
  EXPECT_FALSE(p.request->max_tokens.has_value());
  EXPECT_FALSE(p.request->seed.has_value());
  EXPECT_EQ(p.request->temperature, 1.0f);
  EXPECT_FALSE(p.request->stream);
}

TEST(OpenAiProtocol, ChatMessages) {
  ParsedRequest p =
      chat(R"({"model":"m","messages":[{"role":"system","content":"Be brief."},)"
           R"({"role":"user","content":[{"type":"text","text":"Hel"},{"type":"text","text":"lo"}]}],)"
           R"("max_completion_tokens":4,"stop":"x"})");
  ASSERT_TRUE(p.request.has_value()) << p.error.message;
  ASSERT_EQ(p.request->messages.size(), 2u);
  EXPECT_EQ(p.request->messages[0].role, "system");
  EXPECT_EQ(p.request->messages[1].content, "Hello");
  EXPECT_EQ(p.request->max_tokens, 4);
  EXPECT_EQ(p.request->stop, std::vector<std::string>{"x"});
}

TEST(OpenAiProtocol, MalformedJson) {
  expect_400(completion("{\"model\": "), "");
  expect_400(completion(""), "");
  expect_400(completion("[1, 2]"), "");
}

TEST(OpenAiProtocol, WrongTypes) {
  expect_400(completion(R"({"model":3,"prompt":"a"})"), "model");
  expect_400(completion(R"({"prompt":"a"})"), "model");
  expect_400(completion(R"({"model":"m"})"), "prompt");
  expect_400(completion(R"({"model":"m","prompt":[1,2,3]})"), "prompt");
  expect_400(completion(R"({"model":"m","prompt":"a","max_tokens":"8"})"), "max_tokens");
  expect_400(completion(R"({"model":"m","prompt":"a","max_tokens":1.5})"), "max_tokens");
  expect_400(completion(R"({"model":"m","prompt":"a","max_tokens":0})"), "max_tokens");
  expect_400(completion(R"({"model":"m","prompt":"a","temperature":"hot"})"), "temperature");
  expect_400(completion(R"({"model":"m","prompt":"a","temperature":2.5})"), "temperature");
  expect_400(completion(R"({"model":"m","prompt":"a","top_p":0})"), "top_p");
  expect_400(completion(R"({"model":"m","prompt":"a","seed":"1"})"), "seed");
  expect_400(completion(R"({"model":"m","prompt":"a","stop":[1]})"), "stop");
  expect_400(completion(R"({"model":"m","prompt":"a","stop":["a","b","c","d","e"]})"), "stop");
  expect_400(completion(R"({"model":"m","prompt":"a","stop":""})"), "stop");
  expect_400(completion(R"({"model":"m","prompt":"a","stream":"yes"})"), "stream");
  expect_400(chat(R"({"model":"m","messages":"hi"})"), "messages");
  expect_400(chat(R"({"model":"m","messages":[]})"), "messages");
  expect_400(chat(R"({"model":"m","messages":[{"role":1,"content":"a"}]})"), "messages[0].role");
  expect_400(chat(R"({"model":"m","messages":[{"role":"user","content":5}]})"), "messages[0].content");
  // A content part whose "type" is not a string (found by fuzz_serve_request: it threw instead).
  expect_400(chat(R"({"model":"m","messages":[{"role":"user","content":[{"type":[1],"text":"a"}]}]})"),
             "messages[0].content");
  expect_400(chat(R"({"model":"m","messages":[{"role":"user","content":[{"type":"text","text":7}]}]})"),
             "messages[0].content");
}

TEST(OpenAiProtocol, AttentionOverrideShape) {
  ParsedRequest p =
      completion(R"({"model":"m","prompt":"Hi","sparse_accelerate":{"attention":"sparse","pattern":"x"}})");
  ASSERT_TRUE(p.request.has_value()) << p.error.message;
  ASSERT_TRUE(p.request->attention.has_value());
  EXPECT_EQ(p.request->attention->attention, "sparse");
  EXPECT_EQ(p.request->attention->pattern, "x");
  p = completion(R"({"model":"m","prompt":"Hi","sparse_accelerate":{"attention":"dense","pattern":null}})");
  ASSERT_TRUE(p.request.has_value()) << p.error.message;
  EXPECT_FALSE(p.request->attention->pattern.has_value());
  p = completion(R"({"model":"m","prompt":"Hi"})");
  ASSERT_TRUE(p.request.has_value());
  EXPECT_FALSE(p.request->attention.has_value());
  // The values themselves are the server's to check (serve_attention.h); the shape is checked here.
  expect_400(completion(R"({"model":"m","prompt":"Hi","sparse_accelerate":"sparse"})"), "sparse_accelerate");
  expect_400(completion(R"({"model":"m","prompt":"Hi","sparse_accelerate":{"attention":1}})"),
             "sparse_accelerate.attention");
  expect_400(completion(R"({"model":"m","prompt":"Hi","sparse_accelerate":{"chunk":"4"}})"),
             "sparse_accelerate.chunk");
}

TEST(OpenAiProtocol, OnlyOneChoice) {
  expect_400(completion(R"({"model":"m","prompt":"a","n":2})"), "n");
  expect_400(completion(R"({"model":"m","prompt":"a","n":"1"})"), "n");
}

TEST(OpenAiProtocol, ErrorShape) {
  const json e =
      json::parse(error_json({404, "no such model", "invalid_request_error", "model", "model_not_found"}));
  EXPECT_EQ(e["error"]["message"], "no such model");
  EXPECT_EQ(e["error"]["type"], "invalid_request_error");
  EXPECT_EQ(e["error"]["param"], "model");
  EXPECT_EQ(e["error"]["code"], "model_not_found");
  const json bare = json::parse(error_json({400, "bad", "invalid_request_error", "", ""}));
  EXPECT_TRUE(bare["error"]["param"].is_null());
  EXPECT_TRUE(bare["error"]["code"].is_null());
}

TEST(OpenAiProtocol, CompletionResponses) {
  const ResponseIdentity id{"cmpl-1", 123, "m"};
  const CompletionResult result{"text", "length", {5, 3}};
  const json c = json::parse(completion_json(Endpoint::COMPLETIONS, id, result));
  EXPECT_EQ(c["object"], "text_completion");
  EXPECT_EQ(c["choices"][0]["text"], "text");
  EXPECT_EQ(c["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(c["usage"]["total_tokens"], 8);
  const json chat_response = json::parse(completion_json(Endpoint::CHAT_COMPLETIONS, id, result));
  EXPECT_EQ(chat_response["object"], "chat.completion");
  EXPECT_EQ(chat_response["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(chat_response["choices"][0]["message"]["content"], "text");
}

TEST(OpenAiProtocol, StreamChunks) {
  const ResponseIdentity id{"chatcmpl-1", 123, "m"};
  const json first =
      json::parse(chunk_json(Endpoint::CHAT_COMPLETIONS, id, {"Hel", true, std::nullopt, std::nullopt}));
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(first["choices"][0]["delta"]["content"], "Hel");
  EXPECT_TRUE(first["choices"][0]["finish_reason"].is_null());
  EXPECT_FALSE(first.contains("usage"));
  const json last = json::parse(chunk_json(Endpoint::CHAT_COMPLETIONS, id, {"", false, "stop", Usage{4, 2}}));
  EXPECT_EQ(last["choices"][0]["finish_reason"], "stop");
  EXPECT_FALSE(last["choices"][0]["delta"].contains("role"));
  EXPECT_EQ(last["usage"]["completion_tokens"], 2);
  const json text =
      json::parse(chunk_json(Endpoint::COMPLETIONS, id, {"lo", false, std::nullopt, std::nullopt}));
  EXPECT_EQ(text["choices"][0]["text"], "lo");
  EXPECT_EQ(sse_event("{}"), "data: {}\n\n");
}

TEST(OpenAiProtocol, InvalidUtf8IsReplacedNotThrown) {
  const std::string bad = "a\xff";
  EXPECT_NO_THROW(completion_json(Endpoint::COMPLETIONS, {"id", 0, "m"}, {bad, "stop", {}}));
}

}  // namespace
}  // namespace sacc::cli
