// Quantised dot products of the CPU backend: weight rows stay in their GGUF block format, activation rows are
// quantised to 8 bits per block of 32 (one fp32 scale per block, as llama.cpp's Q8_0; per 8 blocks for Q6_K,
// as its Q8_K), and each block's (Q6_K: super-block's) products are summed in integers before one float
// multiply. One portable scalar kernel per format (the
// reference the tests compare against), AVX2 kernels and AVX-512 VNNI kernels (the same bits as AVX2's),
// chosen at run time from CPUID within the cap of SACC_CPU_ISA (core/cpu_isa.h).
#pragma once

#include <cstdint>

#include "model/dequantize.h"

namespace sacc {

constexpr int64_t kActBlock = 32;  // activation elements per quantisation block

// One block of 32 activations: value i ~ d * q[i]. ds = d * (q[0] + ... + q[31]) lets the formats with a
// float minimum (Q4_1, Q5_1, Q4_K) apply it once per block: Σ (w * scale + c) * x = scale * Σ w x + c * ds.
struct ActBlock {
  float d = 0.0f;
  float ds = 0.0f;
  int16_t sum[2] = {0, 0};  // the halves' sums of q
  int8_t q[kActBlock] = {};
};
static_assert(sizeof(ActBlock) == 44);

// Quantises rows of activations: x [rows, cols] -> out [rows, cols / 32] blocks; cols a multiple of
// 32 * group. The `group` consecutive blocks of a row share one scale (the largest magnitude among them):
// the Q6_K kernel sums a whole 256-element super-block in integers, which a scale per block would not allow
// (llama.cpp's Q8_K activations have the same precision).
// Runs the AVX2 version when the CPU has it (also under AVX-512); both give the same bits (the tests compare
// them).
void quantize_act_rows(const float* x, int64_t rows, int64_t cols, ActBlock* out, int64_t group = 1);
void quantize_act_rows_scalar(const float* x, int64_t rows, int64_t cols, ActBlock* out, int64_t group);
void quantize_act_rows_avx2(const float* x, int64_t rows, int64_t cols, ActBlock* out, int64_t group);

// The activation blocks per shared scale a format's kernels expect: 8 for Q6_K, else 1.
int64_t quant_act_group(GgmlType type);

// One kernel call multiplies a register tile: up to kMaxTileWeights weight rows by up to kMaxTileRows
// activation rows. Each decoded weight sub-block is reused by every activation row of the tile and each
// loaded activation block by every weight row; decode (one activation row) is a tile of height 1. Decoding a
// weight sub-block (nibbles, fifth bits, f16 scales) costs more than loading an activation block (a memory
// operand of maddubs), so the tile is tall: on the project's AVX2 EPYC, 8 activation rows ran the models'
// matrix shapes 8-30 % faster than the 4 of the kernel before; the second weight row adds little there (2 x 8
// and 1 x 8 within noise in prefill) and the matmul uses it only for full-height tiles.
constexpr int kMaxTileRows = 8;
constexpr int kMaxTileWeights = 2;

// y[r * y_stride + i] = w_i · x_r for i < nw, r < nr: w_i = w + i * w_stride (bytes) is one weight row of
// `n_act_blocks` * 32 elements in its file format; x_r = x + r * x_stride (blocks), each [n_act_blocks].
// Every (w_i, x_r) pair is summed in the same order whatever the tile's shape, so a dot does not depend on
// the rows it was tiled with.
using QuantTileFn = void (*)(const uint8_t* w, int64_t w_stride, int nw, const ActBlock* x, int64_t x_stride,
                             int nr, int64_t n_act_blocks, float* y, int64_t y_stride);

enum class QuantIsa { SCALAR, AVX2, AVX512 };

// The best kernel family this CPU runs within SACC_CPU_ISA's cap (AVX2 needs AVX2, FMA and F16C; AVX512 also
// AVX-512 F, BW, VL and VNNI).
QuantIsa best_quant_isa();
// Whether this CPU can run `isa`'s kernels, whatever the cap (the tests compare every family it can run).
bool cpu_runs_quant_isa(QuantIsa isa);
const char* quant_isa_name(QuantIsa isa);
// Whether the kernels handle `type` (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q6_K).
bool quant_dot_supported(GgmlType type);
// The kernel for `type` on `isa`; nullptr when the type is not supported.
QuantTileFn quant_dot_kernel(GgmlType type, QuantIsa isa);
QuantTileFn quant_dot_scalar(GgmlType type);
QuantTileFn quant_dot_avx2(GgmlType type);
QuantTileFn quant_dot_avx512(GgmlType type);

}  // namespace sacc
