#include "attention/cost_model.h"

#include <algorithm>
#include <cmath>

namespace sacc {

double AttentionCost::density() const {
  return causal_flops > 0.0 ? kernel_flops / causal_flops : 0.0;
}

AttentionCost& AttentionCost::operator+=(const AttentionCost& other) {
  visited_tiles += other.visited_tiles;
  gathered_columns += other.gathered_columns;
  causal_tiles += other.causal_tiles;
  kernel_flops += other.kernel_flops;
  causal_flops += other.causal_flops;
  estimator_flops += other.estimator_flops;
  return *this;
}

double tile_flops(int block_q, int block_k, int head_dim) {
  return 4.0 * block_q * block_k * head_dim;
}

double column_flops(int block_q, int head_dim) {
  return 4.0 * block_q * head_dim;
}

namespace {

// Fills the flop fields from the counts.
AttentionCost finish(AttentionCost cost, const IndexGeometry& geometry, int head_dim, double estimator) {
  const double tile = tile_flops(geometry.block_q, geometry.block_k, head_dim);
  cost.kernel_flops = static_cast<double>(cost.visited_tiles) * tile +
                      static_cast<double>(cost.gathered_columns) * column_flops(geometry.block_q, head_dim);
  cost.causal_flops = static_cast<double>(cost.causal_tiles) * tile;
  cost.estimator_flops = estimator;
  return cost;
}

}  // namespace

int64_t causal_tiles(const IndexGeometry& geometry) {
  int64_t tiles = 0;
  for (int64_t qb = 0; qb < geometry.num_q_blocks(); ++qb) tiles += geometry.last_causal_k_block(qb) + 1;
  return tiles;
}

namespace {

// Expected number of distinct items hit when `draws` uniformly placed groups of `width` items fall among
// `items` items.
double expected_union(double items, double width, double draws) {
  if (items <= 0.0 || draws <= 0.0) return 0.0;
  const double p = std::min(1.0, width / items);
  return items * (1.0 - std::pow(1.0 - p, draws));
}

}  // namespace

AttentionCost index_cost(const SparseIndex& index, int head_dim, double estimator) {
  AttentionCost cost = index_cost(index.geometry, static_cast<int64_t>(index.block_ids.size()),
                                  static_cast<int64_t>(index.column_ids.size()), head_dim);
  cost.estimator_flops = estimator;
  return cost;
}

AttentionCost index_cost(const IndexGeometry& geometry, int64_t visited_tiles, int64_t gathered_columns,
                         int head_dim) {
  AttentionCost cost;
  cost.visited_tiles = visited_tiles;
  cost.gathered_columns = gathered_columns;
  cost.causal_tiles = causal_tiles(geometry) * geometry.num_heads;
  return finish(cost, geometry, head_dim, 0.0);
}

double estimator_flops(const PatternSpec& spec, const IndexGeometry& geometry, int head_dim,
                       const EstimationConfig& config) {
  const double seq_len = static_cast<double>(geometry.seq_len);
  switch (spec.kind) {
    case PatternKind::DENSE:
    case PatternKind::TRIANGULAR:
      return 0.0;
    case PatternKind::INTERVAL_SLASH: {
      const double rows = static_cast<double>(std::min(config.last_queries, geometry.seq_len));
      const double alternative =
          spec.has_alternative() ? estimator_flops(spec.alternative(), geometry, head_dim, config) : 0.0;
      return 2.0 * rows * seq_len * head_dim + 6.0 * rows * seq_len + alternative;
    }
    case PatternKind::BLOCK_CLUSTER: {
      const double pairs = static_cast<double>(causal_tiles(geometry));
      return 2.0 * seq_len * head_dim + pairs * (2.0 * head_dim + 4.0);
    }
  }
  return 0.0;
}

AttentionCost predict_cost(const PatternSpec& spec, const IndexGeometry& geometry, int head_dim,
                           const EstimationConfig& config) {
  if (spec.tail > 0) {  // an upper bound: the tail's query blocks counted dense on top of the pattern
    PatternSpec untailed = spec;
    untailed.tail = 0;
    AttentionCost cost = predict_cost(untailed, geometry, head_dim, config);
    int64_t tail_tiles = 0;
    for (int64_t qb = 0; qb < geometry.num_q_blocks(); ++qb) {
      const int64_t last_row = std::min(geometry.seq_len, (qb + 1) * geometry.block_q) - 1;
      if (in_dense_tail(last_row, geometry.seq_len, spec.tail))
        tail_tiles += geometry.last_causal_k_block(qb) + 1;
    }
    const double tile = tile_flops(geometry.block_q, geometry.block_k, head_dim);
    cost.visited_tiles = std::min(cost.visited_tiles + tail_tiles, cost.causal_tiles);
    cost.kernel_flops =
        std::min(cost.kernel_flops + static_cast<double>(tail_tiles) * tile, cost.causal_flops);
    return cost;
  }
  if (spec.has_alternative()) {
    const AttentionCost slash = predict_cost(spec.primary(), geometry, head_dim, config);
    const AttentionCost cluster = predict_cost(spec.alternative(), geometry, head_dim, config);
    AttentionCost cost = slash.kernel_flops >= cluster.kernel_flops ? slash : cluster;
    if (spec.joins_alternative()) {  // an upper bound: the two lists overlap at least on the diagonal blocks
      cost.visited_tiles = std::min(slash.visited_tiles + cluster.visited_tiles, cost.causal_tiles);
      cost.gathered_columns = slash.gathered_columns;
      cost.kernel_flops = std::min(slash.kernel_flops + cluster.kernel_flops, cost.causal_flops);
    }
    cost.estimator_flops = slash.estimator_flops + cluster.estimator_flops;
    return cost;
  }
  const int64_t seq_len = geometry.seq_len;
  const int64_t block_k = geometry.block_k;
  AttentionCost cost;
  double expected_tiles = 0.0;
  double expected_columns = 0.0;
  for (int64_t qb = 0; qb < geometry.num_q_blocks(); ++qb) {
    const int64_t first_row = qb * geometry.block_q;
    const int64_t last_row = std::min(seq_len, first_row + geometry.block_q) - 1;
    const int64_t last_block = last_row / block_k;
    const int64_t causal = last_block + 1;
    cost.causal_tiles += causal;
    switch (spec.kind) {
      case PatternKind::DENSE:
        expected_tiles += static_cast<double>(causal);
        break;
      case PatternKind::TRIANGULAR: {  // the block rounding of the triangular builder
        const int64_t window_first = std::max<int64_t>(0, first_row - spec.window + 1) / block_k;
        const int64_t full_sink_blocks = spec.sink / block_k;
        expected_tiles +=
            static_cast<double>(last_block - window_first + 1 + std::min(full_sink_blocks, window_first));
        if (full_sink_blocks < window_first) {
          expected_columns += static_cast<double>(
              std::max<int64_t>(0, std::min(spec.sink, last_row + 1) - full_sink_blocks * block_k));
        }
        break;
      }
      case PatternKind::BLOCK_CLUSTER: {  // first block + diagonal blocks forced, inside the budget
        const int64_t first_diagonal = std::max<int64_t>(1, first_row / block_k);
        const int64_t forced = 1 + std::max<int64_t>(0, last_block - first_diagonal + 1);
        expected_tiles += static_cast<double>(std::max(forced, std::min(spec.blocks, causal)));
        break;
      }
      case PatternKind::INTERVAL_SLASH: {
        // Local diagonals [0, n_local) form one contiguous band; the other slashes and the non-sink verticals
        // are assumed uniformly placed.
        const int64_t n_local = std::min(std::clamp<int64_t>(config.local_diagonals, 1, seq_len), spec.slash);
        const int64_t local_first = std::max<int64_t>(0, first_row - n_local + 1) / block_k;
        const double local_blocks = static_cast<double>(last_block - local_first + 1);
        const double free_blocks = static_cast<double>(local_first);
        const double other_slashes = static_cast<double>(spec.slash - n_local) *
                                     static_cast<double>(std::max<int64_t>(0, last_row - n_local + 1)) /
                                     static_cast<double>(std::max<int64_t>(1, seq_len - n_local));
        const double band_blocks = static_cast<double>(geometry.block_q - 1) / block_k + 1.0;
        const double slash_blocks = expected_union(free_blocks, band_blocks, other_slashes);
        const double listed = local_blocks + slash_blocks;
        expected_tiles += listed;
        const double uncovered = 1.0 - listed / static_cast<double>(causal);
        const int64_t sinks = std::min(std::min(config.sink_keys, spec.vertical), last_row + 1);
        const int64_t sinks_outside_local = std::max<int64_t>(0, std::min(sinks, local_first * block_k));
        const double sink_cover = free_blocks > 0.0 ? 1.0 - slash_blocks / free_blocks : 1.0;
        const double others = static_cast<double>(std::max<int64_t>(0, spec.vertical - config.sink_keys)) *
                              static_cast<double>(last_row + 1) / static_cast<double>(seq_len);
        expected_columns += static_cast<double>(sinks_outside_local) * sink_cover + others * uncovered;
        break;
      }
    }
  }
  cost.visited_tiles = static_cast<int64_t>(std::llround(expected_tiles));
  cost.gathered_columns = static_cast<int64_t>(std::llround(expected_columns));
  const double tile = tile_flops(geometry.block_q, geometry.block_k, head_dim);
  cost.kernel_flops = expected_tiles * tile + expected_columns * column_flops(geometry.block_q, head_dim);
  cost.causal_flops = static_cast<double>(cost.causal_tiles) * tile;
  cost.estimator_flops = estimator_flops(spec, geometry, head_dim, config);
  return cost;
}

}  // namespace sacc
