#include "reference/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "reference/attention_probabilities.h"
#include "reference/sparse_attention.h"

namespace sacc::ref {
namespace {

// Dense probability mass of row `row` that one index slot covers. `p` holds the row's probabilities [row +
// 1].
double covered_mass(const SparseIndex& index, int64_t slot, int64_t row, const double* p) {
  const IndexGeometry& g = index.geometry;
  double mass = 0.0;
  for (int32_t n = index.block_offsets[slot]; n < index.block_offsets[slot + 1]; ++n) {
    const int64_t begin = static_cast<int64_t>(index.block_ids[n]) * g.block_k;
    const int64_t end = std::min<int64_t>(begin + g.block_k, row + 1);
    for (int64_t j = begin; j < end; ++j) mass += p[j];
  }
  for (int32_t n = index.column_offsets[slot]; n < index.column_offsets[slot + 1]; ++n) {
    if (index.column_ids[n] <= row) mass += p[index.column_ids[n]];
  }
  return mass;
}

}  // namespace

Result<std::vector<RecallReport>> attention_recall(const QkvView& qkv,
                                                   const std::vector<const SparseIndex*>& indices) {
  SACC_RETURN_IF_ERROR(qkv.validate());
  for (const SparseIndex* index : indices) {
    SACC_RETURN_IF_ERROR(check_index_matches(*index, qkv.shape));
    SACC_RETURN_IF_ERROR(index->validate());
  }
  const AttentionShape& shape = qkv.shape;
  const int64_t seq_len = shape.seq_len;
  const int group = shape.group_size();
  const size_t count = indices.size();
  const int64_t tiles = (seq_len + kProbabilityRowChunk - 1) / kProbabilityRowChunk;
  // Per (index, query head, tile) partial sums, so threads never share an accumulator and the total does not
  // depend on scheduling.
  std::vector<double> partial(count * shape.num_q_heads * tiles, 0.0);
  SACC_RETURN_IF_ERROR(visit_attention_probabilities(
      qkv, kProbabilityRowChunk,
      [&](int q_head, int64_t tile, int64_t row0, int rows, const double* p, int64_t stride) {
        for (int r = 0; r < rows; ++r) {
          const int64_t row = row0 + r;
          for (size_t n = 0; n < count; ++n) {
            const SparseIndex& index = *indices[n];
            const int index_head = index.geometry.shared_per_kv_group ? q_head / group : q_head;
            const int64_t slot = index_head * index.geometry.num_q_blocks() + row / index.geometry.block_q;
            partial[(n * shape.num_q_heads + q_head) * tiles + tile] +=
                covered_mass(index, slot, row, p + r * stride);
          }
        }
      }));
  std::vector<RecallReport> reports(count);
  for (size_t n = 0; n < count; ++n) {
    reports[n].per_head.assign(shape.num_q_heads, 0.0);
    for (int h = 0; h < shape.num_q_heads; ++h) {
      double sum = 0.0;
      for (int64_t t = 0; t < tiles; ++t) sum += partial[(n * shape.num_q_heads + h) * tiles + t];
      reports[n].per_head[h] = sum / static_cast<double>(seq_len);
      reports[n].mean += reports[n].per_head[h] / shape.num_q_heads;
    }
  }
  return reports;
}

Result<RecallReport> attention_recall(const QkvView& qkv, const SparseIndex& index) {
  SACC_ASSIGN_OR_RETURN(std::vector<RecallReport> reports, attention_recall(qkv, {&index}));
  return reports[0];
}

Result<double> relative_l2_error(const std::vector<double>& a, const std::vector<double>& ref) {
  if (a.size() != ref.size()) {
    return make_error(StatusCode::INVALID_ARGUMENT, "relative error: sizes differ ({} vs {})", a.size(),
                      ref.size());
  }
  double diff = 0.0, norm = 0.0;
  for (size_t n = 0; n < a.size(); ++n) {
    diff += (a[n] - ref[n]) * (a[n] - ref[n]);
    norm += ref[n] * ref[n];
  }
  if (norm == 0.0) return diff == 0.0 ? 0.0 : std::numeric_limits<double>::infinity();
  return std::sqrt(diff / norm);
}

Result<std::vector<double>> relative_l2_error_per_head(const std::vector<double>& a,
                                                       const std::vector<double>& ref,
                                                       const AttentionShape& shape) {
  const size_t expected = static_cast<size_t>(shape.seq_len) * shape.num_q_heads * shape.head_dim;
  if (a.size() != expected || ref.size() != expected) {
    return make_error(StatusCode::INVALID_ARGUMENT, "relative error: O has {} / {} values, shape needs {}",
                      a.size(), ref.size(), expected);
  }
  std::vector<double> diff(shape.num_q_heads, 0.0), norm(shape.num_q_heads, 0.0);
  for (int64_t i = 0; i < shape.seq_len; ++i) {
    for (int h = 0; h < shape.num_q_heads; ++h) {
      const size_t base = (static_cast<size_t>(i) * shape.num_q_heads + h) * shape.head_dim;
      for (int t = 0; t < shape.head_dim; ++t) {
        diff[h] += (a[base + t] - ref[base + t]) * (a[base + t] - ref[base + t]);
        norm[h] += ref[base + t] * ref[base + t];
      }
    }
  }
  std::vector<double> out(shape.num_q_heads);
  for (int h = 0; h < shape.num_q_heads; ++h) {
    out[h] = norm[h] == 0.0 ? (diff[h] == 0.0 ? 0.0 : std::numeric_limits<double>::infinity())
                            : std::sqrt(diff[h] / norm[h]);
  }
  return out;
}

}  // namespace sacc::ref
