// Warp-wide top-k selection for short score rows (device code; include from .cu files only). One warp selects
// from one row without block barriers, so the warps of a CTA select for several rows at once: Block-Cluster
// rows hold at most one entry per key block (500 at 32K tokens), where the block-wide radix select of
// plan_select.h spends its time in barriers and 256-bin histograms. Same keys, forced entries and threshold
// rule as plan_select.h (keep every key above the threshold and the first take_equal keys equal to it, in
// ascending index order); the threshold is found by bisection over the 31 bits a non-forced key can use, each
// step one pass over the row and a warp reduction. Sums are fp32 in a fixed order (each lane's entries in
// index order, then an xor butterfly, which gives every lane the same value), so a sum over the keys >= t
// never grows as t rises and the bisection is well defined.
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

// Entry count and score mass of the non-forced entries whose key is >= t (forced ones when t is kForcedKey).
struct WarpTally {
  int count = 0;
  float mass = 0.0f;
};

template <class KeyOf, class ScoreOf>
__device__ __forceinline__ WarpTally warp_tally_from(int n, uint32_t t, KeyOf key_of, ScoreOf score_of) {
  WarpTally local;
  for (int i = static_cast<int>(threadIdx.x & 31u); i < n; i += 32) {
    const uint32_t key = key_of(i);
    const bool in = key >= t && (key != kForcedKey || t == kForcedKey);
    local.count += in ? 1 : 0;
    local.mass += in ? score_of(i) : 0.0f;
  }
  return {warp_sum(local.count), warp_sum(local.mass)};
}

// The largest key t < kForcedKey with reaches(t), for a predicate that holds at 0 and never turns true again
// once false as t rises.
template <class Reaches>
__device__ __forceinline__ uint32_t warp_bisect_key(Reaches reaches) {
  uint32_t t = 0;
  for (int bit = 30; bit >= 0; --bit) {
    const uint32_t candidate = t | (1u << bit);
    if (reaches(candidate)) t = candidate;
  }
  return t;
}

// The k-th largest key (1 <= k <= n) among key_of(i), forced keys included: select_count of plan_select.h.
template <class KeyOf>
__device__ __forceinline__ Threshold warp_select_count(int n, int k, KeyOf key_of) {
  auto no_score = [](int) { return 0.0f; };
  Threshold threshold;
  const int forced = warp_tally_from(n, kForcedKey, key_of, no_score).count;
  if (forced >= k) {
    threshold.take_equal = k;
    return threshold;
  }
  auto reaches = [&](uint32_t t) { return forced + warp_tally_from(n, t, key_of, no_score).count >= k; };
  threshold.key = warp_bisect_key(reaches);
  threshold.take_equal = k - forced - warp_tally_from(n, threshold.key + 1, key_of, no_score).count;
  return threshold;
}

// Adaptive budget with every forced entry kept (select_mass_count of plan_select.h, keep_all_forced): the
// forced entries and then the fewest entries by descending score whose scores sum to at least `target`.
template <class KeyOf, class ScoreOf>
__device__ __forceinline__ MassSelection warp_select_mass_count(int n, float target, KeyOf key_of,
                                                                ScoreOf score_of) {
  const WarpTally forced = warp_tally_from(n, kForcedKey, key_of, score_of);
  MassSelection result;
  result.exact = true;
  if (forced.mass >= target) {
    result.count = forced.count;
    result.threshold.take_equal = forced.count;
    return result;
  }
  auto reaches = [&](uint32_t t) {
    return forced.mass + warp_tally_from(n, t, key_of, score_of).mass >= target;
  };
  if (!reaches(0)) {  // rounding left the target just out of reach: keep everything
    result.count = n;
    result.exact = false;
    return result;
  }
  const uint32_t key = warp_bisect_key(reaches);
  const WarpTally at = warp_tally_from(n, key, key_of, score_of);
  const WarpTally above = warp_tally_from(n, key + 1, key_of, score_of);
  // Entries equal to the threshold share one score: as many as the remaining mass needs.
  const float value = __uint_as_float(key);
  int take = at.count - above.count;
  if (value > 0.0f)
    take = min(take, max(1, static_cast<int>(ceilf(__fdividef(target - (forced.mass + above.mass), value)))));
  result.count = forced.count + above.count + take;
  result.threshold.key = key;
  result.threshold.take_equal = take;
  return result;
}

// Calls visit(i, position) for each chosen i in ascending order (position: chosen entries before i) and
// returns the number chosen: emit_selected of plan_select.h for one warp.
template <class KeyOf, class Visit>
__device__ __forceinline__ int warp_emit_selected(int n, Threshold t, KeyOf key_of, Visit visit) {
  const unsigned lane = threadIdx.x & 31u;
  const unsigned lower = (1u << lane) - 1u;
  int chosen_before = 0;
  int equal_before = 0;
  for (int base = 0; base < n; base += 32) {
    const int i = base + static_cast<int>(lane);
    const uint32_t key = i < n ? key_of(i) : 0u;
    const bool greater = i < n && key > t.key;
    const bool equal = i < n && key == t.key;
    const unsigned equals = __ballot_sync(0xFFFFFFFFu, equal);
    const bool chosen = greater || (equal && equal_before + __popc(equals & lower) < t.take_equal);
    const unsigned chosens = __ballot_sync(0xFFFFFFFFu, chosen);
    if (chosen) visit(i, chosen_before + __popc(chosens & lower));
    chosen_before += __popc(chosens);
    equal_before += __popc(equals);
  }
  return chosen_before;
}

}  // namespace sacc::plan_detail
