#include "attention_bench_inputs.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "core/cuda/cuda_check.h"

namespace sacc::bench {
namespace {

constexpr int kSinks = 4;
constexpr int kVerticals = 16;           // planted columns per KV head
constexpr int kSlashes = 4;              // planted slash offsets per KV head besides the local ones
constexpr int kLocalWidth = 8;           // local offsets [0, 8), weights halving per step
constexpr double kStructureLogit = 9.0;  // logit of a full hit after the 1/sqrt(d) scale
constexpr double kNoiseLogit = 1.0;      // standard deviation of the logit noise between unrelated q and k

template <typename T>
Status upload(const std::vector<T>& values, DeviceBuffer& buffer, int device, const char* what) {
  SACC_ASSIGN_OR_RETURN(buffer, DeviceBuffer::create(device, values.size() * sizeof(T), what));
  SACC_CUDA_TRY(cudaMemcpy(buffer.data(), values.data(), values.size() * sizeof(T), cudaMemcpyHostToDevice));
  return Status::ok();
}

}  // namespace

Result<StructuredInput> StructuredInput::create(const AttentionShape& shape, uint64_t seed, int device) {
  SACC_RETURN_IF_ERROR(shape.validate());
  const int d = shape.head_dim, pairs = (d - 2) / 2;
  if (d < 8 || d % 2 != 0) {
    return make_error(StatusCode::INVALID_ARGUMENT,
                      "structured input: head dim must be even and >= 8, got {}", d);
  }
  const int64_t L = shape.seq_len;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  auto uniform = [&](double lo, double hi) { return lo + (hi - lo) * unit(rng); };

  // Frequencies from 1 rad/token down to 1/L: high ones make the local peak sharp, low ones make attention
  // decay slowly with distance, so the strongest slashes sit near the diagonal as in real heads.
  std::vector<double> theta(pairs);
  for (int f = 0; f < pairs; ++f) {
    theta[f] = pairs > 1 ? std::pow(1.0 / static_cast<double>(std::max<int64_t>(L, 2)),
                                    static_cast<double>(f) / (pairs - 1))
                         : 1.0;
  }
  std::vector<float> k_rotary(static_cast<size_t>(shape.num_kv_heads) * pairs * 2);
  std::vector<float> column_weight(static_cast<size_t>(shape.num_kv_heads * L), 0.0f);
  for (int kh = 0; kh < shape.num_kv_heads; ++kh) {
    // A key's rotary part is sum_o w_o rot(theta (j + o)): folding the offsets into (C_f, S_f) makes q_i .
    // k_j peak at i - j = o for every planted o.
    std::vector<std::pair<int64_t, double>> offsets;
    for (int o = 0; o < kLocalWidth; ++o) offsets.emplace_back(o, std::ldexp(0.9, -o));
    for (int s = 0; s < kSlashes && L / 2 > kLocalWidth; ++s) {
      offsets.emplace_back(
          kLocalWidth + static_cast<int64_t>(unit(rng) * static_cast<double>(L / 2 - kLocalWidth)),
          uniform(0.8, 1.0));
    }
    for (int f = 0; f < pairs; ++f) {
      double c = 0.0, s = 0.0;
      for (const auto& [o, w] : offsets) {
        c += w * std::cos(theta[f] * static_cast<double>(o));
        s += w * std::sin(theta[f] * static_cast<double>(o));
      }
      k_rotary[(kh * pairs + f) * 2] = static_cast<float>(c);
      k_rotary[(kh * pairs + f) * 2 + 1] = static_cast<float>(s);
    }
    for (int c = 0; c < kVerticals && L > kSinks; ++c) {
      const int64_t j = kSinks + static_cast<int64_t>(unit(rng) * static_cast<double>(L - kSinks));
      column_weight[kh * L + std::min(j, L - 1)] = static_cast<float>(uniform(0.8, 1.0));
    }
  }
  // Query heads weigh the features differently, as real heads do.
  std::vector<float> q_weights(static_cast<size_t>(shape.num_q_heads) * 3);
  for (int h = 0; h < shape.num_q_heads; ++h) {
    q_weights[3 * h] = static_cast<float>(uniform(0.5, 1.1));
    q_weights[3 * h + 1] = static_cast<float>(uniform(0.3, 1.1));
    q_weights[3 * h + 2] = static_cast<float>(uniform(0.5, 1.1));
  }

  StructuredInput input;
  SACC_RETURN_IF_ERROR(upload(theta, input.theta_, device, "structured input tables"));
  SACC_RETURN_IF_ERROR(upload(k_rotary, input.k_rotary_, device, "structured input tables"));
  SACC_RETURN_IF_ERROR(upload(q_weights, input.q_weights_, device, "structured input tables"));
  SACC_RETURN_IF_ERROR(upload(column_weight, input.column_weight_, device, "structured input tables"));
  // Scaled so a full hit gives kStructureLogit after the softmax scale (see reference/synthetic.cpp).
  const double hit = kStructureLogit * std::sqrt(static_cast<double>(d));
  StructuredTables& t = input.tables_;
  t.pairs = pairs;
  t.theta = input.theta_.as<double>();
  t.k_rotary = input.k_rotary_.as<float>();
  t.q_weights = input.q_weights_.as<float>();
  t.column_weight = input.column_weight_.as<float>();
  t.sinks = std::min<int64_t>(kSinks, L);
  t.rotary = static_cast<float>(std::sqrt(hit / pairs));
  t.feature = static_cast<float>(std::sqrt(hit));
  t.noise = static_cast<float>(std::sqrt(kNoiseLogit) * std::sqrt(3.0));
  return input;
}

}  // namespace sacc::bench
