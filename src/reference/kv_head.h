// fp64 copies of one KV head's keys and values, laid out for the oracle's row loops: K row-major (sparse
// gathers) and transposed (dense rows, so the inner loop runs over contiguous keys and vectorises).
#pragma once

#include <cstdint>
#include <vector>

#include "reference/qkv.h"

namespace sacc::ref {

struct KvHeadF64 {
  int64_t seq_len = 0;
  int head_dim = 0;
  std::vector<double> k;   // [L, d]
  std::vector<double> kt;  // [d, L]
  std::vector<double> v;   // [L, d]
};

KvHeadF64 load_kv_head(const QkvView& qkv, int kv_head);

// q of query head `q_head`, row `row`, times the softmax scale, in fp64: [d].
void load_scaled_query(const QkvView& qkv, int q_head, int64_t row, double* out);

// scores[r * key_end + j] = q_r . k_j for rows r in [0, rows) (q: [rows, d], already scaled) and keys
// j in [0, key_end), where key j's dimension t is kt[t * kt_stride + j] (a transposed K: [d, >= key_end]).
void score_rows(const double* kt, int64_t kt_stride, int head_dim, const double* q, int rows, int64_t key_end,
                double* scores);

// acc[t] += w * x[t] for t in [0, n).
void axpy(double w, const double* x, int n, double* acc);

}  // namespace sacc::ref
