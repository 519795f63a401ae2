#include "reference/estimate_block_cluster.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "reference/top_selection.h"

namespace sacc::ref {
namespace {

// Mean over rows [begin, end) of one head of x [L, heads, d], accumulated in double, returned in fp32.
std::vector<float> mean_pool(const float* x, int heads, int head, int d, int64_t begin, int64_t end) {
  std::vector<double> sum(d, 0.0);
  for (int64_t i = begin; i < end; ++i) {
    const float* row = x + (i * heads + head) * static_cast<int64_t>(d);
    for (int t = 0; t < d; ++t) sum[t] += row[t];
  }
  std::vector<float> mean(d);
  for (int t = 0; t < d; ++t) mean[t] = static_cast<float>(sum[t] / static_cast<double>(end - begin));
  return mean;
}

}  // namespace

Result<BlockScores> block_cluster_scores(const QkvView& qkv, int q_head, const IndexGeometry& geometry) {
  SACC_RETURN_IF_ERROR(qkv.validate());
  SACC_RETURN_IF_ERROR(geometry.validate());
  const AttentionShape& shape = qkv.shape;
  if (q_head < 0 || q_head >= shape.num_q_heads) {
    return make_error(StatusCode::INVALID_ARGUMENT, "block-cluster: query head {} out of range [0, {})",
                      q_head, shape.num_q_heads);
  }
  if (geometry.seq_len != shape.seq_len) {
    return make_error(StatusCode::INVALID_ARGUMENT, "block-cluster: geometry length {} != input length {}",
                      geometry.seq_len, shape.seq_len);
  }
  const int64_t seq_len = shape.seq_len;
  const int d = shape.head_dim;
  const int kv_head = q_head / shape.group_size();
  BlockScores out;
  out.num_q_blocks = geometry.num_q_blocks();
  out.num_k_blocks = geometry.num_k_blocks();
  out.prob.assign(out.num_q_blocks * out.num_k_blocks, 0.0f);
  std::vector<std::vector<float>> k_means(out.num_k_blocks);
  for (int64_t kb = 0; kb < out.num_k_blocks; ++kb) {
    k_means[kb] = mean_pool(qkv.k, shape.num_kv_heads, kv_head, d, kb * geometry.block_k,
                            std::min(seq_len, (kb + 1) * geometry.block_k));
  }
  const float scale = static_cast<float>(qkv.scale());
  for (int64_t qb = 0; qb < out.num_q_blocks; ++qb) {
    const std::vector<float> q_mean = mean_pool(qkv.q, shape.num_q_heads, q_head, d, qb * geometry.block_q,
                                                std::min(seq_len, (qb + 1) * geometry.block_q));
    float* p = out.prob.data() + qb * out.num_k_blocks;
    const int64_t last_block = geometry.last_causal_k_block(qb);
    float max_score = -std::numeric_limits<float>::infinity();
    for (int64_t kb = 0; kb <= last_block; ++kb) {
      float s = 0.0f;
      for (int t = 0; t < d; ++t) s += q_mean[t] * k_means[kb][t];
      p[kb] = s * scale;
      max_score = std::max(max_score, p[kb]);
    }
    float sum = 0.0f;
    for (int64_t kb = 0; kb <= last_block; ++kb) {
      p[kb] = std::exp(p[kb] - max_score);
      sum += p[kb];
    }
    for (int64_t kb = 0; kb <= last_block; ++kb) p[kb] /= sum;
  }
  return out;
}

void accumulate_scores(BlockScores& sum, const BlockScores& other) {
  for (size_t n = 0; n < sum.prob.size(); ++n) sum.prob[n] += other.prob[n];
}

std::vector<int32_t> block_cluster_forced_blocks(const IndexGeometry& geometry, int64_t q_block) {
  std::vector<int32_t> forced{0};
  const int64_t first_diagonal = q_block * geometry.block_q / geometry.block_k;
  for (int64_t kb = std::max<int64_t>(1, first_diagonal); kb <= geometry.last_causal_k_block(q_block); ++kb)
    forced.push_back(static_cast<int32_t>(kb));
  return forced;
}

Result<HeadIndex> select_block_cluster(const BlockScores& scores, const PatternSpec& spec,
                                       const IndexGeometry& geometry) {
  if (spec.kind != PatternKind::BLOCK_CLUSTER) {
    return make_error(StatusCode::INVALID_ARGUMENT, "select_block_cluster got pattern {}", to_string(spec));
  }
  if (spec.blocks > scores.num_k_blocks) {
    return make_error(
        StatusCode::INVALID_ARGUMENT,
        "pattern {}: {} key blocks requested but the sequence has only {} (L = {}, block {}); use "
        "a budget <= {}",
        to_string(spec), spec.blocks, scores.num_k_blocks, geometry.seq_len, geometry.block_k,
        scores.num_k_blocks);
  }
  HeadIndex head;
  head.blocks.resize(scores.num_q_blocks);
  head.columns.resize(scores.num_q_blocks);
  for (int64_t qb = 0; qb < scores.num_q_blocks; ++qb) {
    const int64_t last_block = geometry.last_causal_k_block(qb);
    const std::vector<int32_t> forced = block_cluster_forced_blocks(geometry, qb);
    const float* p = scores.prob.data() + qb * scores.num_k_blocks;
    const std::vector<float> row(p, p + last_block + 1);
    double row_mass = 0.0;
    for (float x : row) row_mass += x;
    head.blocks[qb] = select_top(row, forced, {spec.blocks, spec.gamma, row_mass, /*keep_all_forced=*/true});
  }
  return head;
}

}  // namespace sacc::ref
