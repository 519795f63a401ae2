// `sacc eval ruler` on the real SmolLM2-135M model that scripts/fetch_models.sh installs (skipped when
// .models/ lacks it): short prompts on the CPU (CPU prefill dominates: ~3K prompt tokens in all), the results
// files' structure, a missing gnuplot and a bad task name.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "tests/cli/run_sacc.h"

namespace {

using sacc::test::run_sacc_binary;

const std::string kModel = std::string(SACC_SOURCE_DIR) + "/.models/SmolLM2-135M-Instruct.Q4_1.gguf";

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class RulerCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(kModel))
      GTEST_SKIP() << kModel << " is absent (run scripts/fetch_models.sh)";
    dir_ = std::filesystem::temp_directory_path() /
           ("sacc_ruler_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  std::filesystem::path dir_;
};

TEST_F(RulerCli, DenseAndSparseOnTheSamePrompts) {
  const auto run = run_sacc_binary("-q eval ruler -m " + kModel +
                                   " --device cpu --lengths 400 --samples 2 --tasks niah_single,kv_retrieval "
                                   "--sparse interval-slash:64,512 --out " +
                                   dir_.string());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("ruler dense"), std::string::npos) << run.output;

  std::ifstream in(dir_ / "ruler.json");
  const nlohmann::json result = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(result.is_discarded()) << run.output;
  EXPECT_EQ(result["lengths"], nlohmann::json::array({400}));
  EXPECT_EQ(result["tasks"], nlohmann::json::array({"niah_single", "kv_retrieval"}));
  ASSERT_EQ(result["settings"].size(), 2u);
  EXPECT_EQ(result["settings"][0]["name"], "dense");
  EXPECT_EQ(result["settings"][1]["name"], "interval-slash:64,512");
  for (const auto& setting : result["settings"]) {
    ASSERT_EQ(setting["results"].size(), 2u);  // one length x two tasks
    ASSERT_EQ(setting["averages"].size(), 1u);
    const double accuracy = setting["averages"][0]["accuracy_percent"].get<double>();
    EXPECT_GE(accuracy, 0.0);
    EXPECT_LE(accuracy, 100.0);
  }
  EXPECT_FALSE(result["settings"][0]["averages"][0].contains("same_as_dense_percent"));
  EXPECT_TRUE(result["settings"][1]["averages"][0].contains("same_as_dense_percent"));
  ASSERT_EQ(result["samples"].size(), 4u);
  for (const auto& sample : result["samples"]) {
    EXPECT_LE(sample["tokens"].get<int>(), 400);
    EXPECT_GE(sample["tokens"].get<int>(), 320);
    EXPECT_FALSE(sample["expected"].empty());
    ASSERT_EQ(sample["results"].size(), 2u);
    EXPECT_EQ(sample["results"][1]["setting"], "interval-slash:64,512");
    EXPECT_TRUE(sample["results"][1]["answer"].is_string());
    EXPECT_TRUE(sample["results"][1]["score"].is_number());
  }

  const std::string md = read_text(dir_ / "ruler.md");
  EXPECT_NE(md.find("## 400 tokens"), std::string::npos) << md;
  EXPECT_NE(md.find("| task | dense | interval-slash:64,512 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| kv_retrieval |"), std::string::npos) << md;
  EXPECT_NE(md.find("| **average** |"), std::string::npos) << md;
  EXPECT_NE(md.find("| same as dense |"), std::string::npos) << md;
}

TEST_F(RulerCli, MissingGnuplotOnlyWarns) {
  // No PATH: the shell finds no gnuplot, as on a machine without it.
  const auto run =
      run_sacc_binary("-q eval ruler -m " + kModel +
                          " --device cpu --lengths 300 --samples 1 --tasks niah_single --sparse '' "
                          "--out " +
                          dir_.string(),
                      "PATH=/nonexistent");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("warning: gnuplot is not installed"), std::string::npos) << run.output;
  EXPECT_TRUE(std::filesystem::exists(dir_ / "ruler.json"));
  EXPECT_TRUE(std::filesystem::exists(dir_ / "ruler.md"));
  EXPECT_FALSE(std::filesystem::exists(dir_ / "ruler.png"));
}

TEST_F(RulerCli, CudnnSettingOnTheCpuFailsClearly) {
  const auto run =
      run_sacc_binary("-q eval ruler -m " + kModel +
                      " --device cpu --lengths 300 --samples 1 --tasks niah_single --sparse cudnn");
  EXPECT_NE(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("--attention cudnn is a GPU baseline"), std::string::npos) << run.output;
}

TEST(RulerCliErrors, UnknownTaskNameFailsWithTheValidNames) {
  // Checked before the model loads.
  const auto run =
      run_sacc_binary("-q eval ruler -m " + kModel + " --device cpu --tasks niah_single,needles");
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_NE(run.output.find("unknown RULER task 'needles'"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("common_words"), std::string::npos) << run.output;
}

}  // namespace
