// The AVX2/FMA inner loops of attention_kernels.h. The whole file is compiled for AVX2/FMA by a target pragma
// (the build stays plain x86-64) and is only entered after best_cpu_attention_isa() has checked CPUID. No
// standard-library templates are instantiated here, so no AVX2 copy of a shared inline function can replace
// the portable one at link.
//
// Both matrix products use one register tile: 4 rows of the row-major operand (4 keys of K, 4 dims of V)
// broadcast against up to 3 vectors of 8 tile rows, 12 accumulators + 3 row vectors + 1 broadcast = the 16
// ymm registers. Per step that is 3 loads and 4 broadcasts for 12 FMAs, inside the two loads and two FMAs a
// cycle of the Zen and Intel cores we target.
#include <immintrin.h>

#include "attention/cpu/attention_kernels.h"

// GCC's pragma, and clang's spelling of the same for the tools that parse with clang (clang-tidy).
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif

namespace sacc::cpu_attn {
namespace {

constexpr int kA = 4;  // rows of the broadcast operand per register tile

inline __m256 exp2_avx2(__m256 x) {
  const __m256 lo = _mm256_set1_ps(kExp2Min);
  const __m256 flushed = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);  // also -inf
  const __m256 c = _mm256_min_ps(_mm256_max_ps(x, lo), _mm256_setzero_ps());
  const __m256 n = _mm256_round_ps(c, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 f = _mm256_sub_ps(c, n);  // exact, in [-1/2, 1/2]
  __m256 p = _mm256_set1_ps(kExp2Poly[7]);
  for (int k = 6; k >= 0; --k) p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(kExp2Poly[k]));
  const __m256i power =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_andnot_ps(flushed, _mm256_mul_ps(p, _mm256_castsi256_ps(power)));
}

void widen_avx2(const uint16_t* in, float* out, int n) {
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i));
    _mm256_storeu_ps(out + i, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)));
  }
  for (; i < n; ++i) {
    const uint32_t bits = static_cast<uint32_t>(in[i]) << 16;
    __builtin_memcpy(out + i, &bits, sizeof(float));
  }
}

// s[t0 + i][r0 ..] for i < 4, NV vectors of rows from r0: sum over c of k[t0 + i][c] * qt[c][r0 ..].
template <int NV>
void scores_tile(const float* k, int d, const float* qt, int rp, int r0, float* s) {
  for (int t0 = 0; t0 < kKeyBlock; t0 += kA) {
    __m256 acc[kA][NV];
    for (int i = 0; i < kA; ++i)
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm256_setzero_ps();
    const float* k_t = k + static_cast<int64_t>(t0) * d;
    const float* q = qt + r0;
    for (int c = 0; c < d; ++c, q += rp) {
      __m256 qv[NV];
      for (int v = 0; v < NV; ++v) qv[v] = _mm256_loadu_ps(q + 8 * v);
      for (int i = 0; i < kA; ++i) {
        const __m256 b = _mm256_broadcast_ss(k_t + static_cast<int64_t>(i) * d + c);
        for (int v = 0; v < NV; ++v) acc[i][v] = _mm256_fmadd_ps(b, qv[v], acc[i][v]);
      }
    }
    for (int i = 0; i < kA; ++i)
      for (int v = 0; v < NV; ++v)
        _mm256_storeu_ps(s + static_cast<int64_t>(t0 + i) * rp + r0 + 8 * v, acc[i][v]);
  }
}

// A tile of the rows at a time, so its slice of qt [d, 8 NV] stays in L1 while the key block streams past.
void scores_avx2(const float* k, int d, const float* qt, int rp, float* s) {
  int r0 = 0;
  for (; r0 + 24 <= rp; r0 += 24) scores_tile<3>(k, d, qt, rp, r0, s);
  if (rp - r0 == 16) scores_tile<2>(k, d, qt, rp, r0, s);
  if (rp - r0 == 8) scores_tile<1>(k, d, qt, rp, r0, s);
}

void softmax_avx2(float* s, int rp, const int32_t* key_pos, const int32_t* row_pos, bool masked,
                  float* row_max, float* row_sum, float* rescale) {
  const __m256 minus_inf = _mm256_set1_ps(-__builtin_inff());
  for (int r0 = 0; r0 < rp; r0 += 8) {
    const __m256i pos = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row_pos + r0));
    __m256 block_max = minus_inf;
    for (int t = 0; t < kKeyBlock; ++t) {
      float* s_t = s + static_cast<int64_t>(t) * rp + r0;
      __m256 x = _mm256_loadu_ps(s_t);
      if (masked) {
        const __m256i hidden = _mm256_cmpgt_epi32(_mm256_set1_epi32(key_pos[t]), pos);
        x = _mm256_blendv_ps(x, minus_inf, _mm256_castsi256_ps(hidden));
        _mm256_storeu_ps(s_t, x);
      }
      block_max = _mm256_max_ps(x, block_max);
    }
    const __m256 old = _mm256_loadu_ps(row_max + r0);
    const __m256 m = _mm256_max_ps(block_max, old);
    const __m256 reference = _mm256_andnot_ps(_mm256_cmp_ps(m, minus_inf, _CMP_EQ_OQ), m);
    const __m256 factor = exp2_avx2(_mm256_sub_ps(old, reference));
    _mm256_storeu_ps(row_max + r0, m);
    _mm256_storeu_ps(rescale + r0, factor);
    __m256 block_sum = _mm256_setzero_ps();
    for (int t = 0; t < kKeyBlock; ++t) {
      float* s_t = s + static_cast<int64_t>(t) * rp + r0;
      const __m256 p = exp2_avx2(_mm256_sub_ps(_mm256_loadu_ps(s_t), reference));
      _mm256_storeu_ps(s_t, p);
      block_sum = _mm256_add_ps(block_sum, p);
    }
    _mm256_storeu_ps(row_sum + r0, _mm256_fmadd_ps(_mm256_loadu_ps(row_sum + r0), factor, block_sum));
  }
}

// ot[c0 + i][r0 ..] for i < NA: rescaled, then plus the sum over keys t of v[t][c0 + i] * p[t][r0 ..].
template <int NA, int NV>
void accumulate_tile(const float* v, int d, int c0, const float* p, int rp, int r0, const float* rescale,
                     float* ot) {
  __m256 acc[NA][NV];
  for (int j = 0; j < NV; ++j) {
    const __m256 factor = _mm256_loadu_ps(rescale + r0 + 8 * j);
    for (int i = 0; i < NA; ++i)
      acc[i][j] = _mm256_mul_ps(_mm256_loadu_ps(ot + static_cast<int64_t>(c0 + i) * rp + r0 + 8 * j), factor);
  }
  const float* v_t = v + c0;
  const float* p_t = p + r0;
  for (int t = 0; t < kKeyBlock; ++t, v_t += d, p_t += rp) {
    __m256 pv[NV];
    for (int j = 0; j < NV; ++j) pv[j] = _mm256_loadu_ps(p_t + 8 * j);
    for (int i = 0; i < NA; ++i) {
      const __m256 b = _mm256_broadcast_ss(v_t + i);
      for (int j = 0; j < NV; ++j) acc[i][j] = _mm256_fmadd_ps(b, pv[j], acc[i][j]);
    }
  }
  for (int i = 0; i < NA; ++i)
    for (int j = 0; j < NV; ++j)
      _mm256_storeu_ps(ot + static_cast<int64_t>(c0 + i) * rp + r0 + 8 * j, acc[i][j]);
}

template <int NV>
void accumulate_rows(const float* v, int d, const float* p, int rp, int r0, const float* rescale, float* ot) {
  int c0 = 0;
  for (; c0 + kA <= d; c0 += kA) accumulate_tile<kA, NV>(v, d, c0, p, rp, r0, rescale, ot);
  for (; c0 < d; ++c0) accumulate_tile<1, NV>(v, d, c0, p, rp, r0, rescale, ot);
}

// A tile of the rows at a time, so its slice of p [Bk, 8 NV] stays in L1 while V's dims stream past.
void accumulate_avx2(const float* v, int d, const float* p, int rp, const float* rescale, float* ot) {
  int r0 = 0;
  for (; r0 + 24 <= rp; r0 += 24) accumulate_rows<3>(v, d, p, rp, r0, rescale, ot);
  if (rp - r0 == 16) accumulate_rows<2>(v, d, p, rp, r0, rescale, ot);
  if (rp - r0 == 8) accumulate_rows<1>(v, d, p, rp, r0, rescale, ot);
}

void exp2_rows_avx2(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, exp2_avx2(_mm256_loadu_ps(x + i)));
  if (i < n) {
    float in[8] = {}, out[8];
    for (int64_t j = i; j < n; ++j) in[j - i] = x[j];
    _mm256_storeu_ps(out, exp2_avx2(_mm256_loadu_ps(in)));
    for (int64_t j = i; j < n; ++j) y[j] = out[j - i];
  }
}

}  // namespace

const TileKernels& avx2_kernels() {
  static const TileKernels kernels{widen_avx2, scores_avx2, softmax_avx2, accumulate_avx2, exp2_rows_avx2,
                                   nullptr,    nullptr,     nullptr,      nullptr,         nullptr};
  return kernels;
}

}  // namespace sacc::cpu_attn

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
