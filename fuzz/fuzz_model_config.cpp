// Hugging Face config.json bytes -> model_config_from_hf_file, then the checks and RoPE table the runtime
// takes from the result.
#include <cstddef>
#include <cstdint>

#include "model/model_config.h"
#include "scratch_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static sacc::fuzz::ScratchFile scratch("config.json");
  auto config = sacc::model_config_from_hf_file(scratch.write(data, size));
  if (!config.is_ok()) return 0;
  (void)config->summary();
  if (config->validate().is_ok()) {
    (void)config->parameter_count();
    (void)sacc::rope_inverse_frequencies(*config);
  }
  return 0;
}
