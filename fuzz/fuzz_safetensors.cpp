// safetensors file bytes -> SafetensorsFile::from_bytes (the header checks open() runs on a mapped file:
// JSON, offsets, dtypes), then every tensor's view and its first and last element. Bytes on the heap rather
// than a mapped scratch file: no file system calls, and ASan catches a read one byte past the end, which a
// mapping hides up to the end of its page.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto file = sacc::SafetensorsFile::from_bytes({data, data + size}, "qkv.safetensors");
  if (!file.is_ok()) return 0;
  (void)file->tensor("no such tensor");
  for (const auto& name : file->names()) {
    auto view = file->tensor(name);
    if (!view.is_ok() || view->numel() == 0) continue;
    (void)sacc::load_as_float(view->data, view->dtype, 0);
    (void)sacc::load_as_float(view->data, view->dtype, static_cast<size_t>(view->numel() - 1));
  }
  return 0;
}
