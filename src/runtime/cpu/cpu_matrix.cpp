#include "runtime/cpu/cpu_matrix.h"

#include <algorithm>

#include "attention/cpu/parallel_for.h"
#include "runtime/cpu_kernels.h"

namespace sacc {
namespace {

// Weight rows per task: enough to amortise the task claim, few enough that 2-16 threads balance on the
// smallest projections (k/v: 128 rows).
constexpr int64_t kRowsPerTask = 16;
// Activation rows per pass over a task's weight rows: their blocks (64 x 44 B x cols / 32) stay in L2 while
// the kernel walks the task's rows in tiles of up to kMaxTileWeights weight rows by kMaxTileRows activation
// rows.
constexpr int64_t kActRowsPerPass = 64;

void quant_matmul(const CpuMatrix& w, const QuantizedInput& in, float* y, int64_t rows, bool accumulate) {
  const int64_t n_blocks = w.cols / kActBlock;
  // Decode (one activation row): one contiguous run of weight rows per thread, which each thread streams
  // from memory front to back, measured faster than 16-row tasks handed out in turn
  // (Qwen2.5-0.5B decode, 2 threads: 33.9 -> 22.5 ms/token; SmolLM2-135M 12.5 -> 7.9).
  const int64_t threads = cpu_thread_count();
  const int64_t rows_per_task =
      rows == 1 ? std::max(kRowsPerTask, (w.rows + threads - 1) / threads) : kRowsPerTask;
  const int64_t tasks = (w.rows + rows_per_task - 1) / rows_per_task;
  parallel_for(tasks, [&](int64_t task) {
    const int64_t o0 = task * rows_per_task, o1 = std::min(w.rows, o0 + rows_per_task);
    float dots[kMaxTileRows * kMaxTileWeights];  // [activation row, weight row] of one tile
    for (int64_t p0 = 0; p0 < rows; p0 += kActRowsPerPass) {
      const int64_t p1 = std::min(rows, p0 + kActRowsPerPass);
      for (int64_t r0 = p0; r0 < p1; r0 += kMaxTileRows) {
        const int nr = static_cast<int>(std::min<int64_t>(kMaxTileRows, p1 - r0));
        const ActBlock* x = in.blocks.data() + r0 * n_blocks;
        // Two weight rows per tile only for full-height tiles: for short ones (decode) the pair measured
        // slower than one row at a time (Qwen2.5-0.5B decode 47 -> 76 ms/token on one core).
        const int64_t tile_w = nr == kMaxTileRows ? kMaxTileWeights : 1;
        for (int64_t o = o0; o < o1; o += tile_w) {
          const int nw = static_cast<int>(std::min<int64_t>(tile_w, o1 - o));
          w.kernel(w.quant.data + o * w.quant.row_bytes, w.quant.row_bytes, nw, x, n_blocks, nr, n_blocks,
                   dots, kMaxTileWeights);
          for (int r = 0; r < nr; ++r)
            for (int i = 0; i < nw; ++i) {
              float& out = y[(r0 + r) * w.rows + o + i];
              const float dot = dots[r * kMaxTileWeights + i];
              out = accumulate ? out + dot : dot;
            }
        }
      }
    }
  });
}

}  // namespace

uint64_t CpuMatrix::bytes() const {
  if (is_quantized()) return static_cast<uint64_t>(quant.row_bytes * rows);
  return static_cast<uint64_t>(rows * cols) * sizeof(float);
}

void CpuMatrix::row_to_f32(int64_t row, float* out) const {
  if (is_quantized()) {
    dequantize_to_f32(quant.type, quant.data + row * quant.row_bytes, cols, out);
    return;
  }
  std::copy_n(f32 + row * cols, cols, out);
}

CpuMatrix make_cpu_matrix(const WeightTensor& weight, QuantIsa isa) {
  CpuMatrix m;
  m.rows = weight.view.shape[0];
  m.cols = weight.view.numel() / m.rows;
  if (weight.is_quantized() && quant_dot_supported(weight.quant.type)) {
    m.quant = weight.quant;
    m.kernel = quant_dot_kernel(weight.quant.type, isa);
    return m;
  }
  if (!weight.is_random() && !weight.is_quantized() && weight.view.dtype == DType::F32) {
    m.f32 = static_cast<const float*>(weight.view.data);
    return m;
  }
  m.owned.resize(static_cast<size_t>(m.rows * m.cols));
  weight_to_f32(weight, m.owned.data());
  m.f32 = m.owned.data();
  return m;
}

void QuantizedInput::quantize(const float* x, int64_t n_rows, int64_t n_cols, int64_t n_group) {
  rows = n_rows;
  cols = n_cols;
  group = n_group;
  const int64_t n_blocks = n_cols / kActBlock;
  if (static_cast<int64_t>(blocks.size()) < n_rows * n_blocks) blocks.resize(n_rows * n_blocks);
  const int64_t per_task = 16;
  parallel_for((n_rows + per_task - 1) / per_task, [&](int64_t t) {
    const int64_t r0 = t * per_task, r1 = std::min(n_rows, r0 + per_task);
    quantize_act_rows(x + r0 * n_cols, r1 - r0, n_cols, blocks.data() + r0 * n_blocks, n_group);
  });
}

void cpu_matmul(const CpuMatrix& w, const float* x, float* y, int64_t rows, bool accumulate,
                QuantizedInput& scratch, const QuantizedInput* maybe_input) {
  if (!w.is_quantized()) {
    cpu_linear(x, w.f32, y, rows, w.cols, w.rows, accumulate);
    return;
  }
  const int64_t group = quant_act_group(w.quant.type);
  const QuantizedInput* in = maybe_input;
  if (in == nullptr || in->group != group) {
    scratch.quantize(x, rows, w.cols, group);
    in = &scratch;
  }
  quant_matmul(w, *in, y, rows, accumulate);
}

}  // namespace sacc
