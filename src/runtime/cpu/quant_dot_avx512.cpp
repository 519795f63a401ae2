// AVX-512 (F, BW, VL, VNNI) kernels of quant_dot.h. The whole file is compiled for those extensions by a
// target pragma (the build stays plain x86-64) and is only entered after best_quant_isa() has checked CPUID.
// No standard-library templates are instantiated here, so no AVX-512 copy of a shared inline function can
// replace the portable one at link.
//
// The results are bit for bit those of the AVX2 kernels (quant_dot_avx2.cpp): every 32-bit lane holds the
// same exact integer sum of four consecutive products, and the lanes go through the same float operations in
// the same order. What changes is how many dots one instruction serves:
// * Two weight rows share a zmm register (row 0's sub-block in the low 256 bits, row 1's in the high) against
//   one activation block broadcast to both halves (a broadcast load, no shuffle): each 512-bit instruction of
//   the inner loop serves two dots, and a weight pair is decoded once for the tile's activation rows.
// * vpdpbusd forms and sums the four u8 x s8 products of a lane in one instruction, where AVX2 needs maddubs
//   then madd. The signed formats give it |w| and the activations negated where w < 0 (one masked
//   subtraction: AVX-512 has no sign_epi8); the same integers as AVX2's sign / maddubs / madd.
// * The fifth bits of Q5_x and the sign bits of Q6_K become k-masks directly instead of compare results.
// A single weight row (decode, the last row of an odd task) takes the same code on 256-bit registers (VL).
//
// On the project's Zen 4 EPYC (one thread, 2 x 8 tiles of 896- or 1024-column rows) the inner loops ran
// 1.1-1.3x the AVX2 ones' speed: Q5_0 27 -> 20 ns per 1024-element dot, Q8_0 25 -> 20, Q4_K 29 -> 26, Q6_K 24
// -> 23. Zen 4 runs a 512-bit operation as two 256-bit halves; the Q5_0 ratio (0.75) fits a loop bound by its
// multiplies (vpdpbusd, the scale product, the FMA: 3 per two dots against AVX2's 4 per dot at half width).
// Two ways of forming the sixteen scale products of a pair and 8 rows with one multiply (then vpermps per
// row), and of summing Q4_K's minima with one FMA per sub-block (from scales transposed per tile call),
// measured slower and were not kept.
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12's AVX-512 headers make their "undefined" vectors by initialising a variable from itself
// (`__m512i __Y = __Y;`, in the inserts, extracts, broadcasts and conversions), which -Wuninitialized reports
// wherever they are inlined; no kernel here reads an uninitialised value. Before the includes, so it covers
// the headers' lines.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <immintrin.h>

#include "runtime/cpu/quant_dot.h"
#include "runtime/cpu/quant_formats.h"

// GCC's pragma, and clang's spelling of the same for the tools that parse with clang (clang-tidy).
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c"))), \
                             apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")
#endif

namespace sacc {
namespace {

using namespace quant;

inline __m256i load256(const uint8_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}
inline __m128i load128(const uint8_t* p) {
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
}

inline float horizontal_sum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float half_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, sizeof(h));
  return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h)));
}

// Two weight rows, one per 256-bit half of a zmm register. Loads take the row-0 and row-1 addresses.
struct Pair {
  using I = __m512i;
  using F = __m512;
  using M = __mmask64;
  static constexpr int kRows = 2;
  static I load32(const uint8_t* a, const uint8_t* b) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(load256(a)), load256(b), 1);
  }
  // 16 bytes of nibble pairs per row -> each half: low nibbles (elements 0-15), then high nibbles (16-31).
  static I nibbles(const uint8_t* a, const uint8_t* b) {
    const I x = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_broadcastsi128_si256(load128(a))),
                                   _mm256_broadcastsi128_si256(load128(b)), 1);
    return _mm512_and_si512(_mm512_mask_srli_epi16(x, 0xff00ff00u, x, 4), _mm512_set1_epi8(0x0f));
  }
  // Bit i of each row's little-endian uint32 at a (b) -> mask bit i (32 + i).
  static M bits(const uint8_t* a, const uint8_t* b, bool invert) {
    const uint64_t v = u32_at(a) | (static_cast<uint64_t>(u32_at(b)) << 32);
    return _cvtu64_mask64(invert ? ~v : v);
  }
  // The activation block, the same for both rows.
  static I act(const int8_t* q) {
    return _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(q)));
  }
  static F pair(float a, float b) {
    return _mm512_castpd_ps(
        _mm512_insertf64x4(_mm512_castps_pd(_mm512_set1_ps(a)), _mm256_castps_pd(_mm256_set1_ps(b)), 1));
  }
  // Q6_K: a super-block's sixteen int8 scales per row -> int16, row 0's then row 1's.
  static I q6_scales(const uint8_t* a, const uint8_t* b) {
    return _mm512_cvtepi8_epi16(_mm256_inserti128_si256(_mm256_castsi128_si256(load128(a)), load128(b), 1));
  }
  // The int16 multipliers of sub-block j: each 128-bit lane (8 products of madd) one half's scale,
  // sc[2j] then sc[2j + 1] per row.
  static I q6_mul(I scales, int j) {
    const I base = _mm512_setr_epi32(0, 0, 0, 0, 0x10001, 0x10001, 0x10001, 0x10001, 0x100010, 0x100010,
                                     0x100010, 0x100010, 0x110011, 0x110011, 0x110011, 0x110011);
    return _mm512_permutexvar_epi16(_mm512_add_epi16(base, _mm512_set1_epi16(static_cast<int16_t>(2 * j))),
                                    scales);
  }
  static void store(F acc, const float* offset, float* y) {
    y[0] = horizontal_sum(_mm512_castps512_ps256(acc)) + offset[0];
    y[1] = horizontal_sum(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc), 1))) + offset[1];
  }
  static I zero() { return _mm512_setzero_si512(); }
  static F zero_ps() { return _mm512_setzero_ps(); }
  static I set8(int v) { return _mm512_set1_epi8(static_cast<char>(v)); }
  static I and_(I a, I b) { return _mm512_and_si512(a, b); }
  static I sub8(I a, I b) { return _mm512_sub_epi8(a, b); }
  static I abs8(I a) { return _mm512_abs_epi8(a); }
  static M sign_mask(I a) { return _mm512_movepi8_mask(a); }
  static M testn8(I a, I b) { return _mm512_testn_epi8_mask(a, b); }
  static I mask_sub8(I src, M k, I a, I b) { return _mm512_mask_sub_epi8(src, k, a, b); }
  static I mask_add8(I src, M k, I a, I b) { return _mm512_mask_add_epi8(src, k, a, b); }
  static I srl16(I a, int n) { return _mm512_srl_epi16(a, _mm_cvtsi32_si128(n)); }
  static I sll16(I a, int n) { return _mm512_sll_epi16(a, _mm_cvtsi32_si128(n)); }
  static I or_and(I a, I b, I c) { return _mm512_ternarylogic_epi32(a, b, c, 0xf8); }  // a | (b & c)
  static I dpbusd(I acc, I u, I s) { return _mm512_dpbusd_epi32(acc, u, s); }
  static I maddubs(I u, I s) { return _mm512_maddubs_epi16(u, s); }
  static I dpwssd(I acc, I a, I b) { return _mm512_dpwssd_epi32(acc, a, b); }
  static F cvt(I a) { return _mm512_cvtepi32_ps(a); }
  static F set1(float v) { return _mm512_set1_ps(v); }
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F fmadd(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
};

// One weight row on 256-bit registers; the second address of each load is ignored.
struct Single {
  using I = __m256i;
  using F = __m256;
  using M = __mmask32;
  static constexpr int kRows = 1;
  static I load32(const uint8_t* a, const uint8_t*) { return load256(a); }
  static I nibbles(const uint8_t* a, const uint8_t*) {
    const I x = _mm256_broadcastsi128_si256(load128(a));
    return _mm256_and_si256(_mm256_mask_srli_epi16(x, 0xff00, x, 4), _mm256_set1_epi8(0x0f));
  }
  static M bits(const uint8_t* a, const uint8_t*, bool invert) {
    const uint32_t v = u32_at(a);
    return _cvtu32_mask32(invert ? ~v : v);
  }
  static I act(const int8_t* q) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q)); }
  static F pair(float a, float) { return _mm256_set1_ps(a); }
  static I q6_scales(const uint8_t* a, const uint8_t*) { return _mm256_cvtepi8_epi16(load128(a)); }
  static I q6_mul(I scales, int j) {
    const I base = _mm256_setr_epi32(0, 0, 0, 0, 0x10001, 0x10001, 0x10001, 0x10001);
    return _mm256_permutexvar_epi16(_mm256_add_epi16(base, _mm256_set1_epi16(static_cast<int16_t>(2 * j))),
                                    scales);
  }
  static void store(F acc, const float* offset, float* y) { y[0] = horizontal_sum(acc) + offset[0]; }
  static I zero() { return _mm256_setzero_si256(); }
  static F zero_ps() { return _mm256_setzero_ps(); }
  static I set8(int v) { return _mm256_set1_epi8(static_cast<char>(v)); }
  static I and_(I a, I b) { return _mm256_and_si256(a, b); }
  static I sub8(I a, I b) { return _mm256_sub_epi8(a, b); }
  static I abs8(I a) { return _mm256_abs_epi8(a); }
  static M sign_mask(I a) { return _mm256_movepi8_mask(a); }
  static M testn8(I a, I b) { return _mm256_testn_epi8_mask(a, b); }
  static I mask_sub8(I src, M k, I a, I b) { return _mm256_mask_sub_epi8(src, k, a, b); }
  static I mask_add8(I src, M k, I a, I b) { return _mm256_mask_add_epi8(src, k, a, b); }
  static I srl16(I a, int n) { return _mm256_srl_epi16(a, _mm_cvtsi32_si128(n)); }
  static I sll16(I a, int n) { return _mm256_sll_epi16(a, _mm_cvtsi32_si128(n)); }
  static I or_and(I a, I b, I c) { return _mm256_ternarylogic_epi32(a, b, c, 0xf8); }
  static I dpbusd(I acc, I u, I s) { return _mm256_dpbusd_epi32(acc, u, s); }
  static I maddubs(I u, I s) { return _mm256_maddubs_epi16(u, s); }
  static I dpwssd(I acc, I a, I b) { return _mm256_dpwssd_epi32(acc, a, b); }
  static F cvt(I a) { return _mm256_cvtepi32_ps(a); }
  static F set1(float v) { return _mm256_set1_ps(v); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F fmadd(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
};

// A decoded sub-block: for the signed formats |w| and the mask of the elements with w < 0; for the others w
// (all >= 0) and an empty mask.
template <class V>
struct Weights {
  typename V::I mag;
  typename V::M neg;
};

// One decoder per format (chosen by overloading on the format's tag), the sub-block index used by the
// K-quants. w = n - 8.
template <class V>
Weights<V> decode(Q4_0, const uint8_t* b0, const uint8_t* b1, int) {
  const typename V::I w = V::sub8(V::nibbles(b0 + 2, b1 + 2), V::set8(8));
  return {V::abs8(w), V::sign_mask(w)};
}
template <class V>
Weights<V> decode(Q4_1, const uint8_t* b0, const uint8_t* b1, int) {
  return {V::nibbles(b0 + 4, b1 + 4), 0};
}
// n = nibble + 16 * bit, w = n - 16: where the bit is set w is the nibble, else w = nibble - 16 < 0 and
// |w| = 16 - nibble.
template <class V>
Weights<V> decode(Q5_0, const uint8_t* b0, const uint8_t* b1, int) {
  const typename V::I n = V::nibbles(b0 + 6, b1 + 6);
  const typename V::M neg = V::bits(b0 + 2, b1 + 2, true);
  return {V::mask_sub8(n, neg, V::set8(16), n), neg};
}
template <class V>
Weights<V> decode(Q5_1, const uint8_t* b0, const uint8_t* b1, int) {
  const typename V::I n = V::nibbles(b0 + 8, b1 + 8);
  return {V::mask_add8(n, V::bits(b0 + 4, b1 + 4, false), n, V::set8(16)), 0};
}
template <class V>
Weights<V> decode(Q8_0, const uint8_t* b0, const uint8_t* b1, int) {
  const typename V::I w = V::load32(b0 + 2, b1 + 2);
  return {V::abs8(w), V::sign_mask(w)};
}
template <class V>
Weights<V> decode(Q4_K, const uint8_t* b0, const uint8_t* b1, int sub) {
  const int at = 16 + 32 * (sub / 2);
  typename V::I q = V::load32(b0 + at, b1 + at);
  if (sub & 1) q = V::srl16(q, 4);
  return {V::and_(q, V::set8(0x0f)), 0};
}
// Sub-block s = 4h + k: n = low 4 bits from ql, bits 4-5 from bits 2k, 2k + 1 of qh; w = n - 32. With n5 =
// n's low five bits, w = n5 where bit 5 is set and n5 - 32 < 0 where it is clear (|w| = 32 - n5).
template <class V>
Weights<V> decode(Q6_K, const uint8_t* b0, const uint8_t* b1, int sub) {
  const int h = sub / 4, k = sub % 4;
  const int at_l = 64 * h + 32 * (k & 1), at_h = 128 + 32 * h;
  typename V::I ql = V::load32(b0 + at_l, b1 + at_l);
  if (k >= 2) ql = V::srl16(ql, 4);
  const typename V::I qh = V::load32(b0 + at_h, b1 + at_h);
  const typename V::I high = k < 2 ? V::sll16(qh, 4 - 2 * k) : V::srl16(qh, 2 * k - 4);  // bit 2k -> bit 4
  const typename V::I n5 = V::or_and(V::and_(ql, V::set8(0x0f)), high, V::set8(0x10));
  const typename V::M neg = V::testn8(qh, V::set8(2 << (2 * k)));
  return {V::mask_sub8(n5, neg, V::set8(32), n5), neg};
}

// A block's scales as quant::block_scales gives them, its halves converted by F16C (the same floats).
template <class F>
inline void f16c_scales(const uint8_t* b, SubScale* s) {
  float half[2] = {0.0f, 0.0f};
  for (int k = 0; k < F::kHalves; ++k) half[k] = half_at(b + F::kHalfAt[k]);
  F::scales(b, half, s);
}

// c + a * b rounded once (as the AVX2 kernels spell it, so the offsets round alike).
inline float fused_multiply_add(float a, float b, float c) {
  return _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(a), _mm_set_ss(b), _mm_set_ss(c)));
}

// V::kRows weight rows by NR activation rows, every format but Q6_K: AVX2's dot_tile, one accumulator per
// activation row holding both weight rows' lanes. Per sub-block and activation row: a broadcast load, (signed
// formats) the masked negation, vpdpbusd, the conversion, the scale product and the FMA; the float minimum of
// Q4_1, Q5_1 and Q4_K is summed apart in scalars exactly as AVX2 does.
template <class F, class V, int NR>
void dot_tile(const uint8_t* w, int64_t w_stride, const ActBlock* x, int64_t x_stride, int64_t n_act_blocks,
              float* y, int64_t y_stride) {
  static_assert(!(F::kSubs == 8 && F::kSigned), "Q6_K takes dot_tile_super");
  constexpr int NW = V::kRows;
  typename V::F acc[NR];
  float offset[NR][2] = {};
  for (int r = 0; r < NR; ++r) acc[r] = V::zero_ps();
  SubScale s[2][F::kSubs];
  const int64_t n_blocks = n_act_blocks / F::kSubs;
  const uint8_t* row1 = w + (NW - 1) * w_stride;
  for (int64_t b = 0; b < n_blocks; ++b) {
    const uint8_t* b0 = w + b * F::kBytes;
    const uint8_t* b1 = row1 + b * F::kBytes;
    for (int i = 0; i < NW; ++i) f16c_scales<F>(i == 0 ? b0 : b1, s[i]);
    for (int sub = 0; sub < F::kSubs; ++sub) {
      const Weights<V> wd = decode<V>(F{}, b0, b1, sub);
      const typename V::F scale = V::pair(s[0][sub].scale, s[NW - 1][sub].scale);
      for (int r = 0; r < NR; ++r) {
        const ActBlock& a = x[r * x_stride + b * F::kSubs + sub];
        typename V::I q = V::act(a.q);
        if constexpr (F::kSigned) q = V::mask_sub8(q, wd.neg, V::zero(), q);
        const typename V::I products = V::dpbusd(V::zero(), wd.mag, q);
        acc[r] = V::fmadd(V::cvt(products), V::mul(scale, V::set1(a.d)), acc[r]);
        if constexpr (!F::kSigned)
          for (int i = 0; i < NW; ++i) offset[r][i] = fused_multiply_add(s[i][sub].c, a.ds, offset[r][i]);
      }
    }
  }
  for (int r = 0; r < NR; ++r) V::store(acc[r], offset[r], y + r * y_stride);
}

// Q6_K, AVX2's dot_row_super for V::kRows weight rows at once: a super-block's products are summed in int32
// with its int16 scales (maddubs, then vpdpwssd: the same integers as maddubs, madd and add), one conversion
// and one FMA per super-block and activation row.
template <class F, class V, int NR>
void dot_tile_super(const uint8_t* w, int64_t w_stride, const ActBlock* x, int64_t x_stride,
                    int64_t n_act_blocks, float* y, int64_t y_stride) {
  static_assert(F::kSigned && F::kSubs == 8, "a signed K-quant");
  constexpr int NW = V::kRows;
  typename V::F acc[NR];
  for (int r = 0; r < NR; ++r) acc[r] = V::zero_ps();
  const uint8_t* row1 = w + (NW - 1) * w_stride;
  for (int64_t b = 0; b < n_act_blocks / F::kSubs; ++b) {
    const uint8_t* b0 = w + b * F::kBytes;
    const uint8_t* b1 = row1 + b * F::kBytes;
    const typename V::F d = V::pair(half_at(b0 + F::kHalfAt[0]), half_at(b1 + F::kHalfAt[0]));
    const typename V::I scales = V::q6_scales(b0 + 192, b1 + 192);
    const ActBlock* a = x + b * F::kSubs;
    typename V::I sums[NR];
    for (int r = 0; r < NR; ++r) sums[r] = V::zero();
    for (int sub = 0; sub < F::kSubs; ++sub) {
      const Weights<V> wd = decode<V>(F{}, b0, b1, sub);
      const typename V::I m = V::q6_mul(scales, sub);
      for (int r = 0; r < NR; ++r) {
        const typename V::I q = V::act(a[r * x_stride + sub].q);
        const typename V::I q_signed = V::mask_sub8(q, wd.neg, V::zero(), q);
        sums[r] = V::dpwssd(sums[r], V::maddubs(wd.mag, q_signed), m);
      }
    }
    for (int r = 0; r < NR; ++r)
      acc[r] = V::fmadd(V::cvt(sums[r]), V::mul(d, V::set1(a[r * x_stride].d)), acc[r]);
  }
  const float no_offset[2] = {0.0f, 0.0f};
  for (int r = 0; r < NR; ++r) V::store(acc[r], no_offset, y + r * y_stride);
}

using TileKernel = void (*)(const uint8_t* w, int64_t w_stride, const ActBlock* x, int64_t x_stride,
                            int64_t n_act_blocks, float* y, int64_t y_stride);

template <class F, class V, int NR>
constexpr TileKernel tile_kernel() {
  if constexpr (F::kSubs == 8 && F::kSigned) {
    return dot_tile_super<F, V, NR>;
  } else {
    return dot_tile<F, V, NR>;
  }
}

// The tile kernels of one width for heights 1..kMaxTileRows, indexed by height - 1.
template <class F, class V, int... NR>
constexpr TileKernel kHeights[] = {tile_kernel<F, V, NR>()...};

template <class F>
void dot_avx512(const uint8_t* w, int64_t w_stride, int nw, const ActBlock* x, int64_t x_stride, int nr,
                int64_t n_act_blocks, float* y, int64_t y_stride) {
  static_assert(kMaxTileWeights == 2 && kMaxTileRows == 8, "the tables below list every tile shape");
  const TileKernel kernel = nw == 1 ? kHeights<F, Single, 1, 2, 3, 4, 5, 6, 7, 8>[nr - 1]
                                    : kHeights<F, Pair, 1, 2, 3, 4, 5, 6, 7, 8>[nr - 1];
  kernel(w, w_stride, x, x_stride, n_act_blocks, y, y_stride);
}

}  // namespace

QuantTileFn quant_dot_avx512(GgmlType type) {
  switch (type) {
    case GgmlType::Q4_0:
      return dot_avx512<Q4_0>;
    case GgmlType::Q4_1:
      return dot_avx512<Q4_1>;
    case GgmlType::Q5_0:
      return dot_avx512<Q5_0>;
    case GgmlType::Q5_1:
      return dot_avx512<Q5_1>;
    case GgmlType::Q8_0:
      return dot_avx512<Q8_0>;
    case GgmlType::Q4_K:
      return dot_avx512<Q4_K>;
    case GgmlType::Q6_K:
      return dot_avx512<Q6_K>;
    default:
      return nullptr;
  }
}

}  // namespace sacc

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
