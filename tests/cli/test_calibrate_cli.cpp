// `sacc calibrate` as a user runs it: one measured point on the CPU, stored where --attention auto reads it,
// and clear errors for what cannot be measured.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "cli/run_sacc.h"

namespace sacc {
namespace {

std::filesystem::path fresh_cache_dir(const std::string& name) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    ("sacc-calibrate-cli-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  return dir;
}

TEST(CalibrateCli, StoresTheMeasurementThatAutoThenUses) {
  const std::filesystem::path dir = fresh_cache_dir("store");
  const std::string env = "SACC_CACHE_DIR=" + dir.string();
  const test::SaccRun run = test::run_sacc_binary(
      "-q calibrate -m random:smollm2-135m --device cpu --pattern interval-slash:16,64 --max-length 1024 -r "
      "1",
      env);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("calibrate:    1024 tokens  dense"), std::string::npos) << run.output;
  std::ifstream file(dir / "calibration.json");
  ASSERT_TRUE(file.good()) << run.output;
  const nlohmann::json cache = nlohmann::json::parse(file);
  ASSERT_EQ(cache["entries"].size(), 1u);
  const nlohmann::json& entry = cache["entries"][0];
  EXPECT_EQ(entry["device"], "cpu");
  EXPECT_EQ(entry["setting"], "interval-slash:16,64");
  ASSERT_EQ(entry["points"].size(), 1u);
  EXPECT_EQ(entry["points"][0]["tokens"], 1024);
  EXPECT_GT(entry["points"][0]["dense_s"].get<double>(), 0.0);
  EXPECT_GT(entry["points"][0]["sparse_s"].get<double>(), 0.0);
  // The single point decides: sparse from 1024 tokens when it was faster there, never otherwise.
  const bool sparse_won =
      entry["points"][0]["sparse_s"].get<double>() < entry["points"][0]["dense_s"].get<double>();
  EXPECT_EQ(entry["break_even"].get<int64_t>() == 1024, sparse_won);

  // generate's auto line names the measurement.
  const test::SaccRun generate = test::run_sacc_binary(
      "generate -m random:smollm2-135m --device cpu --pattern interval-slash:16,64 --prompt-tokens 8 -n 1",
      env);
  ASSERT_EQ(generate.exit_code, 0) << generate.output;
  EXPECT_NE(generate.output.find("measured by `sacc calibrate` on cpu"), std::string::npos)
      << generate.output;
  std::filesystem::remove_all(dir);
}

TEST(CalibrateCli, RefusesWhatCannotBeMeasured) {
  const std::string env = "SACC_CACHE_DIR=" + fresh_cache_dir("refuse").string();
  test::SaccRun run =
      test::run_sacc_binary("calibrate -m random:smollm2-135m --device cpu --max-length 100", env);
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_NE(run.output.find("below 1024 tokens"), std::string::npos) << run.output;
  run = test::run_sacc_binary("calibrate -m random:smollm2-135m --device cpu --pattern nonsense:1", env);
  EXPECT_NE(run.exit_code, 0);
  EXPECT_NE(run.output.find("nonsense"), std::string::npos) << run.output;
  run = test::run_sacc_binary("calibrate -m random:smollm2-135m --device cpu -r 0", env);
  EXPECT_EQ(run.exit_code, 2) << run.output;
}

}  // namespace
}  // namespace sacc
