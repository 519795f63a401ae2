// Head config files (ours, versioned, or MInference's, detected from the JSON) -> parse_head_config, then the
// per-layer patterns the attention library takes.
#include <cstddef>
#include <cstdint>
#include <string>

#include "model/head_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto config = sacc::parse_head_config(text, "fuzz.json");
  if (!config.is_ok()) return 0;
  const int layers = static_cast<int>(config->layers.size());
  (void)config->check_fits(layers, layers > 0 ? static_cast<int>(config->layers[0].size()) : 0);
  for (int layer = 0; layer < layers; ++layer) (void)config->layer_patterns(layer);
  return 0;
}
