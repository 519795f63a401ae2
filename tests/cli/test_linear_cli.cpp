// --linear on `sacc generate`, `sacc bench` and `sacc eval`: an unknown value is refused with a message
// naming the choices and a non-zero exit, before any model is loaded; fp8 on the CPU is refused naming the
// fix.
#include <gtest/gtest.h>

#include "run_sacc.h"

namespace sacc {
namespace {

using test::run_sacc_binary;

TEST(LinearCli, UnknownValueIsRefusedByEveryCommand) {
  for (const char* command : {"generate -m random:smollm2-135m --device cpu --prompt-tokens 8 -n 1",
                              "bench -m random:smollm2-135m --device cpu --ctx 16 --attention dense",
                              "eval ppl -m random:smollm2-135m --device cpu --length 64 --last 8",
                              "eval niah -m random:smollm2-135m --device cpu --lengths 64",
                              "eval ruler -m random:smollm2-135m --device cpu --lengths 64",
                              "eval recall -m random:smollm2-135m --device cpu --length 64"}) {
    const test::SaccRun run = run_sacc_binary(std::string("-q ") + command + " --linear fp16");
    EXPECT_NE(run.exit_code, 0) << command << "\n" << run.output;
    EXPECT_NE(run.output.find("--linear 'fp16': expected bf16 or fp8"), std::string::npos) << command << "\n"
                                                                                           << run.output;
  }
}

TEST(LinearCli, ChunkBelowOneOrNotANumberIsRefused) {
  for (const char* command : {"generate -m random:smollm2-135m --device cpu --prompt-tokens 8 -n 1",
                              "bench -m random:smollm2-135m --device cpu --ctx 16 --attention dense",
                              "info -m random:smollm2-135m --device cpu"}) {
    for (const char* value : {"0", "-3", "2k"}) {
      const test::SaccRun run = run_sacc_binary(std::string("-q ") + command + " --chunk " + value);
      EXPECT_NE(run.exit_code, 0) << command << " --chunk " << value << "\n" << run.output;
      EXPECT_NE(
          run.output.find("--chunk: must be a whole number of tokens >= 1, not '" + std::string(value) + "'"),
          std::string::npos)
          << command << "\n"
          << run.output;
    }
  }
}

TEST(LinearCli, Fp8OnTheCpuIsRefused) {
  const test::SaccRun run =
      run_sacc_binary("-q generate -m random:smollm2-135m --device cpu --prompt-tokens 8 -n 1 --linear fp8");
  EXPECT_NE(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("CUDA backend only"), std::string::npos) << run.output;
}

TEST(LinearCli, Bf16IsTheDefaultAndIsAccepted) {
  const test::SaccRun run = run_sacc_binary(
      "-q generate -m random:smollm2-135m --device cpu --prompt-tokens 8 -n 1 --linear bf16 --json");
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("\"linear\":\"bf16\""), std::string::npos) << run.output;
}

}  // namespace
}  // namespace sacc
