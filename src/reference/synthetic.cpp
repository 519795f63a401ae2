#include "reference/synthetic.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace sacc::ref {
namespace {

// splitmix64: tiny, fast and identical on every platform (std distributions are implementation-defined).
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  int64_t below(int64_t n) { return static_cast<int64_t>(next() % static_cast<uint64_t>(n)); }

 private:
  uint64_t state_;
};

// `count` distinct values from [lo, hi), ascending (fewer when the range is smaller).
std::vector<int32_t> distinct_sorted(Rng& rng, int64_t lo, int64_t hi, int64_t count) {
  std::vector<int32_t> out;
  if (hi <= lo) return out;
  count = std::min(count, hi - lo);
  std::vector<char> taken(hi - lo, 0);
  while (static_cast<int64_t>(out.size()) < count) {
    const int64_t x = lo + rng.below(hi - lo);
    if (taken[x - lo]) continue;
    taken[x - lo] = 1;
    out.push_back(static_cast<int32_t>(x));
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

Result<SyntheticInput> make_synthetic_input(const SyntheticConfig& config) {
  const AttentionShape& shape = config.shape;
  SACC_RETURN_IF_ERROR(shape.validate());
  if (shape.head_dim < 16 || shape.head_dim % 2 != 0) {
    return make_error(StatusCode::INVALID_ARGUMENT,
                      "synthetic input: head dim must be even and >= 16, got {}", shape.head_dim);
  }
  if (config.sinks < 0 || config.verticals < 0 || config.slashes < 0 || config.local_width < 1 ||
      config.topic_segment < 1 || config.topics < 1 || config.topics > 8 || config.topic_logit < 0.0) {
    return make_error(
        StatusCode::INVALID_ARGUMENT,
        "synthetic input: sinks, verticals, slashes, topic logit must be >= 0, local width and topic "
        "segment >= 1, topics in [1, 8]");
  }
  const int64_t seq_len = shape.seq_len;
  const int d = shape.head_dim;
  const int hq = shape.num_q_heads;
  const int hkv = shape.num_kv_heads;
  // Feature layout per head: rotary pairs in dims [0, 2F), the sink direction in dim 2F, the vertical one in
  // 2F+1, the topics in the next four (topic t is +-e_{t mod 4}: other topics are orthogonal or opposite).
  const int pairs = (d - 6) / 2;
  const int sink_dim = 2 * pairs;
  const int vertical_dim = sink_dim + 1;
  const int topic_dim = sink_dim + 2;
  // Every feature is scaled so a full hit gives `structure_logit` after the 1/sqrt(d) softmax scale.
  const double hit = config.structure_logit * std::sqrt(static_cast<double>(d));
  const double feature = std::sqrt(hit);
  const double rotary = std::sqrt(hit / pairs);
  const double topic_feature = std::sqrt(config.topic_logit * std::sqrt(static_cast<double>(d)));
  const int64_t segments = (seq_len + config.topic_segment - 1) / config.topic_segment;
  // Uniform noise of variance s^2 on q and k gives q.k/sqrt(d) a standard deviation of s^2.
  const double noise = std::sqrt(config.noise_logit) * std::sqrt(3.0);

  Rng rng(config.seed);
  std::vector<double> theta(pairs);
  for (double& t : theta) t = std::numbers::pi * rng.uniform(0.05, 1.0);

  SyntheticInput out;
  HostQkv& qkv = out.qkv;
  qkv.shape = shape;
  qkv.q.assign(static_cast<size_t>(seq_len * hq * d), 0.0f);
  qkv.k.assign(static_cast<size_t>(seq_len * hkv * d), 0.0f);
  qkv.v.assign(static_cast<size_t>(seq_len * hkv * d), 0.0f);

  // cos/sin of theta_f * i for every position: shared by all heads.
  std::vector<float> cos_table(static_cast<size_t>(seq_len * pairs)), sin_table(cos_table.size());
  for (int64_t i = 0; i < seq_len; ++i) {
    for (int f = 0; f < pairs; ++f) {
      cos_table[i * pairs + f] = static_cast<float>(std::cos(theta[f] * static_cast<double>(i)));
      sin_table[i * pairs + f] = static_cast<float>(std::sin(theta[f] * static_cast<double>(i)));
    }
  }

  // Topic of every (KV head, segment); a query uses its own segment's topic.
  std::vector<int> topic(static_cast<size_t>(hkv * segments));
  for (int& t : topic) t = static_cast<int>(rng.below(config.topics));
  auto add_topic = [&](float* x, int t, double weight) {
    x[topic_dim + t % 4] += static_cast<float>((t < 4 ? 1.0 : -1.0) * weight * topic_feature);
  };

  out.planted.vertical_columns.resize(hkv);
  out.planted.slash_offsets.resize(hkv);
  for (int kh = 0; kh < hkv; ++kh) {
    const int64_t sinks = std::min<int64_t>(config.sinks, seq_len);
    std::vector<int32_t> columns = distinct_sorted(rng, sinks, seq_len, config.verticals);
    std::vector<int32_t> offsets = distinct_sorted(
        rng, config.local_width, std::max<int64_t>(config.local_width, seq_len / 2), config.slashes);
    // k_j's rotary part is sum_o w_o * rot(theta (j + o)); folding the offsets into per-frequency (C_f, S_f)
    // makes it rot(theta j) applied to (C_f, S_f), O(F) per key.
    std::vector<double> c(pairs, 0.0), s(pairs, 0.0);
    auto add_offset = [&](int64_t offset, double weight) {
      for (int f = 0; f < pairs; ++f) {
        c[f] += weight * std::cos(theta[f] * static_cast<double>(offset));
        s[f] += weight * std::sin(theta[f] * static_cast<double>(offset));
      }
    };
    for (int o = 0; o < config.local_width; ++o) add_offset(o, std::ldexp(0.9, -o));
    for (int32_t o : offsets) add_offset(o, rng.uniform(0.8, 1.0));
    std::vector<float> column_weight(seq_len, 0.0f);
    for (int32_t j : columns) column_weight[j] = static_cast<float>(rng.uniform(0.8, 1.0));
    for (int64_t j = 0; j < seq_len; ++j) {
      float* k = qkv.k.data() + (j * hkv + kh) * static_cast<int64_t>(d);
      float* v = qkv.v.data() + (j * hkv + kh) * static_cast<int64_t>(d);
      for (int t = 0; t < d; ++t) {
        k[t] = static_cast<float>(rng.uniform(-noise, noise));
        v[t] = static_cast<float>(rng.uniform(-1.7320508, 1.7320508));
      }
      for (int f = 0; f < pairs; ++f) {
        const double cj = cos_table[j * pairs + f], sj = sin_table[j * pairs + f];
        k[2 * f] += static_cast<float>(rotary * (cj * c[f] - sj * s[f]));
        k[2 * f + 1] += static_cast<float>(rotary * (sj * c[f] + cj * s[f]));
      }
      if (j < sinks) k[sink_dim] += static_cast<float>(feature);
      k[vertical_dim] += static_cast<float>(feature * column_weight[j]);
      add_topic(k, topic[kh * segments + j / config.topic_segment], 1.0);
    }
    out.planted.vertical_columns[kh] = std::move(columns);
    out.planted.slash_offsets[kh] = std::move(offsets);
  }

  for (int h = 0; h < hq; ++h) {
    // Heads weigh the features differently, as real heads do (some mostly local, some mostly vertical, ...).
    const double w_sink = config.vary_heads ? rng.uniform(0.3, 1.0) : 1.0;
    const double w_vertical = config.vary_heads ? rng.uniform(0.3, 1.1) : 1.0;
    const double w_rotary = config.vary_heads ? rng.uniform(0.5, 1.1) : 1.0;
    const double w_topic = config.vary_heads ? rng.uniform(0.0, 1.5) : 1.0;
    const int kv_head = h / shape.group_size();
    for (int64_t i = 0; i < seq_len; ++i) {
      float* q = qkv.q.data() + (i * hq + h) * static_cast<int64_t>(d);
      for (int t = 0; t < d; ++t) q[t] = static_cast<float>(rng.uniform(-noise, noise));
      for (int f = 0; f < pairs; ++f) {
        q[2 * f] += static_cast<float>(w_rotary * rotary * cos_table[i * pairs + f]);
        q[2 * f + 1] += static_cast<float>(w_rotary * rotary * sin_table[i * pairs + f]);
      }
      q[sink_dim] += static_cast<float>(w_sink * feature);
      q[vertical_dim] += static_cast<float>(w_vertical * feature);
      add_topic(q, topic[kv_head * segments + i / config.topic_segment], w_topic);
    }
  }

  if (config.bf16_values) {
    for (std::vector<float>* x : {&qkv.q, &qkv.k, &qkv.v}) {
      for (float& value : *x) value = round_to_bf16(value);
    }
  }
  return out;
}

}  // namespace sacc::ref
