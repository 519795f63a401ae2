// plan_cpu() against the CPU oracle (src/reference/build_index.h): on synthetic inputs with planted structure
// the host index must equal the oracle's exactly (same CSR arrays) for every pattern kind, fixed and adaptive
// budgets, per head and shared per KV group, awkward lengths, GQA groups, head dims and block sizes; fp32 and
// bf16 inputs and strided views give the same index; exact ties follow the documented lower-id rule.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "attention/cpu/plan_cpu.h"
#include "plan_test_util.h"
#include "reference/build_index.h"
#include "reference/synthetic.h"

namespace sacc {
namespace {

struct Case {
  AttentionShape shape;
  std::vector<std::string> patterns;  // cycled over the index heads
  bool shared = false;
  int block_q = 128;
  int block_k = 64;
  EstimationConfig estimation;
  uint64_t seed = 11;
};

std::string describe(const Case& c) {
  std::string text = "L=" + std::to_string(c.shape.seq_len) + " Hq=" + std::to_string(c.shape.num_q_heads) +
                     " Hkv=" + std::to_string(c.shape.num_kv_heads) +
                     " d=" + std::to_string(c.shape.head_dim) + " Bq=" + std::to_string(c.block_q) +
                     " Bk=" + std::to_string(c.block_k) + (c.shared ? " shared" : " per-head");
  return text;
}

IndexGeometry geometry_of(const Case& c) {
  IndexGeometry geometry = test::index_geometry_of(c.shape, c.shared);
  geometry.block_q = c.block_q;
  geometry.block_k = c.block_k;
  return geometry;
}

LayerPatterns patterns_of(const Case& c, int num_heads) {
  LayerPatterns patterns;
  patterns.shared_per_kv_group = c.shared;
  patterns.estimation = c.estimation;
  for (int h = 0; h < num_heads; ++h) {
    Result<PatternSpec> spec = parse_pattern(c.patterns[h % c.patterns.size()]);
    EXPECT_TRUE(spec.is_ok()) << c.patterns[h % c.patterns.size()];
    patterns.heads.push_back(spec.is_ok() ? *spec : PatternSpec{});
  }
  return patterns;
}

std::vector<uint16_t> to_bf16(const std::vector<float>& values) {
  std::vector<uint16_t> out(values.size());
  for (size_t n = 0; n < values.size(); ++n) out[n] = float_to_bf16(values[n]);
  return out;
}

void expect_same_index(const SparseIndex& actual, const SparseIndex& expected, const std::string& what) {
  EXPECT_EQ(actual.block_offsets, expected.block_offsets) << what;
  EXPECT_EQ(actual.block_ids, expected.block_ids) << what;
  EXPECT_EQ(actual.column_offsets, expected.column_offsets) << what;
  EXPECT_EQ(actual.column_ids, expected.column_ids) << what;
}

// plan_cpu on fp32 and on bf16 copies of the synthetic Q/K must both equal the oracle's index.
void check_against_oracle(const Case& c) {
  ref::SyntheticConfig config;
  config.shape = c.shape;
  config.seed = c.seed;
  Result<ref::SyntheticInput> input = ref::make_synthetic_input(config);
  ASSERT_TRUE(input.is_ok()) << input.status().to_string();
  const ref::HostQkv& qkv = input->qkv;
  const IndexGeometry geometry = geometry_of(c);
  const LayerPatterns patterns = patterns_of(c, geometry.num_heads);

  std::vector<PatternSpec> clamped;
  for (const PatternSpec& spec : patterns.heads)
    clamped.push_back(ref::clamp_pattern_to_length(spec, geometry));
  Result<SparseIndex> oracle = ref::build_index(qkv.view(), clamped, c.estimation, geometry);
  ASSERT_TRUE(oracle.is_ok()) << oracle.status().to_string();

  AttentionParams params;
  params.shape = c.shape;
  params.q = qkv.q.data();
  params.k = qkv.k.data();
  Result<SparseIndex> fp32 = plan_cpu(params, patterns, geometry, {DType::F32, DType::F32});
  ASSERT_TRUE(fp32.is_ok()) << fp32.status().to_string();
  const Status valid = fp32->validate();
  ASSERT_TRUE(valid.is_ok()) << valid.to_string();
  expect_same_index(*fp32, *oracle, describe(c) + " fp32");

  const std::vector<uint16_t> q16 = to_bf16(qkv.q), k16 = to_bf16(qkv.k);
  params.q = q16.data();
  params.k = k16.data();
  Result<SparseIndex> bf16 = plan_cpu(params, patterns, geometry, {DType::BF16, DType::BF16});
  ASSERT_TRUE(bf16.is_ok()) << bf16.status().to_string();
  expect_same_index(*bf16, *oracle, describe(c) + " bf16");
}

// Every kind, fixed and adaptive budgets, budgets beyond small lengths and sinks / windows off block edges.
const std::vector<std::string> kMixedPatterns = {
    "interval-slash:60,150", "block-cluster:6",       "interval-slash:200,400@0.9",
    "triangular:70,200",     "block-cluster:10@0.8",  "dense",
    "interval-slash:5,1",    "block-cluster:2",       "interval-slash:1000,6096@0.95",
    "triangular:64,1",       "block-cluster:40@0.99", "interval-slash:3000,3000"};

TEST(PlanCpu, MixedKindsPerHead) {
  Case c;
  c.shape = {1023, 12, 4, 128};
  c.patterns = kMixedPatterns;
  check_against_oracle(c);
}

TEST(PlanCpu, SharedPerGroupHeadDim64) {
  Case c;
  c.shape = {4224, 12, 4, 64};
  c.shared = true;
  c.patterns = {"interval-slash:300,500", "block-cluster:12", "interval-slash:100,200@0.95",
                "block-cluster:20@0.9"};
  check_against_oracle(c);
}

TEST(PlanCpu, SingleToken) {
  Case c;
  c.shape = {1, 4, 1, 128};
  c.patterns = {"interval-slash:10,10", "block-cluster:3", "triangular:4,16", "interval-slash:1,1@0.5"};
  check_against_oracle(c);
  c.shared = true;
  check_against_oracle(c);
}

TEST(PlanCpu, EstimationSettings) {
  Case c;
  c.shape = {1023, 6, 2, 64};
  c.patterns = kMixedPatterns;
  c.estimation.last_queries = 2000;  // more than L: every row estimates
  c.estimation.sink_keys = 0;
  c.estimation.local_diagonals = 0;
  check_against_oracle(c);
  c.estimation.last_queries = 1;
  c.estimation.sink_keys = 70;
  c.estimation.local_diagonals = 300;
  c.shared = true;
  check_against_oracle(c);
}

// The sweep the brief asks for: lengths x GQA groups x head dims x block sizes, per head and shared.
struct SweepParam {
  int64_t seq_len;
  int group;
  int head_dim;
  int block_q;
  int block_k;
  bool shared;
};

class PlanCpuSweep : public ::testing::TestWithParam<SweepParam> {};

TEST_P(PlanCpuSweep, EqualsOracle) {
  const SweepParam& s = GetParam();
  Case c;
  const int kv_heads = s.group >= 4 ? 1 : 2;
  c.shape = {s.seq_len, kv_heads * s.group, kv_heads, s.head_dim};
  c.shared = s.shared;
  c.block_q = s.block_q;
  c.block_k = s.block_k;
  c.patterns = kMixedPatterns;
  // Rotate the patterns with the case so every kind lands on shared and per-head heads alike.
  std::rotate(c.patterns.begin(), c.patterns.begin() + (s.seq_len + s.group) % c.patterns.size(),
              c.patterns.end());
  c.seed = static_cast<uint64_t>(s.seq_len * 7 + s.group);
  check_against_oracle(c);
}

std::vector<SweepParam> sweep_params() {
  std::vector<SweepParam> params;
  int n = 0;
  for (int64_t seq_len : {1, 63, 113, 1023, 4224}) {
    for (int group : {1, 3, 4, 8}) {
      for (int head_dim : {64, 128}) {
        // Block shapes alternate so that each length meets every (Bq, Bk) pair of {64, 128}.
        const int blocks[4][2] = {{64, 64}, {128, 64}, {64, 128}, {128, 128}};
        const int* b = blocks[n++ % 4];
        params.push_back({seq_len, group, head_dim, b[0], b[1], false});
        params.push_back({seq_len, group, head_dim, b[1], b[0], true});
      }
    }
  }
  return params;
}

INSTANTIATE_TEST_SUITE_P(Shapes, PlanCpuSweep, ::testing::ValuesIn(sweep_params()),
                         [](const ::testing::TestParamInfo<SweepParam>& info) {
                           const SweepParam& s = info.param;
                           return fmt::format("L{}_g{}_d{}_q{}_k{}_{}", s.seq_len, s.group, s.head_dim,
                                              s.block_q, s.block_k, s.shared ? "shared" : "head");
                         });

// Zero queries make every causal softmax row uniform: all keys a row sees tie, so every key in
// [0, L - m] gets the same vertical score and the documented rule keeps the lowest ids.
TEST(PlanCpu, ExactTiesGoToLowerIds) {
  const AttentionShape shape{500, 1, 1, 64};
  std::vector<float> q(shape.seq_len * shape.head_dim, 0.0f), k(q.size());
  for (size_t n = 0; n < k.size(); ++n) k[n] = round_to_bf16(static_cast<float>((n * 37) % 11) - 5.0f);
  IndexGeometry geometry;
  geometry.seq_len = shape.seq_len;
  geometry.num_heads = 1;
  geometry.block_q = 64;
  geometry.block_k = 64;
  LayerPatterns patterns;
  patterns.heads = {*parse_pattern("interval-slash:40,1")};
  patterns.estimation.sink_keys = 4;
  patterns.estimation.local_diagonals = 1;
  AttentionParams params;
  params.shape = shape;
  params.q = q.data();
  params.k = k.data();
  Result<SparseIndex> index = plan_cpu(params, patterns, geometry, {DType::F32, DType::F32});
  ASSERT_TRUE(index.is_ok()) << index.status().to_string();
  // Only offset 0 is a slash, so every listed column outside the diagonal blocks is a vertical: keys 0..39.
  const int64_t last = geometry.num_q_blocks() - 1;
  std::vector<int32_t> columns(index->column_ids.begin() + index->column_offsets[last],
                               index->column_ids.begin() + index->column_offsets[last + 1]);
  std::vector<int32_t> expected;
  for (int32_t j = 0; j < 40; ++j) expected.push_back(j);
  EXPECT_EQ(columns, expected);

  ref::HostQkv qkv;
  qkv.shape = shape;
  qkv.q = q;
  qkv.k = k;
  qkv.v = k;
  Result<SparseIndex> oracle = ref::build_index(qkv.view(), patterns.heads, patterns.estimation, geometry);
  ASSERT_TRUE(oracle.is_ok()) << oracle.status().to_string();
  expect_same_index(*index, *oracle, "ties");
}

// Q and K as views into wider buffers (token strides beyond the heads), mixed fp32 Q / bf16 K as the runtime
// holds them.
TEST(PlanCpu, StridedMixedTypes) {
  Case c;
  c.shape = {777, 8, 2, 64};
  c.patterns = kMixedPatterns;
  ref::SyntheticConfig config;
  config.shape = c.shape;
  config.seed = 5;
  Result<ref::SyntheticInput> input = ref::make_synthetic_input(config);
  ASSERT_TRUE(input.is_ok());
  const ref::HostQkv& qkv = input->qkv;
  const IndexGeometry geometry = geometry_of(c);
  const LayerPatterns patterns = patterns_of(c, geometry.num_heads);
  Result<SparseIndex> expected =
      plan_cpu({c.shape, qkv.q.data(), qkv.k.data()}, patterns, geometry, {DType::F32, DType::F32});
  ASSERT_TRUE(expected.is_ok());

  const int d = c.shape.head_dim;
  const int64_t q_row = c.shape.num_q_heads * d, k_row = c.shape.num_kv_heads * d;
  const int64_t q_stride = q_row + 24, k_stride = k_row + 40;
  std::vector<float> q(c.shape.seq_len * q_stride, 1e30f);
  std::vector<uint16_t> k(c.shape.seq_len * k_stride, float_to_bf16(1e30f));
  for (int64_t i = 0; i < c.shape.seq_len; ++i) {
    for (int64_t n = 0; n < q_row; ++n) q[i * q_stride + n] = qkv.q[i * q_row + n];
    for (int64_t n = 0; n < k_row; ++n) k[i * k_stride + n] = float_to_bf16(qkv.k[i * k_row + n]);
  }
  AttentionParams params;
  params.shape = c.shape;
  params.q = q.data();
  params.k = k.data();
  params.q_token_stride = q_stride;
  params.kv_token_stride = k_stride;
  Result<SparseIndex> strided = plan_cpu(params, patterns, geometry, {DType::F32, DType::BF16});
  ASSERT_TRUE(strided.is_ok()) << strided.status().to_string();
  expect_same_index(*strided, *expected, "strided");
}

// A layer of static patterns needs no Q/K at all.
TEST(PlanCpu, StaticPatternsNeedNoInputs) {
  Case c;
  c.shape = {300, 2, 1, 128};
  const IndexGeometry geometry = geometry_of(c);
  c.patterns = {"dense", "triangular:100,70"};
  const LayerPatterns patterns = patterns_of(c, geometry.num_heads);
  AttentionParams params;
  params.shape = c.shape;
  Result<SparseIndex> index = plan_cpu(params, patterns, geometry);
  ASSERT_TRUE(index.is_ok()) << index.status().to_string();
  const SparseIndex dense = SparseIndex::dense(IndexGeometry{300, 1, 128, 64, false});
  EXPECT_EQ(std::vector<int32_t>(index->block_ids.begin(), index->block_ids.begin() + dense.block_ids.size()),
            dense.block_ids);
}

}  // namespace
}  // namespace sacc
