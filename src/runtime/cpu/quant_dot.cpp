// Activation quantisation, the portable scalar kernels and the run-time choice of kernel family.
#include "runtime/cpu/quant_dot.h"

#include <algorithm>
#include <cmath>

#include "core/cpu_isa.h"
#include "runtime/cpu/quant_formats.h"

namespace sacc {
namespace {

// The reference: every sub-block unpacked to integers, summed exactly in int32, scaled once per half. A tile
// is its weight rows one after another (the reference needs no reuse).
template <class F>
void dot_scalar(const uint8_t* w, int64_t w_stride, int nw, const ActBlock* x, int64_t x_stride, int nr,
                int64_t n_act_blocks, float* y, int64_t y_stride) {
  const int64_t n_blocks = n_act_blocks / F::kSubs;
  quant::SubScale s[F::kSubs];
  int16_t q[kActBlock];
  for (int i = 0; i < nw; ++i) {
    const uint8_t* w_row = w + i * w_stride;
    float* y_i = y + i;
    for (int r = 0; r < nr; ++r) y_i[r * y_stride] = 0.0f;
    for (int64_t b = 0; b < n_blocks; ++b) {
      const uint8_t* block = w_row + b * F::kBytes;
      quant::block_scales<F>(block, s);
      for (int sub = 0; sub < F::kSubs; ++sub) {
        F::unpack(block, sub, q);
        for (int r = 0; r < nr; ++r) {
          const ActBlock& a = x[r * x_stride + b * F::kSubs + sub];
          int32_t half[2] = {0, 0};
          for (int e = 0; e < kActBlock; ++e) half[e / 16] += q[e] * a.q[e];
          const float products = static_cast<float>(s[sub].mul[0] * half[0] + s[sub].mul[1] * half[1]);
          y_i[r * y_stride] +=
              a.d * (s[sub].scale * products + s[sub].c * static_cast<float>(a.sum[0] + a.sum[1]));
        }
      }
    }
  }
}

}  // namespace

void quantize_act_rows(const float* x, int64_t rows, int64_t cols, ActBlock* out, int64_t group) {
  if (best_quant_isa() != QuantIsa::SCALAR) {
    quantize_act_rows_avx2(x, rows, cols, out, group);
  } else {
    quantize_act_rows_scalar(x, rows, cols, out, group);
  }
}

void quantize_act_rows_scalar(const float* x, int64_t rows, int64_t cols, ActBlock* out, int64_t group) {
  const int64_t n_blocks = cols / kActBlock, span = group * kActBlock;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t g = 0; g < n_blocks / group; ++g) {
      const float* v = x + r * cols + g * span;
      float amax = 0.0f;
      for (int64_t i = 0; i < span; ++i) amax = std::max(amax, std::fabs(v[i]));
      const float d = amax / 127.0f, inv = amax > 0.0f ? 127.0f / amax : 0.0f;
      for (int64_t k = 0; k < group; ++k) {
        ActBlock& a = out[r * n_blocks + g * group + k];
        a.d = d;
        int sums[2] = {0, 0};
        for (int i = 0; i < kActBlock; ++i) {
          a.q[i] = static_cast<int8_t>(std::nearbyint(v[k * kActBlock + i] * inv));
          sums[i / 16] += a.q[i];
        }
        a.sum[0] = static_cast<int16_t>(sums[0]);
        a.sum[1] = static_cast<int16_t>(sums[1]);
        a.ds = a.d * static_cast<float>(sums[0] + sums[1]);
      }
    }
  }
}

int64_t quant_act_group(GgmlType type) {
  return type == GgmlType::Q6_K ? 8 : 1;
}

bool cpu_runs_quant_isa(QuantIsa isa) {
  __builtin_cpu_init();
  const bool avx2 =
      __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  switch (isa) {
    case QuantIsa::SCALAR:
      return true;
    case QuantIsa::AVX2:
      return avx2;
    case QuantIsa::AVX512:
      return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
  }
  return false;
}

QuantIsa best_quant_isa() {
  static const QuantIsa isa = [] {
    const CpuIsaCap cap = cpu_isa_cap();
    if (cap >= CpuIsaCap::AVX512 && cpu_runs_quant_isa(QuantIsa::AVX512)) return QuantIsa::AVX512;
    if (cap >= CpuIsaCap::AVX2 && cpu_runs_quant_isa(QuantIsa::AVX2)) return QuantIsa::AVX2;
    return QuantIsa::SCALAR;
  }();
  return isa;
}

const char* quant_isa_name(QuantIsa isa) {
  switch (isa) {
    case QuantIsa::AVX512:
      return "avx512";
    case QuantIsa::AVX2:
      return "avx2";
    case QuantIsa::SCALAR:
      break;
  }
  return "scalar";
}

bool quant_dot_supported(GgmlType type) {
  return quant_dot_scalar(type) != nullptr;
}

// A format without a kernel in the chosen family falls back to the next family down.
QuantTileFn quant_dot_kernel(GgmlType type, QuantIsa isa) {
  if (isa == QuantIsa::AVX512) {
    if (QuantTileFn f = quant_dot_avx512(type)) return f;
    isa = QuantIsa::AVX2;
  }
  if (isa == QuantIsa::AVX2) {
    if (QuantTileFn f = quant_dot_avx2(type)) return f;
  }
  return quant_dot_scalar(type);
}

QuantTileFn quant_dot_scalar(GgmlType type) {
  switch (type) {
    case GgmlType::Q4_0:
      return dot_scalar<quant::Q4_0>;
    case GgmlType::Q4_1:
      return dot_scalar<quant::Q4_1>;
    case GgmlType::Q5_0:
      return dot_scalar<quant::Q5_0>;
    case GgmlType::Q5_1:
      return dot_scalar<quant::Q5_1>;
    case GgmlType::Q8_0:
      return dot_scalar<quant::Q8_0>;
    case GgmlType::Q4_K:
      return dot_scalar<quant::Q4_K>;
    case GgmlType::Q6_K:
      return dot_scalar<quant::Q6_K>;
    default:
      return nullptr;
  }
}

}  // namespace sacc
