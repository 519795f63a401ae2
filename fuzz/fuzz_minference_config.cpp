// MInference's per-head JSON -> parse_minference_config, then each layer's patterns.
#include <cstddef>
#include <cstdint>
#include <string>

#include "model/minference_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto config = sacc::parse_minference_config(text, "fuzz.json");
  if (!config.is_ok()) return 0;
  for (size_t layer = 0; layer < config->size(); ++layer) (void)sacc::layer_patterns(*config, layer);
  return 0;
}
