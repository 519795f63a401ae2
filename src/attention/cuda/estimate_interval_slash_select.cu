// Interval-Slash selection: per INTERVAL_SLASH index head, the top-kv verticals (sinks forced) and the top-ks
// slashes (local diagonals forced), or the adaptive sets reaching gamma of the mass, capped by the budgets.
// One CTA per (head, vertical | slash) selects over all L scores (plan_select.h) and writes what the index
// builder needs: the chosen verticals as an ascending list, the chosen slashes as a prefix count over offsets
// (so "does any chosen slash fall in [lo, hi]" is two loads).
#include <cstdint>

#include "attention/cuda/plan_kernels.h"
#include "attention/cuda/plan_select.h"
#include "attention/cuda/plan_slot_capacity.h"

namespace sacc::plan_detail {
namespace {

constexpr int kThreads = 1024;
constexpr int kItems = 8;
// Budgets at most 1/kBudgetFirstRatio of the scores are selected before the mass is looked at.
constexpr int kBudgetFirstRatio = 4;

struct SelectArgs {
  PlanDims dims;
  PlanHeads heads;
  const float* vertical;  // [num_is_heads, L]
  const float* slash;     // [num_is_heads, L]
  int32_t* columns;       // [num_is_heads, L] chosen verticals, ascending
  int32_t* column_count;  // [num_is_heads]
  int32_t* slash_prefix;  // [num_is_heads, L + 1] chosen slashes with a smaller offset
  uint8_t* cover;         // [num_is_heads, cover_stride] slash cover by block distance
};

__global__ void __launch_bounds__(kThreads) interval_slash_select_kernel(const SelectArgs args) {
  __shared__ SelectScratch<kThreads> scratch;
  const PlanDims& dims = args.dims;
  const int ordinal = blockIdx.x;
  const bool is_slash = blockIdx.y == 1;
  int index_head = 0;
  for (int h = 0; h < dims.num_heads; ++h) {
    const HeadPlan& head = args.heads.head[h];
    if (head.kind == kKindIntervalSlash && head.ordinal == ordinal) index_head = h;
  }
  const HeadPlan& head = args.heads.head[index_head];
  const int n = dims.seq_len;
  const float* scores = (is_slash ? args.slash : args.vertical) + static_cast<int64_t>(ordinal) * n;
  const int forced = is_slash ? dims.local_diagonals : dims.sink_keys;
  int budget = is_slash ? head.b : head.a;

  auto key_of = [&](int i) { return i < forced ? kForcedKey : score_key(scores[i]); };
  Threshold threshold;  // keeps nothing
  bool have_threshold = false;
  if (head.gamma > 0.0f && budget > 0) {
    // Every estimating row's softmax sums to one, so the mass is the row count (times the group's heads).
    const double total = static_cast<double>(dims.est_rows) * (dims.shared ? dims.group_size : 1);
    const double target = static_cast<double>(head.gamma) * total;
    auto score_of = [&](int i) { return scores[i]; };
    if (budget * kBudgetFirstRatio <= n) {
      // A budget this far below L usually binds before the mass: select it first (four radix passes) and
      // check its mass (one pass); only when that reaches the target does the mass selection run.
      threshold = select_count(n, budget, key_of, scratch);
      have_threshold =
          threshold.key != kForcedKey && kept_score_mass(n, threshold, key_of, score_of, scratch) < target;
    }
    if (!have_threshold) {
      const MassSelection mass =
          select_mass_count(n, target, /*keep_all_forced=*/false, key_of, score_of, scratch);
      if (mass.count <= budget && mass.exact) {
        threshold = mass.threshold;  // the mass binds: its threshold is the count selection's
        have_threshold = true;
      }
      budget = min(budget, mass.count);
    }
  }
  if (budget > 0 && !have_threshold) threshold = select_count(n, budget, key_of, scratch);

  if (is_slash) {
    int32_t* prefix = args.slash_prefix + static_cast<int64_t>(ordinal) * (n + 1);
    const int total = emit_selected<kThreads, kItems>(
        n, threshold, key_of, [&](int i, int before, bool) { prefix[i] = before; }, scratch);
    if (threadIdx.x == 0) prefix[n] = total;
    if (dims.cover_ratio > 0) {
      // The cover table: entry e is block distance delta = e - (ratio - 1), i.e. first row r0 = delta * Bk
      // relative to the key block's first key, for a full query block of Bq rows.
      __syncthreads();
      uint8_t* cover = args.cover + static_cast<int64_t>(ordinal) * dims.cover_stride;
      const int entries = dims.num_q_blocks * dims.cover_ratio + dims.cover_ratio - 1;
      for (int e = threadIdx.x; e < entries; e += kThreads) {
        const int distance = (e - (dims.cover_ratio - 1)) * dims.block_k;  // r0 - first key
        const int lo = max(0, distance - dims.block_k + 1);
        const int hi = min(n - 1, distance + dims.block_q - 1);
        cover[e] = (hi >= lo && prefix[hi + 1] - prefix[lo] > 0) ? 1 : 0;
      }
    }
  } else {
    int32_t* columns = args.columns + static_cast<int64_t>(ordinal) * n;
    const int total = emit_selected<kThreads, kItems>(
        n, threshold, key_of,
        [&](int i, int before, bool chosen) {
          if (chosen) columns[before] = i;
        },
        scratch);
    if (threadIdx.x == 0) args.column_count[ordinal] = total;
  }
}

}  // namespace

cudaError_t launch_interval_slash_select(const PlanLayout& layout, char* workspace, cudaStream_t stream) {
  SelectArgs args{};
  args.dims = layout.dims;
  args.heads = layout.heads;
  args.vertical = reinterpret_cast<const float*>(workspace + layout.is_vertical);
  args.slash = reinterpret_cast<const float*>(workspace + layout.is_slash);
  args.columns = reinterpret_cast<int32_t*>(workspace + layout.is_columns);
  args.column_count = reinterpret_cast<int32_t*>(workspace + layout.is_column_count);
  args.slash_prefix = reinterpret_cast<int32_t*>(workspace + layout.is_slash_prefix);
  args.cover = reinterpret_cast<uint8_t*>(workspace + layout.is_cover);
  interval_slash_select_kernel<<<dim3(layout.num_is_heads, 2), kThreads, 0, stream>>>(args);
  return cudaGetLastError();
}

}  // namespace sacc::plan_detail
