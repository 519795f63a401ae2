#include "reference/estimate_interval_slash.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "reference/top_selection.h"

namespace sacc::ref {

Result<IntervalSlashScores> interval_slash_scores(const QkvView& qkv, int q_head,
                                                  const EstimationConfig& config) {
  SACC_RETURN_IF_ERROR(qkv.validate());
  const AttentionShape& shape = qkv.shape;
  if (q_head < 0 || q_head >= shape.num_q_heads) {
    return make_error(StatusCode::INVALID_ARGUMENT, "interval-slash: query head {} out of range [0, {})",
                      q_head, shape.num_q_heads);
  }
  if (config.last_queries < 1) {
    return make_error(StatusCode::INVALID_ARGUMENT, "interval-slash: last-queries must be >= 1, got {}",
                      config.last_queries);
  }
  const int64_t seq_len = shape.seq_len;
  const int d = shape.head_dim;
  const int kv_head = q_head / shape.group_size();
  const int64_t rows = std::min(config.last_queries, seq_len);
  const float scale = static_cast<float>(qkv.scale());
  IntervalSlashScores out;
  out.vertical.assign(seq_len, 0.0f);
  out.slash.assign(seq_len, 0.0f);
  out.total_mass = static_cast<double>(rows);
  std::vector<float> p(seq_len);
  for (int64_t i = seq_len - rows; i < seq_len; ++i) {
    const float* q = qkv.q + (i * shape.num_q_heads + q_head) * static_cast<int64_t>(d);
    float max_score = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j <= i; ++j) {
      const float* k = qkv.k + (j * shape.num_kv_heads + kv_head) * static_cast<int64_t>(d);
      float s = 0.0f;
      for (int t = 0; t < d; ++t) s += q[t] * k[t];
      p[j] = s * scale;
      max_score = std::max(max_score, p[j]);
    }
    float sum = 0.0f;
    for (int64_t j = 0; j <= i; ++j) {
      p[j] = std::exp(p[j] - max_score);
      sum += p[j];
    }
    const float inv = 1.0f / sum;
    for (int64_t j = 0; j <= i; ++j) {
      const float prob = p[j] * inv;
      out.vertical[j] += prob;
      out.slash[i - j] += prob;
    }
  }
  return out;
}

void accumulate_scores(IntervalSlashScores& sum, const IntervalSlashScores& other) {
  for (size_t j = 0; j < sum.vertical.size(); ++j) sum.vertical[j] += other.vertical[j];
  for (size_t o = 0; o < sum.slash.size(); ++o) sum.slash[o] += other.slash[o];
  sum.total_mass += other.total_mass;
}

Result<IntervalSlashSelection> select_interval_slash(const IntervalSlashScores& scores,
                                                     const PatternSpec& spec,
                                                     const EstimationConfig& config) {
  const int64_t seq_len = static_cast<int64_t>(scores.vertical.size());
  if (spec.kind != PatternKind::INTERVAL_SLASH) {
    return make_error(StatusCode::INVALID_ARGUMENT, "select_interval_slash got pattern {}", to_string(spec));
  }
  if (spec.vertical > seq_len || spec.slash > seq_len) {
    return make_error(
        StatusCode::INVALID_ARGUMENT,
        "pattern {}: budget larger than the sequence (L = {} keys and {} diagonals); use budgets <= L",
        to_string(spec), seq_len, seq_len);
  }
  std::vector<int32_t> sinks;
  for (int64_t j = 0; j < std::min(config.sink_keys, seq_len); ++j) sinks.push_back(static_cast<int32_t>(j));
  // The main diagonal is always kept, whatever local_diagonals says: without it a row could list no key.
  std::vector<int32_t> locals;
  for (int64_t o = 0; o < std::clamp<int64_t>(config.local_diagonals, 1, seq_len); ++o) {
    locals.push_back(static_cast<int32_t>(o));
  }
  IntervalSlashSelection selection;
  selection.columns = select_top(scores.vertical, sinks,
                                 {spec.vertical, spec.gamma, scores.total_mass, /*keep_all_forced=*/false});
  selection.offsets = select_top(scores.slash, locals,
                                 {std::max<int64_t>(spec.slash, 1), spec.gamma, scores.total_mass, false});
  return selection;
}

HeadIndex interval_slash_head_index(const IntervalSlashSelection& selection, const IndexGeometry& geometry) {
  const int64_t num_q_blocks = geometry.num_q_blocks();
  const int64_t block_k = geometry.block_k;
  HeadIndex head;
  head.blocks.resize(num_q_blocks);
  head.columns.resize(num_q_blocks);
  std::vector<char> listed(geometry.num_k_blocks());
  for (int64_t qb = 0; qb < num_q_blocks; ++qb) {
    const int64_t first_row = qb * geometry.block_q;
    const int64_t last_row = std::min(geometry.seq_len, first_row + geometry.block_q) - 1;
    const int64_t last_block = last_row / block_k;
    std::fill(listed.begin(), listed.begin() + last_block + 1, 0);
    // Offset o covers keys [first_row - o, last_row - o] in this query block: mark every key block the band
    // touches; overlapping bands merge naturally.
    for (int32_t o : selection.offsets) {
      if (last_row - o < 0) break;  // offsets ascend, so every later band is before key 0 too
      const int64_t from = std::max<int64_t>(0, first_row - o) / block_k;
      const int64_t to = (last_row - o) / block_k;
      for (int64_t kb = from; kb <= to; ++kb) listed[kb] = 1;
    }
    for (int64_t kb = 0; kb <= last_block; ++kb) {
      if (listed[kb]) head.blocks[qb].push_back(static_cast<int32_t>(kb));
    }
    for (int32_t j : selection.columns) {
      if (j > last_row) break;
      if (!listed[j / block_k]) head.columns[qb].push_back(j);
    }
  }
  return head;
}

}  // namespace sacc::ref
