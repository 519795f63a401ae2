// Block-Cluster estimation on the host: mean-pooled Q and K (accumulated in double), then per query block the
// causal fp32 softmax over the pooled keys (plan_cpu_detail.h).
#include <algorithm>
#include <cmath>
#include <limits>

#include "attention/cpu/plan_cpu_detail.h"

namespace sacc::cpu_plan {
namespace {

// Mean over rows [begin, end) of `load(row, out)` rows of width d, summed in double, rounded to fp32.
template <typename Load>
void mean_pool(int64_t begin, int64_t end, int d, const Load& load, std::vector<float>& row,
               std::vector<double>& sum, float* mean) {
  std::fill(sum.begin(), sum.end(), 0.0);
  for (int64_t i = begin; i < end; ++i) {
    load(i, row.data());
    for (int t = 0; t < d; ++t) sum[t] += row[t];
  }
  const double count = static_cast<double>(end - begin);
  for (int t = 0; t < d; ++t) mean[t] = static_cast<float>(sum[t] / count);
}

}  // namespace

// acc[n] += a * x[n] for n in [0, count): a multiply then an add per element, vectorised across elements.
__attribute__((target_clones("avx", "default"))) void scaled_add(float a, const float* __restrict x,
                                                                 int64_t count, float* __restrict acc) {
  for (int64_t n = 0; n < count; ++n) acc[n] += a * x[n];
}

std::vector<float> pooled_keys_transposed(const QkSource& source, int kv_head,
                                          const IndexGeometry& geometry) {
  const int d = source.shape.head_dim;
  const int64_t num_k_blocks = geometry.num_k_blocks();
  std::vector<float> out(static_cast<size_t>(d) * num_k_blocks);  // [d, num_k_blocks]
  std::vector<float> row(d), mean(d);
  std::vector<double> sum(d);
  const auto load = [&](int64_t token, float* dst) { source.load_k(token, kv_head, dst); };
  for (int64_t kb = 0; kb < num_k_blocks; ++kb) {
    mean_pool(kb * geometry.block_k, std::min(geometry.seq_len, (kb + 1) * geometry.block_k), d, load, row,
              sum, mean.data());
    for (int t = 0; t < d; ++t) out[t * num_k_blocks + kb] = mean[t];
  }
  return out;
}

void block_cluster_scores(const QkSource& source, int q_head, const std::vector<float>& pooled_keys_t,
                          const IndexGeometry& geometry, std::vector<float>* prob) {
  const int d = source.shape.head_dim;
  const int64_t num_q_blocks = geometry.num_q_blocks();
  const int64_t num_k_blocks = geometry.num_k_blocks();
  prob->assign(num_q_blocks * num_k_blocks, 0.0f);
  std::vector<float> row(d), q_mean(d);
  std::vector<double> sum(d);
  const auto load = [&](int64_t token, float* dst) { source.load_q(token, q_head, dst); };
  for (int64_t qb = 0; qb < num_q_blocks; ++qb) {
    mean_pool(qb * geometry.block_q, std::min(geometry.seq_len, (qb + 1) * geometry.block_q), d, load, row,
              sum, q_mean.data());
    const int64_t count = geometry.last_causal_k_block(qb) + 1;
    float* p = prob->data() + qb * num_k_blocks;
    // Dot products of the pooled query with every allowed pooled key, accumulated over increasing t.
    for (int t = 0; t < d; ++t) scaled_add(q_mean[t], pooled_keys_t.data() + t * num_k_blocks, count, p);
    float max_score = -std::numeric_limits<float>::infinity();
    for (int64_t kb = 0; kb < count; ++kb) {
      p[kb] = p[kb] * source.scale;
      max_score = std::max(max_score, p[kb]);
    }
    float total = 0.0f;
    for (int64_t kb = 0; kb < count; ++kb) {
      p[kb] = std::exp(p[kb] - max_score);
      total += p[kb];
    }
    for (int64_t kb = 0; kb < count; ++kb) p[kb] /= total;
  }
}

}  // namespace sacc::cpu_plan
