// The flash kernel family (dense and sparse visit policies) against the fp64 CPU oracle, against itself
// (all-blocks sparse == dense bitwise), and with poisoned outputs and canaries after them.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "attention/attention.h"
#include "attention/cuda/flash_attention_host.h"
#include "core/device_info.h"
#include "core/dtype.h"
#include "reference/dense_attention.h"
#include "reference/sparse_attention.h"
#include "runtime/attention_selector.h"

namespace sacc {
namespace {

// Error budget: a same-precision kernel rounds P to bf16 before P.V and O to bf16 at the end, each a relative
// rms error of 2^-8 / sqrt(3); we allow twice that pair, as a relative L2 error per head.
const double kOTolerance = 2.0 * std::sqrt(2.0) * std::ldexp(1.0, -8) / std::sqrt(3.0);
// LSE is fp32 throughout (no bf16 rounding): fp32 accumulation over d and the exp2/log2 approximations.
constexpr double kLseTolerance = 2e-3;
constexpr uint16_t kPoisonBf16 = 0x7fc1;  // a NaN: an unwritten output element cannot pass the comparison
constexpr int kCanaryElems = 4096;
constexpr uint16_t kCanary = 0x5a5a;

struct HostInput {
  AttentionShape shape;
  std::vector<uint16_t> q, k, v;  // bf16 bits: [L, Hq, d], [L, Hkv, d], [L, Hkv, d]
  std::vector<float> qf, kf, vf;  // the same values widened, for the oracle
};

HostInput random_input(const AttentionShape& shape, uint64_t seed) {
  HostInput in;
  in.shape = shape;
  std::mt19937_64 rng(seed);
  // Queries scaled so softmax rows are peaked (some heads), exercising the running-max rescale.
  std::normal_distribution<float> normal(0.0f, 1.0f);
  auto fill = [&](std::vector<uint16_t>& bits, std::vector<float>& values, int64_t count, float scale) {
    bits.resize(count);
    values.resize(count);
    for (int64_t i = 0; i < count; ++i) {
      bits[i] = float_to_bf16(normal(rng) * scale);
      values[i] = bf16_to_float(bits[i]);
    }
  };
  const int64_t q_count = shape.seq_len * shape.num_q_heads * shape.head_dim;
  const int64_t kv_count = shape.seq_len * shape.num_kv_heads * shape.head_dim;
  fill(in.q, in.qf, q_count, 2.0f);
  fill(in.k, in.kf, kv_count, 1.0f);
  fill(in.v, in.vf, kv_count, 1.0f);
  return in;
}

template <typename T>
struct DeviceArray {
  T* data = nullptr;
  size_t count = 0;
  explicit DeviceArray(size_t n) : count(n) {
    if (n) {
      EXPECT_EQ(cudaMalloc(&data, n * sizeof(T)), cudaSuccess);
    }
  }
  DeviceArray(const std::vector<T>& host) : DeviceArray(host.size()) {
    if (count) {
      EXPECT_EQ(cudaMemcpy(data, host.data(), count * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
    }
  }
  ~DeviceArray() {
    if (data) cudaFree(data);
  }
  std::vector<T> download() const {
    std::vector<T> host(count);
    if (count) {
      EXPECT_EQ(cudaMemcpy(host.data(), data, count * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    }
    return host;
  }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
};

struct GpuOutput {
  std::vector<uint16_t> o;  // [L, Hq, d] bf16 bits
  std::vector<float> lse;   // [Hq, L]
};

// Q, K and V interleaved per token as one fused projection output: [L, Hq + 2 Hkv, d].
std::vector<uint16_t> fuse_qkv(const HostInput& in) {
  const AttentionShape& s = in.shape;
  const int64_t width = s.num_q_heads + 2 * s.num_kv_heads;
  std::vector<uint16_t> fused(s.seq_len * width * s.head_dim);
  for (int64_t i = 0; i < s.seq_len; ++i) {
    for (int h = 0; h < s.num_q_heads; ++h)
      std::copy_n(in.q.begin() + (i * s.num_q_heads + h) * s.head_dim, s.head_dim,
                  fused.begin() + (i * width + h) * s.head_dim);
    for (int h = 0; h < s.num_kv_heads; ++h) {
      std::copy_n(in.k.begin() + (i * s.num_kv_heads + h) * s.head_dim, s.head_dim,
                  fused.begin() + (i * width + s.num_q_heads + h) * s.head_dim);
      std::copy_n(in.v.begin() + (i * s.num_kv_heads + h) * s.head_dim, s.head_dim,
                  fused.begin() + (i * width + s.num_q_heads + s.num_kv_heads + h) * s.head_dim);
    }
  }
  return fused;
}

// Where the kernel reads Q and writes O.
enum class Layout {
  CONTIGUOUS,  // separate Q, K, V and O tensors
  FUSED_QKV,   // Q/K/V through token/head strides out of one fused projection buffer
  O_OVER_Q,    // O written over Q (the runtime's in-place use)
};

// The attention selector's kernel on the current device (SACC_FLASH_BODY picks the body under test).
FlashKernelChoice selected_kernel(const AttentionShape& s, const IndexGeometry* maybe_geometry) {
  int device = 0;
  EXPECT_EQ(cudaGetDevice(&device), cudaSuccess);
  Result<FlashKernelChoice> choice = flash_kernel_for_device(device, maybe_geometry, s.group_size());
  EXPECT_TRUE(choice.is_ok()) << choice.status().to_string();
  return choice.is_ok() ? *choice : FlashKernelChoice{};
}

// Runs attention_run_cuda with poisoned O/LSE and a canary region after O; fails the test on any error.
// maybe_kernel: a kernel choice to force (default: the selector's).
GpuOutput run_gpu(const HostInput& in, const SparseIndex* maybe_index, Layout layout = Layout::CONTIGUOUS,
                  std::optional<FlashKernelChoice> maybe_kernel = std::nullopt) {
  const AttentionShape& s = in.shape;
  const bool fused_qkv = layout == Layout::FUSED_QKV;
  const size_t o_count = static_cast<size_t>(s.seq_len) * s.num_q_heads * s.head_dim;
  DeviceArray<uint16_t> q(fused_qkv ? std::vector<uint16_t>{} : in.q),
      k(fused_qkv ? std::vector<uint16_t>{} : in.k), v(fused_qkv ? std::vector<uint16_t>{} : in.v);
  DeviceArray<uint16_t> fused(fused_qkv ? fuse_qkv(in) : std::vector<uint16_t>{});
  std::vector<uint16_t> o_init(o_count + kCanaryElems, kPoisonBf16);
  std::fill(o_init.begin() + o_count, o_init.end(), kCanary);
  if (layout == Layout::O_OVER_Q) std::copy(in.q.begin(), in.q.end(), o_init.begin());
  DeviceArray<uint16_t> o(o_init);
  DeviceArray<float> lse(std::vector<float>(s.seq_len * s.num_q_heads, std::nanf("")));

  std::vector<std::unique_ptr<DeviceArray<int32_t>>> index_arrays;
  SparseIndexView view;
  if (maybe_index) {
    for (const auto* a : {&maybe_index->block_offsets, &maybe_index->block_ids, &maybe_index->column_offsets,
                          &maybe_index->column_ids})
      index_arrays.push_back(std::make_unique<DeviceArray<int32_t>>(*a));
    view.geometry = maybe_index->geometry;
    view.block_offsets = index_arrays[0]->data;
    view.block_ids = index_arrays[1]->data;
    view.column_offsets = index_arrays[2]->data;
    view.column_ids = index_arrays[3]->data;
  }
  auto selection = attention_select_cuda(s, maybe_index ? &view.geometry : nullptr);
  EXPECT_TRUE(selection.is_ok()) << selection.status().to_string();
  if (!selection.is_ok()) return {};
  DeviceArray<unsigned char> workspace(selection->workspace_bytes);

  AttentionParams params;
  params.shape = s;
  params.q = q.data;
  params.k = k.data;
  params.v = v.data;
  if (fused_qkv) {
    const int64_t token_stride = int64_t{s.num_q_heads + 2 * s.num_kv_heads} * s.head_dim;
    params.q = fused.data;
    params.k = fused.data + int64_t{s.num_q_heads} * s.head_dim;
    params.v = fused.data + int64_t{s.num_q_heads + s.num_kv_heads} * s.head_dim;
    params.q_token_stride = params.kv_token_stride = token_stride;
    params.q_head_stride = params.kv_head_stride = s.head_dim;
  }
  params.o = o.data;
  if (layout == Layout::O_OVER_Q) params.q = o.data;
  params.maybe_lse = lse.data;
  const FlashKernelChoice kernel =
      maybe_kernel.value_or(selected_kernel(s, maybe_index ? &maybe_index->geometry : nullptr));
  const Status status = attention_run_cuda(params, maybe_index ? &view : nullptr, kernel, workspace.data,
                                           selection->workspace_bytes, nullptr);
  EXPECT_TRUE(status.is_ok()) << status.to_string();
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);

  GpuOutput out;
  std::vector<uint16_t> o_all = o.download();
  for (size_t i = o_count; i < o_all.size(); ++i) {
    if (o_all[i] != kCanary) {
      ADD_FAILURE() << "canary after O overwritten at element " << i - o_count;
      break;
    }
  }
  o_all.resize(o_count);
  out.o = std::move(o_all);
  out.lse = lse.download();
  return out;
}

// Per-head relative L2 error of O and max LSE error against an fp64 result; NaN (unwritten) never passes.
void expect_close(const GpuOutput& gpu, const ref::AttentionResult& want, const std::string& what) {
  const AttentionShape& s = want.shape;
  ASSERT_EQ(gpu.o.size(), want.o.size()) << what;
  for (int h = 0; h < s.num_q_heads; ++h) {
    double err = 0, norm = 0;
    for (int64_t i = 0; i < s.seq_len; ++i) {
      for (int c = 0; c < s.head_dim; ++c) {
        const size_t at = (static_cast<size_t>(i) * s.num_q_heads + h) * s.head_dim + c;
        const double got = bf16_to_float(gpu.o[at]);
        ASSERT_FALSE(std::isnan(got))
            << what << ": O[" << i << ", " << h << ", " << c << "] unwritten or NaN";
        err += (got - want.o[at]) * (got - want.o[at]);
        norm += want.o[at] * want.o[at];
      }
    }
    const double rel = norm > 0 ? std::sqrt(err / norm) : std::sqrt(err);
    EXPECT_LE(rel, kOTolerance) << what << ": head " << h << " relative L2 error of O";
  }
  for (size_t i = 0; i < want.lse.size(); ++i) {
    const double w = want.lse[i], g = gpu.lse[i];
    if (std::isinf(w)) {
      ASSERT_TRUE(std::isinf(g) && g < 0) << what << ": LSE[" << i << "] = " << g << ", want -inf";
    } else {
      ASSERT_LE(std::abs(g - w), kLseTolerance * (1.0 + std::abs(w))) << what << ": LSE[" << i << "]";
    }
  }
}

ref::QkvView oracle_view(const HostInput& in) {
  return {in.shape, in.qf.data(), in.kf.data(), in.vf.data(), 0.0};
}

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

class FlashGpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  }
};

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
}  // namespace sacc
