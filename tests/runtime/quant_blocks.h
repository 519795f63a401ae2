// Random weight rows in every format the quantised dot products support, for the tests of quant_dot.h.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "runtime/cpu/quant_dot.h"

namespace sacc::test {

struct FormatCase {
  GgmlType type;
  std::vector<int> f16_offsets;  // byte offsets of the f16 scale fields in a block
};

inline const FormatCase kQuantFormats[] = {
    {GgmlType::Q4_0, {0}}, {GgmlType::Q4_1, {0, 2}}, {GgmlType::Q5_0, {0}},   {GgmlType::Q5_1, {0, 2}},
    {GgmlType::Q8_0, {0}}, {GgmlType::Q4_K, {0, 2}}, {GgmlType::Q6_K, {208}},
};

// Random bytes are valid blocks once the scale fields hold finite halves (a block has no other constraint).
inline std::vector<uint8_t> random_rows(GgmlType type, int64_t rows, int64_t cols,
                                        const std::vector<int>& f16s, std::mt19937& rng) {
  const int64_t blocks = cols / ggml_block_size(type), bytes = ggml_block_bytes(type);
  std::vector<uint8_t> data(rows * blocks * bytes);
  for (uint8_t& b : data) b = static_cast<uint8_t>(rng());
  std::uniform_real_distribution<float> scale(-0.02f, 0.02f);
  for (int64_t b = 0; b < rows * blocks; ++b)
    for (int offset : f16s) {
      const uint16_t h = float_to_fp16(scale(rng));
      std::memcpy(&data[b * bytes + offset], &h, 2);
    }
  return data;
}

// The kernel families this CPU runs (whatever SACC_CPU_ISA caps the engine to), scalar first.
inline std::vector<QuantIsa> runnable_quant_isas() {
  std::vector<QuantIsa> isas;
  for (QuantIsa isa : {QuantIsa::SCALAR, QuantIsa::AVX2, QuantIsa::AVX512})
    if (cpu_runs_quant_isa(isa)) isas.push_back(isa);
  return isas;
}

// y [x_rows, w_rows] from `dot` in tiles of tile_w weight rows by tile_r activation rows.
inline std::vector<float> tiled(QuantTileFn dot, const std::vector<uint8_t>& w, int64_t w_rows,
                                int64_t row_bytes, const std::vector<ActBlock>& act, int64_t x_rows,
                                int64_t n_blocks, int tile_w, int tile_r) {
  std::vector<float> y(x_rows * w_rows, std::nanf(""));
  for (int64_t r0 = 0; r0 < x_rows; r0 += tile_r)
    for (int64_t o0 = 0; o0 < w_rows; o0 += tile_w) {
      const int nr = static_cast<int>(std::min<int64_t>(tile_r, x_rows - r0));
      const int nw = static_cast<int>(std::min<int64_t>(tile_w, w_rows - o0));
      dot(w.data() + o0 * row_bytes, row_bytes, nw, act.data() + r0 * n_blocks, n_blocks, nr, n_blocks,
          &y[r0 * w_rows + o0], w_rows);
    }
  return y;
}

}  // namespace sacc::test
