// Index building for every pattern kind in one pass over all slots (one warp per (index head, query block)):
// count each slot's key blocks and single columns, scan the counts into CSR offsets, then write the ids.
//  * DENSE: key blocks 0..last causal block.
//  * TRIANGULAR: the oracle's block rounding (plan_slot_capacity.h): full sink blocks, window blocks, partial
//    sink block as single columns.
//  * INTERVAL_SLASH: a slash o covers keys [r0 - o, r1 - o] of the query block [r0, r1], so key block
//    [ks, ke] is listed iff a chosen offset lies in [max(0, r0 - ke), r1 - ks]: for full query blocks one
//    byte of the cover table (indexed by block distance, contiguous over a slot's key blocks), otherwise two
//    loads from the prefix count over chosen offsets; chosen verticals j <= r1 outside the listed blocks
//    (a bitmap per warp in shared memory, written as the blocks are listed) become single columns.
//  * BLOCK_CLUSTER: the staged selection.
//  * any head's slots in its dense tail (attention/dense_tail.h): as DENSE.
//  * INTERVAL_SLASH with a Block-Cluster alternative: whichever head_choice names (choose_pattern.cu); joined
//    (alt_union), a key block is listed when either pattern lists it (binary search over the staged
//    Block-Cluster ids, which are ascending) and verticals inside any listed block are dropped.
// Ids come out ascending because every list is produced in ascending order by ballots over consecutive ids.
#include <cub/block/block_scan.cuh>

#include <climits>
#include <cstdint>

#include "attention/cuda/plan_kernels.h"
#include "attention/cuda/plan_slot_capacity.h"

namespace sacc::plan_detail {
namespace {

constexpr int kWarpsPerBlock = 8;
constexpr int kBuildIlp = 4;
constexpr int kScanThreads = 1024;
constexpr int kScanItems = 8;

struct BuildArgs {
  PlanDims dims;
  PlanHeads heads;
  const int32_t* is_columns;       // [num_is_heads, L]
  const int32_t* is_column_count;  // [num_is_heads]
  const int32_t* is_slash_prefix;  // [num_is_heads, L + 1]
  const uint8_t* is_cover;         // [num_is_heads, cover_stride]
  const int32_t* bc_stage_ids;     // [num_bc_heads, num_q_blocks, bc_capacity]
  const int32_t* bc_stage_count;   // [num_bc_heads, num_q_blocks]
  const int32_t* head_choice;      // [num index heads] kind taken by heads with an alternative
  int32_t* block_counts;           // [num_slots]
  int32_t* column_counts;          // [num_slots]
  const int32_t* block_offsets;    // [num_slots + 1]
  const int32_t* column_offsets;   // [num_slots + 1]
  int32_t* block_ids;              // [total blocks]
  int32_t* column_ids;             // [total columns]
};

// 32-bit words of one warp's bitmap of listed key blocks (shared memory).
__host__ __device__ inline int listed_words(const PlanDims& dims) {
  return (dims.num_k_blocks + 31) / 32;
}

// Appends the lanes' ids for which `take` holds, in lane order; returns the new list length.
template <bool kFill>
__device__ inline int append(int32_t* out, int length, int id, bool take, int lane) {
  const unsigned taken = __ballot_sync(0xFFFFFFFFu, take);
  if (kFill && take) out[length + __popc(taken & ((1u << lane) - 1u))] = id;
  return length + __popc(taken);
}

template <bool kFill>
__global__ void __launch_bounds__(kWarpsPerBlock * 32) build_index_kernel(const BuildArgs args) {
  extern __shared__ uint32_t
      listed_bits[];  // [kWarpsPerBlock][listed_words] Interval-Slash listed key blocks
  const PlanDims& dims = args.dims;
  const int64_t slot = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (slot >= static_cast<int64_t>(dims.num_heads) * dims.num_q_blocks) return;
  const int index_head = static_cast<int>(slot / dims.num_q_blocks);
  const int q_block = static_cast<int>(slot % dims.num_q_blocks);
  HeadPlan head = args.heads.head[index_head];
  const SlotRows rows = slot_rows(dims, q_block);
  if (in_head_tail(head, dims, rows)) head.kind = kKindDense;
  if (head.kind == kKindIntervalSlash && estimates_block_cluster(head) && !head.alt_union &&
      args.head_choice[index_head] == kKindBlockCluster) {
    head = block_cluster_plan(head);
  }
  int32_t* blocks_out = kFill ? args.block_ids + args.block_offsets[slot] : nullptr;
  int32_t* columns_out = kFill ? args.column_ids + args.column_offsets[slot] : nullptr;
  int num_blocks = 0;
  int num_columns = 0;

  switch (head.kind) {
    case kKindTriangular: {
      const TriangularSlot tri = triangular_slot(head, dims, rows);
      num_blocks = triangular_block_count(tri, rows);
      num_columns = tri.column_end - tri.column_begin;
      if (kFill) {
        for (int i = lane; i < num_blocks; i += 32) {
          blocks_out[i] = i < tri.sink_end ? i : tri.window_first + (i - tri.sink_end);
        }
        for (int i = lane; i < num_columns; i += 32) columns_out[i] = tri.column_begin + i;
      }
      break;
    }
    case kKindIntervalSlash: {
      const int32_t* prefix = args.is_slash_prefix + static_cast<int64_t>(head.ordinal) * (dims.seq_len + 1);
      const uint8_t* cover = args.is_cover + static_cast<int64_t>(head.ordinal) * dims.cover_stride;
      const bool full_block = rows.last_row - rows.first_row + 1 == dims.block_q;
      const bool use_table = dims.cover_ratio > 0 && full_block;
      // The joined Block-Cluster ids of this slot (none without alt_union), walked along with the key blocks:
      // every id below the current group has been consumed, so the group's ids are the next ones.
      const int64_t stage = static_cast<int64_t>(head.alt_ordinal) * dims.num_q_blocks + q_block;
      const int32_t* staged = head.alt_union ? args.bc_stage_ids + stage * dims.bc_capacity : nullptr;
      const int num_staged = head.alt_union ? args.bc_stage_count[stage] : 0;
      int next_staged = 0;
      auto covered = [&](int kb) {
        if (use_table) return cover[cover_entry(dims, q_block, kb)] != 0;
        const OffsetRange range = covering_offsets(dims, rows.first_row, rows.last_row, kb);
        return prefix[range.hi + 1] - prefix[range.lo] > 0;
      };
      // kBuildIlp groups of 32 candidates per step: their loads are in flight together, appends stay in
      // order. Each group's listed blocks also go to the warp's bitmap, which the verticals below consult.
      uint32_t* listed = listed_bits + (threadIdx.x / 32) * listed_words(dims);
      for (int base = 0; base <= rows.last_block; base += 32 * kBuildIlp) {
        uint32_t staged_bits[kBuildIlp] = {};
        int consumed = 0;
#pragma unroll
        for (int u = 0; u < kBuildIlp; ++u) {
          // At most 32 * kBuildIlp staged ids fall in this step's range, and they come first.
          const int i = next_staged + u * 32 + lane;
          const int id = i < num_staged ? staged[i] : INT_MAX;
          const bool in_step = id < base + 32 * kBuildIlp;
          consumed += __popc(__ballot_sync(0xFFFFFFFFu, in_step));
#pragma unroll
          for (int g = 0; g < kBuildIlp; ++g) {
            const bool in_group = in_step && id >= base + 32 * g && id < base + 32 * (g + 1);
            staged_bits[g] |= in_group ? 1u << (id - base - 32 * g) : 0u;
          }
        }
        next_staged += consumed;
        bool take[kBuildIlp];
#pragma unroll
        for (int u = 0; u < kBuildIlp; ++u) {
          const int kb = base + u * 32 + lane;
          const bool joined = (__reduce_or_sync(0xFFFFFFFFu, staged_bits[u]) >> lane) & 1u;
          take[u] = kb <= rows.last_block && (joined || covered(kb));
        }
#pragma unroll
        for (int u = 0; u < kBuildIlp; ++u) {
          const unsigned taken = __ballot_sync(0xFFFFFFFFu, take[u]);
          if (lane == 0 && base + u * 32 <= rows.last_block) listed[(base >> 5) + u] = taken;
          num_blocks = append<kFill>(blocks_out, num_blocks, base + u * 32 + lane, take[u], lane);
        }
      }
      __syncwarp();
      auto listed_block = [&](int kb) { return (listed[kb >> 5] >> (kb & 31)) & 1u; };
      const int32_t* verticals = args.is_columns + static_cast<int64_t>(head.ordinal) * dims.seq_len;
      const int count = args.is_column_count[head.ordinal];
      for (int base = 0; base < count; base += 32 * kBuildIlp) {
        int j[kBuildIlp];
#pragma unroll
        for (int u = 0; u < kBuildIlp; ++u) {
          const int t = base + u * 32 + lane;
          j[u] = t < count ? verticals[t] : INT_MAX;
        }
        bool take[kBuildIlp];
#pragma unroll
        for (int u = 0; u < kBuildIlp; ++u)
          take[u] = j[u] <= rows.last_row && !listed_block(j[u] / dims.block_k);
#pragma unroll
        for (int u = 0; u < kBuildIlp; ++u)
          num_columns = append<kFill>(columns_out, num_columns, j[u], take[u], lane);
        // Ascending: once a group reaches past the block's last row, every later vertical does too.
        if (!__all_sync(0xFFFFFFFFu, j[kBuildIlp - 1] <= rows.last_row)) break;
      }
      break;
    }
    case kKindBlockCluster: {
      const int64_t stage = static_cast<int64_t>(head.ordinal) * dims.num_q_blocks + q_block;
      num_blocks = args.bc_stage_count[stage];
      if (kFill) {
        const int32_t* staged = args.bc_stage_ids + stage * dims.bc_capacity;
        for (int i = lane; i < num_blocks; i += 32) blocks_out[i] = staged[i];
      }
      break;
    }
    default:
      num_blocks = rows.last_block + 1;
      if (kFill) {
        for (int i = lane; i < num_blocks; i += 32) blocks_out[i] = i;
      }
      break;
  }
  if (!kFill && lane == 0) {
    args.block_counts[slot] = num_blocks;
    args.column_counts[slot] = num_columns;
  }
}

// offsets[0] = 0, offsets[s + 1] = counts[0] + ... + counts[s]. CTA 0 scans the block counts, CTA 1 the
// column counts; one CTA per array is plenty (num_slots is ~32K at 128K tokens) and needs no scratch or
// second launch.
__global__ void __launch_bounds__(kScanThreads)
    scan_counts_kernel(int64_t num_slots, const int32_t* block_counts, int32_t* block_offsets,
                       const int32_t* column_counts, int32_t* column_offsets) {
  using Scan = cub::BlockScan<int32_t, kScanThreads>;
  __shared__ typename Scan::TempStorage scan;
  __shared__ int32_t carry;
  const int32_t* counts = blockIdx.x == 0 ? block_counts : column_counts;
  int32_t* offsets = blockIdx.x == 0 ? block_offsets : column_offsets;
  if (threadIdx.x == 0) {
    carry = 0;
    offsets[0] = 0;
  }
  __syncthreads();
  constexpr int kTile = kScanThreads * kScanItems;
  for (int64_t base = 0; base < num_slots; base += kTile) {
    int32_t items[kScanItems];
    const int64_t first = base + static_cast<int64_t>(threadIdx.x) * kScanItems;
#pragma unroll
    for (int it = 0; it < kScanItems; ++it) items[it] = first + it < num_slots ? counts[first + it] : 0;
    int32_t tile_total = 0;
    Scan(scan).InclusiveSum(items, items, tile_total);
    const int32_t offset = carry;
#pragma unroll
    for (int it = 0; it < kScanItems; ++it) {
      if (first + it < num_slots) offsets[first + it + 1] = offset + items[it];
    }
    __syncthreads();
    if (threadIdx.x == 0) carry = offset + tile_total;
    __syncthreads();
  }
}

}  // namespace

cudaError_t launch_index_build(const PlanLayout& layout, char* workspace, cudaStream_t stream) {
  BuildArgs args{};
  args.dims = layout.dims;
  args.heads = layout.heads;
  args.is_columns = reinterpret_cast<const int32_t*>(workspace + layout.is_columns);
  args.is_column_count = reinterpret_cast<const int32_t*>(workspace + layout.is_column_count);
  args.is_slash_prefix = reinterpret_cast<const int32_t*>(workspace + layout.is_slash_prefix);
  args.is_cover = reinterpret_cast<const uint8_t*>(workspace + layout.is_cover);
  args.bc_stage_ids = reinterpret_cast<const int32_t*>(workspace + layout.bc_stage_ids);
  args.bc_stage_count = reinterpret_cast<const int32_t*>(workspace + layout.bc_stage_count);
  args.head_choice = reinterpret_cast<const int32_t*>(workspace + layout.head_choice);
  args.block_counts = reinterpret_cast<int32_t*>(workspace + layout.block_counts);
  args.column_counts = reinterpret_cast<int32_t*>(workspace + layout.column_counts);
  auto* block_offsets = reinterpret_cast<int32_t*>(workspace + layout.block_offsets);
  auto* column_offsets = reinterpret_cast<int32_t*>(workspace + layout.column_offsets);
  args.block_offsets = block_offsets;
  args.column_offsets = column_offsets;
  args.block_ids = reinterpret_cast<int32_t*>(workspace + layout.block_ids);
  args.column_ids = reinterpret_cast<int32_t*>(workspace + layout.column_ids);

  const int64_t slots = layout.num_slots;
  const unsigned grid = static_cast<unsigned>((slots + kWarpsPerBlock - 1) / kWarpsPerBlock);
  const size_t smem = static_cast<size_t>(kWarpsPerBlock) * listed_words(layout.dims) * sizeof(uint32_t);
  cudaError_t error = cudaSuccess;
  constexpr size_t kDefaultSmemLimit =
      48 * 1024;  // above it a kernel must opt in (prompts past ~1.5M tokens)
  for (auto kernel : {build_index_kernel<false>, build_index_kernel<true>}) {
    if (smem <= kDefaultSmemLimit) break;
    error = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
    if (error != cudaSuccess) return error;
  }
  build_index_kernel<false><<<grid, kWarpsPerBlock * 32, smem, stream>>>(args);
  if ((error = cudaGetLastError()) != cudaSuccess) return error;
  scan_counts_kernel<<<2, kScanThreads, 0, stream>>>(slots, args.block_counts, block_offsets,
                                                     args.column_counts, column_offsets);
  if ((error = cudaGetLastError()) != cudaSuccess) return error;
  build_index_kernel<true><<<grid, kWarpsPerBlock * 32, smem, stream>>>(args);
  return cudaGetLastError();
}

}  // namespace sacc::plan_detail
