#include "reference/attention_probabilities.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "reference/kv_head.h"
#include "reference/parallel.h"

namespace sacc::ref {

Status visit_attention_probabilities(const QkvView& qkv, int64_t rows_per_item,
                                     const ProbabilityVisitor& visit) {
  SACC_RETURN_IF_ERROR(qkv.validate());
  if (rows_per_item <= 0)
    return make_error(StatusCode::INVALID_ARGUMENT, "attention probabilities: {} rows per item",
                      rows_per_item);
  const AttentionShape& shape = qkv.shape;
  const int64_t seq_len = shape.seq_len;
  const int d = shape.head_dim;
  const int group = shape.group_size();
  const int64_t items = (seq_len + rows_per_item - 1) / rows_per_item;
  for (int kv_head = 0; kv_head < shape.num_kv_heads; ++kv_head) {
    const KvHeadF64 kv = load_kv_head(qkv, kv_head);
    parallel_for(group * items, [&](int64_t work) {
      const int q_head = kv_head * group + static_cast<int>(work / items);
      const int64_t item = work % items;
      const int64_t item_end = std::min(seq_len, (item + 1) * rows_per_item);
      std::vector<double> q(static_cast<size_t>(kProbabilityRowChunk) * d);
      std::vector<double> p;
      for (int64_t row0 = item * rows_per_item; row0 < item_end; row0 += kProbabilityRowChunk) {
        const int rows = static_cast<int>(std::min<int64_t>(kProbabilityRowChunk, item_end - row0));
        const int64_t key_end = row0 + rows;
        for (int r = 0; r < rows; ++r) load_scaled_query(qkv, q_head, row0 + r, q.data() + r * d);
        p.resize(static_cast<size_t>(rows) * key_end);
        score_rows(kv.kt.data(), kv.seq_len, d, q.data(), rows, key_end, p.data());  // p: [rows, key_end]
        for (int r = 0; r < rows; ++r) {
          double* row = p.data() + r * key_end;
          const int64_t last = row0 + r;
          double max_score = -std::numeric_limits<double>::infinity();
          for (int64_t j = 0; j <= last; ++j) max_score = std::max(max_score, row[j]);
          double sum = 0.0;
          for (int64_t j = 0; j <= last; ++j) {
            row[j] = std::exp(row[j] - max_score);
            sum += row[j];
          }
          for (int64_t j = 0; j <= last; ++j) row[j] /= sum;
        }
        visit(q_head, item, row0, rows, p.data(), key_end);
      }
    });
  }
  return Status::ok();
}

}  // namespace sacc::ref
