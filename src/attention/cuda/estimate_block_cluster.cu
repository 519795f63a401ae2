// Block-Cluster estimation on the GPU (DESIGN.md §4): mean-pool Q over query blocks (Bq rows) and K over key
// blocks (Bk keys) in fp32, P = softmax(Qbar Kbar^T * scale) causal over blocks, then per query block the
// top-kb key blocks with block 0 and the diagonal blocks (those meeting the block's own rows) always kept and
// counted inside kb; adaptive (gamma > 0): the fewest blocks, forced first, reaching gamma of the row's mass.
// Shared per KV group: the group's query heads' P are summed. One CTA per (head, group of query blocks)
// computes their rows of block scores in shared memory, from tiles of pooled keys staged once for several of
// the group's query heads, and selects from each row (one warp per short row, plan_select_warp.h; the CTA
// for long ones, plan_select.h); the choice is staged per slot for the index builder.
// Interval-Slash heads with a Block-Cluster alternative are estimated here too.
#include <cuda_bf16.h>

#include <algorithm>
#include <cstdint>

#include "attention/cuda/plan_kernels.h"
#include "attention/cuda/plan_select_warp.h"
#include "attention/cuda/plan_slot_capacity.h"

namespace sacc::plan_detail {
namespace {

constexpr int kPoolThreads = 128;
constexpr int kSelectThreads = 256;
constexpr int kSelectWarps = kSelectThreads / 32;
constexpr float kLog2e = 1.4426950408889634f;

struct BlockClusterArgs {
  PlanDims dims;
  PlanHeads heads;
  const __nv_bfloat16* q;  // [L, Hq, d]
  const __nv_bfloat16* k;  // [L, Hkv, d]
  int64_t q_token_stride, q_head_stride, kv_token_stride, kv_head_stride;
  float* q_pooled;       // [Hq, num_q_blocks, d]
  float* k_pooled;       // [Hkv, num_k_blocks, d]
  int32_t* stage_ids;    // [num_bc_heads, num_q_blocks, bc_capacity]
  int32_t* stage_count;  // [num_bc_heads, num_q_blocks]
};

__device__ inline bool is_block_cluster(const PlanHeads& heads, int index_head) {
  return estimates_block_cluster(heads.head[index_head]);
}

// Whether query head q / KV head kv feeds any Block-Cluster index head.
__device__ inline bool q_head_needed(const BlockClusterArgs& args, int q_head) {
  return is_block_cluster(args.heads, args.dims.shared ? q_head / args.dims.group_size : q_head);
}
__device__ inline bool kv_head_needed(const BlockClusterArgs& args, int kv) {
  if (args.dims.shared) return is_block_cluster(args.heads, kv);
  for (int g = 0; g < args.dims.group_size; ++g) {
    if (is_block_cluster(args.heads, kv * args.dims.group_size + g)) return true;
  }
  return false;
}

// grid (num_q_blocks + num_k_blocks, max(Hq, Hkv)): x < num_q_blocks pools a query block, the rest key
// blocks. Thread t reads 16-byte chunk t % (d / 8) of rows t / (d / 8), + kPoolThreads / (d / 8), ... (a warp
// reads whole rows), sums them in fp32, and the row groups' sums are added in shared memory.
__global__ void __launch_bounds__(kPoolThreads) pool_kernel(const BlockClusterArgs args) {
  __shared__ float partial[kPoolThreads * 8];  // [row group][d]: every thread's 8 sums
  const PlanDims& dims = args.dims;
  const bool is_key = static_cast<int>(blockIdx.x) >= dims.num_q_blocks;
  const int block = is_key ? blockIdx.x - dims.num_q_blocks : blockIdx.x;
  const int head = blockIdx.y;
  if (is_key ? (head >= dims.num_kv_heads || !kv_head_needed(args, head))
             : (head >= dims.num_q_heads || !q_head_needed(args, head))) {
    return;
  }
  const int size = is_key ? dims.block_k : dims.block_q;
  const int first = block * size;
  const int last = min(dims.seq_len, first + size);
  const __nv_bfloat16* base =
      is_key ? args.k + head * args.kv_head_stride : args.q + head * args.q_head_stride;
  const int64_t token_stride = is_key ? args.kv_token_stride : args.q_token_stride;
  float* out = is_key
                   ? args.k_pooled + (static_cast<int64_t>(head) * dims.num_k_blocks + block) * dims.head_dim
                   : args.q_pooled + (static_cast<int64_t>(head) * dims.num_q_blocks + block) * dims.head_dim;
  const int chunks = dims.head_dim / 8;  // plan() checks head_dim % 8 == 0 and 16-byte aligned rows
  const int groups = kPoolThreads / chunks;
  const int chunk = threadIdx.x % chunks;
  const int group = threadIdx.x / chunks;
  if (group < groups) {
    float sum[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
    for (int row = first + group; row < last; row += groups) {
      const uint4 raw = *reinterpret_cast<const uint4*>(base + row * token_stride + chunk * 8);
      const auto* pairs = reinterpret_cast<const __nv_bfloat162*>(&raw);
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float2 f = __bfloat1622float2(pairs[e]);
        sum[2 * e] += f.x;
        sum[2 * e + 1] += f.y;
      }
    }
#pragma unroll
    for (int e = 0; e < 8; ++e) partial[group * dims.head_dim + chunk * 8 + e] = sum[e];
  }
  __syncthreads();
  for (int t = threadIdx.x; t < dims.head_dim; t += kPoolThreads) {
    float sum = 0.0f;
    for (int g = 0; g < groups; ++g) sum += partial[g * dims.head_dim + t];
    out[t] = sum / static_cast<float>(last - first);
  }
}

// Rows of at most this many key blocks are selected by one warp each from registers (plan_select_warp.h),
// longer rows by the whole CTA (plan_select.h). The warps measured faster at 32K tokens (500 key blocks), the
// CTA at 128K (2048): bench/results/plan_bc_select_h100.md.
constexpr int kWarpSelectPerLane = 16;
constexpr int kWarpSelectEntries = 32 * kWarpSelectPerLane;

// The threshold of a choice from its two selections: the adaptive one when the head has a mass target and its
// set fits the budget, else the top `budget` (capped by the adaptive count).
template <class MassOf, class CountOf>
__device__ __forceinline__ Threshold choose_threshold(const HeadPlan& head, int budget, MassOf mass_of,
                                                      CountOf count_of) {
  if (head.gamma > 0.0f) {
    const MassSelection mass = mass_of();
    if (mass.count <= budget && mass.exact) return mass.threshold;
    budget = min(budget, mass.count);
  }
  return budget > 0 ? count_of(budget) : Threshold{};
}

// The choice for one query block from its summed block probabilities prob [n]: block 0 and the diagonal
// blocks forced, then the top a (or the fewest reaching gamma of the num_q heads' mass), staged for the index
// build. kWarp: one warp chooses (n <= kWarpSelectEntries); otherwise the whole CTA.
template <bool kWarp>
__device__ __forceinline__ void select_block(const BlockClusterArgs& args, const PlanDims& dims,
                                             const HeadPlan& head, int ordinal, int q_block,
                                             const float* prob, int num_q,
                                             SelectScratch<kSelectThreads>& scratch) {
  const SlotRows rows = slot_rows(dims, q_block);
  const int n = rows.last_block + 1;
  const int diagonal_first = block_cluster_diagonal_first(dims, rows);
  auto key_of = [=](int kb) { return (kb == 0 || kb >= diagonal_first) ? kForcedKey : score_key(prob[kb]); };
  auto score_of = [=](int kb) { return prob[kb]; };
  // The forced blocks are kept even beyond kb (the oracle's keep_all_forced).
  const int budget = max(min(head.a, n), block_cluster_forced_count(dims, rows));
  const float target = head.gamma * static_cast<float>(num_q);  // each head's row sums to one
  const int64_t stage = static_cast<int64_t>(ordinal) * dims.num_q_blocks + q_block;
  int32_t* ids = args.stage_ids + stage * dims.bc_capacity;
  if constexpr (kWarp) {
    const WarpRow<kWarpSelectPerLane> row(n, key_of, score_of);
    const Threshold threshold = choose_threshold(
        head, budget, [&] { return warp_select_mass_count(row, target); },
        [&](int k) { return warp_select_count(row, k); });
    const int total = warp_emit_selected(row, threshold, [&](int kb, int position) { ids[position] = kb; });
    if ((threadIdx.x & 31u) == 0) args.stage_count[stage] = total;
  } else {
    const Threshold threshold = choose_threshold(
        head, budget,
        [&] { return select_mass_count(n, target, /*keep_all_forced=*/true, key_of, score_of, scratch); },
        [&](int k) { return select_count(n, k, key_of, scratch); });
    const int total = emit_selected<kSelectThreads, 4>(
        n, threshold, key_of,
        [&](int kb, int before, bool chosen) {
          if (chosen) ids[before] = kb;
        },
        scratch);
    if (threadIdx.x == 0) args.stage_count[stage] = total;
  }
}

// Query blocks per selection CTA (at most): their rows of block scores share every staged tile of pooled
// keys, so each pooled key row is read once per group rather than once per query block (at 128K tokens, 2048
// key blocks of 512 bytes per query block otherwise), and short rows are chosen by one warp each at once.
// Fewer when the grid would leave SMs idle or two CTAs would not fit on an SM
// (launch_block_cluster_estimation). Eight measured slower than four on the real Qwen prompt at 32K tokens
// (bench/results/plan_bc_select_h100.md).
constexpr int kGroupBlocks = 4;
// Query heads of a shared index scored per pass over the pooled keys: their rows of logits sit in shared
// memory together (fewer for very long prompts).
constexpr int kHeadsPerPass = 4;
constexpr int kDotKeys = 64;                          // pooled key rows per staged tile
constexpr int kDotSlots = kSelectThreads / kDotKeys;  // thread = (tile row, query block slot)
constexpr int kTilePad = 4;  // floats after each staged row: 16-byte reads of 8 consecutive rows hit 32 banks
// Dynamic shared memory a selection CTA may take: sm_90's 227 KB per CTA less the static selection scratch
// (12.5 KB), with room to spare; and what each of two CTAs on one SM (228 KB, 1 KB of it reserved per CTA)
// may take beside that scratch.
constexpr size_t kSelectSmemBudget = 192 * 1024;
constexpr size_t kPairSmemBudget = 100 * 1024;

// Dynamic shared memory of a selection CTA for `group` query blocks and `heads` query heads per pass (floats;
// n_stride a multiple of 4 keeps each part 16-byte aligned): prob [group][n_stride], logits
// [heads][group][n_stride], q_bar [heads][group][d], the staged tile [kDotKeys][d + kTilePad].
size_t select_smem_bytes(const PlanDims& dims, int group, int heads) {
  const size_t n_stride = (static_cast<size_t>(dims.num_k_blocks) + 3) / 4 * 4;
  return ((1 + static_cast<size_t>(heads)) * group * n_stride +
          static_cast<size_t>(heads) * group * dims.head_dim +
          static_cast<size_t>(kDotKeys) * (dims.head_dim + kTilePad)) *
         sizeof(float);
}

// row[0, n) = softmax in the log2 domain, in place: one warp.
__device__ __forceinline__ void softmax_row_warp(float* row, int n) {
  const int lane = threadIdx.x % 32;
  float row_max = -INFINITY;
  for (int kb = lane; kb < n; kb += 32) row_max = fmaxf(row_max, row[kb]);
  row_max = warp_max(row_max);
  float sum = 0.0f;
  for (int kb = lane; kb < n; kb += 32) {
    row[kb] = exp2f(row[kb] - row_max);
    sum += row[kb];
  }
  const float inv = 1.0f / warp_sum(sum);
  for (int kb = lane; kb < n; kb += 32) row[kb] *= inv;
}

// The same with the whole CTA (every thread calls it; reduce_s: one float per warp).
__device__ __forceinline__ void softmax_row_cta(float* row, int n, float* reduce_s) {
  const int warp = threadIdx.x / 32;
  float local_max = -INFINITY;
  for (int kb = threadIdx.x; kb < n; kb += kSelectThreads) local_max = fmaxf(local_max, row[kb]);
  local_max = warp_max(local_max);
  __syncthreads();  // reduce_s is free
  if (threadIdx.x % 32 == 0) reduce_s[warp] = local_max;
  __syncthreads();
  float row_max = -INFINITY;
  for (int w = 0; w < kSelectWarps; ++w) row_max = fmaxf(row_max, reduce_s[w]);
  float local_sum = 0.0f;
  for (int kb = threadIdx.x; kb < n; kb += kSelectThreads) {
    row[kb] = exp2f(row[kb] - row_max);
    local_sum += row[kb];
  }
  local_sum = warp_sum(local_sum);
  __syncthreads();
  if (threadIdx.x % 32 == 0) reduce_s[warp] = local_sum;
  __syncthreads();
  float row_sum = 0.0f;
  for (int w = 0; w < kSelectWarps; ++w) row_sum += reduce_s[w];
  const float inv = 1.0f / row_sum;
  for (int kb = threadIdx.x; kb < n; kb += kSelectThreads) row[kb] *= inv;
}

// grid (ceil(num_q_blocks / group), num_bc_heads): `group` consecutive query blocks of one index head. Per
// pass of `heads` query heads: each staged tile of pooled keys is scored against every (head, query block)
// pair, each row takes its causal softmax, and the rows are added to prob in head order. Then each query
// block's row is selected from. Rows of at most kWarpSelectEntries: one warp per row; longer: the whole CTA.
__global__ void __launch_bounds__(kSelectThreads)
    block_cluster_select_kernel(const BlockClusterArgs args, int group, int heads_per_pass) {
  __shared__ SelectScratch<kSelectThreads> scratch;  // the whole CTA's selection of long rows
  __shared__ float reduce_s[kSelectWarps];
  extern __shared__ float4 dyn4[];
  const PlanDims& dims = args.dims;
  const int first_block = blockIdx.x * group;
  const int blocks = min(group, dims.num_q_blocks - first_block);
  const int ordinal = blockIdx.y;
  int index_head = 0;
  for (int h = 0; h < dims.num_heads; ++h) {
    if (is_block_cluster(args.heads, h) && block_cluster_plan(args.heads.head[h]).ordinal == ordinal) {
      index_head = h;
    }
  }
  const HeadPlan head = block_cluster_plan(args.heads.head[index_head]);
  const int d = dims.head_dim;
  const int n_stride = (dims.num_k_blocks + 3) / 4 * 4;
  const int n_max = slot_rows(dims, first_block + blocks - 1).last_block + 1;  // the group's widest row
  const bool short_rows = n_max <= kWarpSelectEntries;
  float* prob = reinterpret_cast<float*>(dyn4);               // [group][n_stride] summed block probabilities
  float* logits = prob + group * n_stride;                    // [heads][group][n_stride] scaled scores (log2)
  float* q_bar = logits + heads_per_pass * group * n_stride;  // [heads][group][d]
  float* k_tile = q_bar + heads_per_pass * group * d;         // [kDotKeys][d + kTilePad]
  const int warp = threadIdx.x / 32;

  for (int i = threadIdx.x; i < blocks * n_stride; i += kSelectThreads) prob[i] = 0.0f;
  const int first_q = dims.shared ? index_head * dims.group_size : index_head;
  const int num_q = dims.shared ? dims.group_size : 1;
  const int kv = first_q / dims.group_size;
  const float scale_log2 = dims.scale * kLog2e;
  const float4* k_rows = reinterpret_cast<const float4*>(
      args.k_pooled + static_cast<int64_t>(kv) * dims.num_k_blocks * d);  // [num_k_blocks][d / 4]
  const int vectors = d / 4;
  const int dot_row = threadIdx.x % kDotKeys;
  const int dot_slot = threadIdx.x / kDotKeys;  // warp-uniform
  for (int pass_q = first_q; pass_q < first_q + num_q; pass_q += heads_per_pass) {
    const int heads = min(heads_per_pass, first_q + num_q - pass_q);
    __syncthreads();  // the previous pass's logits are added to prob
    for (int i = threadIdx.x; i < heads * blocks * d; i += kSelectThreads) {
      const int h = i / (blocks * d);
      const int rest = i % (blocks * d);
      q_bar[h * group * d + rest] =
          args.q_pooled[(static_cast<int64_t>(pass_q + h) * dims.num_q_blocks + first_block) * d + rest];
    }
    for (int kb0 = 0; kb0 < n_max; kb0 += kDotKeys) {
      __syncthreads();  // the previous tile is consumed (and q_bar is in place)
      const int rows = min(kDotKeys, n_max - kb0);
      for (int v = threadIdx.x; v < rows * vectors; v += kSelectThreads) {
        const int r = v / vectors;
        *reinterpret_cast<float4*>(k_tile + r * (d + kTilePad) + (v % vectors) * 4) =
            k_rows[static_cast<int64_t>(kb0 + r) * vectors + v % vectors];
      }
      __syncthreads();
      if (dot_row < rows) {
        const float4* k4 = reinterpret_cast<const float4*>(k_tile + dot_row * (d + kTilePad));
        for (int b = dot_slot; b < blocks; b += kDotSlots) {
          for (int h = 0; h < heads; ++h) {
            const float4* q4 = reinterpret_cast<const float4*>(q_bar + (h * group + b) * d);  // a broadcast
            float dot = 0.0f;
            for (int v = 0; v < vectors; ++v) {
              const float4 k = k4[v];
              const float4 q = q4[v];
              dot = fmaf(q.x, k.x, fmaf(q.y, k.y, fmaf(q.z, k.z, fmaf(q.w, k.w, dot))));
            }
            logits[(h * group + b) * n_stride + kb0 + dot_row] = dot * scale_log2;
          }
        }
      }
    }
    __syncthreads();
    // Causal softmax of each (head, query block) row over its own n = last_block + 1 key blocks, in place: a
    // warp per short row, the CTA per long one.
    for (int r = short_rows ? warp : 0; r < heads * blocks; r += short_rows ? kSelectWarps : 1) {
      const int b = r % blocks;
      const int n = slot_rows(dims, first_block + b).last_block + 1;
      float* row = logits + (r / blocks * group + b) * n_stride;
      if (short_rows) {
        softmax_row_warp(row, n);
      } else {
        softmax_row_cta(row, n, reduce_s);
      }
    }
    __syncthreads();
    for (int i = threadIdx.x; i < blocks * n_stride; i += kSelectThreads) {
      if (i % n_stride >= slot_rows(dims, first_block + i / n_stride).last_block + 1) continue;
      float p = prob[i];
      for (int h = 0; h < heads; ++h) p += logits[h * group * n_stride + i];
      prob[i] = p;
    }
  }
  if (short_rows) {
    __syncthreads();
    for (int b = warp; b < blocks; b += kSelectWarps)
      select_block<true>(args, dims, head, ordinal, first_block + b, prob + b * n_stride, num_q, scratch);
  } else {
    for (int b = 0; b < blocks; ++b) {
      __syncthreads();  // prob is complete; the previous selection is done with the scratch
      select_block<false>(args, dims, head, ordinal, first_block + b, prob + b * n_stride, num_q, scratch);
    }
  }
}

}  // namespace

cudaError_t launch_block_cluster_estimation(const PlanLayout& layout, const PlanInputs& params,
                                            char* workspace, cudaStream_t stream) {
  if (layout.num_bc_heads == 0) return cudaSuccess;
  const PlanDims& dims = layout.dims;
  BlockClusterArgs args{};
  args.dims = dims;
  args.heads = layout.heads;
  args.q = static_cast<const __nv_bfloat16*>(params.q);
  args.k = static_cast<const __nv_bfloat16*>(params.k);
  args.q_token_stride = params.q_token_stride;
  args.q_head_stride = params.q_head_stride;
  args.kv_token_stride = params.kv_token_stride;
  args.kv_head_stride = params.kv_head_stride;
  args.q_pooled = reinterpret_cast<float*>(workspace + layout.bc_q_pooled);
  args.k_pooled = reinterpret_cast<float*>(workspace + layout.bc_k_pooled);
  args.stage_ids = reinterpret_cast<int32_t*>(workspace + layout.bc_stage_ids);
  args.stage_count = reinterpret_cast<int32_t*>(workspace + layout.bc_stage_count);

  const dim3 pool_grid(dims.num_q_blocks + dims.num_k_blocks, std::max(dims.num_q_heads, dims.num_kv_heads));
  pool_kernel<<<pool_grid, kPoolThreads, 0, stream>>>(args);
  cudaError_t error = cudaGetLastError();
  if (error != cudaSuccess) return error;
  // The group: the most query blocks (up to kGroupBlocks) that still leave two CTAs per SM, both in the grid
  // and in shared memory; then as many heads per pass as fit.
  int device = 0, num_sms = 0;
  error = cudaGetDevice(&device);
  if (error == cudaSuccess) error = cudaDeviceGetAttribute(&num_sms, cudaDevAttrMultiProcessorCount, device);
  if (error != cudaSuccess) return error;
  auto ctas = [&](int group) { return (dims.num_q_blocks + group - 1) / group * layout.num_bc_heads; };
  int heads = std::min(dims.shared ? dims.group_size : 1, kHeadsPerPass);
  int group = kGroupBlocks;
  while (group > 1 &&
         (ctas(group) < 2 * num_sms || select_smem_bytes(dims, group, heads) > kPairSmemBudget)) {
    group /= 2;
  }
  while (heads > 1 && select_smem_bytes(dims, group, heads) > kSelectSmemBudget) heads = (heads + 1) / 2;
  const size_t smem = select_smem_bytes(dims, group, heads);
  error = cudaFuncSetAttribute(block_cluster_select_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                               static_cast<int>(smem));
  if (error != cudaSuccess) return error;
  const dim3 grid((dims.num_q_blocks + group - 1) / group, layout.num_bc_heads);
  block_cluster_select_kernel<<<grid, kSelectThreads, smem, stream>>>(args, group, heads);
  return cudaGetLastError();
}

}  // namespace sacc::plan_detail
