// Hugging Face tokenizer.json bytes -> Tokenizer::from_hf_json, then a round trip through the result.
#include <cstddef>
#include <cstdint>

#include "model/tokenizer.h"
#include "scratch_file.h"
#include "tokenizer_exercise.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static sacc::fuzz::ScratchFile scratch("tokenizer.json");
  auto tokenizer = sacc::Tokenizer::from_hf_json(scratch.write(data, size));
  if (tokenizer.is_ok()) sacc::fuzz::exercise_tokenizer(*tokenizer);
  return 0;
}
