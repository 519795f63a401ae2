#include "attention/cpu/cpu_attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "attention/cpu/parallel_for.h"

namespace sacc {
namespace {

constexpr int64_t kDenseTile = 32;  // query rows per task: the group's query heads share each key row read

inline float widen(uint16_t bf16) {
  const uint32_t bits = static_cast<uint32_t>(bf16) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

// q (fp32) · k (bf16) with fp32 accumulation: the cache is read in place, never converted into a copy.
// Eight independent partial sums so the compiler vectorises it without -ffast-math.
inline float dot(const float* q, const uint16_t* k, int d) {
  float acc[8] = {};
  int i = 0;
  for (; i + 8 <= d; i += 8)
    for (int l = 0; l < 8; ++l) acc[l] += q[i + l] * widen(k[i + l]);
  float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < d; ++i) s += q[i] * widen(k[i]);
  return s;
}

// One KV head of the bf16 cache: key / value row j at k + j * stride, [d] each.
struct HeadKv {
  const uint16_t* k;
  const uint16_t* v;
  int64_t stride;
  HeadKv(const CpuAttentionArgs& a, int kv_head)
      : k(a.k + static_cast<int64_t>(kv_head) * a.head_dim),
        v(a.v + static_cast<int64_t>(kv_head) * a.head_dim),
        stride(static_cast<int64_t>(a.num_kv_heads) * a.head_dim) {}
};

// One query row over an explicit ascending key list (or keys [0, count) when `keys` is null).
void attend_row(const float* q, const HeadKv& kv, const int32_t* keys, int64_t count, int d, float scale,
                std::vector<float>& scores, float* out) {
  scores.resize(count);
  float max_score = -std::numeric_limits<float>::infinity();
  for (int64_t t = 0; t < count; ++t) {
    const int64_t j = keys ? keys[t] : t;
    scores[t] = dot(q, kv.k + j * kv.stride, d) * scale;
    max_score = std::max(max_score, scores[t]);
  }
  std::fill(out, out + d, 0.0f);
  if (count == 0) return;  // a row with no keys (cannot happen causally) outputs zeros
  double sum = 0.0;
  for (int64_t t = 0; t < count; ++t) {
    const float p = std::exp(scores[t] - max_score);
    sum += p;
    const uint16_t* vr = kv.v + (keys ? keys[t] : t) * kv.stride;
    for (int c = 0; c < d; ++c) out[c] += p * widen(vr[c]);
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int c = 0; c < d; ++c) out[c] *= inv;
}

float scale_of(const CpuAttentionArgs& a) {
  return a.softmax_scale > 0.0f ? a.softmax_scale : 1.0f / std::sqrt(static_cast<float>(a.head_dim));
}

}  // namespace

Status CpuAttentionArgs::validate() const {
  if (num_queries <= 0 || num_keys < num_queries)
    return make_error(StatusCode::INVALID_ARGUMENT,
                      "cpu attention: {} queries over {} keys (need 0 < Lq <= Lk)", num_queries, num_keys);
  if (num_q_heads <= 0 || num_kv_heads <= 0 || num_q_heads % num_kv_heads != 0 || head_dim <= 0)
    return make_error(StatusCode::INVALID_ARGUMENT,
                      "cpu attention: heads {} / kv heads {} / head_dim {} invalid", num_q_heads,
                      num_kv_heads, head_dim);
  if (!q || !k || !v || !o) return make_error(StatusCode::INVALID_ARGUMENT, "cpu attention: null tensor");
  return Status::ok();
}

Status cpu_attention_dense(const CpuAttentionArgs& a) {
  SACC_RETURN_IF_ERROR(a.validate());
  const int d = a.head_dim, group = a.num_q_heads / a.num_kv_heads;
  const float scale = scale_of(a);
  const int64_t offset = a.num_keys - a.num_queries;
  const int64_t tiles = (a.num_queries + kDenseTile - 1) / kDenseTile;
  parallel_for(tiles * a.num_kv_heads, [&](int64_t task) {
    // Later tiles first: they see the most keys, so the dynamic schedule ends balanced.
    const int64_t tile = tiles - 1 - task / a.num_kv_heads;
    const int kvh = static_cast<int>(task % a.num_kv_heads);
    const int64_t row_begin = tile * kDenseTile, row_end = std::min(a.num_queries, row_begin + kDenseTile);
    const HeadKv kv(a, kvh);
    std::vector<float> scores;
    for (int64_t i = row_begin; i < row_end; ++i)
      for (int g = 0; g < group; ++g) {
        const int64_t h = static_cast<int64_t>(kvh) * group + g;
        const int64_t at = (i * a.num_q_heads + h) * d;
        attend_row(a.q + at, kv, nullptr, offset + i + 1, d, scale, scores, a.o + at);
      }
  });
  return Status::ok();
}

Status cpu_attention_sparse(const CpuAttentionArgs& a, const SparseIndex& index) {
  SACC_RETURN_IF_ERROR(a.validate());
  const IndexGeometry& geo = index.geometry;
  if (a.num_queries != a.num_keys || geo.seq_len != a.num_queries)
    return make_error(StatusCode::INVALID_ARGUMENT,
                      "cpu sparse attention: index for length {} used on {} queries over {} keys",
                      geo.seq_len, a.num_queries, a.num_keys);
  const int expected_heads = geo.shared_per_kv_group ? a.num_kv_heads : a.num_q_heads;
  if (geo.num_heads != expected_heads)
    return make_error(StatusCode::INVALID_ARGUMENT, "cpu sparse attention: index has {} heads, expected {}",
                      geo.num_heads, expected_heads);
  if (static_cast<int64_t>(index.block_offsets.size()) != geo.num_slots() + 1 ||
      static_cast<int64_t>(index.column_offsets.size()) != geo.num_slots() + 1)
    return make_error(StatusCode::INVALID_ARGUMENT,
                      "cpu sparse attention: index offsets do not match geometry");
  const int d = a.head_dim, group = a.num_q_heads / a.num_kv_heads;
  const float scale = scale_of(a);
  const int64_t q_blocks = geo.num_q_blocks();
  parallel_for(q_blocks * a.num_kv_heads, [&](int64_t task) {
    const int64_t qb = q_blocks - 1 - task / a.num_kv_heads;
    const int kvh = static_cast<int>(task % a.num_kv_heads);
    const int64_t row_begin = qb * geo.block_q, row_end = std::min(a.num_queries, row_begin + geo.block_q);
    const HeadKv kv(a, kvh);
    std::vector<int32_t> keys;
    std::vector<float> scores;
    for (int g = 0; g < group; ++g) {
      const int h = kvh * group + g;
      const int64_t slot = (geo.shared_per_kv_group ? kvh : h) * q_blocks + qb;
      // The slot's keys in ascending order: listed blocks expanded, merged with the single columns.
      keys.clear();
      for (int32_t b = index.block_offsets[slot]; b < index.block_offsets[slot + 1]; ++b) {
        const int64_t first = static_cast<int64_t>(index.block_ids[b]) * geo.block_k;
        for (int64_t j = first; j < std::min(first + geo.block_k, row_end); ++j)
          keys.push_back(static_cast<int32_t>(j));
      }
      for (int32_t c = index.column_offsets[slot]; c < index.column_offsets[slot + 1]; ++c)
        if (index.column_ids[c] < row_end) keys.push_back(index.column_ids[c]);
      std::sort(keys.begin(), keys.end());
      for (int64_t i = row_begin; i < row_end; ++i) {
        const int64_t visible =
            std::upper_bound(keys.begin(), keys.end(), static_cast<int32_t>(i)) - keys.begin();
        const int64_t at = (i * a.num_q_heads + h) * d;
        attend_row(a.q + at, kv, keys.data(), visible, d, scale, scores, a.o + at);
      }
    }
  });
  return Status::ok();
}

}  // namespace sacc
