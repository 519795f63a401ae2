// The CPU attention (attention/cpu/cpu_attention.h) against a straightforward fp64 definition written here,
// on random inputs: dense causal with and without an offset (Lk > Lq), GQA groups 1/2/3/7, head dims 64 and
// 128 and odd ones, lengths that are not tile multiples, sparse indices with blocks, single columns and empty
// slots; every case on every instruction set the CPU has (portable, AVX2, AVX-512 BF16), each against the
// error bound of its precision.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "attention/cpu/attention_kernels.h"
#include "attention/cpu/cpu_attention.h"
#include "core/dtype.h"

namespace sacc {
namespace {

constexpr double kUlp = 1.0 / (1 << 24);     // fp32 unit roundoff u = 2^-24
constexpr double kBf16Ulp = 1.0 / (1 << 8);  // bf16 unit roundoff (8 significant bits)

// Whether a set rounds the queries and the probabilities to bf16 for its products (even d only).
bool bf16_products(CpuAttentionIsa isa, int d) {
  return isa == CpuAttentionIsa::AVX512_BF16 && d % 2 == 0;
}

struct Problem {
  int64_t lq = 0, lk = 0;
  int hq = 0, hkv = 0, d = 0;
  std::vector<float> q;     // [Lq, Hq, d]
  std::vector<uint16_t> k;  // [Lk, Hkv, d] bf16
  std::vector<uint16_t> v;  // [Lk, Hkv, d] bf16
};

// Queries spread by `spread` so softmaxes range from flat to peaked (scores of a few units after scaling).
Problem random_problem(int64_t lq, int64_t lk, int hq, int hkv, int d, uint32_t seed, float spread = 3.0f) {
  Problem p{lq, lk, hq, hkv, d, {}, {}, {}};
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  p.q.resize(static_cast<size_t>(lq * hq * d));
  p.k.resize(static_cast<size_t>(lk * hkv * d));
  p.v.resize(p.k.size());
  for (float& x : p.q) x = spread * normal(rng);
  for (uint16_t& x : p.k) x = float_to_bf16(normal(rng));
  for (uint16_t& x : p.v) x = float_to_bf16(normal(rng));
  return p;
}

CpuAttentionArgs args_of(const Problem& p, std::vector<float>& o) {
  o.assign(static_cast<size_t>(p.lq * p.hq * p.d), std::numeric_limits<float>::quiet_NaN());
  CpuAttentionArgs a;
  a.num_queries = p.lq;
  a.num_keys = p.lk;
  a.num_q_heads = p.hq;
  a.num_kv_heads = p.hkv;
  a.head_dim = p.d;
  a.q = p.q.data();
  a.k = p.k.data();
  a.v = p.v.data();
  a.o = o.data();
  return a;
}

// The output of one (query row, head) by the definition, in fp64 (`want`) and naively in fp32 (`naive`:
// sequential dot products, std::exp, sequential sums, as a same-precision baseline of the error; with `bf16`
// the queries and the weights are rounded to bf16 for their products). Returns the number of visible keys;
// `score_abs` gets the largest sum of |q_c k_c| * scale, `v_abs` the largest |v|.
template <class Visible>
int64_t reference_row(const Problem& p, int64_t i, int h, Visible visible, bool bf16,
                      std::vector<double>& want, std::vector<float>& naive, double& score_abs,
                      double& v_abs) {
  auto round = [bf16](float x) { return bf16 ? bf16_to_float(float_to_bf16(x)) : x; };
  const int kvh = h / (p.hq / p.hkv);
  const double scale = 1.0 / std::sqrt(static_cast<double>(p.d));
  const float scale32 = 1.0f / std::sqrt(static_cast<float>(p.d));
  const float* q = &p.q[(i * p.hq + h) * p.d];
  auto k_at = [&](int64_t j, int c) { return bf16_to_float(p.k[(j * p.hkv + kvh) * p.d + c]); };
  auto v_at = [&](int64_t j, int c) { return bf16_to_float(p.v[(j * p.hkv + kvh) * p.d + c]); };
  std::vector<double> score(p.lk);
  std::vector<float> score32(p.lk);
  double max_score = -std::numeric_limits<double>::infinity();
  float max32 = -std::numeric_limits<float>::infinity();
  int64_t n = 0;
  score_abs = v_abs = 0.0;
  for (int64_t j = 0; j < p.lk; ++j) {
    if (!visible(i, h, j)) continue;
    ++n;
    double dot = 0.0, abs_dot = 0.0;
    float dot32 = 0.0f;
    for (int c = 0; c < p.d; ++c) {
      dot += double(q[c]) * k_at(j, c);
      abs_dot += std::abs(double(q[c]) * k_at(j, c));
      dot32 += round(q[c]) * k_at(j, c);
      v_abs = std::max(v_abs, std::abs(double(v_at(j, c))));
    }
    score[j] = dot * scale;
    score32[j] = dot32 * scale32;
    max_score = std::max(max_score, score[j]);
    max32 = std::max(max32, score32[j]);
    score_abs = std::max(score_abs, abs_dot * scale);
  }
  want.assign(p.d, 0.0);
  naive.assign(p.d, 0.0f);
  if (n == 0) return 0;  // no visible key: zeros
  double sum = 0.0;
  float sum32 = 0.0f;
  for (int64_t j = 0; j < p.lk; ++j) {
    if (!visible(i, h, j)) continue;
    const double w = std::exp(score[j] - max_score);
    const float w32 = std::exp(score32[j] - max32);
    sum += w;
    sum32 += w32;
    for (int c = 0; c < p.d; ++c) {
      want[c] += w * v_at(j, c);
      naive[c] += round(w32) * v_at(j, c);
    }
  }
  for (double& x : want) x /= sum;
  for (float& x : naive) x /= sum32;
  return n;
}

// visible(i, h, j): whether query row i of head h sees key j. Two checks against the fp64 definition:
//  * every output within a worst-case fp32 error bound (sound: no rounding pattern can exceed it);
//  * the largest error of the case at most 3 times the naive fp32 computation's, plus 16 u of the largest |v|
//    (the style guide's "no worse than a same-precision reference"; the tight check).
template <class Visible>
void expect_matches_fp64(const Problem& p, const std::vector<float>& o, Visible visible, CpuAttentionIsa isa,
                         const std::string& what) {
  const bool bf16 = bf16_products(isa, p.d);
  const double ub = bf16 ? kBf16Ulp : 0.0;
  int64_t checked = 0, failures = 0;
  double worst_ratio = 0.0, max_err = 0.0, max_naive_err = 0.0, max_v = 0.0;
  std::vector<double> want;
  std::vector<float> naive;
  for (int64_t i = 0; i < p.lq; ++i) {
    for (int h = 0; h < p.hq; ++h) {
      double score_abs = 0.0, v_abs = 0.0;
      const int64_t n = reference_row(p, i, h, visible, bf16, want, naive, score_abs, v_abs);
      max_v = std::max(max_v, v_abs);
      // Worst-case fp32 error of one output row:
      //  * a base-2 score sums d products and scales the query once: |err| <= (d + 3) u A, with A the largest
      //    sum of |products| (times scale and log2 e); each weight 2^(s - max) is then off by a relative
      //    ln 2 * 2 (d + 3) u A (the score and the max both err);
      //  * the exponential's own error is a few u (Exp2 below), its rounded argument x costs ln 2 |x| u
      //    relative with 2^-x |x| <= 0.53, and the sums of weights and of weighted values over n keys add
      //    n u each: together under (3 n + 64) u of the largest |v|.
      //  * bf16 products (ub = bf16's unit roundoff): each scaled query element is off by ub relative, which
      //    adds ub A to a score, and each weight times its value by ub, ub of the largest |v| in all (twice
      //    both, as a margin, like the fp32 terms).
      const double a_log2 = score_abs * 1.4426950408889634;
      const double tol =
          v_abs * (4.0 * std::log(2.0) * ((p.d + 3) * kUlp + ub) * a_log2 + (3.0 * n + 64) * kUlp + 2.0 * ub);
      const float* got = &o[(i * p.hq + h) * p.d];
      for (int c = 0; c < p.d; ++c) {
        const double err = std::abs(double(got[c]) - want[c]);
        ++checked;
        max_err = std::max(max_err, err);
        max_naive_err = std::max(max_naive_err, std::abs(double(naive[c]) - want[c]));
        worst_ratio = std::max(worst_ratio, err / std::max(tol, 1e-30));
        if (!(err <= tol) && ++failures <= 5)
          ADD_FAILURE() << what << ": row " << i << " head " << h << " dim " << c << ": got " << got[c]
                        << ", fp64 " << want[c] << ", error " << err << " > bound " << tol << " (" << n
                        << " keys)";
      }
    }
  }
  EXPECT_EQ(failures, 0) << what << ": " << failures << " of " << checked << " outputs outside the bound";
  EXPECT_LE(max_err, 3.0 * max_naive_err + 16.0 * kUlp * max_v)
      << what << ": largest error " << max_err << " against the naive fp32 computation's " << max_naive_err;
  ::testing::Test::RecordProperty(what + ": worst error / bound", std::to_string(worst_ratio));
  ::testing::Test::RecordProperty(what + ": largest error / naive same-precision's",
                                  std::to_string(max_err / std::max(max_naive_err, 1e-30)));
}

std::vector<CpuAttentionIsa> isas() {
  std::vector<CpuAttentionIsa> out = {CpuAttentionIsa::PORTABLE};
  for (CpuAttentionIsa isa : {CpuAttentionIsa::AVX2, CpuAttentionIsa::AVX512_BF16})
    if (best_cpu_attention_isa() >= isa) out.push_back(isa);
  return out;
}

// ---- dense causal

struct DenseCase {
  const char* name;
  int64_t lq, lk;
  int hq, hkv, d;
};

void PrintTo(const DenseCase& c, std::ostream* os) {
  *os << c.name;
}

class CpuAttentionDense : public ::testing::TestWithParam<DenseCase> {};

TEST_P(CpuAttentionDense, MatchesFp64) {
  const DenseCase& c = GetParam();
  const Problem p =
      random_problem(c.lq, c.lk, c.hq, c.hkv, c.d, 1000 + static_cast<uint32_t>(c.lq * 7 + c.d));
  const int64_t offset = c.lk - c.lq;
  for (CpuAttentionIsa isa : isas()) {
    std::vector<float> o;
    ASSERT_TRUE(cpu_attention_dense(args_of(p, o), isa).is_ok());
    expect_matches_fp64(
        p, o, [&](int64_t i, int, int64_t j) { return j <= offset + i; }, isa,
        std::string(c.name) + "/" + cpu_attention_isa_name(isa));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, CpuAttentionDense,
    ::testing::Values(DenseCase{"Mha_D64_L133", 133, 133, 2, 2, 64},
                      DenseCase{"Gqa2_D128_Offset77of300", 77, 300, 4, 2, 128},
                      DenseCase{"Gqa7_D64_L250", 250, 250, 14, 2, 64},         // Qwen2.5-0.5B's grouping
                      DenseCase{"Gqa3_D64_Offset50of700", 50, 700, 9, 3, 64},  // SmolLM2-135M's
                      DenseCase{"Gqa7_D72_Decode517", 1, 517, 7, 1, 72},
                      DenseCase{"Gqa2_D40_Offset5of71", 5, 71, 2, 1, 40},
                      DenseCase{"Gqa3_D42_L97", 97, 97, 3, 1, 42},  // d % 4 != 0: the kernels' dim tail
                      DenseCase{"Mha_D128_L1030", 1030, 1030, 1, 1, 128},
                      DenseCase{"OneKey", 1, 1, 4, 2, 64}),
    [](const auto& info) { return std::string(info.param.name); });

// Rows do not interact and key blocks sit at fixed multiples of 64: a prompt run in chunks (each chunk's
// queries over the keys so far) gives the whole prompt's answer bit for bit.
TEST(CpuAttentionDenseChunks, ChunkedEqualsWhole) {
  const Problem p = random_problem(300, 300, 6, 2, 64, 7);
  for (CpuAttentionIsa isa : isas()) {
    std::vector<float> whole;
    ASSERT_TRUE(cpu_attention_dense(args_of(p, whole), isa).is_ok());
    std::vector<float> chunked(whole.size(), 0.0f);
    for (int64_t start = 0; start < p.lq; start += 37) {
      const int64_t n = std::min<int64_t>(37, p.lq - start);
      std::vector<float> o;
      CpuAttentionArgs a = args_of(p, o);
      a.num_queries = n;
      a.num_keys = start + n;
      a.q = p.q.data() + start * p.hq * p.d;
      ASSERT_TRUE(cpu_attention_dense(a, isa).is_ok());
      std::copy(o.begin(), o.begin() + n * p.hq * p.d, chunked.begin() + start * p.hq * p.d);
    }
    for (size_t i = 0; i < whole.size(); ++i)
      ASSERT_EQ(chunked[i], whole[i]) << cpu_attention_isa_name(isa) << " element " << i;
  }
}

// ---- sparse

// A random valid index: each causal key block listed with probability `block_p`, single keys outside the
// listed blocks (causal for the query block's last row) with probability `column_p`, and every fifth slot
// empty.
SparseIndex random_index(const IndexGeometry& geo, double block_p, double column_p, uint32_t seed) {
  std::mt19937 rng(seed);
  std::bernoulli_distribution take_block(block_p), take_column(column_p);
  SparseIndex index;
  index.geometry = geo;
  index.block_offsets = {0};
  index.column_offsets = {0};
  for (int h = 0; h < geo.num_heads; ++h) {
    for (int64_t qb = 0; qb < geo.num_q_blocks(); ++qb) {
      const bool empty = (h * geo.num_q_blocks() + qb) % 5 == 4;
      const int64_t last_row = std::min(geo.seq_len, (qb + 1) * geo.block_q) - 1;
      std::vector<char> listed(geo.num_k_blocks(), 0);
      for (int64_t kb = 0; kb <= geo.last_causal_k_block(qb); ++kb) {
        if (empty || !take_block(rng)) continue;
        listed[kb] = 1;
        index.block_ids.push_back(static_cast<int32_t>(kb));
      }
      for (int64_t j = 0; j <= last_row; ++j)
        if (!empty && !listed[j / geo.block_k] && take_column(rng))
          index.column_ids.push_back(static_cast<int32_t>(j));
      index.block_offsets.push_back(static_cast<int32_t>(index.block_ids.size()));
      index.column_offsets.push_back(static_cast<int32_t>(index.column_ids.size()));
    }
  }
  return index;
}

bool index_lists(const SparseIndex& index, int index_head, int64_t i, int64_t j) {
  const IndexGeometry& geo = index.geometry;
  const int64_t slot = index_head * geo.num_q_blocks() + i / geo.block_q;
  for (int32_t b = index.block_offsets[slot]; b < index.block_offsets[slot + 1]; ++b)
    if (index.block_ids[b] == j / geo.block_k) return true;
  for (int32_t c = index.column_offsets[slot]; c < index.column_offsets[slot + 1]; ++c)
    if (index.column_ids[c] == j) return true;
  return false;
}

struct SparseCase {
  const char* name;
  int64_t length;
  int hq, hkv, d;
  bool shared;
};

void PrintTo(const SparseCase& c, std::ostream* os) {
  *os << c.name;
}

class CpuAttentionSparse : public ::testing::TestWithParam<SparseCase> {};

TEST_P(CpuAttentionSparse, MatchesFp64) {
  const SparseCase& c = GetParam();
  const Problem p = random_problem(c.length, c.length, c.hq, c.hkv, c.d, 2000 + static_cast<uint32_t>(c.d));
  IndexGeometry geo;
  geo.seq_len = c.length;
  geo.num_heads = c.shared ? c.hkv : c.hq;
  geo.shared_per_kv_group = c.shared;
  const SparseIndex index = random_index(geo, 0.5, 0.35, 3000 + static_cast<uint32_t>(c.hq));
  ASSERT_TRUE(index.validate().is_ok()) << index.validate().to_string();
  const int group = c.hq / c.hkv;
  auto visible = [&](int64_t i, int h, int64_t j) {
    return j <= i && index_lists(index, c.shared ? h / group : h, i, j);
  };
  for (CpuAttentionIsa isa : isas()) {
    std::vector<float> o;
    ASSERT_TRUE(cpu_attention_sparse(args_of(p, o), index, isa).is_ok());
    expect_matches_fp64(p, o, visible, isa, std::string(c.name) + "/" + cpu_attention_isa_name(isa));
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, CpuAttentionSparse,
                         ::testing::Values(SparseCase{"Mha_D64_L300", 300, 2, 2, 64, false},
                                           SparseCase{"Gqa2_D128_L257_PerHead", 257, 4, 2, 128, false},
                                           SparseCase{"Gqa2_D128_L257_Shared", 257, 4, 2, 128, true},
                                           SparseCase{"Gqa7_D64_L400_Shared", 400, 7, 1, 64, true},
                                           SparseCase{"Gqa7_D40_L200_PerHead", 200, 14, 2, 40, false},
                                           SparseCase{"Gqa3_D72_L130_Shared", 130, 9, 3, 72, true},
                                           SparseCase{"OneBlock_L50", 50, 2, 1, 64, true}),
                         [](const auto& info) { return std::string(info.param.name); });

// Every block listed is dense causal: the same keys in the same blocks in the same order, bit for bit, per
// head and shared.
TEST(CpuAttentionSparseDense, AllBlocksEqualDenseBitForBit) {
  const Problem p = random_problem(333, 333, 6, 2, 64, 11);
  for (bool shared : {false, true}) {
    IndexGeometry geo;
    geo.seq_len = p.lq;
    geo.num_heads = shared ? p.hkv : p.hq;
    geo.shared_per_kv_group = shared;
    const SparseIndex index = SparseIndex::dense(geo);
    for (CpuAttentionIsa isa : isas()) {
      std::vector<float> dense, sparse;
      ASSERT_TRUE(cpu_attention_dense(args_of(p, dense), isa).is_ok());
      ASSERT_TRUE(cpu_attention_sparse(args_of(p, sparse), index, isa).is_ok());
      for (size_t i = 0; i < dense.size(); ++i)
        ASSERT_EQ(sparse[i], dense[i])
            << cpu_attention_isa_name(isa) << (shared ? " shared" : " per head") << " element " << i;
    }
  }
}

TEST(CpuAttentionErrors, BadArgumentsAreErrors) {
  const Problem p = random_problem(4, 4, 2, 1, 64, 5);
  std::vector<float> o;
  CpuAttentionArgs a = args_of(p, o);
  a.num_keys = 3;  // fewer keys than queries
  EXPECT_EQ(cpu_attention_dense(a).code(), StatusCode::INVALID_ARGUMENT);
  a = args_of(p, o);
  a.num_kv_heads = 3;  // 2 % 3 != 0
  EXPECT_EQ(cpu_attention_dense(a).code(), StatusCode::INVALID_ARGUMENT);
  IndexGeometry geo;
  geo.seq_len = 8;  // not the problem's length
  geo.num_heads = 2;
  EXPECT_EQ(cpu_attention_sparse(args_of(p, o), SparseIndex::dense(geo)).code(),
            StatusCode::INVALID_ARGUMENT);
}

// ---- the bf16 operand packing

// pack_pairs rounds to nearest even (dtype.h's float_to_bf16) and puts row 2i in a word's low half, row
// 2i + 1 in its high half; interleave_rows does the same for bf16 rows, with a dim tail (d = 72).
TEST(CpuAttentionPairs, PackedWordsHoldBothRowsRoundedToNearestEven) {
  if (best_cpu_attention_isa() < CpuAttentionIsa::AVX512_BF16) GTEST_SKIP() << "no AVX-512 BF16 on this CPU";
  const cpu_attn::TileKernels& k = cpu_attn::avx512_bf16_kernels();
  constexpr int n = 6, rp = 32, d = 72;
  std::mt19937 rng(17);
  std::normal_distribution<float> normal(0.0f, 10.0f);
  std::vector<float> x(n * rp);
  for (float& e : x) e = normal(rng);
  x[5] = 1.0f + 1.0f / 256;       // a tie: rounds down to the even 1.0
  x[rp + 5] = 1.0f + 3.0f / 256;  // a tie: rounds up to the even 1 + 4/256
  std::vector<uint32_t> words(n / 2 * rp);
  k.pack_pairs(x.data(), n, rp, words.data());
  for (int i = 0; i < n / 2; ++i)
    for (int r = 0; r < rp; ++r) {
      const uint32_t w = words[i * rp + r];
      ASSERT_EQ(w & 0xffffu, float_to_bf16(x[2 * i * rp + r])) << "pair " << i << " row " << r;
      ASSERT_EQ(w >> 16, float_to_bf16(x[(2 * i + 1) * rp + r])) << "pair " << i << " row " << r;
    }
  EXPECT_EQ(words[5] & 0xffffu, float_to_bf16(1.0f));
  EXPECT_EQ(words[5] >> 16, float_to_bf16(1.0f + 4.0f / 256));
  std::vector<uint16_t> h(n * d);
  for (uint16_t& e : h) e = static_cast<uint16_t>(rng());
  std::vector<uint32_t> interleaved(n / 2 * d);
  k.interleave_rows(h.data(), n, d, interleaved.data());
  for (int i = 0; i < n / 2; ++i)
    for (int c = 0; c < d; ++c)
      ASSERT_EQ(interleaved[i * d + c], h[2 * i * d + c] | uint32_t{h[(2 * i + 1) * d + c]} << 16)
          << "pair " << i << " dim " << c;
}

// softmax_pairs is the AVX2 softmax (the same operations in the same order on 16 lanes instead of 8) with
// its probabilities packed: equal bit for bit, masked and not, over a first block and a second one.
TEST(CpuAttentionPairs, SoftmaxPairsIsTheAvx2SoftmaxPacked) {
  if (best_cpu_attention_isa() < CpuAttentionIsa::AVX512_BF16) GTEST_SKIP() << "no AVX-512 BF16 on this CPU";
  const cpu_attn::TileKernels& pairs = cpu_attn::avx512_bf16_kernels();
  const cpu_attn::TileKernels& avx2 = cpu_attn::avx2_kernels();
  constexpr int bk = cpu_attn::kKeyBlock, rp = 48;
  std::mt19937 rng(23);
  std::normal_distribution<float> normal(0.0f, 4.0f);
  std::vector<int32_t> row_pos(rp), key_pos(bk);
  for (int r = 0; r < rp; ++r) row_pos[r] = 100 + r;
  for (int t = 0; t < bk; ++t) key_pos[t] = 90 + t;  // rows 100.. see keys up to their own position
  std::vector<float> max_a(rp, -std::numeric_limits<float>::infinity()), max_b = max_a;
  std::vector<float> sum_a(rp, 0.0f), sum_b = sum_a, rescale_a(rp), rescale_b(rp);
  for (bool masked : {true, false}) {
    std::vector<float> s(bk * rp);
    for (float& e : s) e = normal(rng);
    std::vector<float> s_a = s, s_b = s;
    std::vector<uint32_t> want(bk / 2 * rp), got(bk / 2 * rp);
    avx2.softmax(s_a.data(), rp, key_pos.data(), row_pos.data(), masked, max_a.data(), sum_a.data(),
                 rescale_a.data());
    pairs.pack_pairs(s_a.data(), bk, rp, want.data());
    pairs.softmax_pairs(s_b.data(), rp, key_pos.data(), row_pos.data(), masked, max_b.data(), sum_b.data(),
                        rescale_b.data(), got.data());
    EXPECT_EQ(got, want) << (masked ? "masked" : "unmasked");
    EXPECT_EQ(max_b, max_a);
    EXPECT_EQ(sum_b, sum_a);
    EXPECT_EQ(rescale_b, rescale_a);
  }
}

// ---- the exponential

TEST(CpuAttentionExp2, WithinFourUlpsOfExactAndExactAtTheEnds) {
  std::vector<float> x;
  for (float t = -126.0f; t <= 0.0f; t += 0.000731f) x.push_back(t);
  x.push_back(-0.5f);
  const std::vector<float> specials = {0.0f, -0.0f, -std::numeric_limits<float>::infinity(), -126.5f,
                                       -1000.0f};
  x.insert(x.end(), specials.begin(), specials.end());
  std::vector<const cpu_attn::TileKernels*> sets = {&cpu_attn::portable_kernels()};
  if (best_cpu_attention_isa() >= CpuAttentionIsa::AVX2) sets.push_back(&cpu_attn::avx2_kernels());
  if (best_cpu_attention_isa() >= CpuAttentionIsa::AVX512_BF16)
    sets.push_back(&cpu_attn::avx512_bf16_kernels());
  for (const cpu_attn::TileKernels* kernels : sets) {
    std::vector<float> y(x.size());
    kernels->exp2(x.data(), y.data(), static_cast<int64_t>(x.size()));
    double worst = 0.0;
    for (size_t i = 0; i + specials.size() < x.size(); ++i) {
      const double want = std::exp2(double(x[i]));
      worst = std::max(worst, std::abs(y[i] - want) / want);
    }
    EXPECT_LT(worst, 4 * kUlp * 2);  // 4 ulps: an ulp is up to 2u relative
    const size_t s = x.size() - specials.size();
    EXPECT_EQ(y[s], 1.0f);      // 2^0: a key hidden from nothing leaves the accumulator as it was
    EXPECT_EQ(y[s + 1], 1.0f);  // 2^-0
    EXPECT_EQ(y[s + 2], 0.0f);  // 2^-inf: a hidden key adds nothing
    EXPECT_EQ(y[s + 3], 0.0f);  // flushed below 2^-126
    EXPECT_EQ(y[s + 4], 0.0f);
  }
}

}  // namespace
}  // namespace sacc
