// `sacc attention --demo`: the patterns side by side on a synthetic input with realistic structure.
#include <chrono>
#include <cstdio>

#include "attention/cost_model.h"
#include "reference/build_index.h"
#include "reference/dense_attention.h"
#include "reference/metrics.h"
#include "reference/sparse_attention.h"
#include "reference/synthetic.h"
#include "tools/sacc/attention_options.h"

namespace sacc::cli {
namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The smallest knob value in [1, limit] whose predicted density reaches `target` (the cost model's search,
// DESIGN.md §5, in miniature): patterns are compared at equal cost.
int64_t knob_for_density(PatternSpec spec, int64_t PatternSpec::*knob, int64_t limit, double target,
                         const IndexGeometry& geometry, int head_dim, const EstimationConfig& estimation) {
  int64_t lo = 1, hi = std::max<int64_t>(1, limit);
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    spec.*knob = mid;
    if (predict_cost(spec, geometry, head_dim, estimation).density() >= target) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  return lo;
}

// One pattern of each kind at the same predicted density, and the adaptive variants capped at twice that.
std::vector<std::string> default_patterns(const IndexGeometry& geometry, int head_dim,
                                          const EstimationConfig& estimation, double target) {
  const int64_t seq_len = geometry.seq_len;
  PatternSpec triangular = parse_pattern("triangular:64,1").value();
  triangular.sink = std::min<int64_t>(64, seq_len);
  triangular.window =
      knob_for_density(triangular, &PatternSpec::window, seq_len, target, geometry, head_dim, estimation);
  PatternSpec slash = parse_pattern("interval-slash:1,1").value();
  slash.vertical = std::min<int64_t>(seq_len, std::max<int64_t>(estimation.sink_keys + 1, seq_len / 64));
  slash.slash = knob_for_density(slash, &PatternSpec::slash, seq_len, target, geometry, head_dim, estimation);
  PatternSpec blocks = parse_pattern("block-cluster:1").value();
  blocks.blocks = knob_for_density(blocks, &PatternSpec::blocks, geometry.num_k_blocks(), target, geometry,
                                   head_dim, estimation);
  PatternSpec adaptive_slash = slash;
  adaptive_slash.slash =
      knob_for_density(slash, &PatternSpec::slash, seq_len, 2 * target, geometry, head_dim, estimation);
  adaptive_slash.vertical = std::min(seq_len, 2 * slash.vertical);
  adaptive_slash.gamma = 0.9;
  PatternSpec adaptive_blocks = blocks;
  adaptive_blocks.blocks = knob_for_density(blocks, &PatternSpec::blocks, geometry.num_k_blocks(), 2 * target,
                                            geometry, head_dim, estimation);
  adaptive_blocks.gamma = 0.9;
  return {"dense",           to_string(triangular),     to_string(slash),
          to_string(blocks), to_string(adaptive_slash), to_string(adaptive_blocks)};
}

struct Row {
  std::string pattern;
  double density = 0.0;
  double error = 0.0;
  double plan_seconds = 0.0;
  double run_seconds = 0.0;
  SparseIndex index;
};

}  // namespace

Result<ref::SyntheticInput> make_demo_input(const DemoOptions& demo) {
  ref::SyntheticConfig config;
  config.shape = {demo.seq_len, demo.num_q_heads, demo.num_kv_heads, demo.head_dim};
  config.seed = demo.seed;
  SACC_RETURN_IF_ERROR(config.shape.validate().with_context("--demo"));
  const auto start = std::chrono::steady_clock::now();
  SACC_ASSIGN_OR_RETURN(ref::SyntheticInput input, ref::make_synthetic_input(config));
  std::printf(
      "synthetic input: L=%lld, Hq=%d, Hkv=%d, d=%d, seed %llu: %d sinks, %d vertical columns, %d local "
      "+ %d slash diagonals per KV head (made in %.2f s)\n",
      static_cast<long long>(demo.seq_len), demo.num_q_heads, demo.num_kv_heads, demo.head_dim,
      static_cast<unsigned long long>(demo.seed), config.sinks, config.verticals, config.local_width,
      config.slashes, seconds_since(start));
  return input;
}

Result<std::vector<PatternSpec>> demo_patterns(const DemoOptions& demo, const IndexOptions& options,
                                               const IndexGeometry& geometry) {
  std::vector<PatternSpec> specs;
  const std::vector<std::string> names =
      demo.patterns.empty()
          ? default_patterns(geometry, demo.head_dim, options.estimation, demo.target_density)
          : demo.patterns;
  for (const std::string& name : names) {
    SACC_ASSIGN_OR_RETURN(PatternSpec spec, parse_pattern(name));
    specs.push_back(options.clamp_budgets ? ref::clamp_pattern_to_length(spec, geometry) : spec);
  }
  return specs;
}

Status run_attention_demo(const DemoOptions& demo, const IndexOptions& options) {
  const AttentionShape shape{demo.seq_len, demo.num_q_heads, demo.num_kv_heads, demo.head_dim};
  SACC_RETURN_IF_ERROR(shape.validate().with_context("--demo"));
  const IndexGeometry geometry = options.geometry(demo.seq_len, demo.num_q_heads, demo.num_kv_heads);
  SACC_RETURN_IF_ERROR(geometry.validate());
  SACC_ASSIGN_OR_RETURN(const std::vector<PatternSpec> specs, demo_patterns(demo, options, geometry));

  SACC_ASSIGN_OR_RETURN(const ref::SyntheticInput input, make_demo_input(demo));
  const ref::QkvView qkv = input.qkv.view();
  std::printf(
      "CPU oracle, fp64 accumulation; index blocks Bq=%d Bk=%d, %s, estimation from the last %lld "
      "queries\n\n",
      options.block_q, options.block_k, options.shared_per_kv_group ? "shared per KV group" : "per head",
      static_cast<long long>(options.estimation.last_queries));
  std::fflush(stdout);

  auto start = std::chrono::steady_clock::now();
  SACC_ASSIGN_OR_RETURN(ref::AttentionResult dense, ref::dense_attention(qkv));
  const double dense_seconds = seconds_since(start);

  std::vector<Row> rows;
  for (size_t n = 0; n < specs.size(); ++n) {
    Row row;
    row.pattern = to_string(specs[n]);
    start = std::chrono::steady_clock::now();
    Result<SparseIndex> index = ref::build_index(qkv, {specs[n]}, options.estimation, geometry);
    if (!index.is_ok()) return index.status().with_context(row.pattern);
    row.index = std::move(index).value();
    row.plan_seconds = seconds_since(start);
    if (specs[n].kind == PatternKind::DENSE) {
      row.run_seconds = dense_seconds;
    } else {
      start = std::chrono::steady_clock::now();
      SACC_ASSIGN_OR_RETURN(ref::AttentionResult sparse, ref::sparse_attention(qkv, row.index));
      row.run_seconds = seconds_since(start);
      SACC_ASSIGN_OR_RETURN(row.error, ref::relative_l2_error(sparse.o, dense.o));
    }
    row.density = index_cost(row.index, demo.head_dim).density();
    rows.push_back(std::move(row));
  }
  std::vector<const SparseIndex*> indices;
  for (const Row& row : rows) indices.push_back(&row.index);
  SACC_ASSIGN_OR_RETURN(std::vector<ref::RecallReport> recall, ref::attention_recall(qkv, indices));

  std::printf("| %-34s | %7s | %7s | %8s | %9s | %9s |\n", "pattern", "density", "recall", "rel.err",
              "plan ms", "attn ms");
  std::printf("|%s|%s|%s|%s|%s|%s|\n", std::string(36, '-').c_str(), std::string(9, '-').c_str(),
              std::string(9, '-').c_str(), std::string(10, '-').c_str(), std::string(11, '-').c_str(),
              std::string(11, '-').c_str());
  for (size_t n = 0; n < rows.size(); ++n) {
    const Row& row = rows[n];
    std::printf("| %-34s | %7.4f | %7.4f | %8.5f | %9.1f | %9.1f |\n", row.pattern.c_str(), row.density,
                recall[n].mean, row.error, 1e3 * row.plan_seconds, 1e3 * row.run_seconds);
  }
  std::printf(
      "\ndensity: visited tiles (+ gathered columns / Bk) over causal tiles; recall: share of the dense "
      "attention mass the index covers (mean over heads and rows); rel.err: ||O - O_dense|| / "
      "||O_dense||; times are the CPU oracle's (plan = estimation + index build)\n");
  return Status::ok();
}

}  // namespace sacc::cli
