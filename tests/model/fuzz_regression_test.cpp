// Inputs that crashed a parser under fuzz/ (scripts/fuzz.sh), kept as regression tests: a value of an
// unexpected JSON type escaped as a nlohmann::json exception (abort) or was cast out of range (UBSan, which
// scripts/sanitize.sh runs these tests under); each must now be CORRUPT_DATA naming the file.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>

#include "model/head_config.h"
#include "model/minference_config.h"
#include "model/model_config.h"
#include "model/tokenizer.h"

namespace sacc {
namespace {

void expect_corrupt(const Status& status, const std::string& origin) {
  EXPECT_EQ(status.code(), StatusCode::CORRUPT_DATA) << status.to_string();
  EXPECT_NE(status.message().find(origin), std::string::npos) << status.to_string();
}

// fuzz_model_config: "model_type": 2.
TEST(FuzzRegressions, ConfigJsonWithNumericModelType) {
  const nlohmann::json json = nlohmann::json::parse(
      R"({"architectures": ["LlamaForCausalLM"], "model_type":2, "num_attention_heads": 32,)"
      R"( "num_key_value_heads": 8, "intermediate_size": 1400000.0, "rms_norm_eps": 1e-05,)"
      R"( "max_position_embeddings": 131072, "tie_word_embeddings": false, "bos_token_id": 128000})");
  const Result<ModelConfig> config = model_config_from_hf_json(json, "config.json");
  ASSERT_FALSE(config.is_ok());
  expect_corrupt(config.status(), "config.json");
}

// fuzz_model_config (out of memory): "head_dim": 6400000000000000000 was truncated to an int of 1.65e9, which
// validate() accepted and rope_inverse_frequencies() tried to allocate a 6.6 GB table for. Sizes past the
// limits, and counts that do not fit an int, are errors now.
TEST(FuzzRegressions, ConfigJsonWithHugeHeadDim) {
  const std::string base =
      R"({"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 816,)"
      R"( "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_v": 2, "intermediate_size": 4864,)"
      R"( "vocab_size": 151936, "rope_theta": 1000000.0, "rms_norm_eps": 4e-00,)"
      R"( "max_pie_word_embeddings!": true, "bos_token_d": 151645, "head_dim": )";
  for (const std::string head_dim : {"6400000000000000000", "2000000000", "4098"}) {
    const Result<ModelConfig> config = model_config_from_hf_text(base + head_dim + "}", "config.json");
    ASSERT_FALSE(config.is_ok()) << head_dim;
    expect_corrupt(config.status(), "config.json");
  }
  EXPECT_TRUE(model_config_from_hf_text(base + "64}", "config.json").is_ok());
  ModelConfig wide = *builtin_model_config("smollm2-135m");
  wide.vocab = kMaxModelWidth + 1;
  EXPECT_EQ(wide.validate().code(), StatusCode::CORRUPT_DATA);
}

// A head record whose "error" is a string.
TEST(FuzzRegressions, HeadConfigWithStringMetric) {
  const Result<HeadConfig> config = parse_head_config(
      R"({"format": "sparseaccelerate.head-config", "version": 1, "layers": [[{"pattern": "dense", "error": "x"}]]})",
      "heads.json");
  ASSERT_FALSE(config.is_ok());
  expect_corrupt(config.status(), "heads.json");
}

// fuzz_tokenizer_json: an added token whose id is a float; -9.2e21 was cast to int64_t (UBSan
// float-cast-overflow) and 1.5 silently became id 1.
TEST(FuzzRegressions, TokenizerJsonWithFloatAddedTokenId) {
  for (const std::string id : {"-9.22337e+21", "1.5", "\"1\""}) {
    const std::string json = R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": []},)"
                             R"( "added_tokens": [{"id": )" +
                             id + R"(, "content": "<s>", "special": true}]})";
    const Result<Tokenizer> tokenizer = Tokenizer::from_hf_json_text(json, "", "tokenizer.json");
    ASSERT_FALSE(tokenizer.is_ok()) << id;
    expect_corrupt(tokenizer.status(), "tokenizer.json");
  }
}

}  // namespace
}  // namespace sacc
