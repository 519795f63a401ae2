// Quantised dot products of the CPU backend: weight rows stay in their GGUF block format, activation rows are
// quantised to 8 bits per block of 32 (one fp32 scale per block, as llama.cpp's Q8 formats), and each block's
// products are summed in integers before one float multiply. One portable scalar kernel per format (the
// reference the tests compare against) and AVX2 kernels chosen at run time from CPUID.
#pragma once

#include <cstdint>

#include "model/dequantize.h"

namespace sacc {

constexpr int64_t kActBlock = 32;  // activation elements per quantisation block

// One block of 32 activations: value i ~ d * q[i]. sum[h] = q[16h] + ... + q[16h + 15] lets offset formats
// (Q4_1's min, Q4_0's -8, Q6_K's -32 with a scale per 16) apply their constant term once per half block;
// ds = d * (sum[0] + sum[1]) saves the formats with one constant per block that arithmetic per weight row.
struct ActBlock {
  float d = 0.0f;
  float ds = 0.0f;
  int16_t sum[2] = {0, 0};
  int8_t q[kActBlock] = {};
};
static_assert(sizeof(ActBlock) == 44);

// Quantises rows of activations: x [rows, cols] -> out [rows, cols / 32] blocks; cols a multiple of 32.
void quantize_act_rows(const float* x, int64_t rows, int64_t cols, ActBlock* out);

// Up to kMaxTileRows activation rows share each decoded weight block (prefill reuses it; decode has one row).
// Decoding a weight sub-block (nibbles, fifth bits, f16 scales) costs more than loading an activation block,
// which maddubs reads as a memory operand, so a tile is one weight row by eight activation rows: on the
// project's AVX2 EPYC (with F16C scales) the models' matrix shapes ran 8-30 % faster than with four rows. Two
// weight rows by eight were no faster in prefill and slowed decode (Qwen 0.5B 47 -> 76 ms/token).
constexpr int kMaxTileRows = 8;

// y[r] = w_row · x_r for r < nr: w_row is one weight row of `n_act_blocks` * 32 elements in its file format;
// x_r = x + r * x_stride (blocks), each [n_act_blocks]; y [nr]. Each dot is summed in the same order whatever
// nr is, so a result does not depend on the rows it was computed with (decode and prefill agree).
using QuantDotFn = void (*)(const uint8_t* w_row, const ActBlock* x, int64_t x_stride, int nr,
                            int64_t n_act_blocks, float* y);

enum class QuantIsa { SCALAR, AVX2 };

// The best kernel family this CPU runs (AVX2 needs AVX2, FMA and F16C).
QuantIsa best_quant_isa();
const char* quant_isa_name(QuantIsa isa);
// Whether the kernels handle `type` (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q6_K).
bool quant_dot_supported(GgmlType type);
// The kernel for `type` on `isa`; nullptr when the type is not supported.
QuantDotFn quant_dot_kernel(GgmlType type, QuantIsa isa);
QuantDotFn quant_dot_scalar(GgmlType type);
QuantDotFn quant_dot_avx2(GgmlType type);

}  // namespace sacc
