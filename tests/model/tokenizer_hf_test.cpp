// from_hf_json on small tokenizer.json files written by the test: the SmolLM2-style pipeline (Digits +
// ByteLevel regex), merges given as pairs, added tokens, tokenizer_config.json (add_bos_token, a named chat
// template list), and errors naming the file and entry.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "model/tokenizer.h"

namespace sacc {
namespace {

using Json = nlohmann::json;

constexpr std::string_view kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

std::string make_dir(const std::string& name, const Json& tokenizer, const Json* maybe_config) {
  const std::string dir = ::testing::TempDir() + name;
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/tokenizer.json") << tokenizer.dump();
  std::filesystem::remove(dir + "/tokenizer_config.json");
  if (maybe_config != nullptr) std::ofstream(dir + "/tokenizer_config.json") << maybe_config->dump();
  return dir;
}

// Printable ASCII plus "Ġ" (the byte-level spelling of a space) and "Ċ" (newline); a few merges.
Json smollm_style() {
  Json vocab = Json::object();
  int id = 0;
  vocab["<|endoftext|>"] = id++;
  vocab["<|im_start|>"] = id++;
  vocab["<|im_end|>"] = id++;
  for (int c = 0x21; c <= 0x7e; ++c) vocab[std::string(1, static_cast<char>(c))] = id++;
  vocab["Ġ"] = id++;
  vocab["Ċ"] = id++;
  vocab["Ġh"] = id++;
  vocab["Ġhi"] = id++;
  vocab["12"] = id++;
  Json tokenizer = {
      {"version", "1.0"},
      {"added_tokens", Json::array({{{"id", 0}, {"content", "<|endoftext|>"}, {"special", true}},
                                    {{"id", 1}, {"content", "<|im_start|>"}, {"special", true}},
                                    {{"id", 2}, {"content", "<|im_end|>"}, {"special", true}}})},
      {"normalizer", nullptr},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers",
         Json::array({{{"type", "Digits"}, {"individual_digits", true}},
                      {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}})}}},
      {"post_processor", {{"type", "ByteLevel"}}},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model",
       {{"type", "BPE"},
        {"vocab", vocab},
        {"merges",
         Json::array({Json::array({"Ġ", "h"}), Json::array({"Ġh", "i"}), Json::array({"1", "2"})})}}}};
  return tokenizer;
}

TEST(HfTokenizer, SmolLM2StylePipeline) {
  const Json config = {
      {"bos_token", "<|im_start|>"},
      {"eos_token", "<|im_end|>"},
      {"add_bos_token", true},
      {"chat_template", Json::array({{{"name", "tool_use"}, {"template", "x"}},
                                     {{"name", "default"}, {"template", "<|im_start|>..."}}})}};
  auto t = Tokenizer::from_hf_json(make_dir("hf_smol", smollm_style(), &config));
  ASSERT_TRUE(t.is_ok()) << t.status().to_string();
  EXPECT_EQ(t->pre_tokenizer_name(), "smollm");
  EXPECT_EQ(t->bos_id(), 1);
  EXPECT_EQ(t->eos_id(), 2);
  EXPECT_TRUE(t->adds_bos());
  EXPECT_EQ(t->chat_template().kind, ChatTemplateKind::CHATML);
  const int32_t hi = t->token_id(" hi"), one = t->token_id("1"), two = t->token_id("2");
  ASSERT_GE(hi, 0);
  // Digits are split one by one before BPE, so the "1 2" merge never applies.
  EXPECT_EQ(t->encode("a hi12", true), (std::vector<int32_t>{1, t->token_id("a"), hi, one, two}));
  EXPECT_EQ(t->encode("<|im_end|> hi", false), (std::vector<int32_t>{2, hi}));
  EXPECT_EQ(t->decode(t->encode("x\n hi 12!", false)), "x\n hi 12!");
}

TEST(HfTokenizer, Qwen2StyleSplitAndNfcDeclaration) {
  Json qwen = smollm_style();
  qwen["normalizer"] = {{"type", "NFC"}};
  qwen["pre_tokenizer"] = {
      {"type", "Sequence"},
      {"pretokenizers",
       Json::array({{{"type", "Split"},
                     {"pattern", {{"Regex", std::string(kQwen2Regex)}}},
                     {"behavior", "Isolated"},
                     {"invert", false}},
                    {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}})}};
  auto t = Tokenizer::from_hf_json(make_dir("hf_qwen", qwen, nullptr) + "/tokenizer.json");
  ASSERT_TRUE(t.is_ok()) << t.status().to_string();
  EXPECT_EQ(t->pre_tokenizer_name(), "qwen2");
  EXPECT_FALSE(t->adds_bos());
  EXPECT_EQ(t->bos_id(), -1);
  // Qwen2's split isolates single digits; " hi" keeps its leading space.
  EXPECT_EQ(t->encode(" hi12", true),
            (std::vector<int32_t>{t->token_id(" hi"), t->token_id("1"), t->token_id("2")}));

  Json split_removed = qwen;
  split_removed["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Removed";
  auto removed = Tokenizer::from_hf_json(make_dir("hf_removed", split_removed, nullptr));
  EXPECT_EQ(removed.status().code(), StatusCode::UNSUPPORTED);
}

TEST(HfTokenizer, FileErrors) {
  Json no_vocab = smollm_style();
  no_vocab["model"]["vocab"] = Json::object();
  auto t = Tokenizer::from_hf_json(make_dir("hf_empty", no_vocab, nullptr));
  EXPECT_EQ(t.status().code(), StatusCode::CORRUPT_DATA);
  EXPECT_NE(t.status().message().find("model.vocab"), std::string::npos);

  Json bad_merge = smollm_style();
  bad_merge["model"]["merges"].push_back("Ġhi");
  t = Tokenizer::from_hf_json(make_dir("hf_merge", bad_merge, nullptr));
  EXPECT_EQ(t.status().code(), StatusCode::CORRUPT_DATA);
  EXPECT_NE(t.status().message().find("merges[3]"), std::string::npos) << t.status().message();

  Json unigram = smollm_style();
  unigram["model"]["type"] = "Unigram";
  t = Tokenizer::from_hf_json(make_dir("hf_unigram", unigram, nullptr));
  EXPECT_EQ(t.status().code(), StatusCode::UNSUPPORTED);
  EXPECT_NE(t.status().message().find("tokenizer.json"), std::string::npos);

  const std::string dir = ::testing::TempDir() + "hf_broken";
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/tokenizer.json") << "{\"model\": ";
  t = Tokenizer::from_hf_json(dir);
  EXPECT_EQ(t.status().code(), StatusCode::CORRUPT_DATA);
  EXPECT_NE(t.status().message().find("not valid JSON"), std::string::npos);
}

}  // namespace
}  // namespace sacc
