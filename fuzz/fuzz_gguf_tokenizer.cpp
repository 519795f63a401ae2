// GGUF tokenizer metadata (tokenizer.ggml.*) -> Tokenizer::from_gguf, then a round trip through the result.
#include <cstddef>
#include <cstdint>

#include "model/gguf.h"
#include "model/tokenizer.h"
#include "scratch_file.h"
#include "tokenizer_exercise.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static sacc::fuzz::ScratchFile scratch("tokenizer.gguf");
  auto file = sacc::GgufFile::open(scratch.write(data, size));
  if (!file.is_ok()) return 0;
  auto tokenizer = sacc::Tokenizer::from_gguf(*file);
  if (tokenizer.is_ok()) sacc::fuzz::exercise_tokenizer(*tokenizer);
  return 0;
}
