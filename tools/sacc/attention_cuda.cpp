#include "tools/sacc/attention_cuda.h"

#ifdef SACC_WITH_CUDA
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "attention/cost_model.h"
#include "core/dtype.h"
#include "reference/build_index.h"
#include "reference/dense_attention.h"
#include "reference/metrics.h"
#include "reference/sparse_attention.h"
#include "tools/sacc/attention_gpu_session.h"
#include "tools/sacc/attention_io.h"
#endif

namespace sacc::cli {

#ifdef SACC_WITH_CUDA
namespace {

// The bf16 error budget of tests/gpu/test_flash_attention.cpp: a same-precision kernel rounds P to bf16
// before P.V and O to bf16 at the end, each a relative rms error of 2^-8 / sqrt(3); twice that pair is
// allowed, as a relative L2 error per head.
const double kOTolerance = 2.0 * std::sqrt(2.0) * std::ldexp(1.0, -8) / std::sqrt(3.0);
// LSE stays fp32 (no bf16 rounding): |lse - lse_oracle| <= kLseTolerance * (1 + |lse_oracle|).
constexpr double kLseTolerance = 2e-3;
// The demo checks against the fp64 CPU oracle only up to this much work (multiply-adds of dense attention,
// L(L+1)/2 * Hq * d; about twice the default demo): beyond it the oracle takes minutes.
constexpr double kDemoOracleWorkLimit = 34359738368.0;  // 2^35

constexpr const char* kTimingNote = "one run after a warm-up, CUDA events; not a benchmark";

Status with_memory_hint(const Status& status) {
  if (status.code() != StatusCode::OUT_OF_MEMORY) return status;
  return Status(status.code(), status.message() + " (shorten the input, use fewer heads, or --device cpu)");
}

struct OracleCheck {
  double o_error = 0.0;    // max over query heads of ||O - O_oracle|| / ||O_oracle||
  double lse_error = 0.0;  // max |lse - lse_oracle| over rows with keys
  bool within = true;      // both inside the bf16 tolerance, and -inf exactly where the oracle has it
};

OracleCheck check_against_oracle(const AttentionOutput& gpu, const ref::AttentionResult& want) {
  OracleCheck check;
  std::vector<double> o(gpu.o.size());
  for (size_t n = 0; n < o.size(); ++n) o[n] = bf16_to_float(gpu.o[n]);
  Result<std::vector<double>> per_head = ref::relative_l2_error_per_head(o, want.o, want.shape);
  if (!per_head.is_ok()) return {INFINITY, INFINITY, false};
  for (double error : *per_head) {
    check.o_error = std::isnan(error) ? INFINITY : std::max(check.o_error, error);
    if (!(error <= kOTolerance)) check.within = false;  // NaN fails too
  }
  for (size_t n = 0; n < want.lse.size(); ++n) {
    const double w = want.lse[n], g = gpu.lse[n];
    if (std::isinf(w)) {
      if (!(std::isinf(g) && g < 0)) check.within = false;
      continue;
    }
    const double error = std::abs(g - w);
    check.lse_error = std::isnan(error) ? INFINITY : std::max(check.lse_error, error);
    if (!(error <= kLseTolerance * (1.0 + std::abs(w)))) check.within = false;
  }
  return check;
}

// ||a - b|| / ||b|| over two bf16 tensors of the same size, without widening copies (large demo inputs).
double relative_l2_error_bits(const std::vector<uint16_t>& a, const std::vector<uint16_t>& b) {
  double error = 0.0, norm = 0.0;
  for (size_t n = 0; n < a.size(); ++n) {
    const double x = bf16_to_float(a[n]), y = bf16_to_float(b[n]);
    error += (x - y) * (x - y);
    norm += y * y;
  }
  return norm > 0.0 ? std::sqrt(error / norm) : std::sqrt(error);
}

// Slots whose block or column list differs between two indices of the same geometry.
int64_t differing_slots(const SparseIndex& a, const SparseIndex& b) {
  int64_t count = 0;
  for (int64_t slot = 0; slot < a.geometry.num_slots(); ++slot) {
    auto same = [slot](const std::vector<int32_t>& offsets_a, const std::vector<int32_t>& ids_a,
                       const std::vector<int32_t>& offsets_b, const std::vector<int32_t>& ids_b) {
      return std::equal(ids_a.begin() + offsets_a[slot], ids_a.begin() + offsets_a[slot + 1],
                        ids_b.begin() + offsets_b[slot], ids_b.begin() + offsets_b[slot + 1]);
    };
    if (!same(a.block_offsets, a.block_ids, b.block_offsets, b.block_ids) ||
        !same(a.column_offsets, a.column_ids, b.column_offsets, b.column_ids)) {
      ++count;
    }
  }
  return count;
}

// --compare on CUDA: the oracle on the index the GPU used (the GPU's own estimate), and how that index
// relates to the oracle's estimate from the same values.
Status compare_with_oracle(const ref::QkvView& qkv, const PatternSpec& spec, const IndexOptions& options,
                           const GpuPatternRun& run) {
  const bool dense = spec.kind == PatternKind::DENSE;
  SACC_ASSIGN_OR_RETURN(const ref::AttentionResult want,
                        dense ? ref::dense_attention(qkv) : ref::sparse_attention(qkv, run.index));
  const OracleCheck check = check_against_oracle(run.output, want);
  std::printf(
      "against the CPU oracle on the same index: relative L2 error of O %.2e (max over heads; bf16 tolerance "
      "%.2e), max LSE error %.2e (tolerance %.0e x (1 + |lse|))\n",
      check.o_error, kOTolerance, check.lse_error, kLseTolerance);
  if (!dense) {
    SACC_ASSIGN_OR_RETURN(const SparseIndex cpu_index,
                          ref::build_index(qkv, {spec}, options.estimation, run.index.geometry));
    const int64_t differ = differing_slots(run.index, cpu_index);
    if (differ == 0) {
      std::printf("index: identical to the CPU oracle's estimate\n");
    } else {
      std::printf(
          "index: %lld of %lld (head, query block) slots differ from the CPU oracle's estimate (ties, fp32 "
          "rounding of the scores); density %.4f here, %.4f there\n",
          static_cast<long long>(differ), static_cast<long long>(run.index.geometry.num_slots()),
          index_cost(run.index, qkv.shape.head_dim).density(),
          index_cost(cpu_index, qkv.shape.head_dim).density());
    }
  }
  if (!check.within) {
    return make_error(StatusCode::INTERNAL,
                      "--device cuda: the CUDA result of {} differs from the CPU oracle beyond the bf16 "
                      "tolerance (see above)",
                      to_string(spec));
  }
  return Status::ok();
}

// Rounds the fp32 values to what the GPU reads (bf16) in place; returns the bf16 bits.
std::vector<uint16_t> round_to_bf16(std::vector<float>& values) {
  std::vector<uint16_t> bits = to_bf16_bits(values);
  for (size_t n = 0; n < values.size(); ++n) values[n] = bf16_to_float(bits[n]);
  return bits;
}

struct DemoRow {
  PatternSpec spec;
  GpuPatternRun run;
  double error = 0.0;  // against GPU dense
  OracleCheck oracle;
};

}  // namespace

Status run_attention_file_cuda(const FileOptions& file, const IndexOptions& options, Device device) {
  SACC_ASSIGN_OR_RETURN(PatternSpec spec, file_pattern(file.patterns));
  SACC_RETURN_IF_ERROR(select_cuda_device(device));
  SACC_ASSIGN_OR_RETURN(ref::HostQkv host, load_qkv_file(file.input));
  const AttentionShape shape = host.shape;
  const IndexGeometry geometry = options.geometry(shape.seq_len, shape.num_q_heads, shape.num_kv_heads);
  SACC_RETURN_IF_ERROR(geometry.validate());
  SACC_RETURN_IF_ERROR(check_cuda_supports(shape, geometry, spec));
  if (options.clamp_budgets) {
    spec = ref::clamp_pattern_to_length(spec, geometry);
  } else {
    SACC_RETURN_IF_ERROR(check_budgets_fit(spec, geometry));
  }

  // F32 and F16 inputs are rounded to bf16 once, here; --compare gives the oracle the same rounded values.
  Result<GpuAttention> session = Status(StatusCode::INTERNAL, "not created");
  {
    const std::vector<uint16_t> q = round_to_bf16(host.q), k = round_to_bf16(host.k),
                                v = round_to_bf16(host.v);
    if (!file.compare) host = {};  // the oracle will not need the fp32 copy
    session = GpuAttention::create(shape, q, k, v, file.softmax_scale);
  }
  if (!session.is_ok()) return with_memory_hint(session.status());
  Result<GpuPatternRun> run = session->run(spec, geometry, options.estimation);
  if (!run.is_ok()) return with_memory_hint(run.status().with_context(to_string(spec)));

  print_attention_summary(spec, shape, index_cost(run->index, shape.head_dim), run->plan_ms,
                          run->attention_ms, cuda_device_label(device) + "; " + kTimingNote);
  Status compared;
  if (file.compare) {
    ref::QkvView qkv = host.view();
    qkv.softmax_scale = file.softmax_scale;
    compared = compare_with_oracle(qkv, spec, options, *run);
  }
  if (!file.output.empty()) {
    SACC_RETURN_IF_ERROR(write_attention_output(file.output, run->output, spec, "sacc attention (CUDA)",
                                                file.dump_index ? &run->index : nullptr));
    std::printf("wrote %s\n", file.output.c_str());
  }
  return compared;
}

Status run_attention_demo_cuda(const DemoOptions& demo, const IndexOptions& options, Device device) {
  const AttentionShape shape{demo.seq_len, demo.num_q_heads, demo.num_kv_heads, demo.head_dim};
  SACC_RETURN_IF_ERROR(shape.validate().with_context("--demo"));
  const IndexGeometry geometry = options.geometry(demo.seq_len, demo.num_q_heads, demo.num_kv_heads);
  SACC_RETURN_IF_ERROR(geometry.validate());
  SACC_ASSIGN_OR_RETURN(const std::vector<PatternSpec> specs, demo_patterns(demo, options, geometry));
  SACC_RETURN_IF_ERROR(select_cuda_device(device));
  for (const PatternSpec& spec : specs) {
    SACC_RETURN_IF_ERROR(check_cuda_supports(shape, geometry, spec));
    SACC_RETURN_IF_ERROR(check_budgets_fit(spec, geometry));
  }

  SACC_ASSIGN_OR_RETURN(const ref::SyntheticInput input, make_demo_input(demo));
  const ref::QkvView qkv = input.qkv.view();
  const double oracle_work = 0.5 * static_cast<double>(demo.seq_len) * static_cast<double>(demo.seq_len + 1) *
                             demo.num_q_heads * demo.head_dim;
  const bool oracle = oracle_work <= kDemoOracleWorkLimit;
  std::printf(
      "%s: bf16 flash kernels, fp32 accumulation; index built on the GPU (Bq=%d Bk=%d, %s), estimation from "
      "the last %lld queries; times: %s\n\n",
      cuda_device_label(device).c_str(), options.block_q, options.block_k,
      options.shared_per_kv_group ? "shared per KV group" : "per head",
      static_cast<long long>(options.estimation.last_queries), kTimingNote);
  std::fflush(stdout);

  // The synthetic values are bf16 already: the bits are exact.
  Result<GpuAttention> session = GpuAttention::create(
      shape, to_bf16_bits(input.qkv.q), to_bf16_bits(input.qkv.k), to_bf16_bits(input.qkv.v), 0.0);
  if (!session.is_ok()) return with_memory_hint(session.status());
  Result<GpuPatternRun> dense_run = session->run(PatternSpec{}, geometry, options.estimation);
  if (!dense_run.is_ok()) return with_memory_hint(dense_run.status().with_context("dense"));
  Result<ref::AttentionResult> oracle_dense = Status(StatusCode::INTERNAL, "oracle skipped");
  if (oracle) {
    oracle_dense = ref::dense_attention(qkv);
    SACC_RETURN_IF_ERROR(oracle_dense.status());
  }

  std::vector<DemoRow> rows;
  bool all_within = true;
  for (const PatternSpec& spec : specs) {
    DemoRow row;
    row.spec = spec;
    if (spec.kind == PatternKind::DENSE) {
      row.run = *dense_run;
    } else {
      Result<GpuPatternRun> run = session->run(spec, geometry, options.estimation);
      if (!run.is_ok()) return with_memory_hint(run.status().with_context(to_string(spec)));
      row.run = std::move(run).value();
      row.error = relative_l2_error_bits(row.run.output.o, dense_run->output.o);
    }
    if (oracle && spec.kind == PatternKind::DENSE) {
      row.oracle = check_against_oracle(row.run.output, *oracle_dense);
    } else if (oracle) {
      SACC_ASSIGN_OR_RETURN(const ref::AttentionResult want, ref::sparse_attention(qkv, row.run.index));
      row.oracle = check_against_oracle(row.run.output, want);
    }
    all_within = all_within && row.oracle.within;
    row.run.output = {};  // measured; only the index is needed from here on (recall)
    rows.push_back(std::move(row));
  }
  std::vector<ref::RecallReport> recall;
  if (oracle) {
    std::vector<const SparseIndex*> indices;
    for (const DemoRow& row : rows) indices.push_back(&row.run.index);
    SACC_ASSIGN_OR_RETURN(recall, ref::attention_recall(qkv, indices));
  }

  std::printf("| %-34s | %7s | %7s | %8s | %10s | %9s | %9s |\n", "pattern", "density", "recall", "rel.err",
              "oracle err", "plan ms", "attn ms");
  std::printf("|%s|%s|%s|%s|%s|%s|%s|\n", std::string(36, '-').c_str(), std::string(9, '-').c_str(),
              std::string(9, '-').c_str(), std::string(10, '-').c_str(), std::string(12, '-').c_str(),
              std::string(11, '-').c_str(), std::string(11, '-').c_str());
  for (size_t n = 0; n < rows.size(); ++n) {
    const DemoRow& row = rows[n];
    const std::string recall_cell = oracle ? fmt::format("{:7.4f}", recall[n].mean) : "      -";
    const std::string oracle_cell = oracle ? fmt::format("{:10.2e}", row.oracle.o_error) : "         -";
    std::printf("| %-34s | %7.4f | %s | %8.5f | %s | %9.3f | %9.3f |\n", to_string(row.spec).c_str(),
                index_cost(row.run.index, demo.head_dim).density(), recall_cell.c_str(), row.error,
                oracle_cell.c_str(), row.run.plan_ms, row.run.attention_ms);
  }
  std::printf(
      "\ndensity: visited tiles (+ gathered columns / Bk) over causal tiles; recall: share of the dense "
      "attention mass the GPU's index covers (fp64 oracle); rel.err: ||O - O_dense|| / ||O_dense|| against "
      "the "
      "GPU's dense run; oracle err: max over heads of the relative L2 error of O against the fp64 CPU oracle "
      "on the same index (bf16 tolerance %.2e); plan = estimation + index build on the GPU\n",
      kOTolerance);
  if (!oracle) {
    std::printf(
        "recall and oracle err skipped: L(L+1)/2 x Hq x d = %.2e multiply-adds is beyond what the fp64 CPU "
        "oracle does in reasonable time (limit %.2e); use a shorter --len or fewer --heads to check\n",
        oracle_work, kDemoOracleWorkLimit);
  }
  if (!all_within) {
    return make_error(StatusCode::INTERNAL,
                      "--device cuda: a pattern's CUDA result differs from the CPU oracle beyond the bf16 "
                      "tolerance (oracle err above)");
  }
  return Status::ok();
}

#else  // !SACC_WITH_CUDA

namespace {

Status built_without_cuda(Device device) {
  return make_error(StatusCode::UNSUPPORTED,
                    "--device cuda:{}: this sacc was built without CUDA; use --device cpu", device.index);
}

}  // namespace

Status run_attention_file_cuda(const FileOptions&, const IndexOptions&, Device device) {
  return built_without_cuda(device);
}

Status run_attention_demo_cuda(const DemoOptions&, const IndexOptions&, Device device) {
  return built_without_cuda(device);
}

#endif  // SACC_WITH_CUDA

}  // namespace sacc::cli
