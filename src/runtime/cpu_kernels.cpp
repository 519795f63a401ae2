#include "runtime/cpu_kernels.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>

#include "attention/cpu/parallel_for.h"

namespace sacc {
namespace {
constexpr int64_t kRowsPerTask = 16;

template <typename F>
void for_row_blocks(int64_t rows, F&& body) {
  const int64_t tasks = (rows + kRowsPerTask - 1) / kRowsPerTask;
  parallel_for(tasks, [&](int64_t t) {
    const int64_t end = std::min(rows, (t + 1) * kRowsPerTask);
    for (int64_t r = t * kRowsPerTask; r < end; ++r) body(r);
  });
}
}  // namespace

void cpu_rms_norm(const float* x, const float* weight, float* out, int64_t rows, int64_t width, float eps) {
  for_row_blocks(rows, [&](int64_t r) {
    const float* xr = x + r * width;
    double sum = 0.0;
    for (int64_t i = 0; i < width; ++i) sum += static_cast<double>(xr[i]) * xr[i];
    const float inv = static_cast<float>(1.0 / std::sqrt(sum / static_cast<double>(width) + eps));
    float* o = out + r * width;
    for (int64_t i = 0; i < width; ++i) o[i] = xr[i] * inv * weight[i];
  });
}

void cpu_blas_single_threaded() {
  static const bool once = [] {
    openblas_set_num_threads(1);
    return true;
  }();
  (void)once;
}

void cpu_linear(const float* x, const float* w, float* y, int64_t rows, int64_t in, int64_t out,
                bool accumulate) {
  cpu_blas_single_threaded();
  // Output columns split over the pool: each task runs one single-threaded OpenBLAS call on its slice of W.
  const int64_t slices = std::min<int64_t>(cpu_thread_count(), std::max<int64_t>(1, out / 64));
  const int64_t per_slice = (out + slices - 1) / slices;
  parallel_for(slices, [&](int64_t s) {
    const int64_t o0 = s * per_slice, n = std::min(out, o0 + per_slice) - o0;
    if (n <= 0) return;
    const float beta = accumulate ? 1.0f : 0.0f;
    if (rows == 1) {
      cblas_sgemv(CblasRowMajor, CblasNoTrans, static_cast<int>(n), static_cast<int>(in), 1.0f, w + o0 * in,
                  static_cast<int>(in), x, 1, beta, y + o0, 1);
      return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows), static_cast<int>(n),
                static_cast<int>(in), 1.0f, x, static_cast<int>(in), w + o0 * in, static_cast<int>(in), beta,
                y + o0, static_cast<int>(out));
  });
}

void cpu_add_bias(float* y, const float* bias, int64_t rows, int64_t width) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < width; ++i) y[r * width + i] += bias[i];
}

void cpu_rope(float* x, int64_t rows, int heads, int head_dim, int64_t first_position,
              const std::vector<double>& inv_freq) {
  const int half = head_dim / 2;
  for_row_blocks(rows, [&](int64_t r) {
    const double position = static_cast<double>(first_position + r);
    for (int i = 0; i < half; ++i) {
      // Angles in double: at position 1e5 a float angle is off by ~0.01 rad.
      const double angle = position * inv_freq[i];
      const float c = static_cast<float>(std::cos(angle)), s = static_cast<float>(std::sin(angle));
      for (int h = 0; h < heads; ++h) {
        float* v = x + (r * heads + h) * head_dim;
        const float a = v[i], b = v[i + half];
        v[i] = a * c - b * s;
        v[i + half] = b * c + a * s;
      }
    }
  });
}

void cpu_swiglu(float* gate, const float* up, int64_t n) {
  const int64_t per_task = 1 << 14;
  parallel_for((n + per_task - 1) / per_task, [&](int64_t t) {
    const int64_t end = std::min(n, (t + 1) * per_task);
    for (int64_t i = t * per_task; i < end; ++i) {
      const float g = gate[i];
      gate[i] = g / (1.0f + std::exp(-g)) * up[i];
    }
  });
}

}  // namespace sacc
