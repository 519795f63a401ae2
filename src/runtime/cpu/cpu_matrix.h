// A weight matrix as the CPU backend multiplies it: rows kept in their GGUF block format inside the file
// mapping (quantised dot products), or fp32 rows (the source's own F32 data, else one converted copy) through
// OpenBLAS.
#pragma once

#include <cstdint>
#include <vector>

#include "core/status.h"
#include "model/llama_weights.h"
#include "runtime/cpu/quant_dot.h"

namespace sacc {

struct CpuMatrix {
  int64_t rows = 0, cols = 0;  // W [rows, cols]: `rows` outputs of `cols` inputs
  QuantRows quant;             // quant.data != nullptr: block rows, multiplied by `kernel`
  QuantTileFn kernel = nullptr;
  const float* f32 = nullptr;  // otherwise fp32 rows [rows, cols] (the source's or `owned`)
  std::vector<float> owned;    // [rows, cols] when the source is not fp32

  bool is_quantized() const { return quant.data != nullptr; }
  uint64_t owned_bytes() const { return owned.size() * sizeof(float); }
  uint64_t bytes() const;  // the weights' bytes, mapped or owned
  // Row `row` as fp32 (an embedding lookup): out [cols].
  void row_to_f32(int64_t row, float* out) const;
};

// Wraps a 2-D weight: quantised types the kernels handle stay in place, F32 data is viewed, anything else is
// converted to an owned fp32 copy. The weight must outlive the matrix.
CpuMatrix make_cpu_matrix(const WeightTensor& weight, QuantIsa isa);

// Activations quantised once and shared by every matrix that reads the same input (q, k and v; gate and up).
struct QuantizedInput {
  std::vector<ActBlock> blocks;  // [rows, cols / 32]
  int64_t rows = 0, cols = 0;
  int64_t group = 1;  // blocks per shared scale (quant_act_group of the matrices that read it)
  void quantize(const float* x, int64_t n_rows, int64_t n_cols, int64_t n_group);  // x [n_rows, n_cols]
};

// Y[rows, w.rows] (+)= X[rows, w.cols] · W^T; accumulate adds into Y (the residual). A quantised W reads
// `maybe_input` when it already holds X quantised with W's scale group, else quantises X into `scratch`.
void cpu_matmul(const CpuMatrix& w, const float* x, float* y, int64_t rows, bool accumulate,
                QuantizedInput& scratch, const QuantizedInput* maybe_input = nullptr);

}  // namespace sacc
