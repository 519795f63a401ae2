#include "reference/kv_head.h"

#include <algorithm>

namespace sacc::ref {

KvHeadF64 load_kv_head(const QkvView& qkv, int kv_head) {
  const int64_t seq_len = qkv.shape.seq_len;
  const int d = qkv.shape.head_dim;
  const int64_t token_stride = static_cast<int64_t>(qkv.shape.num_kv_heads) * d;
  KvHeadF64 out;
  out.seq_len = seq_len;
  out.head_dim = d;
  out.k.resize(static_cast<size_t>(seq_len * d));
  out.kt.resize(out.k.size());
  out.v.resize(out.k.size());
  for (int64_t j = 0; j < seq_len; ++j) {
    const float* k_row = qkv.k + j * token_stride + static_cast<int64_t>(kv_head) * d;
    const float* v_row = qkv.v + j * token_stride + static_cast<int64_t>(kv_head) * d;
    for (int t = 0; t < d; ++t) {
      out.k[j * d + t] = k_row[t];
      out.kt[t * seq_len + j] = k_row[t];
      out.v[j * d + t] = v_row[t];
    }
  }
  return out;
}

void load_scaled_query(const QkvView& qkv, int q_head, int64_t row, double* out) {
  const int d = qkv.shape.head_dim;
  const float* q_row = qkv.q + (row * qkv.shape.num_q_heads + q_head) * static_cast<int64_t>(d);
  const double scale = qkv.scale();
  for (int t = 0; t < d; ++t) out[t] = scale * q_row[t];
}

// AVX2 clones where the CPU has them (2-3x on the oracle's two hot loops); results are fp64 either way.
__attribute__((target_clones("avx2", "default"))) void score_rows(const double* kt, int64_t kt_stride,
                                                                  int head_dim, const double* q, int rows,
                                                                  int64_t key_end, double* scores) {
  // Key chunks small enough that a chunk of every row's scores stays in L1 while the dimension loop runs over
  // it; the dimension-outer order makes the innermost loop an independent multiply-add over contiguous keys.
  constexpr int64_t kChunk = 256;
  const int d = head_dim;
  for (int64_t j0 = 0; j0 < key_end; j0 += kChunk) {
    const int64_t j1 = std::min(key_end, j0 + kChunk);
    for (int r = 0; r < rows; ++r) {
      double* s = scores + r * key_end;
      for (int64_t j = j0; j < j1; ++j) s[j] = 0.0;
    }
    for (int t = 0; t < d; ++t) {
      const double* k_t = kt + static_cast<int64_t>(t) * kt_stride;
      for (int r = 0; r < rows; ++r) {
        const double q_t = q[r * d + t];
        double* s = scores + r * key_end;
        for (int64_t j = j0; j < j1; ++j) s[j] += q_t * k_t[j];
      }
    }
  }
}

__attribute__((target_clones("avx2", "default"))) void axpy(double w, const double* x, int n, double* acc) {
  for (int t = 0; t < n; ++t) acc[t] += w * x[t];
}

}  // namespace sacc::ref
