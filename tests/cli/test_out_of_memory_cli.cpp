// Host out of memory through the sacc binary: `sacc generate` under a lowered address-space limit (ulimit -v,
// set by the shell before exec) exits with code 3 and a message naming what failed to allocate and the run's
// memory plan, never a crash. Real SmolLM2-135M (skipped when scripts/fetch_models.sh has not fetched it) and
// a random: model. The limits leave the loaded model room and the failing allocation none, with margins of
// hundreds of MiB either way; `timeout` only keeps a broken build from hanging the suite.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "address_sanitizer.h"
#include "cli/run_sacc.h"

namespace sacc {
namespace {

const std::string kModel = std::string(SACC_SOURCE_DIR) + "/.models/SmolLM2-135M-Instruct.Q4_1.gguf";
constexpr uint64_t kGiB = 1ull << 30;

// MemAvailable: the plan is checked against it before anything is allocated, so a machine with less memory
// than the run plans would refuse it up front instead of reaching the allocation under test.
uint64_t mem_available() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  uint64_t kib = 0;
  std::string unit;
  while (in >> key >> kib >> unit)
    if (key == "MemAvailable:") return kib * 1024;
  return 0;
}

// `sacc <arguments>` with its address space capped at `limit_bytes`, two threads (thread stacks and malloc
// arenas are address space too) and no progress output.
test::SaccRun run_capped(uint64_t limit_bytes, const std::string& arguments) {
  const std::string prefix =
      "ulimit -v " + std::to_string(limit_bytes / 1024) + " && OPENBLAS_NUM_THREADS=1 timeout 600";
  return test::run_sacc_binary("-q " + arguments + " --threads 2", prefix);
}

void expect_clean_oom(const test::SaccRun& run, const std::string& what) {
  EXPECT_EQ(run.exit_code, 3) << "exit 3 is out of memory; -1 a signal (crash)\n" << run.output;
  EXPECT_NE(run.output.find("error: out of memory: " + what), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("cannot allocate"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("memory plan for"), std::string::npos) << run.output;
  for (const char* part : {"weights", "KV cache", "workspace", "available"})
    EXPECT_NE(run.output.find(part), std::string::npos) << part << "\n" << run.output;
  EXPECT_EQ(run.output.find("terminate called"), std::string::npos) << run.output;
}

class OutOfMemoryCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (test::kUnderAddressSanitizer) GTEST_SKIP() << "ASan's shadow memory does not fit under ulimit -v";
  }
  void require(uint64_t planned_bytes) {
    if (mem_available() < planned_bytes + kGiB)
      GTEST_SKIP() << "the run plans more than this machine has available";
  }
  void require_model() {
    if (!std::filesystem::exists(kModel))
      GTEST_SKIP() << kModel << " is absent (run scripts/fetch_models.sh)";
  }
};

// Decode positions need the KV cache: 120000 of them are 2.47 GiB for SmolLM2 (23040 bytes a position), past
// a 1.4 GiB address space that holds the mapped model (92 MiB) and the process (~0.3 GiB) easily.
TEST_F(OutOfMemoryCli, DecodeKvCacheOnHost) {
  require_model();
  require(4 * kGiB);
  const test::SaccRun run = run_capped(
      1400ull << 20, "generate -m " + kModel + " --device cpu -p hello -n 120000 --max-context 131072");
  expect_clean_oom(run, "KV cache for 120000 tokens");
}

// The KV cache of a 60000-token prompt (1.29 GiB) fits a 2.2 GiB address space; the prefill activations of
// the whole prompt at once (--chunk 60000: another 1.29 GiB) then do not.
TEST_F(OutOfMemoryCli, PrefillWorkspaceOnHost) {
  require_model();
  require(4 * kGiB);
  const test::SaccRun run =
      run_capped(2200ull << 20, "generate -m " + kModel +
                                    " --device cpu --prompt-tokens 60000 -n 1 --chunk 60000 --attention dense"
                                    " --max-context 131072");
  expect_clean_oom(run, "prefill workspace for 60000 tokens");
}

// A random: Llama-3.2-1B has no file to map: the CPU backend holds its 1.24 B weights as fp32 (4.6 GiB).
TEST_F(OutOfMemoryCli, ModelWeightsOnHost) {
  require(6 * kGiB);
  const test::SaccRun run =
      run_capped(1400ull << 20, "generate -m random:llama-3.2-1b --device cpu -p hello -n 1");
  expect_clean_oom(run, "model weights");
}

// Refused up front: the plan does not fit the --budget, so nothing is allocated; the same message shape.
TEST(OutOfMemoryPlanCli, PlanOverBudgetIsRefusedWithThePlan) {
  if (!std::filesystem::exists(kModel)) GTEST_SKIP() << kModel << " is absent (run scripts/fetch_models.sh)";
  const test::SaccRun run = test::run_sacc_binary("-q generate -m " + kModel +
                                                  " --device cpu -p hello -n 4 --budget 10MiB --threads 2");
  EXPECT_EQ(run.exit_code, 3) << run.output;
  EXPECT_NE(run.output.find("error: out of memory:"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("memory plan for"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("does NOT fit"), std::string::npos) << run.output;
}

}  // namespace
}  // namespace sacc
