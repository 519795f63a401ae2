// `sacc generate`'s prompt inputs: a prompt file that cannot be read fails at once, before the model loads.
#include <gtest/gtest.h>

#include "run_sacc.h"

namespace sacc {
namespace {

using test::run_sacc_binary;

TEST(GenerateCli, MissingPromptFileFailsBeforeTheModelLoads) {
  const test::SaccRun run =
      run_sacc_binary("generate -m random:smollm2-135m --device cpu -n 1 -f /nonexistent/prompt.txt");
  EXPECT_NE(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("-f /nonexistent/prompt.txt: cannot open"), std::string::npos) << run.output;
  // The model's load logs the attention choice; a run stopped before it prints none.
  EXPECT_EQ(run.output.find("auto:"), std::string::npos) << run.output;
}

}  // namespace
}  // namespace sacc
