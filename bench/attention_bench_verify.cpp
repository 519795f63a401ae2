#include "attention_bench_verify.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <optional>

#include "attention/cost_model.h"
#include "core/cuda/cuda_check.h"
#include "core/dtype.h"
#include "reference/dense_attention.h"
#include "reference/sparse_attention.h"
#include "reference/synthetic.h"

namespace sacc::bench {
namespace {

constexpr double kBf16UnitRoundoff = 1.0 / 256.0;
constexpr double kLseTolerance = 1e-3;

struct DeviceInput {
  DeviceBuffer q, k, v, o, lse;
  AttentionParams params;
};

Result<DeviceInput> upload(const ref::HostQkv& qkv, int device) {
  DeviceInput in;
  auto to_device = [&](const std::vector<float>& values, DeviceBuffer& buffer, const char* what) -> Status {
    std::vector<uint16_t> bits(values.size());
    for (size_t e = 0; e < values.size(); ++e) bits[e] = float_to_bf16(values[e]);
    SACC_ASSIGN_OR_RETURN(buffer, DeviceBuffer::create(device, bits.size() * 2, what));
    SACC_CUDA_TRY(cudaMemcpy(buffer.data(), bits.data(), bits.size() * 2, cudaMemcpyHostToDevice));
    return Status::ok();
  };
  SACC_RETURN_IF_ERROR(to_device(qkv.q, in.q, "check Q"));
  SACC_RETURN_IF_ERROR(to_device(qkv.k, in.k, "check K"));
  SACC_RETURN_IF_ERROR(to_device(qkv.v, in.v, "check V"));
  SACC_ASSIGN_OR_RETURN(in.o, DeviceBuffer::create(device, qkv.q.size() * 2, "check O"));
  const size_t lse_bytes = static_cast<size_t>(qkv.shape.num_q_heads * qkv.shape.seq_len) * sizeof(float);
  SACC_ASSIGN_OR_RETURN(in.lse, DeviceBuffer::create(device, lse_bytes, "check LSE"));
  in.params.shape = qkv.shape;
  in.params.q = in.q.data();
  in.params.k = in.k.data();
  in.params.v = in.v.data();
  in.params.o = in.o.data();
  in.params.maybe_lse = in.lse.as<float>();
  return in;
}

struct Comparison {
  double max_o_error = 0.0, o_tolerance = 0.0, max_lse_error = 0.0;
  bool pass() const { return max_o_error <= o_tolerance && max_lse_error <= kLseTolerance; }
};

// Runs one method on the uploaded input and compares with the oracle; returns the line for the results file.
Result<std::string> check_method(Method method, const BenchShape& shape, const LayerBudgets& budgets,
                                 const ref::HostQkv& qkv, DeviceInput& in, const ref::AttentionResult& dense,
                                 int device, bool& passed) {
  passed = false;
  SACC_ASSIGN_OR_RETURN(const MethodSetup setup, setup_method(method, qkv.shape, budgets));
  SACC_ASSIGN_OR_RETURN(MethodRunner runner, MethodRunner::create(setup, qkv.shape, device));
  const size_t o_bytes = qkv.q.size() * 2, lse_bytes = in.lse.size();
  // Poison the outputs so an element the method never writes cannot pass.
  SACC_CUDA_TRY(cudaMemset(in.o.data(), 0xff, o_bytes));
  SACC_CUDA_TRY(cudaMemset(in.lse.data(), 0xff, lse_bytes));
  cudaEvent_t event = nullptr;
  SACC_CUDA_TRY(cudaEventCreate(&event));
  const Status run = runner.enqueue(in.params, event, nullptr);
  cudaEventDestroy(event);
  SACC_RETURN_IF_ERROR(run);
  SACC_CUDA_TRY(cudaDeviceSynchronize());

  std::optional<ref::AttentionResult> sparse_expected;
  std::string density;
  if (is_sparse(method)) {
    SACC_ASSIGN_OR_RETURN(const SparseIndex index, runner.last_index(nullptr));
    SACC_ASSIGN_OR_RETURN(sparse_expected, ref::sparse_attention(qkv.view(), index));
    density = fmt::format(", density {:.3f}", index_cost(index, shape.head_dim).density());
  }
  const ref::AttentionResult& expected = sparse_expected ? *sparse_expected : dense;

  std::vector<uint16_t> o_bits(qkv.q.size());
  std::vector<float> lse(lse_bytes / sizeof(float));
  SACC_CUDA_TRY(cudaMemcpy(o_bits.data(), in.o.data(), o_bytes, cudaMemcpyDeviceToHost));
  SACC_CUDA_TRY(cudaMemcpy(lse.data(), in.lse.data(), lse_bytes, cudaMemcpyDeviceToHost));
  double max_v = 0.0;
  for (float x : qkv.v) max_v = std::max(max_v, static_cast<double>(std::fabs(x)));
  Comparison c;
  c.o_tolerance = 2.0 * kBf16UnitRoundoff * max_v + 1e-6;
  for (size_t e = 0; e < o_bits.size(); ++e) {
    const double got = bf16_to_float(o_bits[e]);
    c.max_o_error = std::max(c.max_o_error, std::isfinite(got) ? std::fabs(got - expected.o[e]) : INFINITY);
  }
  for (size_t e = 0; e < lse.size(); ++e) {
    if (std::isinf(expected.lse[e]) && std::isinf(lse[e]) && lse[e] < 0) continue;  // a row with no key
    const double diff = std::fabs(lse[e] - expected.lse[e]);
    c.max_lse_error = std::max(c.max_lse_error, std::isfinite(diff) ? diff : INFINITY);
  }
  passed = c.pass();
  return fmt::format(
      "{} (L={}, {}/{} heads, d={}) {}: max |dO| {:.2e} (tol {:.2e}), max |dLSE| {:.2e} (tol {:.0e}){} "
      "against the oracle on {} - {}",
      shape.name, qkv.shape.seq_len, shape.num_q_heads, shape.num_kv_heads, shape.head_dim,
      method_name(method), c.max_o_error, c.o_tolerance, c.max_lse_error, kLseTolerance, density,
      is_sparse(method) ? "the GPU's index" : "dense attention", passed ? "pass" : "FAIL");
}

}  // namespace

SmallShapeCheck check_small_shape(const BenchShape& shape, const LayerBudgets& budgets,
                                  const std::vector<Method>& methods, int device) {
  SmallShapeCheck check;
  auto fail_all = [&](const Status& status) {
    check.lines.push_back(fmt::format("{}: cannot run the checks: {}", shape.name, status.to_string()));
    for (Method m : methods) check.failed.insert(m);
    return check;
  };
  ref::SyntheticConfig config;
  config.shape = shape.at(kCheckLength);
  config.seed = 2113;
  Result<ref::SyntheticInput> input = ref::make_synthetic_input(config);
  if (!input.is_ok()) return fail_all(input.status());
  const ref::HostQkv& qkv = input->qkv;
  Result<ref::AttentionResult> dense = ref::dense_attention(qkv.view());
  if (!dense.is_ok()) return fail_all(dense.status());
  Result<DeviceInput> in = upload(qkv, device);
  if (!in.is_ok()) return fail_all(in.status());

  for (Method method : methods) {
    bool passed = false;
    Result<std::string> line = check_method(method, shape, budgets, qkv, *in, *dense, device, passed);
    if (!line.is_ok()) {
      // A method that cannot run (cuDNN missing, unsupported) is reported as such in the sweep, not as wrong.
      check.lines.push_back(
          fmt::format("{} {}: not checked: {}", shape.name, method_name(method), line.status().to_string()));
      if (line.status().code() != StatusCode::UNSUPPORTED) check.failed.insert(method);
      continue;
    }
    check.lines.push_back(*line);
    if (!passed) check.failed.insert(method);
  }
  return check;
}

}  // namespace sacc::bench
