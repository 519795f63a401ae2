// fp32 building blocks of the CPU forward pass; each runs over rows in parallel.
#pragma once

#include <cstdint>
#include <vector>

namespace sacc {

// out[r] = x[r] / sqrt(mean(x[r]^2) + eps) * weight, rows of `width`: x, out [rows, width], weight [width].
void cpu_rms_norm(const float* x, const float* weight, float* out, int64_t rows, int64_t width, float eps);

// Y[rows, out] (+)= X[rows, in] · W[out, in]^T with OpenBLAS; accumulate adds into Y (the residual). OpenBLAS
// runs single-threaded inside the process's one thread pool (parallel_for), so the two never oversubscribe.
void cpu_linear(const float* x, const float* w, float* y, int64_t rows, int64_t in, int64_t out,
                bool accumulate);

// Sets OpenBLAS to one thread (once per process); cpu_linear calls it.
void cpu_blas_single_threaded();

// y[r] += bias for each row: y [rows, width], bias [width].
void cpu_add_bias(float* y, const float* bias, int64_t rows, int64_t width);

// Rotates the halves (x[i], x[i + d/2]) of every head of rows at positions first_position + r, in place:
// x [rows, heads, d]; inv_freq [d/2].
void cpu_rope(float* x, int64_t rows, int heads, int head_dim, int64_t first_position,
              const std::vector<double>& inv_freq);

// gate[i] = silu(gate[i]) * up[i]: gate, up [n].
void cpu_swiglu(float* gate, const float* up, int64_t n);

}  // namespace sacc
