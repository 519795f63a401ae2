// --max-context: a prompt longer than the model's declared window is refused with a message naming the flag,
// and accepted (with a warning) when the user asks for the longer window.
#include <gtest/gtest.h>

#include "run_sacc.h"

namespace sacc {
namespace {

using test::run_sacc_binary;

// smollm2-135m declares 8192 tokens; plans are cheap (no weights are touched).
TEST(MaxContextCli, InfoRefusesBeyondTheWindowUnlessRaised) {
  const test::SaccRun refused = run_sacc_binary("info -m random:smollm2-135m --device cpu --ctx 20000");
  EXPECT_NE(refused.exit_code, 0) << refused.output;
  EXPECT_NE(refused.output.find("8192"), std::string::npos) << refused.output;

  const test::SaccRun raised =
      run_sacc_binary("info -m random:smollm2-135m --device cpu --ctx 20000 --max-context 20000");
  EXPECT_EQ(raised.exit_code, 0) << raised.output;
  EXPECT_NE(raised.output.find("memory plan for 20000 tokens"), std::string::npos) << raised.output;
  EXPECT_NE(raised.output.find("past the model's context window of 8192"), std::string::npos)
      << raised.output;
}

TEST(MaxContextCli, GenerateHonoursTheWindowItSets) {
  const test::SaccRun run = run_sacc_binary(
      "-q generate -m random:smollm2-135m --device cpu --prompt-tokens 300 -n 2 --max-context 301 --json");
  EXPECT_EQ(run.exit_code, 0) << run.output;
  const test::SaccRun too_long = run_sacc_binary(
      "-q generate -m random:smollm2-135m --device cpu --prompt-tokens 300 -n 3 --max-context 301");
  EXPECT_NE(too_long.exit_code, 0) << too_long.output;
  EXPECT_NE(too_long.output.find("302 tokens"), std::string::npos) << too_long.output;
}

// A bench cell as long as the window fits: TTFT needs the prompt's positions only (the first generated token
// is never fed back), which is what lets a 131072-token cell run on Llama-3.1.
TEST(MaxContextCli, BenchCellAsLongAsTheWindowRuns) {
  const test::SaccRun run = run_sacc_binary(
      "-q bench -m random:smollm2-135m --device cpu --ctx 300 --attention dense -r 1 --warmup 0 "
      "--max-context 300 -o csv");
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(run.output.find("error"), std::string::npos) << run.output;
  EXPECT_EQ(run.output.find("exceed"), std::string::npos) << run.output;
}

// A bench asked for a length past the window stops before measuring anything, naming the flag that allows it.
TEST(MaxContextCli, BenchRefusesALengthPastTheWindow) {
  const test::SaccRun run = run_sacc_binary(
      "-q bench -m random:smollm2-135m --device cpu --ctx 300,20000 --attention dense -r 1 --warmup 0");
  EXPECT_NE(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("--ctx 20000"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("8192"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("--max-context 20000"), std::string::npos) << run.output;
  EXPECT_EQ(run.output.find("TTFT"), std::string::npos) << run.output;
}

// Without --ctx the default lengths stop at the window (here --max-context 1000 keeps only 1000).
TEST(MaxContextCli, BenchDefaultLengthsStopAtTheWindow) {
  const test::SaccRun run = run_sacc_binary(
      "-q bench -m random:smollm2-135m --device cpu --attention dense -r 1 --warmup 0 --max-context 1000 -o "
      "csv");
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("1000"), std::string::npos) << run.output;
  EXPECT_EQ(run.output.find("4000"), std::string::npos) << run.output;
  const test::SaccRun none = run_sacc_binary(
      "-q bench -m random:smollm2-135m --device cpu --attention dense -r 1 --warmup 0 --max-context 500");
  EXPECT_NE(none.exit_code, 0) << none.output;
  EXPECT_NE(none.output.find("give --ctx"), std::string::npos) << none.output;
}

TEST(MaxContextCli, RejectsNonPositive) {
  const test::SaccRun run = run_sacc_binary("info -m random:smollm2-135m --device cpu --max-context -5");
  EXPECT_NE(run.exit_code, 0);
  EXPECT_NE(run.output.find("--max-context"), std::string::npos) << run.output;
}

}  // namespace
}  // namespace sacc
