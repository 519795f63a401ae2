// GGUF tokenizer metadata (tokenizer.ggml.*) -> Tokenizer::from_gguf, then a round trip through the result.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/log.h"
#include "model/gguf.h"
#include "model/tokenizer.h"
#include "tokenizer_exercise.h"

// An unknown tokenizer.ggml.pre is a warning on stderr; mutated inputs hit it at every execution.
extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  sacc::set_log_level(sacc::LogLevel::ERROR);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto file = sacc::GgufFile::from_bytes({data, data + size}, "tokenizer.gguf");
  if (!file.is_ok()) return 0;
  auto tokenizer = sacc::Tokenizer::from_gguf(*file);
  if (tokenizer.is_ok()) sacc::fuzz::exercise_tokenizer(*tokenizer);
  return 0;
}
