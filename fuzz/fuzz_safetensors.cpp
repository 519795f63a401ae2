// safetensors file bytes -> SafetensorsFile::open (header JSON, offsets, dtypes), then every tensor's view
// and its first and last element.
#include <cstddef>
#include <cstdint>

#include "core/safetensors.h"
#include "scratch_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static sacc::fuzz::ScratchFile scratch("qkv.safetensors");
  auto file = sacc::SafetensorsFile::open(scratch.write(data, size));
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
