#include "attention/cuda/plan_layout.h"

#include <algorithm>
#include <cmath>

#include "attention/attention_validation.h"
#include "attention/cuda/plan_slot_capacity.h"

namespace sacc::plan_detail {

static_assert(kKindDense == static_cast<int32_t>(PatternKind::DENSE) &&
              kKindTriangular == static_cast<int32_t>(PatternKind::TRIANGULAR) &&
              kKindIntervalSlash == static_cast<int32_t>(PatternKind::INTERVAL_SLASH) &&
              kKindBlockCluster == static_cast<int32_t>(PatternKind::BLOCK_CLUSTER));

namespace {

// Interval-Slash estimation launches about this many CTAs (chunks x KV heads): about two per SM of an H200.
// Every CTA loads the estimating queries of its KV group, so more, shorter chunks repeat that load; the
// score kernels of a 32000-token Qwen2.5-0.5B prefill (24 layers, 2 KV heads) took 5.12 / 3.36 / 3.96 /
// 4.90 ms at 128 / 256 / 512 / 1024 (ncu, H200, 2026-12-03).
constexpr int64_t kEstTargetCtas = 256;
// Shared memory one estimation CTA may use (the H100/H200 limit is 227 KiB per block).
constexpr size_t kEstSmemBudget = 200 * 1024;
constexpr size_t kAlign = 256;

size_t align_up(size_t bytes) {
  return (bytes + kAlign - 1) / kAlign * kAlign;
}

int clamp_to(int64_t value, int64_t limit) {
  return static_cast<int>(std::min(value, limit));
}

}  // namespace

size_t estimation_smem_bytes(int heads, int row_tiles, int head_dim) {
  const size_t rows = static_cast<size_t>(row_tiles) * kEstRowTile;
  const size_t row_pitch = static_cast<size_t>(head_dim + 8) * 2;  // bf16 rows padded against bank conflicts
  const size_t q_bytes = static_cast<size_t>(heads) * rows * row_pitch;
  const size_t k_bytes = 2 * static_cast<size_t>(kEstKeyTile) * row_pitch;  // double-buffered key tile
  const size_t prob_bytes = rows * kEstProbPitch * sizeof(float);           // one fp32 probability tile
  const size_t stat_bytes = static_cast<size_t>(heads) * rows * 4 * 2 * sizeof(float);  // per warp max/sum
  return q_bytes + k_bytes + prob_bytes + stat_bytes;
}

Result<PlanLayout> make_plan_layout(const AttentionShape& shape, const LayerPatterns& patterns,
                                    const IndexGeometry& geometry) {
  if (geometry.shared_per_kv_group != patterns.shared_per_kv_group) {
    return make_error(StatusCode::INVALID_ARGUMENT,
                      "plan: the index geometry and the layer patterns disagree on sharing per KV group");
  }
  SACC_RETURN_IF_ERROR(validate_plan_arguments("plan", shape, patterns.heads, patterns.estimation, geometry));
  const int expected_heads = geometry.num_heads;
  if (expected_heads > kMaxPlanHeads) {
    return make_error(StatusCode::UNSUPPORTED, "plan: {} index heads exceed the supported {}", expected_heads,
                      kMaxPlanHeads);
  }

  PlanLayout layout;
  PlanDims& dims = layout.dims;
  const int64_t seq_len = shape.seq_len;
  dims.seq_len = static_cast<int>(seq_len);
  dims.num_heads = expected_heads;
  dims.num_q_heads = shape.num_q_heads;
  dims.num_kv_heads = shape.num_kv_heads;
  dims.group_size = shape.group_size();
  dims.shared = patterns.shared_per_kv_group ? 1 : 0;
  dims.head_dim = shape.head_dim;
  dims.block_q = geometry.block_q;
  dims.block_k = geometry.block_k;
  dims.num_q_blocks = static_cast<int>(geometry.num_q_blocks());
  dims.num_k_blocks = static_cast<int>(geometry.num_k_blocks());
  dims.est_rows = clamp_to(patterns.estimation.last_queries, seq_len);
  dims.est_row_tiles = (dims.est_rows + kEstRowTile - 1) / kEstRowTile;
  dims.sink_keys = clamp_to(patterns.estimation.sink_keys, seq_len);
  // The main diagonal is always kept (as the oracle does): without it a row could list no key.
  dims.local_diagonals =
      std::clamp<int>(clamp_to(patterns.estimation.local_diagonals, seq_len), 1, static_cast<int>(seq_len));

  for (int h = 0; h < expected_heads; ++h) {
    const PatternSpec& spec = pattern_of_head(patterns.heads, h);
    HeadPlan& head = layout.heads.head[h];
    head.kind = static_cast<int32_t>(spec.kind);
    head.gamma = static_cast<float>(spec.gamma);
    head.tail = clamp_to(spec.tail, seq_len);
    switch (spec.kind) {
      case PatternKind::DENSE:
        break;
      case PatternKind::TRIANGULAR:
        head.a = clamp_to(spec.sink, seq_len);
        head.b = clamp_to(spec.window, seq_len);
        break;
      case PatternKind::INTERVAL_SLASH:
        head.a = clamp_to(spec.vertical, seq_len);
        head.b = std::max(1, clamp_to(spec.slash, seq_len));  // at least the main diagonal, as the oracle
        head.ordinal = layout.num_is_heads++;
        if (spec.has_alternative()) {
          head.alt_blocks = clamp_to(spec.alternative_blocks, dims.num_k_blocks);
          head.alt_gamma = static_cast<float>(spec.alternative_gamma);
          head.alt_ordinal = layout.num_bc_heads++;
          head.alt_union = spec.joins_alternative() ? 1 : 0;
          if (!spec.joins_alternative()) ++layout.num_alt_heads;
        }
        break;
      case PatternKind::BLOCK_CLUSTER:
        head.a = clamp_to(spec.blocks, dims.num_k_blocks);
        head.ordinal = layout.num_bc_heads++;
        break;
      default:
        return make_error(StatusCode::INVALID_ARGUMENT, "plan: index head {} has an unknown pattern kind", h);
    }
  }

  if (layout.num_is_heads > 0) {
    if (shape.head_dim != 64 && shape.head_dim != 128) {
      return make_error(StatusCode::UNSUPPORTED,
                        "plan: Interval-Slash estimation supports head dims 64 and 128, "
                        "not {}",
                        shape.head_dim);
    }
    const int heads_in_group = dims.group_size;
    if (dims.est_row_tiles > kEstMaxUnits) {
      return make_error(StatusCode::UNSUPPORTED, "plan: estimation supports up to {} last queries, not {}",
                        kEstMaxUnits * kEstRowTile, dims.est_rows);
    }
    int per_pass = std::min(heads_in_group, kEstMaxUnits / dims.est_row_tiles);
    while (per_pass > 0 &&
           estimation_smem_bytes(per_pass, dims.est_row_tiles, dims.head_dim) > kEstSmemBudget) {
      --per_pass;
    }
    if (per_pass == 0) {
      return make_error(StatusCode::UNSUPPORTED,
                        "plan: {} estimating queries do not fit in shared memory; use fewer last_queries",
                        dims.est_rows);
    }
    dims.est_heads_per_pass = per_pass;
    const int64_t key_tiles = (seq_len + kEstKeyTile - 1) / kEstKeyTile;
    const int64_t want_chunks =
        std::clamp<int64_t>((kEstTargetCtas + shape.num_kv_heads - 1) / shape.num_kv_heads, 1, key_tiles);
    const int64_t tiles_per_chunk = (key_tiles + want_chunks - 1) / want_chunks;
    dims.chunk_keys = static_cast<int>(tiles_per_chunk * kEstKeyTile);
    dims.num_chunks = static_cast<int>((key_tiles + tiles_per_chunk - 1) / tiles_per_chunk);
    if (dims.block_q % dims.block_k == 0) {
      dims.cover_ratio = dims.block_q / dims.block_k;
      dims.cover_stride = (dims.num_q_blocks * dims.cover_ratio + dims.cover_ratio + 3) / 4 * 4;
    }
  }
  if (layout.num_bc_heads > 0) dims.bc_capacity = block_cluster_stage_capacity(layout.heads, dims);
  const float scale_default = 1.0f / std::sqrt(static_cast<float>(shape.head_dim));
  dims.scale = scale_default;  // plan() overrides with the call's softmax scale

  layout.num_slots = geometry.num_slots();
  for (int h = 0; h < expected_heads; ++h) {
    for (int qb = 0; qb < dims.num_q_blocks; ++qb) {
      const SlotCapacity cap = slot_capacity(layout.heads.head[h], dims, qb);
      layout.block_capacity += cap.blocks;
      layout.column_capacity += cap.columns;
    }
  }
  if (layout.block_capacity >= (int64_t{1} << 31) || layout.column_capacity >= (int64_t{1} << 31)) {
    return make_error(StatusCode::UNSUPPORTED, "plan: the index could exceed 2^31 entries (32-bit offsets)");
  }

  size_t cursor = 0;
  auto take = [&cursor](size_t bytes) {
    const size_t at = cursor;
    cursor += align_up(std::max<size_t>(bytes, 1));
    return at;
  };
  const size_t slots = static_cast<size_t>(layout.num_slots);
  const size_t i32 = sizeof(int32_t);
  layout.block_offsets = take((slots + 1) * i32);
  layout.column_offsets = take((slots + 1) * i32);
  layout.block_counts = take(slots * i32);
  layout.column_counts = take(slots * i32);
  layout.block_ids = take(static_cast<size_t>(layout.block_capacity) * i32);
  layout.column_ids = take(static_cast<size_t>(layout.column_capacity) * i32);
  if (layout.num_is_heads > 0) {
    const size_t is_heads = static_cast<size_t>(layout.num_is_heads);
    const size_t length = static_cast<size_t>(seq_len);
    layout.is_vertical = take(is_heads * length * sizeof(float));
    layout.is_slash = take(is_heads * length * sizeof(float));
    layout.is_columns = take(is_heads * length * i32);
    layout.is_column_count = take(is_heads * i32);
    layout.is_slash_prefix = take(is_heads * (length + 1) * i32);
    layout.is_cover = take(is_heads * static_cast<size_t>(dims.cover_stride));
    layout.is_partial_stats =
        take(static_cast<size_t>(shape.num_q_heads) * dims.est_rows * dims.num_chunks * 8);
    layout.is_row_stats = take(static_cast<size_t>(shape.num_q_heads) * dims.est_rows * 8);
  }
  if (layout.num_bc_heads > 0) {
    layout.bc_q_pooled =
        take(static_cast<size_t>(shape.num_q_heads) * dims.num_q_blocks * shape.head_dim * sizeof(float));
    layout.bc_k_pooled =
        take(static_cast<size_t>(shape.num_kv_heads) * dims.num_k_blocks * shape.head_dim * sizeof(float));
    const size_t stage_slots = static_cast<size_t>(layout.num_bc_heads) * dims.num_q_blocks;
    layout.bc_stage_ids = take(stage_slots * dims.bc_capacity * i32);
    layout.bc_stage_count = take(stage_slots * i32);
  }
  if (layout.num_alt_heads > 0) layout.head_choice = take(static_cast<size_t>(expected_heads) * i32);
  layout.total_bytes = cursor;
  return layout;
}

}  // namespace sacc::plan_detail
