#include "reference/oracle_index.h"

#include <vector>

#include "reference/attention_probabilities.h"
#include "reference/estimate_block_cluster.h"
#include "reference/head_index.h"
#include "reference/top_selection.h"

namespace sacc::ref {

Result<SparseIndex> oracle_block_index(const QkvView& qkv, double gamma, const IndexGeometry& geometry) {
  SACC_RETURN_IF_ERROR(qkv.validate());
  SACC_RETURN_IF_ERROR(geometry.validate());
  if (!(gamma > 0.0 && gamma <= 1.0))
    return make_error(StatusCode::INVALID_ARGUMENT, "oracle index: gamma {} outside (0, 1]", gamma);
  if (geometry.seq_len != qkv.shape.seq_len || geometry.shared_per_kv_group ||
      geometry.num_heads != qkv.shape.num_q_heads)
    return make_error(
        StatusCode::INVALID_ARGUMENT,
        "oracle index: needs one index head per query head over {} tokens (got {} heads over {})",
        qkv.shape.seq_len, geometry.num_heads, geometry.seq_len);
  const int64_t num_q_blocks = geometry.num_q_blocks();
  const int64_t num_k_blocks = geometry.num_k_blocks();
  // mass[(h * num_q_blocks + qb) * num_k_blocks + kb]: summed over the rows of qb, each item owning its row.
  std::vector<double> mass(static_cast<size_t>(qkv.shape.num_q_heads) * num_q_blocks * num_k_blocks, 0.0);
  SACC_RETURN_IF_ERROR(visit_attention_probabilities(
      qkv, geometry.block_q,
      [&](int q_head, int64_t q_block, int64_t row0, int rows, const double* p, int64_t stride) {
        double* block_mass = mass.data() + (q_head * num_q_blocks + q_block) * num_k_blocks;
        for (int r = 0; r < rows; ++r) {
          const int64_t last = row0 + r;
          for (int64_t j = 0; j <= last; ++j) block_mass[j / geometry.block_k] += p[r * stride + j];
        }
      }));
  std::vector<HeadIndex> heads(qkv.shape.num_q_heads);
  for (int h = 0; h < qkv.shape.num_q_heads; ++h) {
    heads[h].blocks.resize(num_q_blocks);
    heads[h].columns.resize(num_q_blocks);
    for (int64_t qb = 0; qb < num_q_blocks; ++qb) {
      const int64_t last_block = geometry.last_causal_k_block(qb);
      const double* block_mass = mass.data() + (h * num_q_blocks + qb) * num_k_blocks;
      const std::vector<float> scores(block_mass, block_mass + last_block + 1);
      double total = 0.0;
      for (int64_t kb = 0; kb <= last_block; ++kb) total += block_mass[kb];
      heads[h].blocks[qb] = select_top(scores, block_cluster_forced_blocks(geometry, qb),
                                       {last_block + 1, gamma, total, /*keep_all_forced=*/true});
    }
  }
  return assemble_index(geometry, heads);
}

}  // namespace sacc::ref
