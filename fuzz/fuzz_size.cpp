// CLI size strings (--budget 24GiB, --gpu-mem) -> parse_bytes, and the printout of what parses.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/tensor.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto bytes = sacc::parse_bytes(text);
  if (bytes.is_ok()) (void)sacc::format_bytes(*bytes);
  return 0;
}
