// Warp-wide top-k selection for short score rows (device code; include from .cu files only). One warp holds a
// row of at most 32 * kPerLane entries in registers and selects from it without block barriers, so the warps
// of a CTA select for several rows at once: a Block-Cluster row at 32K tokens has 500 entries, where the
// block-wide radix select of plan_select.h spends its time in barriers and 256-bin histograms. Same keys,
// forced entries and threshold rule as plan_select.h (keep every key above the threshold and the first
// take_equal keys equal to it, in ascending index order); the threshold is found by bisection over the 31
// bits a non-forced key can use, each step one pass over the registers and a warp reduction. Sums are fp32
// in a fixed order (each lane's entries in index order, then an xor butterfly, which gives every lane the
// same value), so a sum over the keys >= t never grows as t rises and the bisection is well defined.
#pragma once

#include <cstdint>

#include "attention/cuda/plan_select.h"

namespace sacc::plan_detail {

__device__ __forceinline__ int warp_sum(int value) {
  for (int width = 16; width > 0; width /= 2) value += __shfl_xor_sync(0xFFFFFFFFu, value, width);
  return value;
}

__device__ __forceinline__ float warp_sum(float value) {
  for (int width = 16; width > 0; width /= 2) value += __shfl_xor_sync(0xFFFFFFFFu, value, width);
  return value;
}

__device__ __forceinline__ float warp_max(float value) {
  for (int width = 16; width > 0; width /= 2)
    value = fmaxf(value, __shfl_xor_sync(0xFFFFFFFFu, value, width));
  return value;
}

// Entry count and score mass of a set of entries.
struct WarpTally {
  int count = 0;
  float mass = 0.0f;
};

// A row of n entries: the keys of entries lane + 32 e (e < kPerLane) in registers, and the forced entries'
// tally. A non-forced entry's score is its key's float (score_key), so only the forced scores are read.
template <int kPerLane>
struct WarpRow {
  int n = 0;
  uint32_t key[kPerLane];
  WarpTally forced;

  template <class KeyOf, class ScoreOf>
  __device__ __forceinline__ WarpRow(int entries, KeyOf key_of, ScoreOf score_of) : n(entries) {
    const int lane = static_cast<int>(threadIdx.x & 31u);
#pragma unroll
    for (int e = 0; e < kPerLane; ++e) {
      const int i = lane + 32 * e;
      key[e] = i < n ? key_of(i) : 0u;
      if (key[e] == kForcedKey) {
        ++forced.count;
        forced.mass += score_of(i);
      }
    }
    forced = {warp_sum(forced.count), warp_sum(forced.mass)};
  }
  __device__ __forceinline__ bool has(int e) const {
    return static_cast<int>(threadIdx.x & 31u) + 32 * e < n;
  }
};

// Tally of the non-forced entries whose key is >= t.
template <int kPerLane>
__device__ __forceinline__ WarpTally warp_tally_from(const WarpRow<kPerLane>& row, uint32_t t) {
  WarpTally local;
#pragma unroll
  for (int e = 0; e < kPerLane; ++e) {
    const bool in = row.has(e) && row.key[e] >= t && row.key[e] != kForcedKey;
    local.count += in ? 1 : 0;
    local.mass += in ? __uint_as_float(row.key[e]) : 0.0f;
  }
  return {warp_sum(local.count), warp_sum(local.mass)};
}

// The largest key t < kForcedKey with reaches(t), for a predicate that holds at 0 and, once false as t rises,
// stays false.
template <class Reaches>
__device__ __forceinline__ uint32_t warp_bisect_key(Reaches reaches) {
  uint32_t t = 0;
  for (int bit = 30; bit >= 0; --bit) {
    const uint32_t candidate = t | (1u << bit);
    if (reaches(candidate)) t = candidate;
  }
  return t;
}

// The k-th largest key (1 <= k <= n), forced keys included: select_count of plan_select.h.
template <int kPerLane>
__device__ __forceinline__ Threshold warp_select_count(const WarpRow<kPerLane>& row, int k) {
  Threshold threshold;
  const int forced = row.forced.count;
  if (forced >= k) {
    threshold.take_equal = k;
    return threshold;
  }
  threshold.key = warp_bisect_key([&](uint32_t t) { return forced + warp_tally_from(row, t).count >= k; });
  threshold.take_equal = k - forced - warp_tally_from(row, threshold.key + 1).count;
  return threshold;
}

// Adaptive budget with every forced entry kept (select_mass_count of plan_select.h with keep_all_forced): the
// forced entries, then the fewest entries by descending score whose scores sum to at least `target`.
template <int kPerLane>
__device__ __forceinline__ MassSelection warp_select_mass_count(const WarpRow<kPerLane>& row, float target) {
  const WarpTally& forced = row.forced;
  MassSelection result;
  result.exact = true;
  if (forced.mass >= target) {
    result.count = forced.count;
    result.threshold.take_equal = forced.count;
    return result;
  }
  auto reaches = [&](uint32_t t) { return forced.mass + warp_tally_from(row, t).mass >= target; };
  if (!reaches(0)) {  // rounding left the target just out of reach: keep everything
    result.count = row.n;
    result.exact = false;
    return result;
  }
  const uint32_t key = warp_bisect_key(reaches);
  const WarpTally at = warp_tally_from(row, key);
  const WarpTally above = warp_tally_from(row, key + 1);
  // Entries equal to the threshold share one score: as many as the remaining mass needs.
  const float value = __uint_as_float(key);
  int take = at.count - above.count;
  if (value > 0.0f)
    take = min(take, max(1, static_cast<int>(ceilf((target - (forced.mass + above.mass)) / value))));
  result.count = forced.count + above.count + take;
  result.threshold.key = key;
  result.threshold.take_equal = take;
  return result;
}

// Calls visit(i, position) for each chosen entry i in ascending order (position: chosen entries before i) and
// returns the number chosen: emit_selected of plan_select.h for one warp.
template <int kPerLane, class Visit>
__device__ __forceinline__ int warp_emit_selected(const WarpRow<kPerLane>& row, Threshold t, Visit visit) {
  const unsigned lane = threadIdx.x & 31u;
  const unsigned lower = (1u << lane) - 1u;
  int chosen_before = 0;
  int equal_before = 0;
#pragma unroll
  for (int e = 0; e < kPerLane; ++e) {
    const bool greater = row.has(e) && row.key[e] > t.key;
    const bool equal = row.has(e) && row.key[e] == t.key;
    const unsigned equals = __ballot_sync(0xFFFFFFFFu, equal);
    const bool chosen = greater || (equal && equal_before + __popc(equals & lower) < t.take_equal);
    const unsigned chosens = __ballot_sync(0xFFFFFFFFu, chosen);
    if (chosen) visit(static_cast<int>(lane) + 32 * e, chosen_before + __popc(chosens & lower));
    chosen_before += __popc(chosens);
    equal_before += __popc(equals);
  }
  return chosen_before;
}

}  // namespace sacc::plan_detail
