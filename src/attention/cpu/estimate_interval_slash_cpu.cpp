// Interval-Slash estimation on the host: scores of the last queries against every key in register tiles,
// then per row the causal fp32 softmax and its column / diagonal sums (plan_cpu_detail.h).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>

#include "attention/cpu/plan_cpu_detail.h"

namespace sacc::cpu_plan {
namespace {

constexpr int kKeyTile = 32;  // keys per transposed K tile: 16 KiB at d = 128, so it stays in L1 with Q
constexpr int kRowGroup = 4;  // query rows sharing each loaded key vector
constexpr int kLanes = 8;
using Vec8 = float __attribute__((vector_size(kLanes * sizeof(float))));

int64_t round_up(int64_t value, int64_t multiple) {
  return (value + multiple - 1) / multiple * multiple;
}

}  // namespace

// s[r * ld + j] = q_r . k_j for rows r in [0, rows) (rows a multiple of kRowGroup; q: [rows, d]) and the
// kKeyTile keys of a tile (kt: [d, kKeyTile], K transposed). Each lane accumulates one (row, key) product
// over increasing t with a separate multiply and add, exactly as a scalar dot-product loop does.
__attribute__((target_clones("avx", "default"))) void score_key_tile(const float* q, int rows, int d,
                                                                     const float* kt, float* s, int64_t ld) {
  for (int r = 0; r < rows; r += kRowGroup) {
    const float* q_group = q + static_cast<int64_t>(r) * d;
    for (int j = 0; j < kKeyTile; j += 2 * kLanes) {
      Vec8 acc[kRowGroup][2] = {};
      for (int t = 0; t < d; ++t) {
        Vec8 k_lo, k_hi;
        std::memcpy(&k_lo, kt + t * kKeyTile + j, sizeof(Vec8));
        std::memcpy(&k_hi, kt + t * kKeyTile + j + kLanes, sizeof(Vec8));
        for (int rr = 0; rr < kRowGroup; ++rr) {
          const float qv = q_group[rr * d + t];
          acc[rr][0] += qv * k_lo;
          acc[rr][1] += qv * k_hi;
        }
      }
      for (int rr = 0; rr < kRowGroup; ++rr) {
        float* out = s + (r + rr) * ld + j;
        std::memcpy(out, &acc[rr][0], sizeof(Vec8));
        std::memcpy(out + kLanes, &acc[rr][1], sizeof(Vec8));
      }
    }
  }
}

// p[j] *= scale for j in [0, n); returns the largest product (a maximum does not depend on the order).
__attribute__((target_clones("avx", "default"))) float scale_and_max(float* p, int64_t n, float scale) {
  Vec8 lane_max = Vec8{} - std::numeric_limits<float>::infinity();
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    Vec8 v;
    std::memcpy(&v, p + j, sizeof(Vec8));
    v = v * scale;
    std::memcpy(p + j, &v, sizeof(Vec8));
    lane_max = lane_max > v ? lane_max : v;
  }
  float max_score = -std::numeric_limits<float>::infinity();
  for (int lane = 0; lane < kLanes; ++lane) max_score = std::max(max_score, lane_max[lane]);
  for (; j < n; ++j) {
    p[j] = p[j] * scale;
    max_score = std::max(max_score, p[j]);
  }
  return max_score;
}

// p[j] *= inv, vertical[j] += p[j] for j in [0, n); then slash[o] += p[last - o] for o in [0, n).
__attribute__((target_clones("avx", "default"))) void accumulate_row(float* __restrict p, int64_t n,
                                                                     float inv, float* __restrict vertical,
                                                                     float* __restrict slash) {
  for (int64_t j = 0; j < n; ++j) {
    p[j] = p[j] * inv;
    vertical[j] += p[j];
  }
  for (int64_t o = 0; o < n; ++o) slash[o] += p[n - 1 - o];
}

void interval_slash_scores(const QkSource& source, int q_head, int64_t rows, SlashScores* out) {
  const int64_t seq_len = source.shape.seq_len;
  const int d = source.shape.head_dim;
  const int kv_head = q_head / source.shape.group_size();
  const int64_t first_row = seq_len - rows;
  const int padded_rows = static_cast<int>(round_up(rows, kRowGroup));
  const int64_t ld = round_up(seq_len, kKeyTile);

  std::vector<float> q(static_cast<size_t>(padded_rows) * d, 0.0f);  // [padded_rows, d], zero padding
  for (int64_t r = 0; r < rows; ++r) source.load_q(first_row + r, q_head, q.data() + r * d);
  // [padded_rows, ld], left uninitialised: every entry a row reads is written by score_key_tile first.
  const std::unique_ptr<float[]> scores(new float[static_cast<size_t>(padded_rows) * ld]);
  std::vector<float> kt(static_cast<size_t>(d) * kKeyTile);  // [d, kKeyTile]
  for (int64_t j0 = 0; j0 < seq_len; j0 += kKeyTile) {
    const int width = static_cast<int>(std::min<int64_t>(kKeyTile, seq_len - j0));
    for (int jj = 0; jj < width; ++jj) source.load_k(j0 + jj, kv_head, kt.data() + jj, kKeyTile);
    for (int jj = width; jj < kKeyTile; ++jj) {
      for (int t = 0; t < d; ++t) kt[t * kKeyTile + jj] = 0.0f;
    }
    // Rows before this tile's first key see none of it (causal): start at their group.
    const int row_begin =
        static_cast<int>(std::clamp<int64_t>(j0 - first_row, 0, rows - 1) / kRowGroup * kRowGroup);
    score_key_tile(q.data() + static_cast<int64_t>(row_begin) * d, padded_rows - row_begin, d, kt.data(),
                   scores.get() + row_begin * ld + j0, ld);
  }

  out->vertical.assign(seq_len, 0.0f);
  out->slash.assign(seq_len, 0.0f);
  float* vertical = out->vertical.data();
  float* slash = out->slash.data();
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t row = first_row + r;
    const int64_t keys = row + 1;
    float* p = scores.get() + r * ld;
    const float max_score = scale_and_max(p, keys, source.scale);
    // Serial on purpose: the sum's rounding must not depend on the vector width.
    float sum = 0.0f;
    for (int64_t j = 0; j < keys; ++j) {
      p[j] = std::exp(p[j] - max_score);
      sum += p[j];
    }
    accumulate_row(p, keys, 1.0f / sum, vertical, slash);
  }
}

}  // namespace sacc::cpu_plan
