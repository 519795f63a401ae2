// Hugging Face config.json bytes -> model_config_from_hf_text (what model_config_from_hf_file parses the file
// with), then the checks and RoPE table the runtime takes from the result.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "model/model_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto config = sacc::model_config_from_hf_text(text, "config.json");
  if (!config.is_ok()) return 0;
  (void)config->summary();
  if (config->validate().is_ok()) {
    (void)config->parameter_count();
    (void)sacc::rope_inverse_frequencies(*config);
  }
  return 0;
}
