// Pattern strings (--pattern, head configs) -> parse_pattern; what parses must print back to the same spec.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "attention/pattern.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto spec = sacc::parse_pattern(text);
  if (!spec.is_ok()) return 0;
  auto again = sacc::parse_pattern(sacc::to_string(*spec));
  if (!again.is_ok() || !(*again == *spec)) std::abort();  // to_string must round-trip
  return 0;
}
