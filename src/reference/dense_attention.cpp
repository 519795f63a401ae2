#include "reference/dense_attention.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "reference/kv_head.h"
#include "reference/parallel.h"

namespace sacc::ref {
namespace {

// Rows scored together so each loaded key serves several queries.
constexpr int kRowTile = 4;

}  // namespace

Result<AttentionResult> dense_attention(const QkvView& qkv) {
  SACC_RETURN_IF_ERROR(qkv.validate());
  const AttentionShape& shape = qkv.shape;
  const int64_t seq_len = shape.seq_len;
  const int d = shape.head_dim;
  const int group = shape.group_size();
  AttentionResult out;
  out.shape = shape;
  out.o.assign(static_cast<size_t>(seq_len * shape.num_q_heads * d), 0.0);
  out.lse.assign(static_cast<size_t>(shape.num_q_heads * seq_len), 0.0);
  const int64_t tiles = (seq_len + kRowTile - 1) / kRowTile;
  for (int kv_head = 0; kv_head < shape.num_kv_heads; ++kv_head) {
    const KvHeadF64 kv = load_kv_head(qkv, kv_head);
    parallel_for(group * tiles, [&](int64_t item) {
      const int q_head = kv_head * group + static_cast<int>(item / tiles);
      const int64_t row0 = (item % tiles) * kRowTile;
      const int rows = static_cast<int>(std::min<int64_t>(kRowTile, seq_len - row0));
      const int64_t key_end = row0 + rows;
      std::vector<double> q(static_cast<size_t>(rows * d));
      for (int r = 0; r < rows; ++r) load_scaled_query(qkv, q_head, row0 + r, q.data() + r * d);
      std::vector<double> scores(static_cast<size_t>(rows * key_end));
      score_rows(kv.kt.data(), kv.seq_len, d, q.data(), rows, key_end, scores.data());
      std::vector<double> acc(d);
      for (int r = 0; r < rows; ++r) {
        const int64_t row = row0 + r;
        const double* s = scores.data() + r * key_end;
        double max_score = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j <= row; ++j) max_score = std::max(max_score, s[j]);
        std::fill(acc.begin(), acc.end(), 0.0);
        double sum = 0.0;
        for (int64_t j = 0; j <= row; ++j) {
          const double w = std::exp(s[j] - max_score);
          sum += w;
          const double* v_j = kv.v.data() + j * d;
          axpy(w, v_j, d, acc.data());
        }
        double* o_row = out.o.data() + (row * shape.num_q_heads + q_head) * static_cast<int64_t>(d);
        for (int t = 0; t < d; ++t) o_row[t] = acc[t] / sum;
        out.lse[q_head * seq_len + row] = max_score + std::log(sum);
      }
    });
  }
  return out;
}

}  // namespace sacc::ref
