// Every builder's index against a brute-force mask written from the pattern's definition (DESIGN.md §4), over
// awkward shapes: lengths 1, 63, 113, 1023, 4224; GQA 1, 3, 4, 8; d 64, 128; blocks 64, 128; per head and
// shared per KV group. The combinations are sampled (not the full cross product) to keep the suite fast.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "reference/build_index.h"
#include "reference/estimate_block_cluster.h"
#include "reference/estimate_interval_slash.h"
#include "test_util.h"

namespace sacc::ref {
namespace {

struct Case {
  AttentionShape shape;
  int block_q, block_k;
  bool shared;
  std::string name() const {
    return fmt::format("L{}_Hq{}_Hkv{}_d{}_Bq{}_Bk{}{}", shape.seq_len, shape.num_q_heads, shape.num_kv_heads,
                       shape.head_dim, block_q, block_k, shared ? "_shared" : "");
  }
  IndexGeometry geometry() const {
    return {shape.seq_len, shared ? shape.num_kv_heads : shape.num_q_heads, block_q, block_k, shared};
  }
};

std::vector<Case> sampled_cases() {
  const int64_t lengths[] = {1, 63, 113, 1023, 4224};
  const int groups[] = {1, 3, 4, 8};
  const int dims[] = {64, 128};
  const int blocks[] = {64, 128};
  std::vector<Case> cases;
  for (int n = 0; n < 10; ++n) {
    Case c;
    const int64_t seq_len = lengths[n % 5];
    const int group = groups[n % 4];
    const int kv_heads = seq_len >= 1000 ? 1 : 2;
    c.shape = {seq_len, group * kv_heads, kv_heads, dims[(n / 5 + n) % 2]};
    c.block_q = blocks[(n / 2) % 2];
    c.block_k = blocks[(n / 3) % 2];
    c.shared = n % 3 == 1;
    cases.push_back(c);
  }
  return cases;
}

int64_t first_row_of(int64_t row, int block_q) {
  return row / block_q * block_q;
}
int64_t last_row_of(int64_t row, int block_q, int64_t seq_len) {
  return std::min(seq_len, first_row_of(row, block_q) + block_q) - 1;
}

void expect_masks_equal(const SparseIndex& index, int head, const std::vector<char>& expected,
                        const std::string& what) {
  const std::vector<char> got = testing::index_mask(index, head);
  const int64_t seq_len = index.geometry.seq_len;
  for (int64_t i = 0; i < seq_len; ++i) {
    for (int64_t j = 0; j < seq_len; ++j) {
      ASSERT_EQ(got[i * seq_len + j], expected[i * seq_len + j])
          << what << " head " << head << ": row " << i << " key " << j;
    }
  }
}

// Chosen items are the forced ones plus the best-scoring others: no unchosen candidate beats a chosen one.
void expect_top_scores(const std::vector<float>& scores, const std::vector<int32_t>& chosen,
                       const std::set<int32_t>& forced, int64_t candidates) {
  float worst_chosen = std::numeric_limits<float>::infinity();
  std::set<int32_t> chosen_set(chosen.begin(), chosen.end());
  for (int32_t c : chosen) {
    if (!forced.count(c)) worst_chosen = std::min(worst_chosen, scores[c]);
  }
  for (int64_t c = 0; c < candidates; ++c) {
    if (!chosen_set.count(static_cast<int32_t>(c)) && !forced.count(static_cast<int32_t>(c))) {
      ASSERT_LE(scores[c], worst_chosen) << "unchosen candidate " << c << " scores higher than a chosen one";
    }
  }
}

std::vector<int> query_heads(const Case& c, int index_head) {
  if (!c.shared) return {index_head};
  std::vector<int> heads;
  for (int h = 0; h < c.shape.group_size(); ++h) heads.push_back(index_head * c.shape.group_size() + h);
  return heads;
}

class IndexMask : public ::testing::TestWithParam<Case> {};

TEST_P(IndexMask, Triangular) {
  const Case& c = GetParam();
  const HostQkv qkv = testing::random_qkv(c.shape, 1);
  const int64_t seq_len = c.shape.seq_len;
  for (const auto& [sink, window] : {std::pair<int64_t, int64_t>{0, 1}, {5, 17}, {64, 300}, {100, 64}}) {
    PatternSpec spec = parse_pattern(fmt::format("triangular:{},{}", sink, window)).value();
    Result<SparseIndex> index = build_index(qkv.view(), {spec}, EstimationConfig{}, c.geometry());
    ASSERT_TRUE(index.is_ok()) << index.status().to_string();
    // The documented block rounding: sinks exact, the window widened to the key blocks meeting
    // [first row of the query block - W + 1, row].
    std::vector<char> expected(static_cast<size_t>(seq_len * seq_len), 0);
    for (int64_t i = 0; i < seq_len; ++i) {
      const int64_t window_start = std::max<int64_t>(0, first_row_of(i, c.block_q) - window + 1);
      for (int64_t j = 0; j <= i; ++j) {
        const bool exact = j < sink || i - j < window;
        const bool rounded = j / c.block_k >= window_start / c.block_k;
        expected[i * seq_len + j] = j < sink || rounded;
        ASSERT_TRUE(!exact || expected[i * seq_len + j]);  // a superset of the exact pattern
      }
    }
    for (int h = 0; h < index->geometry.num_heads; ++h)
      expect_masks_equal(*index, h, expected, to_string(spec));
  }
}

TEST_P(IndexMask, IntervalSlash) {
  const Case& c = GetParam();
  const HostQkv qkv = testing::random_qkv(c.shape, 2, 2.0f);
  const int64_t seq_len = c.shape.seq_len;
  const EstimationConfig config{16, 4, 3};
  for (const char* text : {"interval-slash:40,20", "interval-slash:40,20@0.5", "interval-slash:3,1"}) {
    PatternSpec spec = clamp_pattern_to_length(parse_pattern(text).value(), c.geometry());
    Result<SparseIndex> index = build_index(qkv.view(), {spec}, config, c.geometry());
    ASSERT_TRUE(index.is_ok()) << index.status().to_string();
    for (int h = 0; h < index->geometry.num_heads; ++h) {
      const std::vector<int> heads = query_heads(c, h);
      IntervalSlashScores scores = interval_slash_scores(qkv.view(), heads[0], config).value();
      for (size_t n = 1; n < heads.size(); ++n) {
        accumulate_scores(scores, interval_slash_scores(qkv.view(), heads[n], config).value());
      }
      const IntervalSlashSelection selection = select_interval_slash(scores, spec, config).value();
      if (!spec.is_adaptive()) {
        EXPECT_EQ(static_cast<int64_t>(selection.columns.size()), std::min(spec.vertical, seq_len));
        EXPECT_EQ(static_cast<int64_t>(selection.offsets.size()), std::min(spec.slash, seq_len));
      }
      std::set<int32_t> sinks, locals{0};
      for (int32_t j = 0; j < std::min<int64_t>({config.sink_keys, spec.vertical, seq_len}); ++j)
        sinks.insert(j);
      for (int32_t o = 0; o < std::min<int64_t>({config.local_diagonals, spec.slash, seq_len}); ++o)
        locals.insert(o);
      for (int32_t j : sinks)
        EXPECT_TRUE(std::binary_search(selection.columns.begin(), selection.columns.end(), j));
      for (int32_t o : locals)
        EXPECT_TRUE(std::binary_search(selection.offsets.begin(), selection.offsets.end(), o));
      expect_top_scores(scores.vertical, selection.columns, sinks, seq_len);
      expect_top_scores(scores.slash, selection.offsets, locals, seq_len);
      // Brute force: a key block is listed for a query block iff some slash band [r0 - o, r1 - o] touches it;
      // a vertical outside listed blocks is a column.
      std::vector<char> expected(static_cast<size_t>(seq_len * seq_len), 0);
      for (int64_t i = 0; i < seq_len; ++i) {
        const int64_t r0 = first_row_of(i, c.block_q), r1 = last_row_of(i, c.block_q, seq_len);
        for (int64_t j = 0; j <= i; ++j) {
          const int64_t lo = j / c.block_k * c.block_k, hi = lo + c.block_k - 1;
          bool listed = false;
          for (int32_t o : selection.offsets)
            listed = listed || (r1 - o >= 0 && lo <= r1 - o && hi >= r0 - o);
          const bool column = std::binary_search(selection.columns.begin(), selection.columns.end(), j);
          const bool exact = column || std::binary_search(selection.offsets.begin(), selection.offsets.end(),
                                                          int32_t(i - j));
          expected[i * seq_len + j] = listed || column;
          ASSERT_TRUE(!exact || expected[i * seq_len + j]);
        }
      }
      expect_masks_equal(*index, h, expected, text);
    }
  }
}

TEST_P(IndexMask, BlockCluster) {
  const Case& c = GetParam();
  const HostQkv qkv = testing::random_qkv(c.shape, 3, 2.0f);
  const int64_t seq_len = c.shape.seq_len;
  const IndexGeometry geometry = c.geometry();
  for (const char* text : {"block-cluster:1", "block-cluster:4", "block-cluster:9@0.6"}) {
    PatternSpec spec = clamp_pattern_to_length(parse_pattern(text).value(), geometry);
    Result<SparseIndex> index = build_index(qkv.view(), {spec}, EstimationConfig{}, geometry);
    ASSERT_TRUE(index.is_ok()) << index.status().to_string();
    for (int h = 0; h < index->geometry.num_heads; ++h) {
      const std::vector<int> heads = query_heads(c, h);
      BlockScores scores = block_cluster_scores(qkv.view(), heads[0], geometry).value();
      for (size_t n = 1; n < heads.size(); ++n) {
        accumulate_scores(scores, block_cluster_scores(qkv.view(), heads[n], geometry).value());
      }
      std::vector<char> expected(static_cast<size_t>(seq_len * seq_len), 0);
      for (int64_t qb = 0; qb < geometry.num_q_blocks(); ++qb) {
        const int64_t slot = h * geometry.num_q_blocks() + qb;
        const std::vector<int32_t> chosen(index->block_ids.begin() + index->block_offsets[slot],
                                          index->block_ids.begin() + index->block_offsets[slot + 1]);
        const int64_t last = geometry.last_causal_k_block(qb);
        std::set<int32_t> forced{0};
        for (int64_t kb = qb * c.block_q / c.block_k; kb <= last; ++kb)
          forced.insert(static_cast<int32_t>(kb));
        for (int32_t kb : forced) EXPECT_TRUE(std::binary_search(chosen.begin(), chosen.end(), kb));
        if (!spec.is_adaptive()) {
          EXPECT_EQ(static_cast<int64_t>(chosen.size()),
                    std::max<int64_t>(forced.size(), std::min<int64_t>(spec.blocks, last + 1)));
        }
        const std::vector<float> row(scores.prob.begin() + qb * scores.num_k_blocks,
                                     scores.prob.begin() + qb * scores.num_k_blocks + last + 1);
        expect_top_scores(row, chosen, forced, last + 1);
        for (int64_t i = qb * c.block_q; i < std::min(seq_len, (qb + 1) * c.block_q); ++i) {
          for (int64_t j = 0; j <= i; ++j) {
            expected[i * seq_len + j] =
                std::binary_search(chosen.begin(), chosen.end(), int32_t(j / c.block_k));
          }
        }
      }
      expect_masks_equal(*index, h, expected, text);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, IndexMask, ::testing::ValuesIn(sampled_cases()),
                         [](const ::testing::TestParamInfo<Case>& info) { return info.param.name(); });

// The pooled block scores against a direct fp64 computation of the definition.
TEST(BlockClusterScores, MatchPooledSoftmaxDefinition) {
  const AttentionShape shape{150, 2, 1, 16};
  const HostQkv qkv = testing::random_qkv(shape, 4, 2.0f);
  const IndexGeometry geometry{150, 2, 64, 32, false};
  const BlockScores scores = block_cluster_scores(qkv.view(), 1, geometry).value();
  ASSERT_EQ(scores.num_q_blocks, 3);
  ASSERT_EQ(scores.num_k_blocks, 5);
  for (int64_t qb = 0; qb < 3; ++qb) {
    std::vector<double> q_mean(16, 0.0);
    const int64_t q_end = std::min<int64_t>(150, (qb + 1) * 64);
    for (int64_t i = qb * 64; i < q_end; ++i) {
      for (int t = 0; t < 16; ++t) q_mean[t] += qkv.q[(i * 2 + 1) * 16 + t] / double(q_end - qb * 64);
    }
    const int64_t last = geometry.last_causal_k_block(qb);
    std::vector<double> logits;
    for (int64_t kb = 0; kb <= last; ++kb) {
      const int64_t k_end = std::min<int64_t>(150, (kb + 1) * 32);
      double dot = 0.0;
      for (int t = 0; t < 16; ++t) {
        double k_mean = 0.0;
        for (int64_t j = kb * 32; j < k_end; ++j) k_mean += qkv.k[j * 16 + t] / double(k_end - kb * 32);
        dot += q_mean[t] * k_mean;
      }
      logits.push_back(dot / 4.0);
    }
    const double max_logit = *std::max_element(logits.begin(), logits.end());
    double sum = 0.0;
    for (double l : logits) sum += std::exp(l - max_logit);
    for (int64_t kb = 0; kb < 5; ++kb) {
      const double expected = kb <= last ? std::exp(logits[kb] - max_logit) / sum : 0.0;
      EXPECT_NEAR(scores.prob[qb * 5 + kb], expected, 1e-5) << qb << "," << kb;  // fp32 softmax
    }
  }
}

// The interval-slash scores against the definition: column and diagonal sums of the last-m causal softmax.
TEST(IntervalSlashScores, MatchColumnAndDiagonalSums) {
  const AttentionShape shape{90, 3, 1, 16};
  const HostQkv qkv = testing::random_qkv(shape, 6, 2.0f);
  const EstimationConfig config{7, 0, 1};
  const IntervalSlashScores scores = interval_slash_scores(qkv.view(), 2, config).value();
  std::vector<double> vertical(90, 0.0), slash(90, 0.0);
  for (int64_t i = 90 - 7; i < 90; ++i) {
    std::vector<double> logits(i + 1);
    for (int64_t j = 0; j <= i; ++j) {
      double dot = 0.0;
      for (int t = 0; t < 16; ++t) dot += double(qkv.q[(i * 3 + 2) * 16 + t]) * qkv.k[j * 16 + t];
      logits[j] = dot / 4.0;
    }
    const double max_logit = *std::max_element(logits.begin(), logits.end());
    double sum = 0.0;
    for (double l : logits) sum += std::exp(l - max_logit);
    for (int64_t j = 0; j <= i; ++j) {
      vertical[j] += std::exp(logits[j] - max_logit) / sum;
      slash[i - j] += std::exp(logits[j] - max_logit) / sum;
    }
  }
  EXPECT_DOUBLE_EQ(scores.total_mass, 7.0);
  for (int64_t j = 0; j < 90; ++j) {
    EXPECT_NEAR(scores.vertical[j], vertical[j], 1e-5);
    EXPECT_NEAR(scores.slash[j], slash[j], 1e-5);
  }
}

}  // namespace
}  // namespace sacc::ref
