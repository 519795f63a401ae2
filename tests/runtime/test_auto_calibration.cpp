// The measured break-even of --attention auto: the decision rule over measured points, the cache file
// (round trip, replacement, corrupt files) and configure_attention() preferring a measurement to the cost
// model.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>

#include "model/model_config.h"
#include "runtime/attention_policy.h"
#include "runtime/auto_calibration.h"

namespace sacc {
namespace {

// Every test of this binary reads and writes a cache of its own, never the user's ~/.cache.
const bool kPrivateCache = [] {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("sacc-calibration-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  ::setenv("SACC_CACHE_DIR", dir.c_str(), 1);
  return true;
}();

class CalibrationCache : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(kPrivateCache);
    std::filesystem::remove(calibration_cache_path());
  }
};

constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

TEST(AutoCalibration, BreakEvenIsWhereSparseWinsFromThenOn) {
  EXPECT_EQ(break_even_from_points({{1024, 1.0, 2.0}, {2048, 2.0, 1.9}, {4096, 4.0, 3.0}}), 2048);
  // A win below a longer loss does not count: the break-even starts after the last loss.
  EXPECT_EQ(break_even_from_points({{1024, 1.0, 0.9}, {2048, 2.0, 2.1}, {4096, 4.0, 3.0}}), 4096);
  EXPECT_EQ(break_even_from_points({{1024, 1.0, 0.5}, {2048, 2.0, 1.0}}), 1024);
  // Never faster, or only equal: dense.
  EXPECT_EQ(break_even_from_points({{1024, 1.0, 1.0}, {2048, 2.0, 2.5}}), kNever);
  EXPECT_EQ(break_even_from_points({}), kNever);
}

// A calibration where sparse never won stores an unreachable break-even: reports say "dense", not a number.
TEST(AutoCalibration, DescriptionSaysDenseWhenSparseNeverWins) {
  BackendOptions options;
  options.auto_basis = "a test";
  options.sparse_min_length = kNever;
  EXPECT_EQ(describe_auto_choice(options, 8192),
            "dense prefill at every length up to 8192 tokens (break-even from a test)");
  options.sparse_min_length = 12288;
  EXPECT_EQ(describe_auto_choice(options, 32768),
            "sparse prefill from 12288 tokens (break-even from a test)");
  EXPECT_EQ(describe_auto_choice(options, 8192),
            "dense prefill at every length up to 8192 tokens (break-even from a test)");
}

TEST(AutoCalibration, KeyNamesDeviceShapeAndSetting) {
  const ModelConfig c = *builtin_model_config("llama-3.1-8b");
  const CalibrationKey key = calibration_key(c, Device::cpu(), "interval-slash:64,512");
  EXPECT_EQ(key.device, "cpu");
  EXPECT_EQ(key.shape, "layers 32, heads 32/8, head dim 128, hidden 4096");
  EXPECT_NE(key.id(), calibration_key(c, Device::cpu(), "interval-slash:64,1024").id());
}

// The shipped break-even for `key`, or kAbsent when none applies.
constexpr int64_t kAbsent = -1;
int64_t shipped_at(const CalibrationKey& key) {
  const std::optional<ShippedBreakEven> shipped = shipped_break_even(key);
  return shipped ? shipped->break_even : kAbsent;
}

TEST(AutoCalibration, ShippedMeasurementsMatchOnlyTheirExactKey) {
  // No architecture: exact keys only.
  const CalibrationKey qwen_h200{"NVIDIA H200", "layers 24, heads 14/2, head dim 64, hidden 896",
                                 "interval-slash:1000,6096@0.95", ""};
  EXPECT_EQ(shipped_at(qwen_h200), 12800);
  EXPECT_TRUE(shipped_break_even(qwen_h200)->this_device);
  CalibrationKey default_h200 = qwen_h200;
  default_h200.setting = kDefaultSparsePattern;
  EXPECT_EQ(shipped_at(default_h200), 12288);
  // The H100 (80GB HBM3): the default setting on Qwen's shape only.
  CalibrationKey default_h100 = default_h200;
  default_h100.device = "NVIDIA H100 80GB HBM3";
  EXPECT_EQ(shipped_at(default_h100), 12800);
  default_h100.setting = "interval-slash:1000,6096@0.95";
  EXPECT_EQ(shipped_at(default_h100), kAbsent);
  // SmolLM2's shape: sparse never won within its window, so the shipped break-even is unreachable.
  CalibrationKey smollm2_h200 = default_h200;
  smollm2_h200.shape = "layers 30, heads 9/3, head dim 64, hidden 576";
  EXPECT_EQ(shipped_at(smollm2_h200), kNever);
  // The CPU: the default setting on both real models' shapes, not another setting.
  CalibrationKey qwen_cpu = default_h200;
  qwen_cpu.device = "cpu";
  EXPECT_EQ(shipped_at(qwen_cpu), 3072);
  CalibrationKey smollm2_cpu = smollm2_h200;
  smollm2_cpu.device = "cpu";
  EXPECT_EQ(shipped_at(smollm2_cpu), 3072);
  CalibrationKey other = qwen_h200;
  other.device = "cpu";
  EXPECT_EQ(shipped_at(other), kAbsent);
  other = qwen_h200;
  other.setting = "interval-slash:1000,6096@0.9";
  EXPECT_EQ(shipped_at(other), kAbsent);
}

// For a GPU the project did not measure, the shipped measurements of its architecture stand in: the largest
// break-even among them, naming where it was measured; another architecture, or a key without one, gets none.
TEST(AutoCalibration, AnotherGpuOfTheSameArchitectureStandsIn) {
  CalibrationKey gh200{"NVIDIA GH200 480GB", "layers 24, heads 14/2, head dim 64, hidden 896",
                       kDefaultSparsePattern, "sm_90"};
  const std::optional<ShippedBreakEven> hopper = shipped_break_even(gh200);
  ASSERT_TRUE(hopper.has_value());
  EXPECT_EQ(hopper->break_even, 12800);  // the H100's, the larger of the H100's and the H200's
  EXPECT_EQ(hopper->device, "NVIDIA H100 80GB HBM3");
  EXPECT_FALSE(hopper->this_device);
  // SmolLM2's shape on Hopper: only the H200's "never".
  CalibrationKey smollm2 = gh200;
  smollm2.shape = "layers 30, heads 9/3, head dim 64, hidden 576";
  EXPECT_EQ(shipped_at(smollm2), kNever);
  CalibrationKey ampere = gh200;
  ampere.device = "NVIDIA A100-SXM4-80GB";
  ampere.arch = "sm_80";
  EXPECT_EQ(shipped_at(ampere), kAbsent);
  CalibrationKey unknown = gh200;
  unknown.arch.clear();
  EXPECT_EQ(shipped_at(unknown), kAbsent);
}

TEST_F(CalibrationCache, StoresFindsAndReplaces) {
  const ModelConfig c = *builtin_model_config("smollm2-135m");
  Calibration first;
  first.key = calibration_key(c, Device::cpu(), "interval-slash:64,512");
  first.points = {{1024, 0.1, 0.2}, {2048, 0.3, 0.25}};
  first.break_even = break_even_from_points(first.points);
  ASSERT_TRUE(store_calibration(first).is_ok());
  Calibration other = first;
  other.key.setting = "block-cluster:8";
  other.break_even = 4096;
  ASSERT_TRUE(store_calibration(other).is_ok());
  first.break_even = 1536;  // measured again
  ASSERT_TRUE(store_calibration(first).is_ok());

  Result<std::optional<Calibration>> found = find_calibration(first.key);
  ASSERT_TRUE(found.is_ok()) << found.status().to_string();
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->break_even, 1536);
  ASSERT_EQ((*found)->points.size(), 2u);
  EXPECT_DOUBLE_EQ((*found)->points[1].sparse_seconds, 0.25);
  found = find_calibration(other.key);
  ASSERT_TRUE(found.is_ok() && found->has_value());
  EXPECT_EQ((*found)->break_even, 4096);
  CalibrationKey missing = first.key;
  missing.device = "another device";
  found = find_calibration(missing);
  ASSERT_TRUE(found.is_ok());
  EXPECT_FALSE(found->has_value());
}

TEST_F(CalibrationCache, CorruptCacheIsAnErrorNamingTheFile) {
  for (const char* text :
       {"{not json", R"({"version": 99, "entries": []})", R"({"version": 1, "entries": [{}]})"}) {
    std::filesystem::create_directories(std::filesystem::path(calibration_cache_path()).parent_path());
    std::ofstream(calibration_cache_path()) << text;
    const ModelConfig c = *builtin_model_config("smollm2-135m");
    Result<std::optional<Calibration>> found = find_calibration(calibration_key(c, Device::cpu(), "dense"));
    ASSERT_FALSE(found.is_ok()) << text;
    EXPECT_EQ(found.status().code(), StatusCode::CORRUPT_DATA);
    EXPECT_NE(found.status().message().find("calibration.json"), std::string::npos);
  }
}

TEST_F(CalibrationCache, AutoPrefersTheMeasurementToTheCostModel) {
  const ModelConfig c = *builtin_model_config("llama-3.1-8b");
  BackendOptions options;
  ASSERT_TRUE(configure_attention(c, AttentionMode::AUTO, "interval-slash:64,512", "", options).is_ok());
  const int64_t modelled = options.sparse_min_length;
  EXPECT_NE(options.auto_basis.find("cost model"), std::string::npos) << options.auto_basis;

  Calibration measured;
  measured.key = calibration_key(c, options.device, "interval-slash:64,512");
  measured.points = {{1024, 0.01, 0.02}, {2048, 0.02, 0.015}};
  measured.break_even = break_even_from_points(measured.points);
  ASSERT_NE(measured.break_even, modelled);
  ASSERT_TRUE(store_calibration(measured).is_ok());
  ASSERT_TRUE(configure_attention(c, AttentionMode::AUTO, "interval-slash:64,512", "", options).is_ok());
  EXPECT_EQ(options.sparse_min_length, 2048);
  EXPECT_NE(options.auto_basis.find("sacc calibrate"), std::string::npos) << options.auto_basis;
  // Another setting has no measurement: the cost model again.
  ASSERT_TRUE(configure_attention(c, AttentionMode::AUTO, "interval-slash:64,1024", "", options).is_ok());
  EXPECT_NE(options.auto_basis.find("cost model"), std::string::npos);
  // A corrupt cache warns and falls back; it never stops a run.
  std::ofstream(calibration_cache_path()) << "{broken";
  ASSERT_TRUE(configure_attention(c, AttentionMode::AUTO, "interval-slash:64,512", "", options).is_ok());
  EXPECT_EQ(options.sparse_min_length, modelled);
}

}  // namespace
}  // namespace sacc
