// The real SmolLM2-135M-Instruct (Q4_1 GGUF, fetched by scripts/fetch_models.sh into .models/) continues a
// fixed prompt greedily on the CPU into the text recorded here.
#include <gtest/gtest.h>

#include <filesystem>

#include "model/model_loader.h"
#include "runtime/engine.h"

namespace sacc {
namespace {

TEST(RealModel, SmolLM2GreedyContinuation) {
  const std::string path = std::string(SACC_SOURCE_DIR) + "/.models/SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " absent (run scripts/fetch_models.sh)";
  ModelLoadOptions load;
  load.show_progress = false;
  Result<LoadedModel> model = load_model(path, load);
  ASSERT_TRUE(model.is_ok()) << model.status().to_string();
  ASSERT_TRUE(model->maybe_tokenizer);
  const Tokenizer& tok = *model->maybe_tokenizer;
  BackendOptions options;
  options.show_progress = false;
  Result<std::unique_ptr<Backend>> backend = make_cpu_backend(model->weights, options);
  ASSERT_TRUE(backend.is_ok()) << backend.status().to_string();
  const std::vector<int32_t> prompt = tok.encode("The capital of France is", tok.adds_bos());
  GenerateOptions gen;
  gen.max_new_tokens = 6;
  gen.stop_tokens = model->stop_tokens;
  Result<GenerationMetrics> m = generate(**backend, prompt, gen, [](int32_t) {});
  ASSERT_TRUE(m.is_ok()) << m.status().to_string();
  // The fifth token is a near-tie that 8-bit activations (llama.cpp's scheme, used by the quantised dot
  // products) resolve the other way: after " Paris.\n\nThe" fp32 activations give " answer" 14.62 against
  // " United" 14.41, quantised ones " United" 14.45 against " answer" 14.25 (issue 16); with a 0.2-logit
  // margin the compiler's float order decides it too (the -O1 sanitizer build gives " answer"), so both are
  // accepted: the answer itself is the first three tokens.
  const std::string text = tok.decode(m->tokens);
  EXPECT_TRUE(text == " Paris.\n\nThe United" || text == " Paris.\n\nThe answer") << text;
}

}  // namespace
}  // namespace sacc
