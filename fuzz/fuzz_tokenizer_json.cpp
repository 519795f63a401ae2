// Hugging Face tokenizer.json bytes, optionally followed by a NUL byte and a tokenizer_config.json (JSON text
// holds no raw NUL) -> Tokenizer::from_hf_json_text (what from_hf_json parses the files with), then a round
// trip through the result.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "model/tokenizer.h"
#include "tokenizer_exercise.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t nul = input.find('\0');
  const std::string_view json = input.substr(0, nul);
  const std::string_view config = nul == std::string_view::npos ? std::string_view() : input.substr(nul + 1);
  auto tokenizer = sacc::Tokenizer::from_hf_json_text(json, config, "tokenizer.json");
  if (tokenizer.is_ok()) sacc::fuzz::exercise_tokenizer(*tokenizer);
  return 0;
}
