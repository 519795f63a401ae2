// GGUF file bytes -> the loader's GGUF reader (header, metadata, tensor table, through from_bytes: the checks
// open() runs on a mapped file, with ASan's redzone right after the last byte), the hyperparameters, every
// metadata value's printout and the dequantisation of small tensors.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "model/gguf.h"
#include "model/gguf_hparams.h"

namespace {
// Dequantise tensors up to this many elements: enough to cover every block type, small enough to stay fast.
constexpr int64_t kMaxLoadedElements = 1 << 16;
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto file = sacc::GgufFile::from_bytes({data, data + size}, "model.gguf");
  if (!file.is_ok()) return 0;
  for (const auto& key : file->keys()) {
    if (const sacc::GgufValue* value = file->find(key)) (void)value->to_string();
  }
  (void)sacc::read_gguf_hyperparams(*file);
  for (const auto& info : file->tensors()) {
    if (info.shape.numel() <= kMaxLoadedElements) {
      (void)file->load_tensor_f32(info.name);
      (void)file->load_tensor_bf16(info.name);
    }
  }
  return 0;
}
