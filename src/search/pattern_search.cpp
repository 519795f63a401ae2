#include "search/pattern_search.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "attention/cost_model.h"
#include "reference/build_index.h"
#include "reference/dense_attention.h"
#include "reference/metrics.h"
#include "reference/sparse_attention.h"

namespace sacc::search {
namespace {

IndexGeometry geometry_of(const ref::QkvView& qkv, const SearchOptions& options) {
  IndexGeometry geometry;
  geometry.seq_len = qkv.shape.seq_len;
  geometry.num_heads = qkv.shape.num_q_heads;
  geometry.block_q = options.block_q;
  geometry.block_k = options.block_k;
  return geometry;
}

PatternSpec with_knob(PatternKind kind, int64_t knob, const SearchOptions& options) {
  PatternSpec spec;
  spec.kind = kind;
  switch (kind) {
    case PatternKind::TRIANGULAR:
      spec.sink = options.triangular_sink;
      spec.window = std::max<int64_t>(1, knob);
      break;
    case PatternKind::INTERVAL_SLASH:
      spec.vertical = std::max<int64_t>(1, knob);
      spec.slash =
          std::max<int64_t>(1, std::llround(static_cast<double>(knob) * options.interval_slash_ratio));
      break;
    case PatternKind::BLOCK_CLUSTER:
      spec.blocks = std::max<int64_t>(1, knob);
      break;
    case PatternKind::DENSE:
      break;
  }
  return spec;
}

// Largest knob value that makes sense at this length.
int64_t knob_limit(PatternKind kind, const IndexGeometry& geometry, const SearchOptions& options) {
  switch (kind) {
    case PatternKind::TRIANGULAR:
      return geometry.seq_len;
    case PatternKind::INTERVAL_SLASH:
      return std::max<int64_t>(
          1, static_cast<int64_t>(geometry.seq_len / std::max(1.0, options.interval_slash_ratio)));
    case PatternKind::BLOCK_CLUSTER:
      return geometry.num_k_blocks();
    case PatternKind::DENSE:
      return 1;
  }
  return 1;
}

// Per-head costs of one spec per head (data-dependent for Interval-Slash, so built on the calibration input).
Result<std::vector<double>> head_costs(const ref::QkvView& qkv, const std::vector<PatternSpec>& specs,
                                       const IndexGeometry& geometry, const SearchOptions& options) {
  std::vector<PatternSpec> clamped;
  for (const PatternSpec& spec : specs) clamped.push_back(ref::clamp_pattern_to_length(spec, geometry));
  SACC_ASSIGN_OR_RETURN(SparseIndex index, ref::build_index(qkv, clamped, options.estimation, geometry));
  return per_head_cost(index, qkv.shape.head_dim);
}

// Per head, the knob whose cost is closest to `target` (costs grow with the knob): a bisection run for all
// heads at once, one index build per step.
Result<std::vector<int64_t>> fit_knobs(const ref::QkvView& qkv, PatternKind kind, double target,
                                       const IndexGeometry& geometry, const SearchOptions& options) {
  const int heads = geometry.num_heads;
  std::vector<int64_t> low(heads, 1), high(heads, knob_limit(kind, geometry, options));
  std::vector<int64_t> best(heads, 1);
  std::vector<double> best_gap(heads, INFINITY);
  auto consider = [&](const std::vector<int64_t>& knobs) -> Result<std::vector<double>> {
    std::vector<PatternSpec> specs;
    for (int64_t knob : knobs) specs.push_back(with_knob(kind, knob, options));
    SACC_ASSIGN_OR_RETURN(std::vector<double> costs, head_costs(qkv, specs, geometry, options));
    for (int h = 0; h < heads; ++h) {
      const double gap = std::fabs(costs[h] - target);
      if (gap < best_gap[h]) {
        best_gap[h] = gap;
        best[h] = knobs[h];
      }
    }
    return costs;
  };
  for (int step = 0; step < 40; ++step) {
    std::vector<int64_t> mid(heads);
    bool open = false;
    for (int h = 0; h < heads; ++h) {
      mid[h] = low[h] + (high[h] - low[h]) / 2;
      open |= low[h] <= high[h] && best_gap[h] > options.tolerance * target;
    }
    if (!open) break;
    SACC_ASSIGN_OR_RETURN(std::vector<double> costs, consider(mid));
    for (int h = 0; h < heads; ++h) {
      if (low[h] > high[h]) continue;
      if (costs[h] < target)
        low[h] = mid[h] + 1;
      else
        high[h] = mid[h] - 1;
    }
  }
  return best;
}

}  // namespace

std::vector<double> per_head_cost(const SparseIndex& index, int head_dim) {
  const IndexGeometry& geometry = index.geometry;
  const int64_t nqb = geometry.num_q_blocks();
  const double tile = tile_flops(geometry.block_q, geometry.block_k, head_dim);
  const double column = column_flops(geometry.block_q, head_dim);
  std::vector<double> costs(geometry.num_heads, 0.0);
  for (int h = 0; h < geometry.num_heads; ++h) {
    const int64_t first = h * nqb, last = (h + 1) * nqb;
    costs[h] = tile * (index.block_offsets[last] - index.block_offsets[first]) +
               column * (index.column_offsets[last] - index.column_offsets[first]);
  }
  return costs;
}

Result<LayerResult> search_layer(const ref::QkvView& qkv, const SearchOptions& options) {
  SACC_RETURN_IF_ERROR(qkv.validate());
  if (options.kinds.empty())
    return make_error(StatusCode::INVALID_ARGUMENT, "search: no candidate pattern kinds");
  const IndexGeometry geometry = geometry_of(qkv, options);
  SACC_RETURN_IF_ERROR(geometry.validate());
  const int heads = geometry.num_heads;

  LayerResult result;
  const double causal_per_head =
      SparseIndex::dense(IndexGeometry{geometry.seq_len, 1, geometry.block_q, geometry.block_k, false})
          .block_ids.size() *
      tile_flops(geometry.block_q, geometry.block_k, qkv.shape.head_dim);
  if (options.target_density > 0.0) {
    result.target_flops = options.target_density * causal_per_head;
  } else {
    SACC_ASSIGN_OR_RETURN(std::vector<double> costs,
                          head_costs(qkv, std::vector<PatternSpec>{options.target}, geometry, options));
    result.target_flops = std::accumulate(costs.begin(), costs.end(), 0.0) / heads;
  }

  SACC_ASSIGN_OR_RETURN(ref::AttentionResult dense, ref::dense_attention(qkv));
  result.heads.resize(heads);
  for (PatternKind kind : options.kinds) {
    SACC_ASSIGN_OR_RETURN(std::vector<int64_t> knobs,
                          fit_knobs(qkv, kind, result.target_flops, geometry, options));
    std::vector<PatternSpec> specs;
    for (int64_t knob : knobs) {
      specs.push_back(ref::clamp_pattern_to_length(with_knob(kind, knob, options), geometry));
    }
    SACC_ASSIGN_OR_RETURN(SparseIndex index, ref::build_index(qkv, specs, options.estimation, geometry));
    SACC_ASSIGN_OR_RETURN(ref::AttentionResult sparse, ref::sparse_attention(qkv, index));
    SACC_ASSIGN_OR_RETURN(std::vector<double> errors,
                          ref::relative_l2_error_per_head(sparse.o, dense.o, qkv.shape));
    SACC_ASSIGN_OR_RETURN(ref::RecallReport recall, ref::attention_recall(qkv, index));
    const std::vector<double> costs = per_head_cost(index, qkv.shape.head_dim);
    for (int h = 0; h < heads; ++h) {
      Candidate candidate{specs[h], costs[h], costs[h] / causal_per_head, errors[h], recall.per_head[h]};
      HeadResult& head = result.heads[h];
      head.candidates.push_back(candidate);
      if (head.candidates.size() == 1 || candidate.error < head.best.error) head.best = candidate;
    }
  }
  return result;
}

}  // namespace sacc::search
