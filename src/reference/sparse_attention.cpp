#include "reference/sparse_attention.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "reference/head_index.h"
#include "reference/kv_head.h"
#include "reference/parallel.h"

namespace sacc::ref {
namespace {

constexpr int kRowTile = 4;  // rows scored together, as in dense_attention

}  // namespace

Status check_index_matches(const SparseIndex& index, const AttentionShape& shape) {
  const IndexGeometry& g = index.geometry;
  if (g.seq_len != shape.seq_len) {
    return make_error(StatusCode::INVALID_ARGUMENT, "index is for length {} but the input has length {}",
                      g.seq_len, shape.seq_len);
  }
  const int expected_heads = g.shared_per_kv_group ? shape.num_kv_heads : shape.num_q_heads;
  if (g.num_heads != expected_heads) {
    return make_error(StatusCode::INVALID_ARGUMENT,
                      "index has {} heads but the input needs {} ({} index: one per {} head)", g.num_heads,
                      expected_heads, g.shared_per_kv_group ? "shared" : "per-head",
                      g.shared_per_kv_group ? "KV" : "query");
  }
  return Status::ok();
}

Result<AttentionResult> sparse_attention(const QkvView& qkv, const SparseIndex& index) {
  SACC_RETURN_IF_ERROR(qkv.validate());
  SACC_RETURN_IF_ERROR(check_index_matches(index, qkv.shape));
  SACC_RETURN_IF_ERROR(index.validate());
  const AttentionShape& shape = qkv.shape;
  const int64_t seq_len = shape.seq_len;
  const int d = shape.head_dim;
  const int group = shape.group_size();
  const int64_t num_q_blocks = index.geometry.num_q_blocks();
  const int block_q = index.geometry.block_q;
  AttentionResult out;
  out.shape = shape;
  out.o.assign(static_cast<size_t>(seq_len * shape.num_q_heads * d), 0.0);
  out.lse.assign(static_cast<size_t>(shape.num_q_heads * seq_len), 0.0);
  for (int kv_head = 0; kv_head < shape.num_kv_heads; ++kv_head) {
    const KvHeadF64 kv = load_kv_head(qkv, kv_head);
    parallel_for(group * num_q_blocks, [&](int64_t item) {
      const int q_head = kv_head * group + static_cast<int>(item / num_q_blocks);
      const int index_head = index.geometry.shared_per_kv_group ? kv_head : q_head;
      const int64_t q_block = item % num_q_blocks;
      const int64_t first_row = q_block * block_q;
      const int64_t row_end = std::min(seq_len, first_row + block_q);
      // The slot's keys in ascending order (the order dense attention sums in), gathered transposed.
      const std::vector<int32_t> keys = slot_keys(index, index_head * num_q_blocks + q_block, row_end - 1);
      const int64_t count = static_cast<int64_t>(keys.size());
      std::vector<double> kt(static_cast<size_t>(d * count));
      for (int64_t n = 0; n < count; ++n) {
        for (int t = 0; t < d; ++t) kt[t * count + n] = kv.k[static_cast<int64_t>(keys[n]) * d + t];
      }
      std::vector<double> q(static_cast<size_t>(kRowTile * d)), acc(d), scores;
      for (int64_t row0 = first_row; row0 < row_end; row0 += kRowTile) {
        const int rows = static_cast<int>(std::min<int64_t>(kRowTile, row_end - row0));
        const int64_t key_end =
            std::upper_bound(keys.begin(), keys.end(), row0 + rows - 1) - keys.begin();  // causal
        for (int r = 0; r < rows; ++r) load_scaled_query(qkv, q_head, row0 + r, q.data() + r * d);
        scores.resize(static_cast<size_t>(rows * key_end));
        score_rows(kt.data(), count, d, q.data(), rows, key_end, scores.data());
        for (int r = 0; r < rows; ++r) {
          const int64_t row = row0 + r;
          const int64_t visible = std::upper_bound(keys.begin(), keys.begin() + key_end, row) - keys.begin();
          double* lse = &out.lse[q_head * seq_len + row];
          if (visible == 0) {
            *lse = -std::numeric_limits<double>::infinity();
            continue;
          }
          const double* s = scores.data() + r * key_end;
          double max_score = -std::numeric_limits<double>::infinity();
          for (int64_t n = 0; n < visible; ++n) max_score = std::max(max_score, s[n]);
          std::fill(acc.begin(), acc.end(), 0.0);
          double sum = 0.0;
          for (int64_t n = 0; n < visible; ++n) {
            const double w = std::exp(s[n] - max_score);
            sum += w;
            const double* v_j = kv.v.data() + static_cast<int64_t>(keys[n]) * d;
            axpy(w, v_j, d, acc.data());
          }
          double* o_row = out.o.data() + (row * shape.num_q_heads + q_head) * static_cast<int64_t>(d);
          for (int t = 0; t < d; ++t) o_row[t] = acc[t] / sum;
          *lse = max_score + std::log(sum);
        }
      }
    });
  }
  return out;
}

}  // namespace sacc::ref
