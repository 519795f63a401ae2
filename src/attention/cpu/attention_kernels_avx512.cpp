// The bf16-product inner loops of attention_kernels.h, for CPUs with AVX-512 F/BW/VL/BF16 (Zen 4, Sapphire
// Rapids and later). The whole file is compiled for that set by a target pragma (the build stays plain
// x86-64) and is only entered after best_cpu_attention_isa() has checked CPUID; the fp32 loops of the set
// (odd head dims) are the AVX2 ones.
//
// vdpbf16ps adds two bf16 products to each fp32 lane, twice the multiply-adds of an fp32 FMA of the same
// width. Both matrix products keep the tile's rows in the lanes (16 per register), as the fp32 loops do, and
// broadcast one 32-bit pair of the other operand: the keys straight from their bf16 rows (two consecutive
// dims), the values from rows interleaved in pairs once per block. Register tile: 8 broadcast pairs against
// up to 3 registers of rows, 24 accumulators + 3 row registers + 1 broadcast of the 32 zmm registers.
#include <immintrin.h>

#include <cstring>

#include "attention/cpu/attention_kernels.h"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16"))), \
                             apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512bf16")
// GCC 12's own AVX-512 headers seed the unmasked min/max/roundscale/convert builtins with
// _mm512_undefined_ps(), which -Wmaybe-uninitialized then reports at every inlined call (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace sacc::cpu_attn {
namespace {

constexpr int kLanes = 16;  // fp32 lanes of a zmm register
constexpr int kB = 8;       // broadcast pairs per register tile
static_assert(kPairRowAlign == kLanes);

inline __m512i broadcast_pair(const void* p) {
  uint32_t word;
  std::memcpy(&word, p, sizeof(word));
  return _mm512_set1_epi32(static_cast<int>(word));
}

// Word j of the result takes word kFromTwoHalves[j] of (low half: first operand, high half: second).
alignas(64) constexpr uint16_t kInterleave[32] = {0,  16, 1,  17, 2,  18, 3,  19, 4,  20, 5,
                                                  21, 6,  22, 7,  23, 8,  24, 9,  25, 10, 26,
                                                  11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
// permutex2var indices over (a, b): words 0-15 of a and b interleaved, then words 16-31.
alignas(64) constexpr uint16_t kInterleaveLow[32] = {0,  32, 1,  33, 2,  34, 3,  35, 4,  36, 5,
                                                     37, 6,  38, 7,  39, 8,  40, 9,  41, 10, 42,
                                                     11, 43, 12, 44, 13, 45, 14, 46, 15, 47};
alignas(64) constexpr uint16_t kInterleaveHigh[32] = {16, 48, 17, 49, 18, 50, 19, 51, 20, 52, 21,
                                                      53, 22, 54, 23, 55, 24, 56, 25, 57, 26, 58,
                                                      27, 59, 28, 60, 29, 61, 30, 62, 31, 63};

// 16 words (a[l], b[l]) rounded to bf16 (to nearest even), a's in the low halves.
inline __m512i pair_words(__m512 a, __m512 b, __m512i order) {
  const __m512bh halves = _mm512_cvtne2ps_pbh(b, a);  // a's 16 values in the low half, b's in the high half
  return _mm512_permutexvar_epi16(order, (__m512i)halves);
}

void pack_pairs_avx512(const float* x, int n, int rp, uint32_t* out) {
  const __m512i order = _mm512_load_si512(kInterleave);
  for (int i = 0; i + 1 < n; i += 2) {
    const float* a = x + static_cast<int64_t>(i) * rp;
    const float* b = a + rp;
    uint32_t* o = out + static_cast<int64_t>(i / 2) * rp;
    for (int r = 0; r < rp; r += kLanes)
      _mm512_storeu_si512(o + r, pair_words(_mm512_loadu_ps(a + r), _mm512_loadu_ps(b + r), order));
  }
}

// The AVX2 set's exponential (attention_kernels_avx2.cpp) on 16 lanes: the same operations in the same order.
inline __m512 exp2_avx512(__m512 x) {
  const __m512 lo = _mm512_set1_ps(kExp2Min);
  const __mmask16 kept = _mm512_cmp_ps_mask(x, lo, _CMP_GE_OQ);  // not below 2^-126, and not -inf
  const __m512 c = _mm512_min_ps(_mm512_max_ps(x, lo), _mm512_setzero_ps());
  const __m512 n = _mm512_roundscale_ps(c, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(c, n);  // exact, in [-1/2, 1/2]
  __m512 p = _mm512_set1_ps(kExp2Poly[7]);
  for (int k = 6; k >= 0; --k) p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(kExp2Poly[k]));
  const __m512i power =
      _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  return _mm512_maskz_mul_ps(kept, p, _mm512_castsi512_ps(power));
}

void exp2_rows_avx512(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) _mm512_storeu_ps(y + i, exp2_avx512(_mm512_loadu_ps(x + i)));
  if (i < n) {
    const __mmask16 tail = static_cast<__mmask16>((1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(y + i, tail, exp2_avx512(_mm512_maskz_loadu_ps(tail, x + i)));
  }
}

// The AVX2 softmax's arithmetic on 16 rows at a time, the probabilities leaving in pairs.
void softmax_pairs_avx512(float* s, int rp, const int32_t* key_pos, const int32_t* row_pos, bool masked,
                          float* row_max, float* row_sum, float* rescale, uint32_t* pp) {
  const __m512 minus_inf = _mm512_set1_ps(-__builtin_inff());
  const __m512i order = _mm512_load_si512(kInterleave);
  for (int r0 = 0; r0 < rp; r0 += kLanes) {
    const __m512i pos = _mm512_loadu_si512(row_pos + r0);
    __m512 block_max = minus_inf;
    for (int t = 0; t < kKeyBlock; ++t) {
      float* s_t = s + static_cast<int64_t>(t) * rp + r0;
      __m512 x = _mm512_loadu_ps(s_t);
      if (masked) {
        const __mmask16 hidden = _mm512_cmpgt_epi32_mask(_mm512_set1_epi32(key_pos[t]), pos);
        x = _mm512_mask_mov_ps(x, hidden, minus_inf);
        _mm512_storeu_ps(s_t, x);
      }
      block_max = _mm512_max_ps(x, block_max);
    }
    const __m512 old = _mm512_loadu_ps(row_max + r0);
    const __m512 m = _mm512_max_ps(block_max, old);
    const __m512 reference = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(m, minus_inf, _CMP_NEQ_UQ), m);
    const __m512 factor = exp2_avx512(_mm512_sub_ps(old, reference));
    _mm512_storeu_ps(row_max + r0, m);
    _mm512_storeu_ps(rescale + r0, factor);
    __m512 block_sum = _mm512_setzero_ps();
    for (int t = 0; t < kKeyBlock; t += 2) {
      const float* s_t = s + static_cast<int64_t>(t) * rp + r0;
      const __m512 p0 = exp2_avx512(_mm512_sub_ps(_mm512_loadu_ps(s_t), reference));
      const __m512 p1 = exp2_avx512(_mm512_sub_ps(_mm512_loadu_ps(s_t + rp), reference));
      block_sum = _mm512_add_ps(_mm512_add_ps(block_sum, p0), p1);
      _mm512_storeu_si512(pp + static_cast<int64_t>(t / 2) * rp + r0, pair_words(p0, p1, order));
    }
    _mm512_storeu_ps(row_sum + r0, _mm512_fmadd_ps(_mm512_loadu_ps(row_sum + r0), factor, block_sum));
  }
}

void interleave_rows_avx512(const uint16_t* x, int n, int d, uint32_t* out) {
  const __m512i low = _mm512_load_si512(kInterleaveLow), high = _mm512_load_si512(kInterleaveHigh);
  for (int i = 0; i + 1 < n; i += 2) {
    const uint16_t* a = x + static_cast<int64_t>(i) * d;
    const uint16_t* b = a + d;
    uint32_t* o = out + static_cast<int64_t>(i / 2) * d;
    int c = 0;
    for (; c + 32 <= d; c += 32) {
      const __m512i va = _mm512_loadu_si512(a + c), vb = _mm512_loadu_si512(b + c);
      _mm512_storeu_si512(o + c, _mm512_permutex2var_epi16(va, low, vb));
      _mm512_storeu_si512(o + c + 16, _mm512_permutex2var_epi16(va, high, vb));
    }
    for (; c < d; ++c) o[c] = static_cast<uint32_t>(a[c]) | static_cast<uint32_t>(b[c]) << 16;
  }
}

// s[t0 + i][r0 ..] for i < 8, NV registers of rows from r0: sum over pairs c of k[t0 + i][2c, 2c + 1] .
// qp[c][r0 ..].
template <int NV>
void scores_tile(const uint16_t* k, int d, const uint32_t* qp, int rp, int r0, float* s) {
  for (int t0 = 0; t0 < kKeyBlock; t0 += kB) {
    __m512 acc[kB][NV];
    for (int i = 0; i < kB; ++i)
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_ps();
    const uint16_t* k_t = k + static_cast<int64_t>(t0) * d;
    const uint32_t* q = qp + r0;
    for (int c = 0; c < d; c += 2, q += rp) {
      __m512bh qv[NV];
      for (int v = 0; v < NV; ++v) qv[v] = (__m512bh)_mm512_loadu_si512(q + kLanes * v);
      for (int i = 0; i < kB; ++i) {
        const __m512bh b = (__m512bh)broadcast_pair(k_t + static_cast<int64_t>(i) * d + c);
        for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_dpbf16_ps(acc[i][v], qv[v], b);
      }
    }
    for (int i = 0; i < kB; ++i)
      for (int v = 0; v < NV; ++v)
        _mm512_storeu_ps(s + static_cast<int64_t>(t0 + i) * rp + r0 + kLanes * v, acc[i][v]);
  }
}

void scores_bf16_avx512(const uint16_t* k, int d, const uint32_t* qp, int rp, float* s) {
  int r0 = 0;
  for (; r0 + 3 * kLanes <= rp; r0 += 3 * kLanes) scores_tile<3>(k, d, qp, rp, r0, s);
  if (rp - r0 == 2 * kLanes) scores_tile<2>(k, d, qp, rp, r0, s);
  if (rp - r0 == kLanes) scores_tile<1>(k, d, qp, rp, r0, s);
}

// ot[c0 + i][r0 ..] for i < NA: rescaled, then plus the sum over key pairs t of vp[t][c0 + i] . pp[t][r0 ..].
template <int NA, int NV>
void accumulate_tile(const uint32_t* vp, int d, int c0, const uint32_t* pp, int rp, int r0,
                     const float* rescale, float* ot) {
  __m512 acc[NA][NV];
  for (int j = 0; j < NV; ++j) {
    const __m512 factor = _mm512_loadu_ps(rescale + r0 + kLanes * j);
    for (int i = 0; i < NA; ++i)
      acc[i][j] =
          _mm512_mul_ps(_mm512_loadu_ps(ot + static_cast<int64_t>(c0 + i) * rp + r0 + kLanes * j), factor);
  }
  const uint32_t* v_t = vp + c0;
  const uint32_t* p_t = pp + r0;
  for (int t = 0; t < kKeyBlock / 2; ++t, v_t += d, p_t += rp) {
    __m512bh pv[NV];
    for (int j = 0; j < NV; ++j) pv[j] = (__m512bh)_mm512_loadu_si512(p_t + kLanes * j);
    for (int i = 0; i < NA; ++i) {
      const __m512bh b = (__m512bh)broadcast_pair(v_t + i);
      for (int j = 0; j < NV; ++j) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], pv[j], b);
    }
  }
  for (int i = 0; i < NA; ++i)
    for (int j = 0; j < NV; ++j)
      _mm512_storeu_ps(ot + static_cast<int64_t>(c0 + i) * rp + r0 + kLanes * j, acc[i][j]);
}

template <int NV>
void accumulate_rows(const uint32_t* vp, int d, const uint32_t* pp, int rp, int r0, const float* rescale,
                     float* ot) {
  int c0 = 0;
  for (; c0 + kB <= d; c0 += kB) accumulate_tile<kB, NV>(vp, d, c0, pp, rp, r0, rescale, ot);
  for (; c0 < d; ++c0) accumulate_tile<1, NV>(vp, d, c0, pp, rp, r0, rescale, ot);
}

void accumulate_bf16_avx512(const uint32_t* vp, int d, const uint32_t* pp, int rp, const float* rescale,
                            float* ot) {
  int r0 = 0;
  for (; r0 + 3 * kLanes <= rp; r0 += 3 * kLanes) accumulate_rows<3>(vp, d, pp, rp, r0, rescale, ot);
  if (rp - r0 == 2 * kLanes) accumulate_rows<2>(vp, d, pp, rp, r0, rescale, ot);
  if (rp - r0 == kLanes) accumulate_rows<1>(vp, d, pp, rp, r0, rescale, ot);
}

}  // namespace

const TileKernels& avx512_bf16_kernels() {
  static const TileKernels kernels = [] {
    TileKernels k = avx2_kernels();
    k.exp2 = exp2_rows_avx512;
    k.pack_pairs = pack_pairs_avx512;
    k.softmax_pairs = softmax_pairs_avx512;
    k.interleave_rows = interleave_rows_avx512;
    k.scores_bf16 = scores_bf16_avx512;
    k.accumulate_bf16 = accumulate_bf16_avx512;
    return k;
  }();
  return kernels;
}

}  // namespace sacc::cpu_attn

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
