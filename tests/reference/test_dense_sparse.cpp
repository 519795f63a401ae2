// Dense and sparse oracle attention against naive masked attention, and sparse-over-every-block == dense.
#include <gtest/gtest.h>

#include <cmath>

#include "reference/build_index.h"
#include "reference/dense_attention.h"
#include "reference/sparse_attention.h"
#include "test_util.h"

namespace sacc::ref {
namespace {

using testing::masked_attention;
using testing::random_qkv;

// Naive and oracle both accumulate in fp64 over at most a few hundred terms of size ~1: differences are a few
// ulps of fp64, far below 1e-12.
constexpr double kFp64Tolerance = 1e-12;

std::vector<char> causal_mask(int64_t seq_len) {
  std::vector<char> mask(static_cast<size_t>(seq_len * seq_len), 0);
  for (int64_t i = 0; i < seq_len; ++i) {
    for (int64_t j = 0; j <= i; ++j) mask[i * seq_len + j] = 1;
  }
  return mask;
}

TEST(DenseAttention, MatchesNaiveCausalGqa) {
  for (const AttentionShape& shape : {AttentionShape{1, 3, 1, 8}, AttentionShape{37, 6, 2, 16},
                                      AttentionShape{130, 8, 1, 64}, AttentionShape{65, 4, 4, 32}}) {
    SCOPED_TRACE(fmt::format("L={} Hq={} Hkv={} d={}", shape.seq_len, shape.num_q_heads, shape.num_kv_heads,
                             shape.head_dim));
    const HostQkv qkv = random_qkv(shape, 7, 2.0f);
    Result<AttentionResult> dense = dense_attention(qkv.view());
    ASSERT_TRUE(dense.is_ok()) << dense.status().to_string();
    const std::vector<char> mask = causal_mask(shape.seq_len);
    for (int h = 0; h < shape.num_q_heads; ++h) {
      std::vector<double> o, lse;
      masked_attention(qkv, h, mask, o, lse);
      for (int64_t i = 0; i < shape.seq_len; ++i) {
        ASSERT_NEAR(dense->lse[h * shape.seq_len + i], lse[i], kFp64Tolerance);
        for (int t = 0; t < shape.head_dim; ++t) {
          ASSERT_NEAR(dense->o[(i * shape.num_q_heads + h) * shape.head_dim + t], o[i * shape.head_dim + t],
                      kFp64Tolerance);
        }
      }
    }
  }
}

TEST(DenseAttention, FirstRowCopiesFirstValue) {
  const HostQkv qkv = random_qkv({5, 2, 1, 8}, 3);
  Result<AttentionResult> dense = dense_attention(qkv.view());
  ASSERT_TRUE(dense.is_ok());
  for (int h = 0; h < 2; ++h) {
    for (int t = 0; t < 8; ++t) EXPECT_DOUBLE_EQ(dense->o[h * 8 + t], qkv.v[t]);
  }
}

// The shapes of the issue: awkward lengths, GQA 1/3/4/8, d 64/128, blocks 64/128, per head and shared.
TEST(SparseAttention, EveryBlockSelectedEqualsDense) {
  struct Case {
    AttentionShape shape;
    int block_q, block_k;
    bool shared;
  };
  const Case cases[] = {
      {{1, 1, 1, 64}, 64, 64, false},      {{63, 3, 1, 64}, 64, 128, true},
      {{113, 4, 1, 128}, 128, 64, false},  {{113, 8, 1, 64}, 64, 64, true},
      {{1023, 8, 2, 64}, 128, 128, false}, {{1023, 3, 3, 128}, 128, 64, true},
      {{4224, 2, 2, 64}, 128, 64, true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(fmt::format("L={} Hq={} Hkv={} d={} Bq={} Bk={} shared={}", c.shape.seq_len,
                             c.shape.num_q_heads, c.shape.num_kv_heads, c.shape.head_dim, c.block_q,
                             c.block_k, c.shared));
    const HostQkv qkv = random_qkv(c.shape, 11, 1.5f);
    IndexGeometry geometry{c.shape.seq_len, c.shared ? c.shape.num_kv_heads : c.shape.num_q_heads, c.block_q,
                           c.block_k, c.shared};
    Result<AttentionResult> dense = dense_attention(qkv.view());
    Result<AttentionResult> sparse = sparse_attention(qkv.view(), SparseIndex::dense(geometry));
    ASSERT_TRUE(dense.is_ok() && sparse.is_ok()) << sparse.status().to_string();
    for (size_t n = 0; n < dense->o.size(); ++n) ASSERT_NEAR(sparse->o[n], dense->o[n], kFp64Tolerance) << n;
    for (size_t n = 0; n < dense->lse.size(); ++n) ASSERT_NEAR(sparse->lse[n], dense->lse[n], kFp64Tolerance);
  }
}

TEST(SparseAttention, TriangularWithHugeWindowEqualsDense) {
  const AttentionShape shape{300, 4, 2, 64};
  const HostQkv qkv = random_qkv(shape, 5);
  IndexGeometry geometry{shape.seq_len, shape.num_q_heads, 128, 64, false};
  Result<SparseIndex> index =
      build_index(qkv.view(), {parse_pattern("triangular:0,1000000").value()}, EstimationConfig{}, geometry);
  ASSERT_TRUE(index.is_ok()) << index.status().to_string();
  const SparseIndex dense_index = SparseIndex::dense(geometry);
  EXPECT_EQ(index->block_offsets, dense_index.block_offsets);
  EXPECT_EQ(index->block_ids, dense_index.block_ids);
  EXPECT_TRUE(index->column_ids.empty());
  Result<AttentionResult> dense = dense_attention(qkv.view());
  Result<AttentionResult> sparse = sparse_attention(qkv.view(), *index);
  ASSERT_TRUE(dense.is_ok() && sparse.is_ok());
  for (size_t n = 0; n < dense->o.size(); ++n) ASSERT_NEAR(sparse->o[n], dense->o[n], kFp64Tolerance);
}

// Sparse = naive attention under the mask the index describes, for an irregular hand-made index with columns,
// gaps and a query block that lists nothing.
TEST(SparseAttention, EqualsNaiveUnderTheIndexMask) {
  const AttentionShape shape{200, 2, 1, 32};
  const HostQkv qkv = random_qkv(shape, 9, 2.0f);
  IndexGeometry geometry{shape.seq_len, 2, 64, 32, false};  // 4 query blocks, 7 key blocks
  std::vector<HeadIndex> heads(2);
  heads[0].blocks = {{0, 1}, {0, 3}, {}, {2, 5, 6}};
  heads[0].columns = {{}, {70, 90}, {}, {3, 99, 120, 150}};
  heads[1].blocks = {{1}, {3}, {0, 1, 2, 3, 4, 5}, {6}};
  heads[1].columns = {{5}, {0, 64}, {}, {0, 1, 2}};
  Result<SparseIndex> index = assemble_index(geometry, heads);
  ASSERT_TRUE(index.is_ok()) << index.status().to_string();
  Result<AttentionResult> sparse = sparse_attention(qkv.view(), *index);
  ASSERT_TRUE(sparse.is_ok()) << sparse.status().to_string();
  for (int h = 0; h < 2; ++h) {
    std::vector<double> o, lse;
    masked_attention(qkv, h, testing::index_mask(*index, h), o, lse);
    for (int64_t i = 0; i < shape.seq_len; ++i) {
      if (std::isinf(lse[i])) {
        EXPECT_TRUE(std::isinf(sparse->lse[h * shape.seq_len + i]) && sparse->lse[h * shape.seq_len + i] < 0);
      } else {
        ASSERT_NEAR(sparse->lse[h * shape.seq_len + i], lse[i], kFp64Tolerance)
            << "head " << h << " row " << i;
      }
      for (int t = 0; t < shape.head_dim; ++t) {
        ASSERT_NEAR(sparse->o[(i * 2 + h) * shape.head_dim + t], o[i * shape.head_dim + t], kFp64Tolerance);
      }
    }
  }
  // Query block 2 of head 0 lists nothing: its rows are zero with lse = -inf.
  EXPECT_TRUE(std::isinf(sparse->lse[0 * shape.seq_len + 130]));
}

TEST(SparseAttention, RejectsAnIndexOfAnotherShape) {
  const HostQkv qkv = random_qkv({100, 4, 2, 16}, 1);
  Result<AttentionResult> wrong_length =
      sparse_attention(qkv.view(), SparseIndex::dense({99, 4, 64, 64, false}));
  ASSERT_FALSE(wrong_length.is_ok());
  EXPECT_NE(wrong_length.status().message().find("length"), std::string::npos);
  Result<AttentionResult> wrong_heads =
      sparse_attention(qkv.view(), SparseIndex::dense({100, 4, 64, 64, true}));
  ASSERT_FALSE(wrong_heads.is_ok());
  EXPECT_NE(wrong_heads.status().message().find("heads"), std::string::npos);
}

TEST(DenseAttention, RejectsZeroHeadsAndBadGroups) {
  HostQkv qkv = random_qkv({10, 4, 2, 16}, 1);
  QkvView view = qkv.view();
  view.shape.num_kv_heads = 0;
  EXPECT_EQ(dense_attention(view).status().code(), StatusCode::INVALID_ARGUMENT);
  view.shape.num_kv_heads = 3;
  Result<AttentionResult> bad_group = dense_attention(view);
  ASSERT_FALSE(bad_group.is_ok());
  EXPECT_NE(bad_group.status().message().find("multiple"), std::string::npos);
  view.shape.num_kv_heads = 2;
  view.shape.seq_len = 0;
  EXPECT_FALSE(dense_attention(view).is_ok());
}

TEST(QkvFromTensors, WidensAndChecksShapes) {
  std::vector<uint16_t> q(6 * 4 * 8), k(6 * 2 * 8), v(6 * 2 * 8);
  for (size_t n = 0; n < q.size(); ++n) q[n] = float_to_bf16(0.25f * static_cast<float>(n % 7));
  for (size_t n = 0; n < k.size(); ++n) k[n] = v[n] = float_to_bf16(-0.5f * static_cast<float>(n % 5));
  TensorView qv(q.data(), DType::BF16, {6, 4, 8}), kv(k.data(), DType::BF16, {6, 2, 8}),
      vv(v.data(), DType::BF16, {6, 2, 8});
  Result<HostQkv> ok = qkv_from_tensors(qv, kv, vv);
  ASSERT_TRUE(ok.is_ok()) << ok.status().to_string();
  EXPECT_EQ(ok->shape.group_size(), 2);
  EXPECT_EQ(ok->q[9], bf16_to_float(q[9]));
  TensorView short_v(v.data(), DType::BF16, {5, 2, 8});
  Result<HostQkv> mismatch = qkv_from_tensors(qv, kv, short_v);
  ASSERT_FALSE(mismatch.is_ok());
  EXPECT_NE(mismatch.status().message().find("'v'"), std::string::npos);
  TensorView no_heads(k.data(), DType::BF16, {6, 0, 8});
  EXPECT_FALSE(qkv_from_tensors(qv, no_heads, no_heads).is_ok());
  TensorView ints(k.data(), DType::I16, {6, 2, 8});
  EXPECT_FALSE(qkv_from_tensors(qv, ints, vv).is_ok());
}

}  // namespace
}  // namespace sacc::ref
