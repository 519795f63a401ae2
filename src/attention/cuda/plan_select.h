// Block-wide top-k selection for the plan kernels (device code; include from .cu files only).
//
// One CTA selects from one score row (Interval-Slash: L vertical or slash scores; Block-Cluster: one query
// block's key blocks). Scores are non-negative fp32, so their bit patterns order like the values; forced
// entries (sinks, local diagonals, first / diagonal blocks) get the key 0xFFFFFFFF and rank above every
// score. A radix select over 8-bit digits (4 passes, a 256-bin shared histogram) finds the threshold key T
// and how many entries equal to T to keep; an ordered pass then emits the chosen entries in ascending index
// order, breaking ties towards lower indices. The adaptive budget (smallest set reaching gamma of the mass,
// forced first) runs the same radix passes with mass histograms first.
#pragma once

#include <cstdint>
#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>

namespace sacc::plan_detail {

constexpr uint32_t kForcedKey = 0xFFFFFFFFu;
// Entries each thread loads per histogram step: several independent loads in flight hide the L2 latency that
// one CTA per score row would otherwise wait on serially.
constexpr int kSelectIlp = 8;

__device__ inline uint32_t score_key(float score) {
  return score > 0.0f ? __float_as_uint(score) : 0u;
}

template <int kThreads>
struct SelectScratch {
  static constexpr int kWarps = kThreads / 32;
  using Scan = cub::BlockScan<int, kThreads>;
  using Reduce = cub::BlockReduce<double, kThreads>;
  union {
    typename Scan::TempStorage scan;
    typename Reduce::TempStorage reduce;
  };
  int count[256];
  float warp_mass[kWarps][256];  // per-warp mass histograms: contention stays inside a warp
  double mass[256];
  uint32_t prefix;
  int remaining;
  double mass_above;
  int count_above;
  int eq_count;
  int reached;
  int carry;  // selected entries emitted by earlier tiles
  int eq_carry;
};

// Adds one to count[bin] for every active lane, one atomic per distinct bin of the warp (scores cluster in
// few exponent bins, so plain per-lane atomics would serialise). All lanes of the warp must call it together.
__device__ inline void count_in_bin(int* count, uint32_t bin, bool active) {
  const unsigned lanes = __ballot_sync(0xFFFFFFFFu, active);
  if (!active) return;
  const unsigned same = __match_any_sync(lanes, bin);
  if ((threadIdx.x & 31u) == static_cast<unsigned>(__ffs(same) - 1)) atomicAdd(&count[bin], __popc(same));
}

// Where a radix pass's threshold digit lies: walking the 256 digits from the top, the first digit d at which
// base + the weights of the digits >= d reach `goal` (-1 when even all of them fall short), with the weight
// and the entry count of the digits above d (of all digits when -1). One warp runs it, lane l holding digits
// 255 - 8l down to 248 - 8l: a scan over lanes finds the lane, that lane walks its eight digits. (A single
// thread walking all 256 digits serially was most of a Block-Cluster selection's time.)
template <class W>
struct DigitHit {
  int digit = -1;
  W above_weight = 0;
  int above_count = 0;
};

template <class W>
__device__ DigitHit<W> find_digit(const W* weight, const int* count, W base, W goal) {
  const int lane = threadIdx.x & 31;
  const int top = 255 - 8 * lane;
  W local = 0;
  int local_count = 0;
#pragma unroll
  for (int e = 0; e < 8; ++e) {
    local += weight[top - e];
    local_count += count[top - e];
  }
  W inclusive = local;
  int inclusive_count = local_count;
#pragma unroll
  for (int offset = 1; offset < 32; offset *= 2) {
    const W w = __shfl_up_sync(0xFFFFFFFFu, inclusive, offset);
    const int c = __shfl_up_sync(0xFFFFFFFFu, inclusive_count, offset);
    if (lane >= offset) {
      inclusive += w;
      inclusive_count += c;
    }
  }
  W exclusive = __shfl_up_sync(0xFFFFFFFFu, inclusive, 1);
  int exclusive_count = __shfl_up_sync(0xFFFFFFFFu, inclusive_count, 1);
  if (lane == 0) {
    exclusive = 0;
    exclusive_count = 0;
  }
  const unsigned reached = __ballot_sync(0xFFFFFFFFu, base + inclusive >= goal);
  DigitHit<W> hit;
  if (reached == 0) {
    hit.above_weight = base + __shfl_sync(0xFFFFFFFFu, inclusive, 31);
    hit.above_count = __shfl_sync(0xFFFFFFFFu, inclusive_count, 31);
    return hit;
  }
  const int owner = __ffs(reached) - 1;
  int digit =
      top - 7;  // rounding in the walk's order may miss the scan's hit by an ulp: the lane's last digit
  W above = base + exclusive;
  int above_count = exclusive_count;
  for (int e = 0; e < 8; ++e) {
    if (above + weight[top - e] >= goal || e == 7) {
      digit = top - e;
      break;
    }
    above += weight[top - e];
    above_count += count[top - e];
  }
  hit.digit = __shfl_sync(0xFFFFFFFFu, digit, owner);
  hit.above_weight = __shfl_sync(0xFFFFFFFFu, above, owner);
  hit.above_count = __shfl_sync(0xFFFFFFFFu, above_count, owner);
  return hit;
}

// Threshold of a count selection: keep every key > threshold and the first `take_equal` keys == threshold.
struct Threshold {
  uint32_t key = kForcedKey;
  int take_equal = 0;
};

// The k-th largest key (1 <= k <= n) among key_of(i), i in [0, n).
template <int kThreads, class KeyOf>
__device__ Threshold select_count(int n, int k, KeyOf key_of, SelectScratch<kThreads>& s) {
  if (threadIdx.x == 0) {
    s.prefix = 0;
    s.remaining = k;
  }
  uint32_t mask = 0;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int d = threadIdx.x; d < 256; d += kThreads) s.count[d] = 0;
    __syncthreads();
    const uint32_t prefix = s.prefix;
    for (int base = 0; base < n; base += kThreads * kSelectIlp) {
      uint32_t keys[kSelectIlp];
#pragma unroll
      for (int u = 0; u < kSelectIlp; ++u) {
        const int i = base + u * kThreads + threadIdx.x;
        keys[u] = i < n ? key_of(i) : 0u;
      }
#pragma unroll
      for (int u = 0; u < kSelectIlp; ++u) {
        const int i = base + u * kThreads + threadIdx.x;
        count_in_bin(s.count, (keys[u] >> shift) & 255u, i < n && (keys[u] & mask) == prefix);
      }
    }
    __syncthreads();
    if (threadIdx.x < 32) {
      // Digit 0 is the fallback: its entries are kept whether or not they reach the count.
      const DigitHit<int> hit = find_digit<int>(s.count, s.count, 0, s.remaining);
      const int digit = max(hit.digit, 0);
      const int above = hit.digit >= 1 ? hit.above_count : hit.above_count - (hit.digit < 0 ? s.count[0] : 0);
      if (threadIdx.x == 0) {
        s.remaining -= above;
        s.prefix |= static_cast<uint32_t>(digit) << shift;
      }
    }
    mask |= 255u << shift;
    __syncthreads();
  }
  Threshold t;
  t.key = s.prefix;
  t.take_equal = s.remaining;
  __syncthreads();
  return t;
}

// The adaptive budget's result: how many entries, and (when `exact`) the threshold that select_count(n,
// count) would find, so a caller whose budget the mass binds skips those radix passes.
struct MassSelection {
  int count = 0;
  Threshold threshold;
  bool exact = false;
};

// Adaptive budget: the fewest entries, forced first (in ascending index order) and then by descending score,
// whose scores sum to at least `target`. Forced entries are those with key_of(i) == kForcedKey; with
// `keep_all_forced` the result never drops below their count, otherwise a prefix of them may already suffice.
template <int kThreads, class KeyOf, class ScoreOf>
__device__ MassSelection select_mass_count(int n, double target, bool keep_all_forced, KeyOf key_of,
                                           ScoreOf score_of, SelectScratch<kThreads>& s) {
  using Reduce = typename SelectScratch<kThreads>::Reduce;
  double forced_mass = 0.0;
  double forced = 0.0;
  for (int i = threadIdx.x; i < n; i += kThreads) {
    if (key_of(i) == kForcedKey) {
      forced_mass += score_of(i);
      forced += 1.0;
    }
  }
  const double mass_sum = Reduce(s.reduce).Sum(forced_mass);
  __syncthreads();
  const double forced_sum = Reduce(s.reduce).Sum(forced);
  if (threadIdx.x == 0) {
    s.prefix = 0;
    s.mass_above = mass_sum;
    s.count_above = static_cast<int>(forced_sum + 0.5);
    s.reached = mass_sum >= target ? 1 : 0;
    if (s.reached && !keep_all_forced) {
      // Rare (the forced entries alone reach the target): walk them in order; there are few.
      double mass = 0.0;
      int taken = 0;
      for (int i = 0; i < n && mass < target; ++i) {
        if (key_of(i) != kForcedKey) continue;
        mass += score_of(i);
        ++taken;
      }
      s.count_above = taken;
    }
  }
  __syncthreads();
  if (s.reached) {
    // The forced entries alone: the first `count` of them in index order, as a count selection keeps them.
    MassSelection result;
    result.count = s.count_above;
    result.threshold.key = kForcedKey;
    result.threshold.take_equal = result.count;
    result.exact = true;
    __syncthreads();
    return result;
  }
  const int warp = threadIdx.x / 32;
  uint32_t mask = 0;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int d = threadIdx.x; d < 256; d += kThreads) {
      s.count[d] = 0;
      for (int w = 0; w < SelectScratch<kThreads>::kWarps; ++w) s.warp_mass[w][d] = 0.0f;
    }
    __syncthreads();
    const uint32_t prefix = s.prefix;
    for (int base = 0; base < n; base += kThreads * kSelectIlp) {
      uint32_t keys[kSelectIlp];
#pragma unroll
      for (int u = 0; u < kSelectIlp; ++u) {
        const int i = base + u * kThreads + threadIdx.x;
        keys[u] = i < n ? key_of(i) : kForcedKey;
      }
#pragma unroll
      for (int u = 0; u < kSelectIlp; ++u) {
        const int i = base + u * kThreads + threadIdx.x;
        const bool active = keys[u] != kForcedKey && (keys[u] & mask) == prefix;
        const uint32_t bin = (keys[u] >> shift) & 255u;
        count_in_bin(s.count, bin, active);
        if (active) atomicAdd(&s.warp_mass[warp][bin], score_of(i));
      }
    }
    __syncthreads();
    for (int d = threadIdx.x; d < 256; d += kThreads) {
      double sum = 0.0;
      for (int w = 0; w < SelectScratch<kThreads>::kWarps; ++w) sum += s.warp_mass[w][d];
      s.mass[d] = sum;
    }
    __syncthreads();
    if (threadIdx.x < 32) {
      const DigitHit<double> hit = find_digit<double>(s.mass, s.count, s.mass_above, target);
      if (threadIdx.x == 0) {
        s.mass_above = hit.above_weight;
        s.count_above += hit.above_count;
        if (hit.digit < 0) {
          s.reached = -1;  // rounding left the target just out of reach: keep everything
        } else {
          s.prefix |= static_cast<uint32_t>(hit.digit) << shift;
          s.eq_count = s.count[hit.digit];
        }
      }
    }
    mask |= 255u << shift;
    __syncthreads();
    if (s.reached < 0) break;
  }
  MassSelection result;
  result.count = n;  // rounding left the target out of reach: everything (no threshold at hand)
  if (s.reached == 0) {
    // Entries equal to the threshold share one score: take as many as the remaining mass needs. count_above
    // entries have a key above s.prefix, so s.prefix is the count-th largest key and a count selection keeps
    // the same entries.
    const double value = static_cast<double>(__uint_as_float(s.prefix));
    int take = s.eq_count;
    if (value > 0.0) take = min(s.eq_count, max(1, static_cast<int>(ceil((target - s.mass_above) / value))));
    result.count = s.count_above + take;
    result.threshold.key = s.prefix;
    result.threshold.take_equal = take;
    result.exact = true;
  }
  __syncthreads();
  return result;
}

// The score mass of the entries a count selection with threshold `t` keeps, t.key below kForcedKey (so every
// forced entry is kept, with its own score). Entries equal to the threshold share one score: the first
// take_equal of them add take_equal times it.
template <int kThreads, class KeyOf, class ScoreOf>
__device__ double kept_score_mass(int n, Threshold t, KeyOf key_of, ScoreOf score_of,
                                  SelectScratch<kThreads>& s) {
  using Reduce = typename SelectScratch<kThreads>::Reduce;
  double mass = 0.0;
  for (int i = threadIdx.x; i < n; i += kThreads)
    if (key_of(i) > t.key) mass += score_of(i);
  const double sum = Reduce(s.reduce).Sum(mass);
  if (threadIdx.x == 0) s.mass_above = sum + static_cast<double>(t.take_equal) * __uint_as_float(t.key);
  __syncthreads();
  const double result = s.mass_above;
  __syncthreads();
  return result;
}

// Visits i in [0, n) in ascending order as visit(i, selected_before_i, is_selected) and returns the number
// selected. kItems consecutive entries per thread keep the block scans few.
template <int kThreads, int kItems, class KeyOf, class Visit>
__device__ int emit_selected(int n, Threshold t, KeyOf key_of, Visit visit, SelectScratch<kThreads>& s) {
  if (threadIdx.x == 0) {
    s.carry = 0;
    s.eq_carry = 0;
  }
  __syncthreads();
  constexpr int kTile = kThreads * kItems;
  static_assert(kTile < 65536, "per-tile counts are packed into 16 bits");
  for (int base = 0; base < n; base += kTile) {
    const int first = base + threadIdx.x * kItems;
    uint32_t keys[kItems];
    int packed = 0;  // greater-than count in the low 16 bits, equal count in the high bits
#pragma unroll
    for (int it = 0; it < kItems; ++it) {
      keys[it] = first + it < n ? key_of(first + it) : 0u;
      const bool valid = first + it < n;
      packed += (valid && keys[it] > t.key) ? 1 : 0;
      packed += (valid && keys[it] == t.key) ? (1 << 16) : 0;
    }
    int before = 0;
    int tile_total = 0;
    typename SelectScratch<kThreads>::Scan(s.scan).ExclusiveSum(packed, before, tile_total);
    int gt = s.carry + (before & 0xFFFF);
    int eq = s.eq_carry + (before >> 16);
#pragma unroll
    for (int it = 0; it < kItems; ++it) {
      if (first + it >= n) break;
      const bool greater = keys[it] > t.key;
      const bool equal = keys[it] == t.key;
      const bool chosen = greater || (equal && eq < t.take_equal);
      visit(first + it, gt + min(eq, t.take_equal), chosen);
      gt += greater ? 1 : 0;
      eq += equal ? 1 : 0;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      s.carry += tile_total & 0xFFFF;
      s.eq_carry += tile_total >> 16;
    }
    __syncthreads();
  }
  return s.carry + min(s.eq_carry, t.take_equal);
}

}  // namespace sacc::plan_detail
