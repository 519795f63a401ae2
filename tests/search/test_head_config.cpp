#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <map>

#include "attention/sparse_index.h"
#include "model/head_config.h"

namespace sacc {
namespace {

TEST(HeadConfig, ReadsMInferenceLlama31Config) {
  Result<HeadConfig> config = load_head_config(std::string(SACC_SHARED_DATA_DIR) +
                                               "/minference/Llama_3.1_8B_Instruct_128k_heads.json");
  ASSERT_TRUE(config.is_ok()) << config.status().to_string();
  ASSERT_TRUE(config->check_fits(32, 32).is_ok());
  std::map<std::pair<int64_t, int64_t>, int> budgets;
  for (const auto& layer : config->layers) {
    for (const HeadChoiceRecord& head : layer) {
      ASSERT_EQ(head.pattern.kind, PatternKind::INTERVAL_SLASH);
      ++budgets[{head.pattern.vertical, head.pattern.slash}];
    }
  }
  // The budget mix shared/data/README.md lists.
  EXPECT_EQ((budgets[{1000, 6096}]), 279);
  EXPECT_EQ((budgets[{100, 800}]), 297);
  EXPECT_EQ((budgets[{30, 800}]), 175);
  EXPECT_EQ((budgets[{3500, 100}]), 149);
  EXPECT_EQ((budgets[{500, 700}]), 120);
  EXPECT_EQ((budgets[{100, 750}]), 4);
  EXPECT_FALSE(config->check_fits(16, 32).is_ok());
  EXPECT_FALSE(config->check_fits(32, 8).is_ok());
}

TEST(HeadConfig, OwnFormatRoundTrips) {
  HeadConfig config;
  config.model = "random:smollm2-135m";
  config.target = "interval-slash:1000,6096";
  config.estimation.last_queries = 128;
  config.estimation.local_diagonals = 1024;
  config.layers = {{{parse_pattern("triangular:64,2048").value(), 0.01, 0.97, 0.2},
                    {parse_pattern("block-cluster:16@0.9").value(), 0.02, -1.0, 0.3}}};
  const std::string path = (std::filesystem::temp_directory_path() / "sacc_head_config_test.json").string();
  ASSERT_TRUE(save_head_config(config, path).is_ok());
  Result<HeadConfig> back = load_head_config(path);
  std::remove(path.c_str());
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  ASSERT_EQ(back->layers.size(), 1u);
  ASSERT_EQ(back->layers[0].size(), 2u);
  EXPECT_EQ(back->layers[0][0].pattern, config.layers[0][0].pattern);
  EXPECT_EQ(back->layers[0][1].pattern, config.layers[0][1].pattern);
  EXPECT_DOUBLE_EQ(back->layers[0][0].error, 0.01);
  EXPECT_DOUBLE_EQ(back->layers[0][1].recall, -1.0);
  EXPECT_EQ(back->layer_patterns(0).heads.size(), 2u);
  // The estimation settings travel with the file and reach the planner.
  EXPECT_EQ(back->layer_patterns(0).estimation.last_queries, 128);
  EXPECT_EQ(back->layer_patterns(0).estimation.local_diagonals, 1024);
  EXPECT_EQ(back->layer_patterns(0).estimation.sink_keys, EstimationConfig{}.sink_keys);
}

TEST(HeadConfig, OutOfRangeNumbersAreCorruptData) {
  // Found by fuzz_head_config: a 120-digit "block_k" parsed as a float and was cast to int.
  const std::string head = R"({"format": "sparseaccelerate.head-config", "version": 1, "layers": [], )";
  for (const char* field :
       {R"("block_k": 3333333333333333333333333333333333333333333333333333333)", R"("block_q": 128.5)",
        R"("last_queries": -1)", R"("version": 1e300)", R"("local_diagonals": "100")"}) {
    Result<HeadConfig> parsed = parse_head_config(head + field + "}", "fuzz.json");
    ASSERT_FALSE(parsed.is_ok()) << field;
    EXPECT_EQ(parsed.status().code(), StatusCode::CORRUPT_DATA) << field;
  }
}

TEST(HeadConfig, BadFilesGiveClearErrors) {
  EXPECT_EQ(parse_head_config("{not json", "x.json").status().code(), StatusCode::CORRUPT_DATA);
  EXPECT_EQ(parse_head_config("{\"format\": \"other\"}", "x.json").status().code(), StatusCode::CORRUPT_DATA);
  EXPECT_EQ(
      parse_head_config(R"({"format": "sparseaccelerate.head-config", "version": 9, "layers": []})", "x.json")
          .status()
          .code(),
      StatusCode::UNSUPPORTED);
  Result<HeadConfig> bad_pattern = parse_head_config(
      R"({"format": "sparseaccelerate.head-config", "version": 1, "layers": [[{"pattern": "zigzag:3"}]]})",
      "x.json");
  ASSERT_FALSE(bad_pattern.is_ok());
  EXPECT_NE(bad_pattern.status().message().find("layer 0 head 0"), std::string::npos);
  EXPECT_FALSE(parse_head_config(R"([{"0": ["spiral", 1, 2, 0.5]}])", "m.json").is_ok());
  EXPECT_EQ(load_head_config("/nonexistent/heads.json").status().code(), StatusCode::NOT_FOUND);
}

// A config built for another tile (the old search default Bq = 64) cannot run on the kernels: rejected at
// load with both tiles named; the kernel tile itself loads.
TEST(HeadConfig, RejectsConfigsBuiltForAnotherTile) {
  const std::string head = R"({"format": "sparseaccelerate.head-config", "version": 1, )";
  const std::string layers = R"("layers": [[{"pattern": "triangular:64,512"}]]})";
  Result<HeadConfig> other = parse_head_config(head + R"("block_q": 64, "block_k": 64, )" + layers, "h.json");
  ASSERT_FALSE(other.is_ok());
  EXPECT_EQ(other.status().code(), StatusCode::INVALID_ARGUMENT);
  const std::string message = other.status().message();
  EXPECT_NE(message.find("h.json"), std::string::npos) << message;
  EXPECT_NE(message.find("Bq=64 Bk=64"), std::string::npos) << message;
  EXPECT_NE(message.find(fmt::format("Bq={} Bk={}", kTileBlockQ, kTileBlockK)), std::string::npos) << message;
  const std::string tile = fmt::format(R"("block_q": {}, "block_k": {}, )", kTileBlockQ, kTileBlockK);
  Result<HeadConfig> kernel = parse_head_config(head + tile + layers, "h.json");
  ASSERT_TRUE(kernel.is_ok()) << kernel.status().to_string();
  EXPECT_EQ(kernel->block_q, kTileBlockQ);
  EXPECT_EQ(kernel->block_k, kTileBlockK);
  Result<HeadConfig> defaulted = parse_head_config(head + layers, "h.json");
  ASSERT_TRUE(defaulted.is_ok()) << defaulted.status().to_string();
}

TEST(KernelTile, CheckNamesBothTiles) {
  EXPECT_TRUE(check_kernel_tile(kTileBlockQ, kTileBlockK, "x").is_ok());
  const Status bad = check_kernel_tile(kTileBlockQ, 2 * kTileBlockK, "index");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.message().find("index: built for tile"), std::string::npos) << bad.message();
}

}  // namespace
}  // namespace sacc
