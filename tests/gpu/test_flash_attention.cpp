// The flash kernel family (dense and sparse visit policies) against the fp64 CPU oracle, against itself
// (all-blocks sparse == dense bitwise), and with poisoned outputs and canaries after them.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "attention/attention.h"
#include "attention/cuda/flash_attention_host.h"
#include "flash_test_support.h"
#include "reference/sparse_attention.h"

namespace sacc::flash_test {
namespace {

// A random valid index: each causal key block kept with probability `keep` (sometimes none), then up to
// `max_columns` random single keys outside the kept blocks (sometimes none), per slot.
SparseIndex random_index(const AttentionShape& s, bool shared, double keep, int max_columns, uint64_t seed) {
  SparseIndex index;
  IndexGeometry& g = index.geometry;
  g.seq_len = s.seq_len;
  g.num_heads = shared ? s.num_kv_heads : s.num_q_heads;
  g.shared_per_kv_group = shared;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  index.block_offsets.push_back(0);
  index.column_offsets.push_back(0);
  for (int h = 0; h < g.num_heads; ++h) {
    for (int64_t qb = 0; qb < g.num_q_blocks(); ++qb) {
      const int64_t last_kb = g.last_causal_k_block(qb);
      std::vector<bool> kept(last_kb + 1);
      for (int64_t kb = 0; kb <= last_kb; ++kb) {
        kept[kb] = unit(rng) < keep;
        if (kept[kb]) index.block_ids.push_back(static_cast<int32_t>(kb));
      }
      index.block_offsets.push_back(static_cast<int32_t>(index.block_ids.size()));
      const int64_t last_key = std::min(s.seq_len, (qb + 1) * g.block_q) - 1;
      const int columns = max_columns ? static_cast<int>(rng() % (max_columns + 1)) : 0;
      std::vector<int32_t> picked;
      for (int c = 0; c < columns; ++c) {
        const int32_t key = static_cast<int32_t>(rng() % (last_key + 1));
        if (!kept[key / g.block_k]) picked.push_back(key);
      }
      std::sort(picked.begin(), picked.end());
      picked.erase(std::unique(picked.begin(), picked.end()), picked.end());
      index.column_ids.insert(index.column_ids.end(), picked.begin(), picked.end());
      index.column_offsets.push_back(static_cast<int32_t>(index.column_ids.size()));
    }
  }
  EXPECT_TRUE(index.validate().is_ok()) << index.validate().to_string();
  return index;
}

struct ShapeCase {
  const char* name;
  AttentionShape shape;
};

std::string case_name(const ::testing::TestParamInfo<ShapeCase>& info) {
  return info.param.name;
}

// The oracle's awkward shapes: L = 1, not tile multiples, a single query block, GQA 1/3/4/8, d 64/128.
const ShapeCase kShapes[] = {
    {"L1_g1_d64", {1, 2, 2, 64}},       {"L1_g4_d128", {1, 4, 1, 128}},
    {"L63_g3_d128", {63, 3, 1, 128}},   {"L113_g8_d64", {113, 8, 1, 64}},
    {"L128_g4_d128", {128, 8, 2, 128}}, {"L1023_g1_d128", {1023, 4, 4, 128}},
    {"L1023_g3_d64", {1023, 6, 2, 64}}, {"L4224_g4_d128", {4224, 4, 1, 128}},
    {"L4224_g8_d64", {4224, 8, 1, 64}},
};

class FlashShapeTest : public FlashGpuTest, public ::testing::WithParamInterface<ShapeCase> {};

TEST_P(FlashShapeTest, DenseMatchesOracle) {
  const HostInput in = random_input(GetParam().shape, 11);
  auto want = ref::dense_attention(oracle_view(in));
  ASSERT_TRUE(want.is_ok()) << want.status().to_string();
  expect_close(run_gpu(in, nullptr), *want, "dense");
}

TEST_P(FlashShapeTest, AllBlocksSparseEqualsDenseBitwise) {
  const HostInput in = random_input(GetParam().shape, 12);
  for (bool shared : {false, true}) {
    IndexGeometry g;
    g.seq_len = in.shape.seq_len;
    g.num_heads = shared ? in.shape.num_kv_heads : in.shape.num_q_heads;
    g.shared_per_kv_group = shared;
    const SparseIndex all = SparseIndex::dense(g);
    const GpuOutput dense = run_gpu(in, nullptr);
    const GpuOutput sparse = run_gpu(in, &all);
    ASSERT_EQ(dense.o.size(), sparse.o.size());
    EXPECT_EQ(std::memcmp(dense.o.data(), sparse.o.data(), dense.o.size() * 2), 0) << "O, shared=" << shared;
    EXPECT_EQ(std::memcmp(dense.lse.data(), sparse.lse.data(), dense.lse.size() * 4), 0)
        << "LSE, shared=" << shared;
  }
}

TEST_P(FlashShapeTest, RandomSparseMatchesOracle) {
  const HostInput in = random_input(GetParam().shape, 13);
  int seed = 100;
  for (bool shared : {false, true}) {
    for (auto [keep, columns] : {std::pair{0.5, 0}, std::pair{0.3, 100}, std::pair{0.0, 200}}) {
      const SparseIndex index = random_index(in.shape, shared, keep, columns, ++seed);
      auto want = ref::sparse_attention(oracle_view(in), index);
      ASSERT_TRUE(want.is_ok()) << want.status().to_string();
      expect_close(run_gpu(in, &index), *want,
                   "sparse shared=" + std::to_string(shared) + " keep=" + std::to_string(keep) +
                       " columns<=" + std::to_string(columns));
    }
  }
}

// The Hopper body with GQA packing forced on and off on a shared index of an even group: both match the
// oracle (the selector turns packing on by default; SACC_FLASH_GQA_PACK=0 turns it off).
TEST_P(FlashShapeTest, PackedAndUnpackedMatchOracle) {
  const HostInput in = random_input(GetParam().shape, 14);
  if (selected_kernel(in.shape, nullptr).body != FlashBody::SM90) GTEST_SKIP() << "SM90 body not selected";
  if (in.shape.group_size() % 2 != 0) GTEST_SKIP() << "odd GQA group";
  const SparseIndex index = random_index(in.shape, /*shared=*/true, 0.3, 100, 15);
  auto want = ref::sparse_attention(oracle_view(in), index);
  ASSERT_TRUE(want.is_ok()) << want.status().to_string();
  for (bool pack : {false, true}) {
    const GpuOutput got = run_gpu(in, &index, Layout::CONTIGUOUS, FlashKernelChoice{FlashBody::SM90, pack});
    expect_close(got, *want, "shared, gqa_pack=" + std::to_string(pack));
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, FlashShapeTest, ::testing::ValuesIn(kShapes), case_name);

// Large shapes: the oracle on all rows is too slow, so a tiny fp64 evaluator checks sampled rows of every
// head against the same index (dense = the all-blocks index: dense with the equivalent mask).
void check_sampled_rows(const HostInput& in, const SparseIndex& index, const GpuOutput& gpu,
                        int rows_per_head) {
  const AttentionShape& s = in.shape;
  const IndexGeometry& g = index.geometry;
  const int heads_per_index = g.shared_per_kv_group ? s.group_size() : 1;
  const double scale = 1.0 / std::sqrt(static_cast<double>(s.head_dim));
  std::mt19937_64 rng(77);
  for (int h = 0; h < s.num_q_heads; ++h) {
    const int kvh = h / s.group_size();
    for (int r = 0; r < rows_per_head; ++r) {
      const int64_t i = r == 0 ? s.seq_len - 1 : static_cast<int64_t>(rng() % s.seq_len);
      const int64_t slot = (h / heads_per_index) * g.num_q_blocks() + i / g.block_q;
      std::vector<int64_t> keys;
      for (int32_t at = index.block_offsets[slot]; at < index.block_offsets[slot + 1]; ++at)
        for (int64_t j = int64_t{index.block_ids[at]} * g.block_k;
             j < std::min<int64_t>(s.seq_len, (index.block_ids[at] + 1) * int64_t{g.block_k}) && j <= i; ++j)
          keys.push_back(j);
      for (int32_t at = index.column_offsets[slot]; at < index.column_offsets[slot + 1]; ++at)
        if (index.column_ids[at] <= i) keys.push_back(index.column_ids[at]);
      std::vector<double> logits(keys.size());
      double max_logit = -INFINITY;
      for (size_t n = 0; n < keys.size(); ++n) {
        double dot = 0;
        for (int c = 0; c < s.head_dim; ++c)
          dot += double{in.qf[(i * s.num_q_heads + h) * s.head_dim + c]} *
                 in.kf[(keys[n] * s.num_kv_heads + kvh) * s.head_dim + c];
        logits[n] = dot * scale;
        max_logit = std::max(max_logit, logits[n]);
      }
      double sum = 0, err = 0, norm = 0;
      std::vector<double> o(s.head_dim, 0.0);
      for (size_t n = 0; n < keys.size(); ++n) {
        const double p = std::exp(logits[n] - max_logit);
        sum += p;
        for (int c = 0; c < s.head_dim; ++c)
          o[c] += p * in.vf[(keys[n] * s.num_kv_heads + kvh) * s.head_dim + c];
      }
      for (int c = 0; c < s.head_dim; ++c) {
        const double want = keys.empty() ? 0.0 : o[c] / sum;
        const double got = bf16_to_float(gpu.o[(i * s.num_q_heads + h) * s.head_dim + c]);
        ASSERT_FALSE(std::isnan(got)) << "row " << i << " head " << h;
        err += (got - want) * (got - want);
        norm += want * want;
      }
      // One row is a small sample: allow 3x the per-head budget for its relative error.
      EXPECT_LE(std::sqrt(err / std::max(norm, 1e-30)), 3 * kOTolerance) << "row " << i << " head " << h;
      const double want_lse = keys.empty() ? -INFINITY : max_logit + std::log(sum);
      const double got_lse = gpu.lse[h * s.seq_len + i];
      if (keys.empty()) {
        EXPECT_TRUE(std::isinf(got_lse) && got_lse < 0) << "row " << i << " head " << h;
      } else {
        EXPECT_LE(std::abs(got_lse - want_lse), kLseTolerance * (1.0 + std::abs(want_lse)))
            << "row " << i << " head " << h;
      }
    }
  }
}

TEST_F(FlashGpuTest, LargeDenseMatchesSampledRows) {
  const HostInput in = random_input({16384 + 77, 8, 2, 128}, 21);
  IndexGeometry g;
  g.seq_len = in.shape.seq_len;
  g.num_heads = in.shape.num_q_heads;
  check_sampled_rows(in, SparseIndex::dense(g), run_gpu(in, nullptr), 16);
}

TEST_F(FlashGpuTest, LargeSparseMatchesSampledRows) {
  for (int d : {64, 128}) {
    const HostInput in = random_input({16384 + 5, 8, 2, d}, 22);
    const SparseIndex index = random_index(in.shape, /*shared=*/d == 128, 0.05, 300, 23);
    check_sampled_rows(in, index, run_gpu(in, &index), 16);
  }
}

// The kernels take Q/K/V through strides (a fused QKV projection output): same values, same bits.
TEST_F(FlashGpuTest, FusedQkvStridesMatchContiguousBitwise) {
  for (int d : {64, 128}) {
    const HostInput in = random_input({700, 8, 2, d}, 41);
    const SparseIndex index = random_index(in.shape, /*shared=*/true, 0.4, 100, 42);
    for (const SparseIndex* maybe_index : {static_cast<const SparseIndex*>(nullptr), &index}) {
      const GpuOutput contiguous = run_gpu(in, maybe_index);
      const GpuOutput fused = run_gpu(in, maybe_index, Layout::FUSED_QKV);
      EXPECT_EQ(contiguous.o, fused.o) << "d=" << d << (maybe_index ? " sparse" : " dense");
      ASSERT_EQ(contiguous.lse.size(), fused.lse.size());
      EXPECT_EQ(std::memcmp(contiguous.lse.data(), fused.lse.data(), fused.lse.size() * 4), 0);
    }
  }
}

// The runtime writes O over Q: each CTA reads its query tile before it writes the same rows of O.
TEST_F(FlashGpuTest, OutputOverQueriesMatchesSeparateOutputBitwise) {
  for (int d : {64, 128}) {
    const HostInput in = random_input({1500, 8, 2, d}, 43);
    const SparseIndex index = random_index(in.shape, /*shared=*/false, 0.4, 100, 44);
    for (const SparseIndex* maybe_index : {static_cast<const SparseIndex*>(nullptr), &index}) {
      const GpuOutput separate = run_gpu(in, maybe_index);
      const GpuOutput in_place = run_gpu(in, maybe_index, Layout::O_OVER_Q);
      EXPECT_EQ(separate.o, in_place.o) << "d=" << d << (maybe_index ? " sparse" : " dense");
      ASSERT_EQ(separate.lse.size(), in_place.lse.size());
      EXPECT_EQ(std::memcmp(separate.lse.data(), in_place.lse.data(), in_place.lse.size() * 4), 0);
    }
  }
}

TEST_F(FlashGpuTest, HostHelperMatchesDeviceRun) {
  const HostInput in = random_input({300, 4, 2, 64}, 31);
  const SparseIndex index = random_index(in.shape, true, 0.5, 50, 32);
  for (const SparseIndex* maybe_index : {static_cast<const SparseIndex*>(nullptr), &index}) {
    auto host =
        flash_attention_host(in.shape, in.q.data(), in.k.data(), in.v.data(), maybe_index,
                             selected_kernel(in.shape, maybe_index ? &maybe_index->geometry : nullptr));
    ASSERT_TRUE(host.is_ok()) << host.status().to_string();
    const GpuOutput device = run_gpu(in, maybe_index);
    EXPECT_EQ(host->o, device.o);
    EXPECT_EQ(std::memcmp(host->lse.data(), device.lse.data(), device.lse.size() * 4), 0);
  }
}

// The selector needs no GPU: it only checks what the kernels support.
TEST(FlashSelector, RejectsWhatTheKernelsDoNotSupport) {
  EXPECT_EQ(attention_select_cuda({128, 4, 4, 96}, nullptr).status().code(), StatusCode::UNSUPPORTED);
  EXPECT_EQ(attention_select_cuda({128, 4, 3, 64}, nullptr).status().code(), StatusCode::INVALID_ARGUMENT);
  IndexGeometry g;
  g.seq_len = 128;
  g.num_heads = 4;
  g.block_q = 64;
  EXPECT_EQ(attention_select_cuda({128, 4, 4, 64}, &g).status().code(), StatusCode::UNSUPPORTED);
  g.block_q = 128;
  g.seq_len = 100;
  EXPECT_EQ(attention_select_cuda({128, 4, 4, 64}, &g).status().code(), StatusCode::INVALID_ARGUMENT);
  g.seq_len = 128;
  g.num_heads = 2;
  EXPECT_EQ(attention_select_cuda({128, 4, 4, 64}, &g).status().code(), StatusCode::INVALID_ARGUMENT);
  g.num_heads = 4;
  auto ok = attention_select_cuda({128, 4, 4, 64}, &g);
  ASSERT_TRUE(ok.is_ok());
  EXPECT_EQ(ok->kernel, AttentionKernel::FLASH_SPARSE_INDEX);
  EXPECT_GT(ok->workspace_bytes, 0u);
  EXPECT_EQ(attention_select_cuda({128, 4, 4, 64}, nullptr)->workspace_bytes, 0u);
}

}  // namespace
}  // namespace sacc::flash_test
