// ggml tensor element types as GGUF stores them, and their dequantisation to fp32 / bf16 on the host.
// Block formats pack `block_size` consecutive elements of a row into `block_bytes` bytes; a row's length must
// be a multiple of the block size. Layouts are the GGUF/ggml file format (see docs/models.md for the field
// order).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/status.h"

namespace sacc {

// The numeric codes are the file format's; only the types we can dequantise are named.
enum class GgmlType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q4_K = 12,
  Q6_K = 14,
  BF16 = 30,
};

struct GgmlTypeInfo {
  GgmlType type = GgmlType::F32;
  std::string_view name;    // "Q4_K"
  int64_t block_size = 1;   // elements per block
  int64_t block_bytes = 4;  // bytes per block
};

// Looks up a raw type code from a file; UNSUPPORTED with the code (and its ggml name where known) otherwise.
Result<GgmlTypeInfo> ggml_type_info(uint32_t code);
std::string_view ggml_type_name(GgmlType type);

constexpr int64_t kMaxGgmlBlockSize = 256;  // the k-quants' super-block

// Elements and bytes of one block of a supported type (1 and the element size for F32 / F16 / BF16).
int64_t ggml_block_size(GgmlType type);
int64_t ggml_block_bytes(GgmlType type);

// Bytes that `n_elements` of `type` occupy; n_elements must be a multiple of the block size.
uint64_t ggml_nbytes(const GgmlTypeInfo& info, uint64_t n_elements);

// Dequantises `n_elements` (a multiple of the block size) starting at `src` into `dst`.
// src: [n_elements / block_size] blocks of block_bytes; dst: [n_elements].
void dequantize_to_f32(GgmlType type, const void* src, int64_t n_elements, float* dst);
// Same, rounding each value to bf16 (nearest even); dst: [n_elements] raw bf16 bits.
void dequantize_to_bf16(GgmlType type, const void* src, int64_t n_elements, uint16_t* dst);

}  // namespace sacc
