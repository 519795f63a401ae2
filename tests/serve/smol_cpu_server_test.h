// A fixture that starts `sacc serve` on the real SmolLM2-135M GGUF with the CPU backend before each test and
// stops it (SIGTERM, exit 0) after; skipped when scripts/fetch_models.sh has not installed the model.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "serve/serve_process.h"

namespace sacc::test {

inline const std::string kSmolModel =
    std::string(SACC_SOURCE_DIR) + "/.models/SmolLM2-135M-Instruct.Q4_1.gguf";
inline const std::string kSmolModelId = "SmolLM2-135M-Instruct.Q4_1";

class SmolCpuServerTest : public ::testing::Test {
 protected:
  // The server's log goes to `log_name` in the temp directory.
  explicit SmolCpuServerTest(const std::string& log_name)
      : log_path_((std::filesystem::temp_directory_path() / log_name).string()) {}

  void SetUp() override {
    if (!std::filesystem::exists(kSmolModel))
      GTEST_SKIP() << kSmolModel << " is absent (run scripts/fetch_models.sh)";
    ASSERT_TRUE(process_.start({"-m", kSmolModel, "--device", "cpu"}, log_path_));
    ASSERT_TRUE(process_.wait_healthy()) << "see " << log_path_;
  }
  void TearDown() override {
    if (std::filesystem::exists(kSmolModel)) {
      EXPECT_EQ(process_.stop(), 0);
    }
  }

  std::string log_path_;
  ServeProcess process_;
};

}  // namespace sacc::test
