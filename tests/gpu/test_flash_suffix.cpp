// The dense flash kernels over the rest of a prompt after a restored prefix (AttentionParams::q_begin): the
// queries are rows [q_begin, L) of an L-row causal problem. Such a launch runs the very CTAs of those query
// blocks in a prefill of all L rows (DenseCausalVisit hands out the last blocks first), over the same key
// tiles in the same order, so its O and LSE equal that prefill's rows bit for bit, in each kernel body this
// GPU runs; both match the fp64 oracle. Given a workspace, a suffix too short to fill the GPU splits its keys
// (flash_suffix_split.h): that result matches the oracle too, and differs from the one pass by at most the
// rounding of its partial outputs. Starts off the query tile and sparse indices are refused.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "attention/attention.h"
#include "attention/cuda/eager_attention.h"
#include "attention/cuda/flash_suffix_split.h"
#include "attention/kernel_tile.h"
#include "attention/plan.h"
#include "flash_test_support.h"

namespace sacc::flash_test {
namespace {

struct SuffixCase {
  const char* name;
  AttentionShape shape;
  int64_t q_begin;  // a multiple of kTileBlockQ
};

// L = 1024 + 300 after 1024 or 512 restored rows (the last query block partial), GQA 4 and 3, d 64 and 128;
// a suffix of exactly one query block and one of a single row.
const SuffixCase kSuffixes[] = {
    {"L1324_from1024_g4_d64", {1324, 8, 2, 64}, 1024},   {"L1324_from512_g4_d64", {1324, 8, 2, 64}, 512},
    {"L1324_from1024_g3_d128", {1324, 6, 2, 128}, 1024}, {"L1324_from512_g3_d128", {1324, 6, 2, 128}, 512},
    {"L1152_from1024_g8_d128", {1152, 8, 1, 128}, 1024}, {"L1025_from1024_g1_d64", {1025, 4, 4, 64}, 1024},
};

std::string suffix_name(const ::testing::TestParamInfo<SuffixCase>& info) {
  return info.param.name;
}

// The bodies this GPU runs: the portable mma.sync one, and the Hopper one where the selector would take it.
std::vector<FlashKernelChoice> kernels_of_this_gpu() {
  int device = 0;
  EXPECT_EQ(cudaGetDevice(&device), cudaSuccess);
  const Result<GpuInfo> gpu = query_gpu(device);
  EXPECT_TRUE(gpu.is_ok()) << gpu.status().to_string();
  std::vector<FlashKernelChoice> kernels = {{FlashBody::MMA, false}};
  if (gpu.is_ok() &&
      choose_flash_kernel(gpu->sm_major, nullptr, 1, AttentionOverrides{}).body == FlashBody::SM90)
    kernels.push_back({FlashBody::SM90, false});
  return kernels;
}

const char* body_name(const FlashKernelChoice& kernel) {
  return kernel.body == FlashBody::SM90 ? "sm90" : "mma";
}

// Rows [q_begin, L) of a prefill's output: O [L, Hq, d] -> [n, Hq, d], LSE [Hq, L] -> [Hq, n].
GpuOutput prefill_rows(const GpuOutput& prefill, const AttentionShape& s, int64_t q_begin) {
  const int64_t row = int64_t{s.num_q_heads} * s.head_dim;
  GpuOutput rows;
  rows.o.assign(prefill.o.begin() + q_begin * row, prefill.o.end());
  for (int h = 0; h < s.num_q_heads; ++h)
    rows.lse.insert(rows.lse.end(), prefill.lse.begin() + h * s.seq_len + q_begin,
                    prefill.lse.begin() + (h + 1) * s.seq_len);
  return rows;
}

// The same rows of the oracle's result, as a result over n query rows (what expect_close compares).
ref::AttentionResult oracle_rows(const ref::AttentionResult& full, int64_t q_begin) {
  const AttentionShape& s = full.shape;
  const int64_t row = int64_t{s.num_q_heads} * s.head_dim;
  ref::AttentionResult rows;
  rows.shape = s;
  rows.shape.seq_len = s.seq_len - q_begin;
  rows.o.assign(full.o.begin() + q_begin * row, full.o.end());
  for (int h = 0; h < s.num_q_heads; ++h)
    rows.lse.insert(rows.lse.end(), full.lse.begin() + h * s.seq_len + q_begin,
                    full.lse.begin() + (h + 1) * s.seq_len);
  return rows;
}

class FlashSuffixTest : public FlashGpuTest, public ::testing::WithParamInterface<SuffixCase> {};

// Contiguous Q/O, Q out of a fused QKV buffer (strided) and O over Q (the runtime's use) all give the
// prefill's bits.
TEST_P(FlashSuffixTest, EqualsPrefillRowsBitwise) {
  const SuffixCase& c = GetParam();
  const HostInput in = random_input(c.shape, 51);
  for (const FlashKernelChoice& kernel : kernels_of_this_gpu()) {
    const GpuOutput want = prefill_rows(run_gpu(in, nullptr, Layout::CONTIGUOUS, kernel), c.shape, c.q_begin);
    for (Layout layout : {Layout::CONTIGUOUS, Layout::FUSED_QKV, Layout::O_OVER_Q}) {
      const std::string what = std::string(body_name(kernel)) + ", layout " + std::to_string(int(layout));
      const GpuOutput got = run_gpu(in, nullptr, layout, kernel, c.q_begin);
      EXPECT_EQ(got.o, want.o) << what;
      ASSERT_EQ(got.lse.size(), want.lse.size()) << what;
      EXPECT_EQ(std::memcmp(got.lse.data(), want.lse.data(), want.lse.size() * 4), 0) << what << ": LSE";
    }
  }
}

TEST_P(FlashSuffixTest, MatchesOracle) {
  const SuffixCase& c = GetParam();
  const HostInput in = random_input(c.shape, 52);
  auto want = ref::dense_attention(oracle_view(in));
  ASSERT_TRUE(want.is_ok()) << want.status().to_string();
  const ref::AttentionResult rows = oracle_rows(*want, c.q_begin);
  for (const FlashKernelChoice& kernel : kernels_of_this_gpu())
    expect_close(run_gpu(in, nullptr, Layout::CONTIGUOUS, kernel, c.q_begin), rows, body_name(kernel));
}

// Room for every split count the launch could take.
constexpr size_t kSplitWorkspace = size_t{64} << 20;

// The key splits run, and equal the oracle and the one pass to within bf16 roundings (of the partial O,
// which may be larger than the result where splits cancel: compared as a relative L2 error, not per element).
TEST_P(FlashSuffixTest, KeySplitsMatchOracleAndOnePass) {
  const SuffixCase& c = GetParam();
  const HostInput in = random_input(c.shape, 54);
  auto want = ref::dense_attention(oracle_view(in));
  ASSERT_TRUE(want.is_ok()) << want.status().to_string();
  const ref::AttentionResult rows = oracle_rows(*want, c.q_begin);
  for (const FlashKernelChoice& kernel : kernels_of_this_gpu()) {
    const std::string what = body_name(kernel);
    const GpuOutput split = run_gpu(in, nullptr, Layout::O_OVER_Q, kernel, c.q_begin, kSplitWorkspace);
    expect_close(split, rows, what + ", key splits");
    const GpuOutput one = run_gpu(in, nullptr, Layout::CONTIGUOUS, kernel, c.q_begin);
    ASSERT_EQ(split.o.size(), one.o.size());
    double err = 0.0, norm = 0.0;
    for (size_t i = 0; i < one.o.size(); ++i) {
      const double a = bf16_to_float(split.o[i]), b = bf16_to_float(one.o[i]);
      err += (a - b) * (a - b);
      norm += b * b;
    }
    // Two bf16 roundings (2^-9 relative each) instead of one.
    EXPECT_LE(std::sqrt(err / norm), std::ldexp(1.0, -7)) << what << ": relative L2 distance to the one pass";
    for (size_t i = 0; i < one.lse.size(); ++i)
      ASSERT_NEAR(split.lse[i], one.lse[i], 1e-4 * (1.0 + std::abs(one.lse[i])))
          << what << ": LSE[" << i << "]";
  }
}

INSTANTIATE_TEST_SUITE_P(Suffixes, FlashSuffixTest, ::testing::ValuesIn(kSuffixes), suffix_name);

// Longer prefixes, where the split count reaches 4: 200 rows after 2048 (GQA 2, d 64; GQA 4, d 128).
const SuffixCase kLongPrefixes[] = {
    {"L2248_from2048_g2_d64", {2248, 4, 2, 64}, 2048},
    {"L2248_from2048_g4_d128", {2248, 8, 2, 128}, 2048},
};
INSTANTIATE_TEST_SUITE_P(LongPrefixes, FlashSuffixTest, ::testing::ValuesIn(kLongPrefixes), suffix_name);

// How many splits a suffix launch takes: about one CTA per SM, at least 8 key blocks a split, at most 16, as
// many as the workspace holds; none for a prefill or a launch that fills the GPU already.
TEST(FlashSuffixSplits, CountFollowsSmsKeysAndWorkspace) {
  flash::FlashParams p;
  p.seq_len = 32000;
  p.q_begin = 31744;  // 256 rows after 31744: 2 query blocks
  p.num_q_heads = 14;
  const int items = 14 * 2;
  EXPECT_EQ(flash::suffix_key_splits(p, items, 132, 64, kSplitWorkspace), 4);  // 132 / 28
  EXPECT_EQ(flash::suffix_key_splits(p, items, 1024, 64, kSplitWorkspace), 16);
  EXPECT_EQ(flash::suffix_key_splits(p, items, 132, 64, 0), 1);
  EXPECT_EQ(flash::suffix_key_splits(p, items, 132, 64, flash::suffix_split_bytes(p, 2, 64)), 2);
  EXPECT_EQ(flash::suffix_key_splits(p, 14 * 40, 132, 64, kSplitWorkspace), 1);
  p.q_begin = 1024;  // 16 key blocks before the suffix: two splits of 8
  p.seq_len = 1280;
  EXPECT_EQ(flash::suffix_key_splits(p, items, 132, 64, kSplitWorkspace), 2);
  p.q_begin = 0;
  EXPECT_EQ(flash::suffix_key_splits(p, items, 132, 64, kSplitWorkspace), 1);
}

// A first row off the query tile, outside [0, L), or with a sparse index is refused before anything runs; so
// is any q_begin in the eager baseline and the GPU planner.
TEST_F(FlashGpuTest, SuffixRejectsWhatTheKernelsCannotRun) {
  const AttentionShape s{1324, 8, 2, 64};
  const HostInput in = random_input(s, 53);
  DeviceArray<uint16_t> q(in.q), k(in.k), v(in.v), o(in.q.size());
  AttentionParams params;
  params.shape = s;
  params.q = q.data;
  params.k = k.data;
  params.v = v.data;
  params.o = o.data;
  const FlashKernelChoice kernel{FlashBody::MMA, false};
  auto run = [&](int64_t q_begin, const SparseIndexView* maybe_index) {
    AttentionParams p = params;
    p.q_begin = q_begin;
    return attention_run_cuda(p, maybe_index, kernel, nullptr, 0, nullptr).code();
  };
  EXPECT_EQ(run(1000, nullptr), StatusCode::INVALID_ARGUMENT);  // not a multiple of kTileBlockQ
  EXPECT_EQ(run(kTileBlockQ / 2, nullptr), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(run(-kTileBlockQ, nullptr), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(run(11 * kTileBlockQ, nullptr), StatusCode::INVALID_ARGUMENT);  // 1408 >= L

  IndexGeometry g;
  g.seq_len = s.seq_len;
  g.num_heads = s.num_q_heads;
  const DeviceIndex all(SparseIndex::dense(g));
  EXPECT_EQ(run(1024, &all.view), StatusCode::UNSUPPORTED);

  AttentionParams suffix = params;
  suffix.q_begin = 1024;
  EXPECT_EQ(eager_attention_run(suffix, nullptr, 0, nullptr).code(), StatusCode::UNSUPPORTED);
  LayerPatterns patterns;
  patterns.heads = {PatternSpec{}};
  EXPECT_EQ(plan(suffix, patterns, g, nullptr, 0, nullptr).status().code(), StatusCode::UNSUPPORTED);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
}

}  // namespace
}  // namespace sacc::flash_test
