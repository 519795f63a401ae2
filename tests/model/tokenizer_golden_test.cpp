// The Llama-3 tokenizer against ids, decoded text and the rendered chat recorded by HF tokenizers
// (shared/data/llama3-tokenizer/golden.json), and round trips of long prompts (speed belongs in benchmarks).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <random>
#include <sstream>

#include "model/tokenizer.h"

namespace sacc {
namespace {

const std::string kDataDir = std::string(SACC_SHARED_DATA_DIR) + "/llama3-tokenizer";

nlohmann::json read_golden() {
  std::ifstream in(kDataDir + "/golden.json");
  std::stringstream buffer;
  buffer << in.rdbuf();
  return nlohmann::json::parse(buffer.str(), nullptr, false);
}

class Llama3Tokenizer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto loaded = Tokenizer::from_hf_json(kDataDir);
    ASSERT_TRUE(loaded.is_ok()) << loaded.status().to_string();
    tokenizer_ = new Tokenizer(std::move(loaded).value());
  }
  static void TearDownTestSuite() {
    delete tokenizer_;
    tokenizer_ = nullptr;
  }
  static Tokenizer* tokenizer_;
};
Tokenizer* Llama3Tokenizer::tokenizer_ = nullptr;

TEST_F(Llama3Tokenizer, Metadata) {
  EXPECT_EQ(tokenizer_->vocab_size(), 128256);
  EXPECT_EQ(tokenizer_->bos_id(), 128000);
  EXPECT_EQ(tokenizer_->eos_id(), 128009);
  EXPECT_EQ(tokenizer_->eot_id(), 128009);
  EXPECT_TRUE(tokenizer_->adds_bos());
  EXPECT_EQ(tokenizer_->pre_tokenizer_name(), "llama3");
  EXPECT_EQ(tokenizer_->chat_template().kind, ChatTemplateKind::LLAMA3);
  EXPECT_TRUE(tokenizer_->is_special(128009));
  EXPECT_FALSE(tokenizer_->is_special(9906));
}

TEST_F(Llama3Tokenizer, GoldenCases) {
  const nlohmann::json golden = read_golden();
  ASSERT_FALSE(golden.is_discarded());
  ASSERT_GE(golden["cases"].size(), 10u);
  for (const auto& item : golden["cases"]) {
    const std::string text = item["text"];
    SCOPED_TRACE(text.substr(0, 60));
    const auto ids = tokenizer_->encode(text, false);
    EXPECT_EQ(ids, item["ids"].get<std::vector<int32_t>>());
    // HF prepends BOS even when the text starts with one; the golden file records that.
    EXPECT_EQ(tokenizer_->encode(text, true), item["ids_with_special"].get<std::vector<int32_t>>());
    EXPECT_EQ(tokenizer_->decode(ids), item["decoded"].get<std::string>());
  }
}

TEST_F(Llama3Tokenizer, GoldenChat) {
  const nlohmann::json golden = read_golden();
  const auto& chat = golden["chat"];
  std::vector<ChatMessage> messages;
  for (const auto& m : chat["messages"]) messages.push_back({m["role"], m["content"]});
  auto rendered = tokenizer_->apply_chat_template(messages, chat["add_generation_prompt"].get<bool>());
  ASSERT_TRUE(rendered.is_ok()) << rendered.status().to_string();
  EXPECT_EQ(*rendered, chat["rendered"].get<std::string>());
  auto ids = tokenizer_->encode_chat(messages, chat["add_generation_prompt"].get<bool>());
  ASSERT_TRUE(ids.is_ok());
  EXPECT_EQ(*ids, chat["ids"].get<std::vector<int32_t>>());  // exactly one BOS
  EXPECT_EQ(std::count(ids->begin(), ids->end(), tokenizer_->bos_id()), 1);
}

TEST_F(Llama3Tokenizer, PromptsGetOneBos) {
  EXPECT_EQ(tokenizer_->encode_prompt("Hello world"), (std::vector<int32_t>{128000, 9906, 1917}));
  EXPECT_EQ(tokenizer_->encode_prompt("<|begin_of_text|>Hello world"),
            (std::vector<int32_t>{128000, 9906, 1917}));
  EXPECT_EQ(tokenizer_->encode_prompt(""), (std::vector<int32_t>{128000}));
}

TEST_F(Llama3Tokenizer, RoundTripsArbitraryBytes) {
  std::string text;
  for (int i = 0; i < 2000; ++i) text += static_cast<char>((i * 7919 + 13) % 95 + 32);
  text += "\n\t日本語のテキスト — ünïcödé 🚀 <|eot_id|> tail";
  const auto ids = tokenizer_->encode(text, false);
  EXPECT_EQ(tokenizer_->decode(ids, false), text);
}

// A long English-like prompt of 500 KB must tokenize in well under a second; the bound here is generous so
// that Debug and sanitizer builds pass too, and the measured time is printed for the record.
TEST_F(Llama3Tokenizer, RoundTrips500KBOfProse) {
  const std::vector<std::string> words = {"the",       "attention", "sparse", "model",   "of",     "long",
                                          "context",   "tokens",    "1234",   "GPU",     "kernel", "index,",
                                          "(block)",   "query",     "key.",   "value\n", "über",   "naïve",
                                          "inference", "prefill",   "12.5%",  "x_y",     "it's",   "\t"};
  std::string text;
  uint32_t state = 12345;
  while (text.size() < 500 * 1000) {
    state = state * 1664525u + 1013904223u;
    text += words[(state >> 8) % words.size()];
    text += (state >> 4) % 11 == 0 ? "  " : " ";
    if ((state >> 12) % 97 == 0) text += std::to_string(state % 100000);
  }
  const auto ids = tokenizer_->encode(text, true);
  EXPECT_GT(ids.size(), text.size() / 8);
  EXPECT_EQ(tokenizer_->decode(ids), text);
}

// Random letter strings defeat the per-call cache: every word is merged from bytes.
TEST_F(Llama3Tokenizer, RoundTrips500KBOfRandomWords) {
  std::string text;
  std::mt19937 rng(777);
  while (text.size() < 500 * 1000) {
    text += ' ';
    const uint32_t length = 1 + rng() % 10;
    for (uint32_t i = 0; i < length; ++i) text += static_cast<char>('a' + rng() % 26);
    if (rng() % 13 == 0) text += ".\n";
  }
  const auto ids = tokenizer_->encode(text, false);
  EXPECT_EQ(tokenizer_->decode(ids), text);
}

}  // namespace
}  // namespace sacc
