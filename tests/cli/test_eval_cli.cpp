// `sacc eval ppl` and `sacc eval niah` on the real SmolLM2-135M model that scripts/fetch_models.sh installs
// (skipped when .models/ lacks it): small cases that run in CI on the CPU.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

namespace {

const std::string kModel = std::string(SACC_SOURCE_DIR) + "/.models/SmolLM2-135M-Instruct.Q4_1.gguf";

// Runs the sacc binary; returns its exit code and fills `output` with stdout + stderr.
int run_sacc(const std::string& arguments, std::string& output) {
  const std::string command = std::string(SACC_SACC_BINARY) + " -q " + arguments + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return -1;
  char buffer[4096];
  while (size_t got = fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, got);
  const int status = pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

nlohmann::json read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
}

class RealModelEval : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(kModel))
      GTEST_SKIP() << kModel << " is absent (run scripts/fetch_models.sh)";
    dir_ = std::filesystem::temp_directory_path() /
           ("sacc_eval_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  std::filesystem::path dir_;
};

TEST_F(RealModelEval, PerplexitySparseCloseToDense) {
  std::string output;
  const std::filesystem::path out = dir_ / "ppl.json";
  ASSERT_EQ(run_sacc("eval ppl -m " + kModel +
                         " --device cpu --length 768 --last 256 --sparse "
                         "'interval-slash:64,512;block-cluster:2' --out " +
                         out.string(),
                     output),
            0)
      << output;
  const nlohmann::json result = read_json(out);
  ASSERT_FALSE(result.is_discarded()) << output;
  const double dense = result["dense_perplexity"].get<double>();
  EXPECT_GT(dense, 1.0);
  EXPECT_LT(dense, 200.0) << "a trained model reads English prose far better than this";
  ASSERT_EQ(result["settings"].size(), 2u);
  // A generous budget at this length keeps perplexity within 1 % of dense; two key blocks per query block do
  // not.
  EXPECT_LT(std::abs(result["settings"][0]["delta_percent"].get<double>()), 1.0) << output;
  EXPECT_GT(result["settings"][1]["max_abs_delta_logit"].get<double>(),
            result["settings"][0]["max_abs_delta_logit"].get<double>())
      << output;
}

TEST_F(RealModelEval, NeedleGridSparseLosesNoCellDensePasses) {
  std::string output;
  ASSERT_EQ(
      run_sacc("eval niah -m " + kModel +
                   " --device cpu --lengths 300 --sparse 'interval-slash:64,512' --out " + dir_.string(),
               output),
      0)
      << output;
  const nlohmann::json result = read_json(dir_ / "niah.json");
  ASSERT_FALSE(result.is_discarded()) << output;
  ASSERT_EQ(result["grids"].size(), 2u);
  EXPECT_EQ(result["grids"][0]["total"].get<int>(), 11);
  EXPECT_EQ(result["grids"][1]["scores"][0].size(), 11u);
  EXPECT_EQ(result["grids"][1]["cells_lost_vs_dense"].get<int>(), 0) << output;
}

// --device on recall: the Q/K/V come from a prefill on that device; on the CPU, every requested layer is
// measured for every setting; a triangular window that skips keys keeps most but not all of the attention
// (512 tokens: four query blocks of the kernel tile, so the window leaves key blocks out); the oracle at 0.9
// covers at least 0.9 of every query block's attention with fewer key blocks than dense.
TEST_F(RealModelEval, RecallOnTheRequestedDevice) {
  std::string output;
  const std::filesystem::path out = dir_ / "recall.json";
  ASSERT_EQ(
      run_sacc("eval recall -m " + kModel +
                   " --device cpu --length 512 --layers 0,5 --sparse 'triangular:64,64;oracle@0.9' --out " +
                   out.string(),
               output),
      0)
      << output;
  const nlohmann::json result = read_json(out);
  ASSERT_FALSE(result.is_discarded()) << output;
  ASSERT_EQ(result["settings"].size(), 2u);
  ASSERT_EQ(result["settings"][0]["layers"].size(), 2u);
  EXPECT_EQ(result["settings"][0]["layers"][1]["layer"].get<int>(), 5);
  const double recall = result["settings"][0]["mean_recall"].get<double>();
  EXPECT_GT(recall, 0.5);
  EXPECT_LT(recall, 1.0);
  for (const nlohmann::json& layer : result["settings"][1]["layers"]) {
    for (const nlohmann::json& head : layer["recall_per_head"]) EXPECT_GE(head.get<double>(), 0.9 - 1e-4);
    EXPECT_LT(layer["density"].get<double>(), 1.0);
  }
}

// A malformed setting is refused before the model loads, naming the form it needs.
TEST(EvalCli, RecallRejectsABadOracleRecall) {
  for (const char* setting : {"oracle@1.5", "oracle@", "oracle@0.9x", "interval-slash:oops"}) {
    std::string output;
    EXPECT_NE(
        run_sacc(std::string("eval recall -m /nonexistent/model.gguf --sparse '") + setting + "'", output),
        0);
    EXPECT_NE(output.find(setting), std::string::npos) << output;
    EXPECT_EQ(output.find("nonexistent"), std::string::npos) << output;
  }
}

// A GPU that is not there is named before any model is loaded, with the way out.
TEST(EvalCli, MissingGpuIsAClearError) {
  for (const char* command : {"recall", "ppl"}) {
    std::string output;
    EXPECT_NE(run_sacc(std::string("eval ") + command + " -m random:smollm2-135m --device cuda:99", output),
              0);
    EXPECT_NE(output.find("--device cuda:99"), std::string::npos) << output;
    EXPECT_NE(output.find("use --device cpu"), std::string::npos) << output;
  }
}

TEST(EvalCli, RejectsModelsWithoutTokenizerAndBadLengths) {
  std::string output;
  EXPECT_NE(run_sacc("eval ppl -m random:smollm2-135m --device cpu --length 64", output), 0);
  EXPECT_NE(output.find("tokenizer"), std::string::npos) << output;
  output.clear();
  EXPECT_NE(run_sacc("eval niah -m /nonexistent/model.gguf", output), 0);
  EXPECT_NE(output.find("error"), std::string::npos) << output;
}

}  // namespace
