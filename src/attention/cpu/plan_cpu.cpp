// plan_cpu() (plan_cpu.h): validate, clamp the budgets, estimate in parallel (Interval-Slash per query head,
// then every index head's combination, selection and lists per index head), pack the CSR index.
#include "attention/cpu/plan_cpu.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "attention/attention_validation.h"
#include "attention/cpu/parallel_for.h"
#include "attention/cpu/plan_cpu_detail.h"

namespace sacc {
namespace cpu_plan {
namespace {

void widen_row(const void* base, DType dtype, int64_t offset, int d, float* out, int64_t out_stride) {
  if (dtype == DType::F32) {
    const float* src = static_cast<const float*>(base) + offset;
    for (int t = 0; t < d; ++t) out[t * out_stride] = src[t];
    return;
  }
  const uint16_t* src = static_cast<const uint16_t*>(base) + offset;
  for (int t = 0; t < d; ++t) out[t * out_stride] = bf16_to_float(src[t]);
}

}  // namespace

void QkSource::load_q(int64_t token, int q_head, float* out, int64_t out_stride) const {
  widen_row(q, q_dtype, token * q_token_stride + q_head * q_head_stride, shape.head_dim, out, out_stride);
}

void QkSource::load_k(int64_t token, int kv_head, float* out, int64_t out_stride) const {
  widen_row(k, k_dtype, token * kv_token_stride + kv_head * kv_head_stride, shape.head_dim, out, out_stride);
}

}  // namespace cpu_plan

namespace {

using cpu_plan::HeadLists;

Status validate_inputs(const AttentionParams& p, const LayerPatterns& patterns, const IndexGeometry& geometry,
                       CpuPlanTypes types) {
  if (geometry.shared_per_kv_group != patterns.shared_per_kv_group) {
    return make_error(StatusCode::INVALID_ARGUMENT,
                      "plan_cpu: the index geometry and the layer patterns disagree on sharing per KV group");
  }
  SACC_RETURN_IF_ERROR(
      validate_plan_arguments("plan_cpu", p.shape, patterns.heads, patterns.estimation, geometry));
  SACC_RETURN_IF_ERROR(p.require_whole_prompt("plan_cpu"));
  bool estimates = false;
  for (const PatternSpec& spec : patterns.heads) {
    estimates =
        estimates || spec.kind == PatternKind::INTERVAL_SLASH || spec.kind == PatternKind::BLOCK_CLUSTER;
  }
  if (!estimates) return Status::ok();
  if (p.q == nullptr || p.k == nullptr) {
    return make_error(StatusCode::INVALID_ARGUMENT, "plan_cpu: estimating patterns need host Q and K");
  }
  for (DType dtype : {types.q, types.k}) {
    if (dtype != DType::F32 && dtype != DType::BF16) {
      return make_error(StatusCode::UNSUPPORTED, "plan_cpu: Q/K must be F32 or BF16, not {}",
                        dtype_name(dtype));
    }
  }
  if (p.q_token_stride < 0 || p.q_head_stride < 0 || p.kv_token_stride < 0 || p.kv_head_stride < 0) {
    return make_error(StatusCode::INVALID_ARGUMENT, "plan_cpu: negative Q/K strides are not supported");
  }
  return Status::ok();
}

Result<SparseIndex> pack(const IndexGeometry& geometry, std::vector<HeadLists>& heads) {
  int64_t total_blocks = 0, total_columns = 0;
  for (const HeadLists& head : heads) {
    total_blocks += static_cast<int64_t>(head.block_ids.size());
    total_columns += static_cast<int64_t>(head.column_ids.size());
  }
  if (std::max(total_blocks, total_columns) > std::numeric_limits<int32_t>::max()) {
    return make_error(StatusCode::UNSUPPORTED, "plan_cpu: the index exceeds 2^31 entries (32-bit offsets)");
  }
  SparseIndex index;
  index.geometry = geometry;
  index.block_offsets.reserve(geometry.num_slots() + 1);
  index.column_offsets.reserve(geometry.num_slots() + 1);
  index.block_ids.reserve(total_blocks);
  index.column_ids.reserve(total_columns);
  index.block_offsets.push_back(0);
  index.column_offsets.push_back(0);
  for (HeadLists& head : heads) {
    const int32_t block_base = static_cast<int32_t>(index.block_ids.size());
    const int32_t column_base = static_cast<int32_t>(index.column_ids.size());
    for (size_t qb = 1; qb < head.block_offsets.size(); ++qb) {
      index.block_offsets.push_back(block_base + head.block_offsets[qb]);
      index.column_offsets.push_back(column_base + head.column_offsets[qb]);
    }
    index.block_ids.insert(index.block_ids.end(), head.block_ids.begin(), head.block_ids.end());
    index.column_ids.insert(index.column_ids.end(), head.column_ids.begin(), head.column_ids.end());
    head = HeadLists{};
  }
  return index;
}

}  // namespace

Result<SparseIndex> plan_cpu(const AttentionParams& params, const LayerPatterns& patterns,
                             const IndexGeometry& geometry, CpuPlanTypes types) {
  AttentionParams p = params;
  // As the oracle: 1/sqrt(d) in double, rounded once to fp32.
  if (p.softmax_scale == 0.0f)
    p.softmax_scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(p.shape.head_dim)));
  p = p.with_defaults();
  SACC_RETURN_IF_ERROR(validate_inputs(p, patterns, geometry, types));

  cpu_plan::QkSource source;
  source.shape = p.shape;
  source.q = p.q;
  source.k = p.k;
  source.q_dtype = types.q;
  source.k_dtype = types.k;
  source.q_token_stride = p.q_token_stride;
  source.q_head_stride = p.q_head_stride;
  source.kv_token_stride = p.kv_token_stride;
  source.kv_head_stride = p.kv_head_stride;
  source.scale = p.softmax_scale;

  const int num_heads = geometry.num_heads;
  // Query heads whose scores index head h combines (in head order): its group when shared, else itself.
  const int members = patterns.shared_per_kv_group ? p.shape.group_size() : 1;
  std::vector<PatternSpec> specs;
  specs.reserve(num_heads);
  for (int h = 0; h < num_heads; ++h) {
    specs.push_back(clamp_pattern_to_length(pattern_of_head(patterns.heads, h), geometry));
  }

  // Interval-Slash scores, one task per query head (the O(m L d) part of the plan).
  const int64_t rows = std::min(patterns.estimation.last_queries, p.shape.seq_len);
  std::vector<int> slash_heads;
  for (int h = 0; h < num_heads; ++h) {
    if (specs[h].kind != PatternKind::INTERVAL_SLASH) continue;
    for (int m = 0; m < members; ++m) slash_heads.push_back(h * members + m);
  }
  std::vector<cpu_plan::SlashScores> slash_scores(p.shape.num_q_heads);
  parallel_for(static_cast<int64_t>(slash_heads.size()), [&](int64_t task) {
    const int q_head = slash_heads[task];
    cpu_plan::interval_slash_scores(source, q_head, rows, &slash_scores[q_head]);
  });

  // Pooled keys of the KV heads Block-Cluster heads read.
  std::vector<int> pooled_kv_heads;
  for (int h = 0; h < num_heads; ++h) {
    const int kv_head = h * members / p.shape.group_size();
    if ((specs[h].kind == PatternKind::BLOCK_CLUSTER || specs[h].has_alternative()) &&
        std::find(pooled_kv_heads.begin(), pooled_kv_heads.end(), kv_head) == pooled_kv_heads.end()) {
      pooled_kv_heads.push_back(kv_head);
    }
  }
  std::vector<std::vector<float>> pooled_keys(p.shape.num_kv_heads);
  parallel_for(static_cast<int64_t>(pooled_kv_heads.size()), [&](int64_t task) {
    const int kv_head = pooled_kv_heads[task];
    pooled_keys[kv_head] = cpu_plan::pooled_keys_transposed(source, kv_head, geometry);
  });

  const auto block_cluster = [&](int first_member, const PatternSpec& spec) {
    const std::vector<float>& keys = pooled_keys[first_member / p.shape.group_size()];
    std::vector<float> sum, more;
    cpu_plan::block_cluster_scores(source, first_member, keys, geometry, &sum);
    for (int m = 1; m < members; ++m) {
      cpu_plan::block_cluster_scores(source, first_member + m, keys, geometry, &more);
      for (size_t n = 0; n < sum.size(); ++n) sum[n] += more[n];
    }
    return cpu_plan::block_cluster_lists(sum, spec, geometry);
  };
  std::vector<HeadLists> lists(num_heads);
  parallel_for(num_heads, [&](int64_t task) {
    const int h = static_cast<int>(task);
    const PatternSpec& spec = specs[h];
    const int first_member = h * members;
    switch (spec.kind) {
      case PatternKind::DENSE:
        lists[h] = cpu_plan::dense_lists(geometry);
        break;
      case PatternKind::TRIANGULAR:
        lists[h] = cpu_plan::triangular_lists(spec, geometry);
        break;
      case PatternKind::INTERVAL_SLASH: {
        cpu_plan::SlashScores sum = std::move(slash_scores[first_member]);
        for (int m = 1; m < members; ++m) {
          const cpu_plan::SlashScores& more = slash_scores[first_member + m];
          for (size_t j = 0; j < sum.vertical.size(); ++j) sum.vertical[j] += more.vertical[j];
          for (size_t o = 0; o < sum.slash.size(); ++o) sum.slash[o] += more.slash[o];
        }
        const double total_mass = static_cast<double>(rows) * members;
        lists[h] = cpu_plan::interval_slash_lists(sum, total_mass, spec, patterns.estimation, geometry);
        if (spec.joins_alternative()) {
          lists[h] =
              cpu_plan::join_lists(lists[h], block_cluster(first_member, spec.alternative()), geometry);
        } else if (spec.has_alternative()) {
          HeadLists cluster = block_cluster(first_member, spec.alternative());
          if (cpu_plan::last_block_mass(sum.vertical, cluster, geometry) >
              cpu_plan::last_block_mass(sum.vertical, lists[h], geometry)) {
            lists[h] = std::move(cluster);
          }
        }
        break;
      }
      case PatternKind::BLOCK_CLUSTER:
        lists[h] = block_cluster(first_member, spec);
        break;
    }
    if (spec.tail > 0)
      lists[h] = cpu_plan::join_lists(lists[h], cpu_plan::dense_tail_lists(spec.tail, geometry), geometry);
  });
  return pack(geometry, lists);
}

}  // namespace sacc
