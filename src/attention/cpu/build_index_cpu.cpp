// Selection and per-head index lists of plan_cpu() (plan_cpu_detail.h): top-k / adaptive choice with forced
// items, and the key-block / column lists of every pattern kind.
#include <algorithm>
#include <cmath>
#include <iterator>
#include <limits>

#include "attention/cpu/plan_cpu_detail.h"

namespace sacc::cpu_plan {
namespace {

// Lists under construction: ids are appended query block by query block, closed by finish_block().
class ListBuilder {
 public:
  explicit ListBuilder(int64_t num_q_blocks) {
    lists_.block_offsets.reserve(num_q_blocks + 1);
    lists_.column_offsets.reserve(num_q_blocks + 1);
    lists_.block_offsets.push_back(0);
    lists_.column_offsets.push_back(0);
  }
  void add_block(int64_t kb) { lists_.block_ids.push_back(static_cast<int32_t>(kb)); }
  void add_column(int64_t key) { lists_.column_ids.push_back(static_cast<int32_t>(key)); }
  void finish_block() {
    lists_.block_offsets.push_back(static_cast<int32_t>(lists_.block_ids.size()));
    lists_.column_offsets.push_back(static_cast<int32_t>(lists_.column_ids.size()));
  }
  HeadLists take() { return std::move(lists_); }

 private:
  HeadLists lists_;
};

std::vector<int32_t> id_range(int64_t begin, int64_t end) {
  std::vector<int32_t> ids;
  for (int64_t id = begin; id < end; ++id) ids.push_back(static_cast<int32_t>(id));
  return ids;
}

// Rows [first, last] of query block qb.
int64_t first_row_of(const IndexGeometry& geometry, int64_t qb) {
  return qb * geometry.block_q;
}
int64_t last_row_of(const IndexGeometry& geometry, int64_t qb) {
  return std::min(geometry.seq_len, (qb + 1) * geometry.block_q) - 1;
}

}  // namespace

std::vector<int32_t> select_top(const float* scores, int64_t count, const std::vector<int32_t>& forced,
                                const TopRule& rule) {
  const int64_t num_forced = static_cast<int64_t>(forced.size());
  int64_t keep = std::min(rule.budget, count);
  if (rule.keep_all_forced) keep = std::max(keep, num_forced);
  std::vector<int32_t> order(forced.begin(), forced.begin() + std::min(keep, num_forced));
  const int64_t wanted = keep - static_cast<int64_t>(order.size());
  if (wanted > 0) {
    std::vector<char> is_forced(count, 0);
    for (int32_t id : forced) is_forced[id] = 1;
    std::vector<int32_t> rest;
    rest.reserve(count - num_forced);
    for (int64_t id = 0; id < count; ++id) {
      if (!is_forced[id]) rest.push_back(static_cast<int32_t>(id));
    }
    // A strict total order (NaN ranks lowest, ties to the lower id), so the chosen prefix is unique.
    const auto rank = [scores](int32_t id) {
      const float s = scores[id];
      return std::isnan(s) ? -std::numeric_limits<float>::infinity() : s;
    };
    const auto better = [&rank](int32_t a, int32_t b) {
      const float ra = rank(a), rb = rank(b);
      return ra > rb || (ra == rb && a < b);
    };
    const auto take_end = rest.begin() + std::min<int64_t>(wanted, static_cast<int64_t>(rest.size()));
    if (take_end != rest.end()) std::nth_element(rest.begin(), take_end, rest.end(), better);
    std::sort(rest.begin(), take_end, better);
    order.insert(order.end(), rest.begin(), take_end);
  }
  if (rule.gamma > 0.0) {
    // The shortest prefix of `order` (forced items first) whose mass reaches the target.
    const double target = rule.gamma * rule.total_mass;
    const int64_t minimum = rule.keep_all_forced ? num_forced : 0;
    double mass = 0.0;
    int64_t n = 0;
    while (n < static_cast<int64_t>(order.size()) && (n < minimum || mass < target)) {
      mass += scores[order[n++]];
    }
    order.resize(n);
  }
  std::sort(order.begin(), order.end());
  return order;
}

HeadLists dense_lists(const IndexGeometry& geometry) {
  return dense_tail_lists(geometry.seq_len, geometry);
}

HeadLists dense_tail_lists(int64_t tail, const IndexGeometry& geometry) {
  ListBuilder builder(geometry.num_q_blocks());
  for (int64_t qb = 0; qb < geometry.num_q_blocks(); ++qb) {
    if (in_dense_tail(last_row_of(geometry, qb), geometry.seq_len, tail)) {
      for (int64_t kb = 0; kb <= geometry.last_causal_k_block(qb); ++kb) builder.add_block(kb);
    }
    builder.finish_block();
  }
  return builder.take();
}

HeadLists triangular_lists(const PatternSpec& spec, const IndexGeometry& geometry) {
  const int64_t block_k = geometry.block_k;
  const int64_t full_sink_blocks = spec.sink / block_k;
  ListBuilder builder(geometry.num_q_blocks());
  for (int64_t qb = 0; qb < geometry.num_q_blocks(); ++qb) {
    const int64_t first_row = first_row_of(geometry, qb);
    const int64_t last_row = last_row_of(geometry, qb);
    const int64_t window_begin = std::max<int64_t>(0, first_row - spec.window + 1) / block_k;
    for (int64_t kb = 0; kb < std::min(full_sink_blocks, window_begin); ++kb) builder.add_block(kb);
    for (int64_t kb = window_begin; kb <= last_row / block_k; ++kb) builder.add_block(kb);
    // The partial sink block (S not a multiple of Bk) contributes its sink keys as columns, unless the
    // window already lists it.
    if (full_sink_blocks < window_begin) {
      for (int64_t key = full_sink_blocks * block_k; key < std::min(spec.sink, last_row + 1); ++key) {
        builder.add_column(key);
      }
    }
    builder.finish_block();
  }
  return builder.take();
}

HeadLists interval_slash_lists(const SlashScores& scores, double total_mass, const PatternSpec& spec,
                               const EstimationConfig& config, const IndexGeometry& geometry) {
  const int64_t seq_len = geometry.seq_len;
  const int64_t block_k = geometry.block_k;
  const std::vector<int32_t> sinks = id_range(0, std::clamp<int64_t>(config.sink_keys, 0, seq_len));
  // The main diagonal is always kept so that no row is left without a key.
  const std::vector<int32_t> locals = id_range(0, std::clamp<int64_t>(config.local_diagonals, 1, seq_len));
  const std::vector<int32_t> columns =
      select_top(scores.vertical.data(), seq_len, sinks, {spec.vertical, spec.gamma, total_mass, false});
  const std::vector<int32_t> offsets =
      select_top(scores.slash.data(), seq_len, locals,
                 {std::max<int64_t>(spec.slash, 1), spec.gamma, total_mass, false});

  ListBuilder builder(geometry.num_q_blocks());
  std::vector<char> listed(geometry.num_k_blocks());
  const auto mark = [&](int64_t first_key, int64_t last_key) {
    for (int64_t kb = first_key / block_k; kb <= last_key / block_k; ++kb) listed[kb] = 1;
  };
  for (int64_t qb = 0; qb < geometry.num_q_blocks(); ++qb) {
    const int64_t first_row = first_row_of(geometry, qb);
    const int64_t last_row = last_row_of(geometry, qb);
    const int64_t last_block = last_row / block_k;
    std::fill(listed.begin(), listed.begin() + last_block + 1, 0);
    // Offset o covers keys [first_row - o, last_row - o] (clipped at 0). Offsets ascend, so the bands move
    // towards key 0: merge touching bands into runs and mark each run's key blocks once.
    int64_t run_first = 0, run_last = -1;
    for (int32_t o : offsets) {
      const int64_t band_last = last_row - o;
      if (band_last < 0) break;
      const int64_t band_first = std::max<int64_t>(0, first_row - o);
      if (run_last >= 0 && band_last + 1 >= run_first) {
        run_first = std::min(run_first, band_first);
      } else {
        if (run_last >= 0) mark(run_first, run_last);
        run_first = band_first;
        run_last = band_last;
      }
    }
    if (run_last >= 0) mark(run_first, run_last);
    for (int64_t kb = 0; kb <= last_block; ++kb) {
      if (listed[kb]) builder.add_block(kb);
    }
    for (int32_t key : columns) {
      if (key > last_row) break;
      if (!listed[key / block_k]) builder.add_column(key);
    }
    builder.finish_block();
  }
  return builder.take();
}

HeadLists block_cluster_lists(const std::vector<float>& prob, const PatternSpec& spec,
                              const IndexGeometry& geometry) {
  const int64_t num_k_blocks = geometry.num_k_blocks();
  ListBuilder builder(geometry.num_q_blocks());
  for (int64_t qb = 0; qb < geometry.num_q_blocks(); ++qb) {
    const int64_t last_block = geometry.last_causal_k_block(qb);
    const int64_t first_diagonal = first_row_of(geometry, qb) / geometry.block_k;
    // The first block, and every block meeting the query block's own rows.
    std::vector<int32_t> forced{0};
    for (int64_t kb = std::max<int64_t>(1, first_diagonal); kb <= last_block; ++kb) {
      forced.push_back(static_cast<int32_t>(kb));
    }
    const float* row = prob.data() + qb * num_k_blocks;
    double row_mass = 0.0;
    for (int64_t kb = 0; kb <= last_block; ++kb) row_mass += row[kb];
    for (int32_t kb : select_top(row, last_block + 1, forced, {spec.blocks, spec.gamma, row_mass, true})) {
      builder.add_block(kb);
    }
    builder.finish_block();
  }
  return builder.take();
}

HeadLists join_lists(const HeadLists& a, const HeadLists& b, const IndexGeometry& geometry) {
  const int64_t num_q_blocks = static_cast<int64_t>(a.block_offsets.size()) - 1;
  ListBuilder builder(num_q_blocks);
  std::vector<int32_t> blocks, columns;
  for (int64_t qb = 0; qb < num_q_blocks; ++qb) {
    blocks.clear();
    columns.clear();
    std::set_union(a.block_ids.begin() + a.block_offsets[qb], a.block_ids.begin() + a.block_offsets[qb + 1],
                   b.block_ids.begin() + b.block_offsets[qb], b.block_ids.begin() + b.block_offsets[qb + 1],
                   std::back_inserter(blocks));
    std::set_union(a.column_ids.begin() + a.column_offsets[qb],
                   a.column_ids.begin() + a.column_offsets[qb + 1],
                   b.column_ids.begin() + b.column_offsets[qb],
                   b.column_ids.begin() + b.column_offsets[qb + 1], std::back_inserter(columns));
    for (int32_t kb : blocks) builder.add_block(kb);
    for (int32_t j : columns) {
      if (!std::binary_search(blocks.begin(), blocks.end(), static_cast<int32_t>(j / geometry.block_k))) {
        builder.add_column(j);
      }
    }
    builder.finish_block();
  }
  return builder.take();
}

double last_block_mass(const std::vector<float>& vertical, const HeadLists& lists,
                       const IndexGeometry& geometry) {
  const size_t last = lists.block_offsets.size() - 2;
  double mass = 0.0;
  for (int32_t n = lists.block_offsets[last]; n < lists.block_offsets[last + 1]; ++n) {
    const int64_t first = int64_t{lists.block_ids[n]} * geometry.block_k;
    const int64_t end = std::min(geometry.seq_len, first + geometry.block_k);
    for (int64_t j = first; j < end; ++j) mass += vertical[j];
  }
  for (int32_t n = lists.column_offsets[last]; n < lists.column_offsets[last + 1]; ++n) {
    mass += vertical[lists.column_ids[n]];
  }
  return mass;
}

}  // namespace sacc::cpu_plan
