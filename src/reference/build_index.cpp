#include "reference/build_index.h"

#include <algorithm>
#include <iterator>

#include "attention/attention_validation.h"
#include "reference/estimate_block_cluster.h"
#include "reference/estimate_interval_slash.h"
#include "reference/head_index.h"
#include "reference/parallel.h"
#include "reference/triangular_index.h"

namespace sacc::ref {
namespace {

// Every causal key block for the query blocks in a dense tail of `tail` rows (attention/dense_tail.h; tail =
// L: every query block), nothing for the others.
HeadIndex dense_tail_head_index(int64_t tail, const IndexGeometry& geometry) {
  HeadIndex head;
  head.blocks.resize(geometry.num_q_blocks());
  head.columns.resize(geometry.num_q_blocks());
  for (int64_t qb = 0; qb < geometry.num_q_blocks(); ++qb) {
    const int64_t last_row = std::min(geometry.seq_len, (qb + 1) * geometry.block_q) - 1;
    if (!in_dense_tail(last_row, geometry.seq_len, tail)) continue;
    for (int64_t kb = 0; kb <= geometry.last_causal_k_block(qb); ++kb) {
      head.blocks[qb].push_back(static_cast<int32_t>(kb));
    }
  }
  return head;
}

// The query heads whose scores an index head combines.
std::vector<int> query_heads_of(int index_head, const AttentionShape& shape, bool shared) {
  if (!shared) return {index_head};
  std::vector<int> heads;
  for (int h = 0; h < shape.group_size(); ++h) heads.push_back(index_head * shape.group_size() + h);
  return heads;
}

// The estimating rows' attention mass an index head keeps (attention/pattern.h, "Runtime choice"): the
// vertical scores summed over the keys it lists for the last query block.
double last_block_mass(const std::vector<float>& vertical, const HeadIndex& head,
                       const IndexGeometry& geometry) {
  const int64_t last = geometry.num_q_blocks() - 1;
  double mass = 0.0;
  for (int32_t kb : head.blocks[last]) {
    const int64_t end = std::min(geometry.seq_len, (kb + int64_t{1}) * geometry.block_k);
    for (int64_t j = kb * int64_t{geometry.block_k}; j < end; ++j) mass += vertical[j];
  }
  for (int32_t j : head.columns[last]) mass += vertical[j];
  return mass;
}

// The union of two heads' lists (attention/pattern.h, "Union"): per query block every key block either lists;
// the single columns of either that fall outside those blocks.
HeadIndex join_head_indices(const HeadIndex& a, const HeadIndex& b, const IndexGeometry& geometry) {
  HeadIndex out;
  out.blocks.resize(a.blocks.size());
  out.columns.resize(a.blocks.size());
  for (size_t qb = 0; qb < a.blocks.size(); ++qb) {
    std::set_union(a.blocks[qb].begin(), a.blocks[qb].end(), b.blocks[qb].begin(), b.blocks[qb].end(),
                   std::back_inserter(out.blocks[qb]));
    std::vector<int32_t> columns;
    std::set_union(a.columns[qb].begin(), a.columns[qb].end(), b.columns[qb].begin(), b.columns[qb].end(),
                   std::back_inserter(columns));
    const std::vector<int32_t>& blocks = out.blocks[qb];
    for (int32_t j : columns) {
      if (!std::binary_search(blocks.begin(), blocks.end(), static_cast<int32_t>(j / geometry.block_k))) {
        out.columns[qb].push_back(j);
      }
    }
  }
  return out;
}

// Sets *kind to the pattern kind the head's index follows (the runtime choice for a head with an
// alternative).
Result<HeadIndex> build_head(const QkvView& qkv, const PatternSpec& spec, const std::vector<int>& q_heads,
                             const EstimationConfig& config, const IndexGeometry& geometry,
                             PatternKind* kind) {
  *kind = spec.kind;
  switch (spec.kind) {
    case PatternKind::DENSE:
      return dense_tail_head_index(geometry.seq_len, geometry);
    case PatternKind::TRIANGULAR:
      return triangular_head_index(spec, geometry);
    case PatternKind::INTERVAL_SLASH: {
      SACC_ASSIGN_OR_RETURN(IntervalSlashScores sum, interval_slash_scores(qkv, q_heads[0], config));
      for (size_t n = 1; n < q_heads.size(); ++n) {
        SACC_ASSIGN_OR_RETURN(IntervalSlashScores more, interval_slash_scores(qkv, q_heads[n], config));
        accumulate_scores(sum, more);
      }
      SACC_ASSIGN_OR_RETURN(IntervalSlashSelection selection,
                            select_interval_slash(sum, spec.primary(), config));
      HeadIndex slash_head = interval_slash_head_index(selection, geometry);
      if (!spec.has_alternative()) return slash_head;
      SACC_ASSIGN_OR_RETURN(HeadIndex cluster_head,
                            build_head(qkv, spec.alternative(), q_heads, config, geometry, kind));
      if (spec.joins_alternative()) {
        *kind = PatternKind::INTERVAL_SLASH;
        return join_head_indices(slash_head, cluster_head, geometry);
      }
      if (last_block_mass(sum.vertical, cluster_head, geometry) >
          last_block_mass(sum.vertical, slash_head, geometry)) {
        return cluster_head;
      }
      *kind = PatternKind::INTERVAL_SLASH;
      return slash_head;
    }
    case PatternKind::BLOCK_CLUSTER: {
      SACC_ASSIGN_OR_RETURN(BlockScores sum, block_cluster_scores(qkv, q_heads[0], geometry));
      for (size_t n = 1; n < q_heads.size(); ++n) {
        SACC_ASSIGN_OR_RETURN(BlockScores more, block_cluster_scores(qkv, q_heads[n], geometry));
        accumulate_scores(sum, more);
      }
      return select_block_cluster(sum, spec, geometry);
    }
  }
  return make_error(StatusCode::INTERNAL, "unknown pattern kind {}", static_cast<int>(spec.kind));
}

}  // namespace

Result<SparseIndex> build_index(const QkvView& qkv, const std::vector<PatternSpec>& patterns,
                                const EstimationConfig& config, const IndexGeometry& geometry,
                                std::vector<PatternKind>* kinds) {
  SACC_RETURN_IF_ERROR(qkv.validate());
  SACC_RETURN_IF_ERROR(validate_plan_arguments("oracle index", qkv.shape, patterns, config, geometry));
  const AttentionShape& shape = qkv.shape;
  std::vector<HeadIndex> heads(geometry.num_heads);
  std::vector<PatternKind> taken(geometry.num_heads);
  std::vector<Status> errors(geometry.num_heads);
  parallel_for(geometry.num_heads, [&](int64_t h) {
    const PatternSpec& spec = pattern_of_head(patterns, h);
    Result<HeadIndex> head =
        build_head(qkv, spec, query_heads_of(static_cast<int>(h), shape, geometry.shared_per_kv_group),
                   config, geometry, &taken[h]);
    if (head.is_ok()) {
      heads[h] = std::move(head).value();
      if (spec.tail > 0)
        heads[h] = join_head_indices(heads[h], dense_tail_head_index(spec.tail, geometry), geometry);
    } else {
      errors[h] = head.status();
    }
  });
  for (const Status& error : errors) SACC_RETURN_IF_ERROR(error);
  if (kinds != nullptr) *kinds = std::move(taken);
  return assemble_index(geometry, heads);
}

}  // namespace sacc::ref
