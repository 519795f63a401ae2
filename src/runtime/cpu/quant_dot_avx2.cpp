// AVX2 kernels of quant_dot.h. The whole file is compiled for AVX2/FMA/F16C by a target pragma (the build
// stays plain x86-64) and is only entered after best_quant_isa() has checked CPUID. No standard-library
// templates are instantiated here, so no AVX2 copy of a shared inline function can replace the portable one
// at link.
#include <immintrin.h>

#include "runtime/cpu/quant_dot.h"
#include "runtime/cpu/quant_formats.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

namespace sacc {
namespace {

using namespace quant;

// 16 bytes of nibble pairs -> 32 bytes: low nibbles (elements 0-15), then high nibbles (elements 16-31).
inline __m256i split_nibbles(const uint8_t* qs) {
  const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(x, 4), x), _mm256_set1_epi8(0x0f));
}

// Byte i = 0xff where bit i of `bits` is set: each byte picks the source byte i / 8, then tests bit i % 8.
inline __m256i fifth_bit_mask(uint32_t bits) {
  const __m256i spread =
      _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(bits)),
                          _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2,
                                           2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
  const __m256i mask = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ull));
  return _mm256_cmpeq_epi8(_mm256_and_si256(spread, mask), mask);
}

template <class F>
__m256i load_w(const uint8_t* b, int sub);

template <>
__m256i load_w<Q4_0>(const uint8_t* b, int) {
  return _mm256_sub_epi8(split_nibbles(b + 2), _mm256_set1_epi8(8));
}
template <>
__m256i load_w<Q4_1>(const uint8_t* b, int) {
  return split_nibbles(b + 4);
}
// n - 16 for n = nibble + 16 * bit is the nibble itself where the bit is set and the nibble with the byte's
// top four bits set (nibble - 16 in two's complement) where it is clear: one andnot instead of a subtraction.
template <>
__m256i load_w<Q5_0>(const uint8_t* b, int) {
  return _mm256_or_si256(split_nibbles(b + 6),
                         _mm256_andnot_si256(fifth_bit_mask(u32_at(b + 2)), _mm256_set1_epi8(-16)));
}
template <>
__m256i load_w<Q5_1>(const uint8_t* b, int) {
  return _mm256_or_si256(split_nibbles(b + 8),
                         _mm256_and_si256(fifth_bit_mask(u32_at(b + 4)), _mm256_set1_epi8(0x10)));
}
template <>
__m256i load_w<Q8_0>(const uint8_t* b, int) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 2));
}
template <>
__m256i load_w<Q4_K>(const uint8_t* b, int sub) {
  const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 16 + 32 * (sub / 2)));
  const __m256i shifted = (sub & 1) ? _mm256_srli_epi16(q, 4) : q;
  return _mm256_and_si256(shifted, _mm256_set1_epi8(0x0f));
}
template <>
__m256i load_w<Q6_K>(const uint8_t* b, int sub) {
  const int h = sub / 4, k = sub % 4;
  __m256i ql = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 64 * h + 32 * (k & 1)));
  if (k >= 2) ql = _mm256_srli_epi16(ql, 4);
  ql = _mm256_and_si256(ql, _mm256_set1_epi8(0x0f));
  __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 128 + 32 * h));
  qh = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * k)), _mm256_set1_epi8(3));
  return _mm256_sub_epi8(_mm256_or_si256(ql, _mm256_slli_epi16(qh, 4)), _mm256_set1_epi8(32));
}

// A block's scales as quant::block_scales gives them, its halves converted by F16C (one instruction against
// the portable routine's dozen, and the same floats).
template <class F>
inline void f16c_scales(const uint8_t* b, SubScale* s) {
  float half[2] = {0.0f, 0.0f};
  for (int k = 0; k < F::kHalves; ++k) {
    uint16_t h;
    std::memcpy(&h, b + F::kHalfAt[k], sizeof(h));
    // Through movd rather than _cvtsh_ss: GCC spells that as pinsrw into a live register, a dependency on the
    // previous block's conversion.
    half[k] = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h)));
  }
  F::scales(b, half, s);
}

// c + a * b rounded once, spelled out: left to the compiler, whether it contracts the offset sums depends on
// the tile's shape, and a dot would then change with the rows it was tiled with.
inline float fused_multiply_add(float a, float b, float c) {
  return _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(a), _mm_set_ss(b), _mm_set_ss(c)));
}

inline float horizontal_sum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// A tile of NW weight rows by NR activation rows (every format but Q6_K). Per sub-block each weight row is
// decoded once into a register and reused by the NR activation rows; each activation block is loaded
// once and reused by the NW weight rows. Signed formats take |w| and move w's sign onto the activations
// (maddubs multiplies u8 by s8); maddubs forms the pair sums in int16 (|w| <= 128, |q| <= 127: below 2^15),
// madd widens them to int32. A float minimum (Q4_1, Q5_1, Q4_K) is summed apart as c * (d_x * Σ q) and added
// at the end, as the kernels before the signed formats did (the same bits, so Q4_1 models give the same
// logits); the signed formats have no such sum, so their NW x NR fp32 accumulators, the decoded weights and
// their scales fit the 16 ymm registers. Each (weight row, activation row) dot sees the same operations in
// the same order as in a tile of any other shape, so tiling never changes a result.
template <class F, int NW, int NR>
void dot_tile(const uint8_t* w, int64_t w_stride, const ActBlock* x, int64_t x_stride, int64_t n_act_blocks,
              float* y, int64_t y_stride) {
  static_assert(!(F::kSubs == 8 && F::kSigned), "Q6_K takes dot_row_super");
  __m256 acc[NW][NR];
  float offset[NW][NR];
  for (int i = 0; i < NW; ++i)
    for (int r = 0; r < NR; ++r) {
      acc[i][r] = _mm256_setzero_ps();
      offset[i][r] = 0.0f;
    }
  const __m256i ones = _mm256_set1_epi16(1);
  SubScale s[NW][F::kSubs];
  const int64_t n_blocks = n_act_blocks / F::kSubs;
  for (int64_t b = 0; b < n_blocks; ++b) {
    const uint8_t* block[NW];
    for (int i = 0; i < NW; ++i) {
      block[i] = w + i * w_stride + b * F::kBytes;
      f16c_scales<F>(block[i], s[i]);
    }
    for (int sub = 0; sub < F::kSubs; ++sub) {
      __m256i w_signed[NW], w_unsigned[NW];
      __m256 scale[NW];
      for (int i = 0; i < NW; ++i) {
        scale[i] = _mm256_set1_ps(s[i][sub].scale);
        w_signed[i] = load_w<F>(block[i], sub);
        w_unsigned[i] = F::kSigned ? _mm256_sign_epi8(w_signed[i], w_signed[i]) : w_signed[i];
      }
      for (int r = 0; r < NR; ++r) {
        const ActBlock& a = x[r * x_stride + b * F::kSubs + sub];
        const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.q));
        // The scale is the vector product of the weight's and the activation's broadcast scales. Left alone,
        // GCC multiplies the two floats and broadcasts the product per pair: one more vector op per pair
        // than a broadcast load, which costs no vector pipe (the 32-element formats ran 6-12 % faster).
        __m256 d = _mm256_set1_ps(a.d);
        __asm__("" : "+x"(d));
        for (int i = 0; i < NW; ++i) {
          const __m256i q_signed = F::kSigned ? _mm256_sign_epi8(q, w_signed[i]) : q;
          const __m256i products = _mm256_madd_epi16(_mm256_maddubs_epi16(w_unsigned[i], q_signed), ones);
          acc[i][r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(products), _mm256_mul_ps(scale[i], d), acc[i][r]);
          if (!F::kSigned) offset[i][r] = fused_multiply_add(s[i][sub].c, a.ds, offset[i][r]);
        }
      }
    }
  }
  for (int i = 0; i < NW; ++i)
    for (int r = 0; r < NR; ++r) y[r * y_stride + i] = horizontal_sum(acc[i][r]) + offset[i][r];
}

// One weight row of Q6_K against NR activation rows, a super-block at a time in integers: the eight
// activation blocks under a super-block share one scale (quant_act_group) and the sixteen scales of a
// super-block are int8, so madd applies them in int32 and a super-block costs one conversion and one FMA
// per activation row instead of eight (|w| <= 32, |q| <= 127, |scale| <= 128: the sums stay below 2^25).
// Q4_K stays on dot_tile: its minimum term, c_j * d_x * Σ q per sub-block, would need the eight blocks'
// sums gathered per row, which measured slower than its per-block kernel.
template <class F, int NR>
void dot_row_super(const uint8_t* w, const ActBlock* x, int64_t x_stride, int64_t n_act_blocks, float* y,
                   int64_t y_stride) {
  static_assert(F::kSigned && F::kSubs == 8, "a signed K-quant");
  __m256 acc[NR];
  for (int r = 0; r < NR; ++r) acc[r] = _mm256_setzero_ps();
  int16_t mul[F::kSubs][2];
  for (int64_t b = 0; b < n_act_blocks / F::kSubs; ++b) {
    const uint8_t* block = w + b * F::kBytes;
    uint16_t h;
    std::memcpy(&h, block + F::kHalfAt[0], sizeof(h));
    const float d = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h)));
    F::int_scales(block, mul);
    const ActBlock* a = x + b * F::kSubs;
    __m256i sums[NR];
    for (int r = 0; r < NR; ++r) sums[r] = _mm256_setzero_si256();
    for (int sub = 0; sub < F::kSubs; ++sub) {
      const __m256i w_signed = load_w<F>(block, sub);
      const __m256i w_abs = _mm256_sign_epi8(w_signed, w_signed);
      const __m256i m = _mm256_set_m128i(_mm_set1_epi16(mul[sub][1]), _mm_set1_epi16(mul[sub][0]));
      for (int r = 0; r < NR; ++r) {
        const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[r * x_stride + sub].q));
        const __m256i products = _mm256_maddubs_epi16(w_abs, _mm256_sign_epi8(q, w_signed));
        sums[r] = _mm256_add_epi32(sums[r], _mm256_madd_epi16(products, m));
      }
    }
    for (int r = 0; r < NR; ++r)
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums[r]), _mm256_set1_ps(d * a[r * x_stride].d), acc[r]);
  }
  for (int r = 0; r < NR; ++r) y[r * y_stride] = horizontal_sum(acc[r]);
}

template <class F, int NW, int NR>
void dot_tile_super(const uint8_t* w, int64_t w_stride, const ActBlock* x, int64_t x_stride,
                    int64_t n_act_blocks, float* y, int64_t y_stride) {
  for (int i = 0; i < NW; ++i)
    dot_row_super<F, NR>(w + i * w_stride, x, x_stride, n_act_blocks, y + i, y_stride);
}

using TileKernel = void (*)(const uint8_t* w, int64_t w_stride, const ActBlock* x, int64_t x_stride,
                            int64_t n_act_blocks, float* y, int64_t y_stride);

// The tile kernels of one width for heights 1..kMaxTileRows, indexed by height - 1.
template <class F, int NW, int NR>
constexpr TileKernel tile_kernel() {
  if constexpr (F::kSubs == 8 && F::kSigned) {
    return dot_tile_super<F, NW, NR>;
  } else {
    return dot_tile<F, NW, NR>;
  }
}

template <class F, int NW, int... NR>
constexpr TileKernel kHeights[] = {tile_kernel<F, NW, NR>()...};

template <class F>
void dot_avx2(const uint8_t* w, int64_t w_stride, int nw, const ActBlock* x, int64_t x_stride, int nr,
              int64_t n_act_blocks, float* y, int64_t y_stride) {
  static_assert(kMaxTileWeights == 2 && kMaxTileRows == 8, "the tables below list every tile shape");
  const TileKernel kernel = nw == 1 ? kHeights<F, 1, 1, 2, 3, 4, 5, 6, 7, 8>[nr - 1]
                                    : kHeights<F, 2, 1, 2, 3, 4, 5, 6, 7, 8>[nr - 1];
  kernel(w, w_stride, x, x_stride, n_act_blocks, y, y_stride);
}

}  // namespace

// The scalar quantisation's arithmetic eight lanes at a time: the same amax, d and 127 / amax, and
// cvtps_epi32 rounds half to even as nearbyint does in the default rounding mode.
void quantize_act_rows_avx2(const float* x, int64_t rows, int64_t cols, ActBlock* out, int64_t group) {
  const int64_t n_blocks = cols / kActBlock, span = group * kActBlock;
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);  // undoes packs' per-lane interleave
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t g = 0; g < n_blocks / group; ++g) {
      const float* v = x + r * cols + g * span;
      __m256 m = _mm256_setzero_ps();
      for (int64_t i = 0; i < span; i += 8)
        m = _mm256_max_ps(m, _mm256_and_ps(_mm256_loadu_ps(v + i), abs_mask));
      __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
      h = _mm_max_ps(h, _mm_movehl_ps(h, h));
      const float amax = _mm_cvtss_f32(_mm_max_ss(h, _mm_movehdup_ps(h)));
      const float d = amax / 127.0f, inv = amax > 0.0f ? 127.0f / amax : 0.0f;
      const __m256 scale = _mm256_set1_ps(inv);
      for (int64_t k = 0; k < group; ++k) {
        ActBlock& a = out[r * n_blocks + g * group + k];
        const float* e = v + k * kActBlock;
        __m256i q[4];
        for (int j = 0; j < 4; ++j)
          q[j] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(e + 8 * j), scale));
        const __m256i packed =
            _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(a.q), _mm256_permutevar8x32_epi32(packed, order));
        const __m256i halves = _mm256_hadd_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
        const __m128i sums =
            _mm_add_epi32(_mm256_castsi256_si128(halves), _mm256_extracti128_si256(halves, 1));
        const int sum0 = _mm_cvtsi128_si32(sums) + _mm_extract_epi32(sums, 1);
        const int sum1 = _mm_extract_epi32(sums, 2) + _mm_extract_epi32(sums, 3);
        a.d = d;
        a.sum[0] = static_cast<int16_t>(sum0);
        a.sum[1] = static_cast<int16_t>(sum1);
        a.ds = a.d * static_cast<float>(sum0 + sum1);
      }
    }
  }
}

QuantTileFn quant_dot_avx2(GgmlType type) {
  switch (type) {
    case GgmlType::Q4_0:
      return dot_avx2<Q4_0>;
    case GgmlType::Q4_1:
      return dot_avx2<Q4_1>;
    case GgmlType::Q5_0:
      return dot_avx2<Q5_0>;
    case GgmlType::Q5_1:
      return dot_avx2<Q5_1>;
    case GgmlType::Q8_0:
      return dot_avx2<Q8_0>;
    case GgmlType::Q4_K:
      return dot_avx2<Q4_K>;
    case GgmlType::Q6_K:
      return dot_avx2<Q6_K>;
    default:
      return nullptr;
  }
}

}  // namespace sacc

#pragma GCC pop_options
