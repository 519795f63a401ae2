#include "attention/cpu/cpu_attention_tile.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace sacc::cpu_attn {
namespace {

constexpr int32_t kPaddingKey = std::numeric_limits<int32_t>::max();

// One thread's tile buffers; tasks on the same thread reuse them.
struct TileBuffers {
  std::vector<float> floats;
  std::vector<int32_t> ints;
  std::vector<uint32_t> words;
  std::vector<uint16_t> halves;
};
thread_local TileBuffers tls_buffers;

}  // namespace

int64_t query_rows_per_tile(int heads) {
  constexpr int64_t kTileRows = 128;
  int64_t rows = 1;
  while (rows * 2 * heads <= kTileRows) rows *= 2;
  return rows;
}

QueryTile::QueryTile(const CpuAttentionArgs& args, const TileKernels& kernels, const TileRows& rows)
    : a_(args), kernels_(kernels), rows_(rows), d_(args.head_dim) {
  pairs_ = kernels.scores_bf16 != nullptr && d_ % 2 == 0;
  const int align = pairs_ ? kPairRowAlign : kRowAlign;
  num_rows_ = static_cast<int>((rows.row_end - rows.row_begin) * rows.num_heads);
  rp_ = (num_rows_ + align - 1) / align * align;
  min_pos_ = rows.pos_offset + rows.row_begin;
  max_pos_ = rows.pos_offset + rows.row_end - 1;
  kv_stride_ = static_cast<int64_t>(args.num_kv_heads) * d_;
  k_ = args.k + static_cast<int64_t>(rows.kv_head) * d_;
  v_ = args.v + static_cast<int64_t>(rows.kv_head) * d_;

  const int64_t d = d_, rp = rp_, bk = kKeyBlock;
  TileBuffers& b = tls_buffers;
  const int64_t fp32_block = pairs_ ? 0 : 2 * bk * d;
  b.floats.resize(2 * d * rp + bk * rp + fp32_block + 3 * rp);
  b.ints.resize(rp + bk);
  float* f = b.floats.data();
  qt_ = f;
  ot_ = qt_ + d * rp;
  s_ = ot_ + d * rp;
  kb_ = pairs_ ? nullptr : s_ + bk * rp;
  vb_ = pairs_ ? nullptr : kb_ + bk * d;
  row_max_ = s_ + bk * rp + fp32_block;
  row_sum_ = row_max_ + rp;
  rescale_ = row_sum_ + rp;
  row_pos_ = b.ints.data();
  key_pos_ = row_pos_ + rp;
  if (pairs_) {
    b.halves.resize(2 * bk * d);
    kh_ = b.halves.data();
    vh_ = kh_ + bk * d;
    b.words.resize(d / 2 * rp + bk / 2 * rp + bk / 2 * d);
    qp_ = b.words.data();
    pp_ = qp_ + d / 2 * rp;
    vp_ = pp_ + bk / 2 * rp;
  }

  // Base-2 softmax: 2^(s log2 e) = e^s, with log2(e) folded into the queries once.
  const double scale = args.softmax_scale > 0.0f ? args.softmax_scale : 1.0 / std::sqrt(double(d_));
  const float q_scale = static_cast<float>(scale * 1.4426950408889634);
  for (int r = 0; r < num_rows_; ++r) {
    const int64_t i = rows.row_begin + r / rows.num_heads;
    const int64_t h = rows.head_begin + r % rows.num_heads;
    const float* q = args.q + (i * args.num_q_heads + h) * d;
    for (int64_t c = 0; c < d; ++c) qt_[c * rp + r] = q[c] * q_scale;
    row_pos_[r] = static_cast<int32_t>(rows.pos_offset + i);
  }
  for (int r = num_rows_; r < rp_; ++r) {
    for (int64_t c = 0; c < d; ++c) qt_[c * rp + r] = 0.0f;
    row_pos_[r] = static_cast<int32_t>(max_pos_);
  }
  if (pairs_) kernels_.pack_pairs(qt_, d_, rp_, qp_);
  std::fill(ot_, ot_ + d * rp, 0.0f);
  std::fill(row_max_, row_max_ + rp, -std::numeric_limits<float>::infinity());
  std::fill(row_sum_, row_sum_ + rp, 0.0f);
}

void QueryTile::load_key(int t, int64_t key) {
  const int64_t row = static_cast<int64_t>(t) * d_;
  if (pairs_) {
    std::copy_n(k_ + key * kv_stride_, d_, kh_ + row);
    std::copy_n(v_ + key * kv_stride_, d_, vh_ + row);
  } else {
    kernels_.widen(k_ + key * kv_stride_, kb_ + row, d_);
    kernels_.widen(v_ + key * kv_stride_, vb_ + row, d_);
  }
  key_pos_[t] = static_cast<int32_t>(key);
}

void QueryTile::run_block(int64_t count, int64_t max_key) {
  // Padding keys: zero values (0 * p must stay 0) and a position no row reaches.
  if (count < kKeyBlock) {
    const int64_t from = count * d_, to = int64_t{kKeyBlock} * d_;
    if (pairs_) {
      std::fill(kh_ + from, kh_ + to, uint16_t{0});
      std::fill(vh_ + from, vh_ + to, uint16_t{0});
    } else {
      std::fill(kb_ + from, kb_ + to, 0.0f);
      std::fill(vb_ + from, vb_ + to, 0.0f);
    }
    for (int64_t t = count; t < kKeyBlock; ++t) key_pos_[t] = kPaddingKey;
  }
  // The causal mask runs only where some key lies after some row: the diagonal blocks and partial ones.
  const bool masked = count < kKeyBlock || max_key > min_pos_;
  if (pairs_) {
    kernels_.scores_bf16(kh_, d_, qp_, rp_, s_);
    kernels_.softmax_pairs(s_, rp_, key_pos_, row_pos_, masked, row_max_, row_sum_, rescale_, pp_);
    kernels_.interleave_rows(vh_, kKeyBlock, d_, vp_);
    kernels_.accumulate_bf16(vp_, d_, pp_, rp_, rescale_, ot_);
    return;
  }
  kernels_.scores(kb_, d_, qt_, rp_, s_);
  kernels_.softmax(s_, rp_, key_pos_, row_pos_, masked, row_max_, row_sum_, rescale_);
  kernels_.accumulate(vb_, d_, s_, rp_, rescale_, ot_);
}

void QueryTile::add_key_range(int64_t first, int64_t count) {
  for (int t = 0; t < count; ++t) load_key(t, first + t);
  run_block(count, first + count - 1);
}

void QueryTile::add_key_list(const int32_t* keys, int64_t count) {
  int64_t max_key = 0;
  for (int t = 0; t < count; ++t) {
    load_key(t, keys[t]);
    max_key = std::max<int64_t>(max_key, keys[t]);
  }
  run_block(count, max_key);
}

void QueryTile::write_output() {
  const int64_t rp = rp_;
  for (int r = 0; r < num_rows_; ++r) {
    const int64_t i = rows_.row_begin + r / rows_.num_heads;
    const int64_t h = rows_.head_begin + r % rows_.num_heads;
    float* o = a_.o + (i * a_.num_q_heads + h) * d_;
    const float sum = row_sum_[r];
    for (int64_t c = 0; c < d_; ++c) o[c] = sum > 0.0f ? ot_[c * rp + r] / sum : 0.0f;
  }
}

}  // namespace sacc::cpu_attn
