// The MInference per-head config reader (src/attention/minference_config.h): the shipped Llama-3.1-8B file
// and malformed inputs. Host-only logic; it lives with the plan tests because plan_bench and the runtime feed
// its output to plan().
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "model/minference_config.h"

namespace sacc {
namespace {

TEST(MinferenceConfig, ReadsTheLlama31Mix) {
  const std::string path =
      std::string(SACC_SHARED_DATA_DIR) + "/minference/Llama_3.1_8B_Instruct_128k_heads.json";
  Result<MinferenceConfig> config = load_minference_config(path);
  if (!config.is_ok() && config.status().code() == StatusCode::NOT_FOUND) GTEST_SKIP() << "no " << path;
  ASSERT_TRUE(config.is_ok()) << config.status().to_string();
  ASSERT_EQ(config->size(), 32u);
  std::map<std::pair<int64_t, int64_t>, int> budgets;
  for (size_t layer = 0; layer < config->size(); ++layer) {
    ASSERT_EQ((*config)[layer].size(), 32u);
    for (const MinferenceHead& head : (*config)[layer]) {
      ASSERT_EQ(head.spec.kind, PatternKind::INTERVAL_SLASH);
      ++budgets[{head.spec.vertical, head.spec.slash}];
    }
  }
  // The six budget pairs of the file, with their head counts.
  const std::map<std::pair<int64_t, int64_t>, int> expected{{{100, 800}, 297}, {{1000, 6096}, 279},
                                                            {{30, 800}, 175},  {{3500, 100}, 149},
                                                            {{500, 700}, 120}, {{100, 750}, 4}};
  EXPECT_EQ(budgets, expected);
  EXPECT_EQ(layer_patterns(*config, 0).size(), 32u);
}

TEST(MinferenceConfig, MapsTheOtherPatternTypes) {
  Result<MinferenceConfig> config = parse_minference_config(
      R"([{"1": ["stream_llm", 64, 1024, 0.5], "0": ["block_sparse", 12, 0, 0.7]}])", "inline");
  ASSERT_TRUE(config.is_ok()) << config.status().to_string();
  const std::vector<PatternSpec> specs = layer_patterns(*config, 0);
  ASSERT_EQ(specs.size(), 2u);
  EXPECT_EQ(specs[0].kind, PatternKind::BLOCK_CLUSTER);
  EXPECT_EQ(specs[0].blocks, 12);
  EXPECT_EQ(specs[1].kind, PatternKind::TRIANGULAR);
  EXPECT_EQ(specs[1].sink, 64);
  EXPECT_EQ(specs[1].window, 1024);
  EXPECT_DOUBLE_EQ((*config)[0][1].score, 0.5);
}

TEST(MinferenceConfig, RejectsMalformedInput) {
  for (const char* text : {
           "not json", "[]",
           R"([{"0": ["vertical_and_slash", 10]}])",          // too short
           R"([{"0": ["dilated", 1, 2, 0.1]}])",              // unknown type
           R"([{"1": ["vertical_and_slash", 1, 2, 0.1]}])",   // head id out of range
           R"([{"0": ["vertical_and_slash", -1, 2, 0.1]}])",  // negative budget
           R"([{"0": ["vertical_and_slash", 1, 2, 0]}, {"0": ["vertical_and_slash", 1, 2, 0],
               "1": ["vertical_and_slash", 1, 2, 0]}])",      // head counts differ
       }) {
    Result<MinferenceConfig> config = parse_minference_config(text, "bad.json");
    ASSERT_FALSE(config.is_ok()) << text;
    EXPECT_EQ(config.status().code(), StatusCode::CORRUPT_DATA) << text;
    EXPECT_NE(config.status().message().find("bad.json"), std::string::npos) << config.status().message();
  }
  EXPECT_EQ(load_minference_config("/nonexistent/heads.json").status().code(), StatusCode::NOT_FOUND);
}

}  // namespace
}  // namespace sacc
