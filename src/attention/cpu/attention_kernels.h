// Inner loops of the CPU attention's query tile (cpu_attention_tile.h): a portable set in plain C++, an
// AVX2/FMA set and an AVX-512 BF16 set, chosen at run time from CPUID (cpu_attention.h,
// best_cpu_attention_isa). Not a public API.
//
// Layout: a tile's rows (query row x query head of one KV group) are the vector dimension everywhere, so the
// score matrix is held transposed, [key, row]: the running max and sum of every row are whole vectors, the
// masks compare a key's position against a vector of row positions, and neither matrix product needs a
// horizontal sum. Each row is a lane of its own: nothing a row computes depends on the other rows of its
// tile, and a key a row may not see adds exact zeros to it (2^-inf = 0, 2^0 = 1), so a row's result depends
// only on the key blocks it sees and their order, not on how the rows were tiled.
#pragma once

#include <cstdint>

namespace sacc::cpu_attn {

// Bk: keys per block. Each block's K and V rows are widened once per tile into [Bk, d] fp32 (16 KiB each at
// d = 64), small enough to stay in the 32 KiB L1 of the machines we run on while the tile's rows stream past.
// The index's key blocks (kTileBlockK = 64, or any multiple) split into kernel blocks at the same boundaries
// as the dense loop's, which is what makes "every block listed" equal dense bit for bit.
inline constexpr int kKeyBlock = 64;
// Tile rows are padded to a multiple of one AVX2 register of fp32; the padded rows hold zero queries.
inline constexpr int kRowAlign = 8;
// With bf16 products (TileKernels::scores_bf16), to a multiple of one AVX-512 register of fp32.
inline constexpr int kPairRowAlign = 16;

struct TileKernels {
  // out [n] fp32 = in [n] bf16 (exact: the bf16 bits are the top half of the fp32 ones).
  void (*widen)(const uint16_t* in, float* out, int n);
  // s [Bk, rp] = k [Bk, d] (row-major) . qt [d, rp]: raw scores (the queries carry the scale). rp % 8 == 0.
  void (*scores)(const float* k, int d, const float* qt, int rp, float* s);
  // One key block's step of the online softmax (base 2), for every row r < rp:
  //   masked: key t is hidden from row r when key_pos[t] > row_pos[r] (score -> -inf); otherwise every key
  //   is visible and key_pos / row_pos are not read.
  //   row_max [rp] and row_sum [rp] are the running max and sum (-inf and 0 before the first block);
  //   s [Bk, rp] comes in as scores and leaves as probabilities 2^(s - new max) (0 for hidden keys);
  //   rescale [rp] gets 2^(old max - new max), the factor for what was accumulated so far.
  // A row that has seen no key yet keeps max -inf and uses 0 as its reference, so its factors are 0, not NaN.
  void (*softmax)(float* s, int rp, const int32_t* key_pos, const int32_t* row_pos, bool masked,
                  float* row_max, float* row_sum, float* rescale);
  // ot [d, rp] = ot * rescale[r] + v^T . p: v [Bk, d] row-major, p [Bk, rp].
  void (*accumulate)(const float* v, int d, const float* p, int rp, const float* rescale, float* ot);
  // y[i] = 2^x[i] for x[i] <= 0 (0 below -126, so 2^-inf = 0); the softmaxes' exponential, exposed for
  // tests.
  void (*exp2)(const float* x, float* y, int64_t n);

  // bf16 products, where the set has them (nullptr otherwise; used for even d only). The queries and the
  // probabilities are rounded to bf16 (to nearest even) and multiplied with the bf16 keys and values two
  // terms at a time along the summed dimension, accumulating in fp32: the GPU flash kernels' precision at
  // about twice the fp32 rate. Operands hold pairs of bf16 in 32-bit words, low half first. rp % 16 == 0.
  // out [n/2, rp] = pairs (x[2i][r], x[2i+1][r]) of x [n, rp] fp32, rounded: the queries (n = d, the
  // transposed qt).
  void (*pack_pairs)(const float* x, int n, int rp, uint32_t* out);
  // softmax above, except that the probabilities leave as pp [Bk/2, rp], pack_pairs of them (s is scratch).
  void (*softmax_pairs)(float* s, int rp, const int32_t* key_pos, const int32_t* row_pos, bool masked,
                        float* row_max, float* row_sum, float* rescale, uint32_t* pp);
  // out [n/2, d] = pairs (x[2i][c], x[2i+1][c]) of x [n, d] bf16: the block's values.
  void (*interleave_rows)(const uint16_t* x, int n, int d, uint32_t* out);
  // s [Bk, rp] = k [Bk, d] bf16 (row-major) . qp [d/2, rp] (query pairs).
  void (*scores_bf16)(const uint16_t* k, int d, const uint32_t* qp, int rp, float* s);
  // ot [d, rp] = ot * rescale[r] + v^T . p: vp [Bk/2, d] value pairs, pp [Bk/2, rp] probability pairs.
  void (*accumulate_bf16)(const uint32_t* vp, int d, const uint32_t* pp, int rp, const float* rescale,
                          float* ot);
};

const TileKernels& portable_kernels();
// Needs AVX2 and FMA: only entered after the CPUID check.
const TileKernels& avx2_kernels();
// The AVX2 set plus bf16 products; needs AVX-512 F/BW/VL/BF16 as well: only entered after the CPUID check.
const TileKernels& avx512_bf16_kernels();

// 2^f for f in [-1/2, 1/2]: the Taylor series of e^(f ln 2) to degree 7, whose first omitted term is
// (ln 2 / 2)^8 / 8! < 6e-9, under fp32's half ulp; Horner's rounding leaves a few ulps (the tests measure
// the whole exp2 against std::exp2). kExp2Poly[0] = 1 exactly, so 2^0 = 1 exactly.
inline constexpr float kExp2Poly[8] = {
    1.0f,
    0.693147180559945309f,    // ln 2
    0.240226506959100712f,    // ln^2 2 / 2!
    0.0555041086648215800f,   // ln^3 2 / 3!
    0.00961812910762847716f,  // ln^4 2 / 4!
    0.00133335581464284434f,  // ln^5 2 / 5!
    1.54035303933816099e-4f,  // ln^6 2 / 6!
    1.52527338040598403e-5f,  // ln^7 2 / 7!
};
// Below this 2^x is flushed to 0: the smallest normal power, far under fp32's resolution of a sum that holds
// the row's maximum term 2^0 = 1.
inline constexpr float kExp2Min = -126.0f;

}  // namespace sacc::cpu_attn
