// Helpers shared by the oracle tests: random inputs and brute-force masks straight from the definitions.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "attention/sparse_index.h"
#include "reference/head_index.h"
#include "reference/qkv.h"

namespace sacc::ref::testing {

inline HostQkv random_qkv(const AttentionShape& shape, uint32_t seed, float spread = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> uniform(-spread, spread);
  HostQkv qkv;
  qkv.shape = shape;
  qkv.q.resize(static_cast<size_t>(shape.seq_len) * shape.num_q_heads * shape.head_dim);
  qkv.k.resize(static_cast<size_t>(shape.seq_len) * shape.num_kv_heads * shape.head_dim);
  qkv.v.resize(qkv.k.size());
  for (float& x : qkv.q) x = uniform(rng);
  for (float& x : qkv.k) x = uniform(rng);
  for (float& x : qkv.v) x = uniform(rng);
  return qkv;
}

// mask[i * L + j] for one index head, expanded from the CSR index (causal).
inline std::vector<char> index_mask(const SparseIndex& index, int index_head) {
  const int64_t seq_len = index.geometry.seq_len;
  std::vector<char> mask(static_cast<size_t>(seq_len * seq_len), 0);
  for (int64_t i = 0; i < seq_len; ++i) {
    for (int32_t j : keys_of_row(index, index_head, i)) mask[i * seq_len + j] = 1;
  }
  return mask;
}

// Attention of one query head restricted to mask (causal assumed in the mask), naive fp64: O [L, d], lse [L].
inline void masked_attention(const HostQkv& qkv, int q_head, const std::vector<char>& mask,
                             std::vector<double>& o, std::vector<double>& lse) {
  const AttentionShape& s = qkv.shape;
  const int64_t seq_len = s.seq_len;
  const int d = s.head_dim;
  const int kv_head = q_head / s.group_size();
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  o.assign(static_cast<size_t>(seq_len * d), 0.0);
  lse.assign(seq_len, -std::numeric_limits<double>::infinity());
  for (int64_t i = 0; i < seq_len; ++i) {
    std::vector<double> score(seq_len, -std::numeric_limits<double>::infinity());
    double max_score = -std::numeric_limits<double>::infinity();
    for (int64_t j = 0; j < seq_len; ++j) {
      if (!mask[i * seq_len + j]) continue;
      double dot = 0.0;
      for (int t = 0; t < d; ++t) {
        dot += static_cast<double>(qkv.q[(i * s.num_q_heads + q_head) * d + t]) *
               qkv.k[(j * s.num_kv_heads + kv_head) * d + t];
      }
      score[j] = dot * scale;
      max_score = std::max(max_score, score[j]);
    }
    if (max_score == -std::numeric_limits<double>::infinity()) continue;
    double sum = 0.0;
    for (int64_t j = 0; j < seq_len; ++j) {
      if (!mask[i * seq_len + j]) continue;
      const double w = std::exp(score[j] - max_score);
      sum += w;
      for (int t = 0; t < d; ++t) o[i * d + t] += w * qkv.v[(j * s.num_kv_heads + kv_head) * d + t];
    }
    for (int t = 0; t < d; ++t) o[i * d + t] /= sum;
    lse[i] = max_score + std::log(sum);
  }
}

}  // namespace sacc::ref::testing
