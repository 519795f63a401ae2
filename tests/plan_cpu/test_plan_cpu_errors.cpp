// plan_cpu() rejects bad shapes, geometries, budgets, settings and inputs with errors instead of crashing.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "attention/cpu/plan_cpu.h"

namespace sacc {
namespace {

struct Inputs {
  AttentionParams params;
  LayerPatterns patterns;
  IndexGeometry geometry;
  CpuPlanTypes types{DType::F32, DType::F32};
  std::vector<float> q, k;
};

// A valid call: L = 200, 4 query heads over 2 KV heads, d = 64, one head of each kind.
Inputs valid_inputs() {
  Inputs in;
  in.params.shape = {200, 4, 2, 64};
  in.q.assign(200 * 4 * 64, 0.25f);
  in.k.assign(200 * 2 * 64, -0.5f);
  in.params.q = in.q.data();
  in.params.k = in.k.data();
  in.geometry = {200, 4, 128, 64, false};
  for (const char* text : {"dense", "triangular:4,64", "interval-slash:20,30@0.9", "block-cluster:2"}) {
    in.patterns.heads.push_back(*parse_pattern(text));
  }
  return in;
}

void expect_error(const std::function<void(Inputs&)>& mutate, StatusCode code, const std::string& fragment) {
  Inputs in = valid_inputs();
  mutate(in);
  if (in.params.q != nullptr) in.params.q = in.q.data();
  if (in.params.k != nullptr) in.params.k = in.k.data();
  const Result<SparseIndex> index = plan_cpu(in.params, in.patterns, in.geometry, in.types);
  ASSERT_FALSE(index.is_ok()) << "expected an error mentioning '" << fragment << "'";
  EXPECT_EQ(index.status().code(), code) << index.status().to_string();
  EXPECT_NE(index.status().to_string().find(fragment), std::string::npos) << index.status().to_string();
}

TEST(PlanCpuErrors, ValidInputsPlan) {
  Inputs in = valid_inputs();
  const Result<SparseIndex> index = plan_cpu(in.params, in.patterns, in.geometry, in.types);
  ASSERT_TRUE(index.is_ok()) << index.status().to_string();
  EXPECT_TRUE(index->validate().is_ok());
}

TEST(PlanCpuErrors, Shapes) {
  expect_error([](Inputs& in) { in.params.shape.num_kv_heads = 3; }, StatusCode::INVALID_ARGUMENT,
               "multiple");
  expect_error([](Inputs& in) { in.params.shape.seq_len = 0; }, StatusCode::INVALID_ARGUMENT, "length");
  expect_error([](Inputs& in) { in.params.shape.head_dim = 0; }, StatusCode::INVALID_ARGUMENT, "head dim");
}

TEST(PlanCpuErrors, Geometry) {
  expect_error([](Inputs& in) { in.geometry.seq_len = 199; }, StatusCode::INVALID_ARGUMENT, "length");
  expect_error([](Inputs& in) { in.geometry.num_heads = 2; }, StatusCode::INVALID_ARGUMENT, "heads");
  expect_error([](Inputs& in) { in.geometry.block_k = 0; }, StatusCode::INVALID_ARGUMENT, "block");
  expect_error([](Inputs& in) { in.geometry.shared_per_kv_group = true; }, StatusCode::INVALID_ARGUMENT,
               "sharing");
  expect_error([](Inputs& in) { in.patterns.heads.pop_back(); }, StatusCode::INVALID_ARGUMENT,
               "3 head patterns for 4");
}

TEST(PlanCpuErrors, Budgets) {
  expect_error([](Inputs& in) { in.patterns.heads[2].vertical = -1; }, StatusCode::INVALID_ARGUMENT,
               "negative budget");
  expect_error([](Inputs& in) { in.patterns.heads[3].blocks = -5; }, StatusCode::INVALID_ARGUMENT,
               "negative budget");
  expect_error([](Inputs& in) { in.patterns.heads[1].window = -2; }, StatusCode::INVALID_ARGUMENT,
               "negative budget");
  expect_error([](Inputs& in) { in.patterns.heads[2].gamma = 1.5; }, StatusCode::INVALID_ARGUMENT, "gamma");
  expect_error([](Inputs& in) { in.patterns.heads[3].gamma = -0.1; }, StatusCode::INVALID_ARGUMENT, "gamma");
  expect_error([](Inputs& in) { in.patterns.heads[0].kind = static_cast<PatternKind>(9); },
               StatusCode::INVALID_ARGUMENT, "unknown pattern kind");
}

TEST(PlanCpuErrors, EstimationSettings) {
  expect_error([](Inputs& in) { in.patterns.estimation.last_queries = 0; }, StatusCode::INVALID_ARGUMENT,
               "last_queries");
  expect_error([](Inputs& in) { in.patterns.estimation.sink_keys = -1; }, StatusCode::INVALID_ARGUMENT,
               "sink");
}

TEST(PlanCpuErrors, Inputs) {
  expect_error(
      [](Inputs& in) {
        in.q.clear();
        in.params.q = nullptr;
      },
      StatusCode::INVALID_ARGUMENT, "need host Q and K");
  expect_error([](Inputs& in) { in.types.k = DType::F16; }, StatusCode::UNSUPPORTED, "F32 or BF16");
  expect_error([](Inputs& in) { in.params.kv_token_stride = -128; }, StatusCode::INVALID_ARGUMENT, "stride");
}

}  // namespace
}  // namespace sacc
