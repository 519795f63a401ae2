// The portable inner loops of attention_kernels.h: plain C++ whose innermost loops run over a tile's rows,
// element-wise, so the compiler vectorises them for the build's baseline ISA without -ffast-math (no loop
// carries a reduction across lanes). The same arithmetic, in the same order per row, as the AVX2 set, except
// that a * b + c rounds twice here and once in an FMA there.
#include <cstring>
#include <limits>

#include "attention/cpu/attention_kernels.h"

namespace sacc::cpu_attn {
namespace {

constexpr float kMinusInf = -std::numeric_limits<float>::infinity();

inline float exp2_portable(float x) {
  const bool flushed = x < kExp2Min;  // also -inf
  const float c = x < kExp2Min ? kExp2Min : (x > 0.0f ? 0.0f : x);
  // Round to nearest even: adding 1.5 * 2^23 leaves no fraction bits (valid for |c| < 2^22).
  const float n = (c + 12582912.0f) - 12582912.0f;
  const float f = c - n;  // exact, in [-1/2, 1/2]
  float p = kExp2Poly[7];
  for (int k = 6; k >= 0; --k) p = p * f + kExp2Poly[k];
  const int32_t bits = (static_cast<int32_t>(n) + 127) * (1 << 23);  // 2^n, n in [-126, 0]
  float power;
  std::memcpy(&power, &bits, sizeof(power));
  return flushed ? 0.0f : p * power;
}

void widen_portable(const uint16_t* in, float* out, int n) {
  for (int i = 0; i < n; ++i) {
    const uint32_t bits = static_cast<uint32_t>(in[i]) << 16;
    std::memcpy(out + i, &bits, sizeof(float));
  }
}

// One key's scores at a time, accumulated over the dims into a row of s that stays in L1.
void scores_portable(const float* k, int d, const float* qt, int rp, float* s) {
  for (int t = 0; t < kKeyBlock; ++t) {
    float* __restrict s_t = s + static_cast<int64_t>(t) * rp;
    const float* k_t = k + static_cast<int64_t>(t) * d;
    for (int r = 0; r < rp; ++r) s_t[r] = 0.0f;
    for (int c = 0; c < d; ++c) {
      const float kc = k_t[c];
      const float* __restrict q_c = qt + static_cast<int64_t>(c) * rp;
      for (int r = 0; r < rp; ++r) s_t[r] += kc * q_c[r];
    }
  }
}

void softmax_portable(float* s, int rp, const int32_t* key_pos, const int32_t* row_pos, bool masked,
                      float* row_max, float* row_sum, float* rescale) {
  constexpr int W = kRowAlign;
  for (int r0 = 0; r0 < rp; r0 += W) {
    float block_max[W], reference[W], block_sum[W];
    for (int l = 0; l < W; ++l) block_max[l] = kMinusInf;
    for (int t = 0; t < kKeyBlock; ++t) {
      float* __restrict s_t = s + static_cast<int64_t>(t) * rp + r0;
      if (masked) {
        const int32_t kp = key_pos[t];
        for (int l = 0; l < W; ++l) s_t[l] = kp > row_pos[r0 + l] ? kMinusInf : s_t[l];
      }
      for (int l = 0; l < W; ++l) block_max[l] = s_t[l] > block_max[l] ? s_t[l] : block_max[l];
    }
    for (int l = 0; l < W; ++l) {
      const float old = row_max[r0 + l];
      const float m = block_max[l] > old ? block_max[l] : old;
      reference[l] = m == kMinusInf ? 0.0f : m;
      rescale[r0 + l] = exp2_portable(old - reference[l]);
      row_max[r0 + l] = m;
      block_sum[l] = 0.0f;
    }
    for (int t = 0; t < kKeyBlock; ++t) {
      float* __restrict s_t = s + static_cast<int64_t>(t) * rp + r0;
      for (int l = 0; l < W; ++l) {
        s_t[l] = exp2_portable(s_t[l] - reference[l]);
        block_sum[l] += s_t[l];
      }
    }
    for (int l = 0; l < W; ++l) row_sum[r0 + l] = row_sum[r0 + l] * rescale[r0 + l] + block_sum[l];
  }
}

// One dim of the accumulator at a time, over the block's keys.
void accumulate_portable(const float* v, int d, const float* p, int rp, const float* rescale, float* ot) {
  for (int c = 0; c < d; ++c) {
    float* __restrict o_c = ot + static_cast<int64_t>(c) * rp;
    for (int r = 0; r < rp; ++r) o_c[r] *= rescale[r];
    for (int t = 0; t < kKeyBlock; ++t) {
      const float vc = v[static_cast<int64_t>(t) * d + c];
      const float* __restrict p_t = p + static_cast<int64_t>(t) * rp;
      for (int r = 0; r < rp; ++r) o_c[r] += vc * p_t[r];
    }
  }
}

void exp2_rows_portable(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = exp2_portable(x[i]);
}

}  // namespace

const TileKernels& portable_kernels() {
  static const TileKernels kernels{widen_portable,
                                   scores_portable,
                                   softmax_portable,
                                   accumulate_portable,
                                   exp2_rows_portable,
                                   nullptr,
                                   nullptr,
                                   nullptr,
                                   nullptr,
                                   nullptr};
  return kernels;
}

}  // namespace sacc::cpu_attn
