// Per-slot geometry shared by the host (workspace capacities) and the device (index builders), so the bounds
// the workspace is sized with and the lists the kernels write come from the same arithmetic. The
// block-rounding conventions are the oracle's (src/reference/triangular_index.h, estimate_*.h).
#pragma once

#include <algorithm>
#include <cstdint>

#include "attention/cuda/plan_device_types.h"
#include "attention/dense_tail.h"
#include "core/host_device.h"

namespace sacc::plan_detail {

struct SlotRows {
  int first_row = 0;   // r0: first query row of the block
  int last_row = 0;    // r1: last query row (the block may be partial at the end of the sequence)
  int last_block = 0;  // last key block the causal mask allows
};

SACC_HOST_DEVICE inline SlotRows slot_rows(const PlanDims& dims, int q_block) {
  SlotRows rows;
  rows.first_row = q_block * dims.block_q;
  rows.last_row = std::min(dims.seq_len, rows.first_row + dims.block_q) - 1;
  rows.last_block = rows.last_row / dims.block_k;
  return rows;
}

// Triangular(S, W): key blocks [0, sink_end) and [window_first, last_block]; single sink columns
// [column_begin, column_end) of a partial sink block the window does not list.
struct TriangularSlot {
  int sink_end = 0;
  int window_first = 0;
  int column_begin = 0;
  int column_end = 0;
};

SACC_HOST_DEVICE inline TriangularSlot triangular_slot(const HeadPlan& head, const PlanDims& dims,
                                                       const SlotRows& rows) {
  TriangularSlot slot;
  const int full_sink_blocks = head.a / dims.block_k;  // blocks lying entirely inside [0, S)
  slot.window_first = std::max(0, rows.first_row - head.b + 1) / dims.block_k;
  slot.sink_end = std::min(full_sink_blocks, slot.window_first);
  slot.column_begin = full_sink_blocks * dims.block_k;
  slot.column_end = slot.column_begin;
  if (full_sink_blocks < slot.window_first) {
    slot.column_end = std::max(slot.column_begin, std::min(head.a, rows.last_row + 1));
  }
  return slot;
}

SACC_HOST_DEVICE inline int triangular_block_count(const TriangularSlot& slot, const SlotRows& rows) {
  return slot.sink_end + std::max(0, rows.last_block - slot.window_first + 1);
}

// Block-Cluster's always-kept blocks: block 0 and the diagonal blocks [first_row / Bk, last_block].
SACC_HOST_DEVICE inline int block_cluster_diagonal_first(const PlanDims& dims, const SlotRows& rows) {
  return rows.first_row / dims.block_k;
}
SACC_HOST_DEVICE inline int block_cluster_forced_count(const PlanDims& dims, const SlotRows& rows) {
  const int diagonal_first = block_cluster_diagonal_first(dims, rows);
  return (diagonal_first > 0 ? 1 : 0) + rows.last_block - diagonal_first + 1;
}

// Interval-Slash: the chosen offsets o that make key block kb listed for the query block of rows [r0, r1]:
// a slash covers keys [r0 - o, r1 - o], so o in [max(0, r0 - (kb + 1) * Bk + 1), r1 - kb * Bk].
struct OffsetRange {
  int lo = 0;
  int hi = 0;
};
SACC_HOST_DEVICE inline OffsetRange covering_offsets(const PlanDims& dims, int first_row, int last_row,
                                                     int k_block) {
  const int first_key = k_block * dims.block_k;
  return {std::max(0, first_row - (first_key + dims.block_k - 1)), last_row - first_key};
}

// Entry of the cover table for a full query block and a causal key block (dims.cover_ratio > 0).
SACC_HOST_DEVICE inline int cover_entry(const PlanDims& dims, int q_block, int k_block) {
  return q_block * dims.cover_ratio - k_block + dims.cover_ratio - 1;
}

// Whether a head runs the Block-Cluster estimation, and the Block-Cluster plan it estimates: the head itself,
// or its runtime alternative (a = kb, gamma, ordinal among Block-Cluster estimations).
SACC_HOST_DEVICE inline bool estimates_block_cluster(const HeadPlan& head) {
  return head.kind == kKindBlockCluster || head.alt_blocks > 0;
}
SACC_HOST_DEVICE inline HeadPlan block_cluster_plan(const HeadPlan& head) {
  if (head.kind == kKindBlockCluster) return head;
  HeadPlan out;
  out.kind = kKindBlockCluster;
  out.a = head.alt_blocks;
  out.gamma = head.alt_gamma;
  out.ordinal = head.alt_ordinal;
  return out;
}

struct SlotCapacity {
  int64_t blocks = 0;
  int64_t columns = 0;
};

// Upper bounds of one slot's lists under one (clamped) pattern.
SACC_HOST_DEVICE inline SlotCapacity single_slot_capacity(const HeadPlan& head, const PlanDims& dims,
                                                          int q_block) {
  const SlotRows rows = slot_rows(dims, q_block);
  const int64_t causal_blocks = rows.last_block + 1;
  SlotCapacity cap;
  switch (head.kind) {
    case kKindTriangular: {
      const TriangularSlot slot = triangular_slot(head, dims, rows);
      cap.blocks = triangular_block_count(slot, rows);
      cap.columns = slot.column_end - slot.column_begin;
      break;
    }
    case kKindIntervalSlash: {
      // One slash band spans the block's rows (<= Bq keys), so it touches at most (rows - 1) / Bk + 2 blocks.
      const int64_t band_blocks = (rows.last_row - rows.first_row) / dims.block_k + 2;
      cap.blocks = std::min<int64_t>(causal_blocks, static_cast<int64_t>(head.b) * band_blocks);
      cap.columns = std::min<int64_t>(head.a, rows.last_row + 1);
      break;
    }
    case kKindBlockCluster:
      cap.blocks = std::min<int64_t>(causal_blocks, std::max(head.a, block_cluster_forced_count(dims, rows)));
      break;
    default:
      cap.blocks = causal_blocks;
      break;
  }
  return cap;
}

// Whether a head's slot lies in its dense tail: listed like a DENSE head's.
SACC_HOST_DEVICE inline bool in_head_tail(const HeadPlan& head, const PlanDims& dims, const SlotRows& rows) {
  return in_dense_tail(rows.last_row, dims.seq_len, head.tail);
}

// A head's bounds: with a runtime alternative, the larger of both patterns' (either may be chosen); joined,
// their sum (capped by the causal blocks); in the dense tail, every causal block.
SACC_HOST_DEVICE inline SlotCapacity slot_capacity(const HeadPlan& head, const PlanDims& dims, int q_block) {
  const SlotRows rows = slot_rows(dims, q_block);
  if (in_head_tail(head, dims, rows)) return {rows.last_block + 1, 0};
  SlotCapacity cap = single_slot_capacity(head, dims, q_block);
  if (head.kind != kKindBlockCluster && estimates_block_cluster(head)) {
    const SlotCapacity alt = single_slot_capacity(block_cluster_plan(head), dims, q_block);
    if (head.alt_union) {
      const int64_t causal_blocks = slot_rows(dims, q_block).last_block + 1;
      cap.blocks = std::min(causal_blocks, cap.blocks + alt.blocks);
      cap.columns += alt.columns;
    } else {
      cap.blocks = std::max(cap.blocks, alt.blocks);
      cap.columns = std::max(cap.columns, alt.columns);
    }
  }
  return cap;
}

// Staging entries per slot for Block-Cluster selections (the largest slot capacity over its estimations).
inline int block_cluster_stage_capacity(const PlanHeads& heads, const PlanDims& dims) {
  int capacity = 1;
  for (int h = 0; h < dims.num_heads; ++h) {
    if (!estimates_block_cluster(heads.head[h])) continue;
    const HeadPlan cluster = block_cluster_plan(heads.head[h]);
    for (int qb = 0; qb < dims.num_q_blocks; ++qb) {
      capacity = std::max(capacity, static_cast<int>(single_slot_capacity(cluster, dims, qb).blocks));
    }
  }
  return capacity;
}

}  // namespace sacc::plan_detail
