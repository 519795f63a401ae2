// Shared by the dense-baseline GPU tests (cuDNN SDPA, eager): random bf16 inputs on the device, a run, and
// the comparison of O and LSE with the CPU fp64 oracle (reference/dense_attention.h).
#pragma once

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "attention/attention_params.h"
#include "core/device_info.h"
#include "core/dtype.h"
#include "reference/dense_attention.h"

namespace sacc::test {

// bf16 keeps 8 significant bits (7 stored + 1 implicit): one rounding moves a value by at most 2^-8 of
// itself.
constexpr double kBf16UnitRoundoff = 1.0 / 256.0;

struct BaselineCase {
  const char* name;
  int64_t seq_len;
  int num_q_heads, num_kv_heads, head_dim;
  bool fused_qkv =
      false;  // Q, K, V interleaved in one [L, Hq + 2 Hkv, d] buffer (what a fused QKV GEMM writes)
};

inline std::string case_name(const testing::TestParamInfo<BaselineCase>& info) {
  return info.param.name;
}

// L = 1, 113 (not a tile multiple), 1023 (one short of one); GQA 1 and 4; d 64 and 128; one strided layout.
inline std::vector<BaselineCase> baseline_cases() {
  return {
      {"L1_g1_d64", 1, 2, 2, 64},
      {"L1_g4_d128", 1, 8, 2, 128},
      {"L113_g1_d64", 113, 2, 2, 64},
      {"L113_g4_d128", 113, 8, 2, 128},
      {"L113_g4_d64", 113, 4, 1, 64},
      {"L1023_g1_d128", 1023, 2, 2, 128},
      {"L1023_g4_d64", 1023, 8, 2, 64},
      {"L1023_g4_d128", 1023, 8, 2, 128},
      {"L113_g4_d128_fused_qkv", 113, 8, 2, 128, true},
  };
}

// Device memory freed at scope exit.
struct DeviceBytes {
  void* data = nullptr;
  explicit DeviceBytes(size_t bytes) {
    EXPECT_EQ(cudaMalloc(&data, std::max<size_t>(bytes, 1)), cudaSuccess);
  }
  ~DeviceBytes() { cudaFree(data); }
  DeviceBytes(const DeviceBytes&) = delete;
  DeviceBytes& operator=(const DeviceBytes&) = delete;
};

// Runs `attention` on random bf16 inputs (uniform in [-2, 2] for Q and K so softmax rows are far from
// uniform) and checks O and LSE against the fp64 oracle. Tolerances from precision: the kernel rounds P and O
// to bf16, so |ΔO| <= u * max|V| + u * |O| <= 2u * max|V| elementwise; LSE is computed in fp32 (relative
// ~1e-6) from exact inputs, 1e-3 absolute leaves room for hardware exp approximations and nothing for a
// masking error (which moves LSE by more than log(1 + 1/L)).
inline void check_against_oracle(const BaselineCase& c,
                                 const std::function<Status(const AttentionParams&)>& attention) {
  const AttentionShape shape{c.seq_len, c.num_q_heads, c.num_kv_heads, c.head_dim};
  const int64_t L = c.seq_len, d = c.head_dim, hq = c.num_q_heads, hkv = c.num_kv_heads;
  std::mt19937 rng(static_cast<uint32_t>(L * 131 + hq * 7 + d));
  std::uniform_real_distribution<float> wide(-2.0f, 2.0f), unit(-1.0f, 1.0f);

  // Host fp32 copies hold exactly the bf16 values the device sees.
  std::vector<float> q(L * hq * d), k(L * hkv * d), v(L * hkv * d);
  for (float& x : q) x = round_to_bf16(wide(rng));
  for (float& x : k) x = round_to_bf16(wide(rng));
  for (float& x : v) x = round_to_bf16(unit(rng));

  // Device layout: contiguous tensors, or one fused [L, Hq + 2 Hkv, d] buffer.
  const int64_t row = c.fused_qkv ? (hq + 2 * hkv) * d : 0;
  std::vector<uint16_t> host_q(c.fused_qkv ? L * row : L * hq * d), host_k, host_v;
  if (!c.fused_qkv) {
    host_k.resize(L * hkv * d);
    host_v.resize(L * hkv * d);
  }
  for (int64_t i = 0; i < L; ++i) {
    for (int64_t e = 0; e < hq * d; ++e)
      host_q[(c.fused_qkv ? i * row : i * hq * d) + e] = float_to_bf16(q[i * hq * d + e]);
    for (int64_t e = 0; e < hkv * d; ++e) {
      const uint16_t kb = float_to_bf16(k[i * hkv * d + e]), vb = float_to_bf16(v[i * hkv * d + e]);
      if (c.fused_qkv) {
        host_q[i * row + hq * d + e] = kb;
        host_q[i * row + (hq + hkv) * d + e] = vb;
      } else {
        host_k[i * hkv * d + e] = kb;
        host_v[i * hkv * d + e] = vb;
      }
    }
  }
  DeviceBytes dq(host_q.size() * 2), dk(host_k.size() * 2), dv(host_v.size() * 2);
  DeviceBytes d_o(L * hq * d * 2), d_lse(hq * L * sizeof(float));
  ASSERT_EQ(cudaMemcpy(dq.data, host_q.data(), host_q.size() * 2, cudaMemcpyHostToDevice), cudaSuccess);
  if (!c.fused_qkv) {
    ASSERT_EQ(cudaMemcpy(dk.data, host_k.data(), host_k.size() * 2, cudaMemcpyHostToDevice), cudaSuccess);
    ASSERT_EQ(cudaMemcpy(dv.data, host_v.data(), host_v.size() * 2, cudaMemcpyHostToDevice), cudaSuccess);
  }
  // Poison the outputs so an unwritten element cannot pass.
  ASSERT_EQ(cudaMemset(d_o.data, 0xff, L * hq * d * 2), cudaSuccess);
  ASSERT_EQ(cudaMemset(d_lse.data, 0xff, hq * L * sizeof(float)), cudaSuccess);

  AttentionParams params;
  params.shape = shape;
  params.o = d_o.data;
  params.maybe_lse = static_cast<float*>(d_lse.data);
  if (c.fused_qkv) {
    auto* base = static_cast<uint16_t*>(dq.data);
    params.q = base;
    params.k = base + hq * d;
    params.v = base + (hq + hkv) * d;
    params.q_token_stride = params.kv_token_stride = row;
  } else {
    params.q = dq.data;
    params.k = dk.data;
    params.v = dv.data;
  }
  const Status status = attention(params);
  ASSERT_TRUE(status.is_ok()) << status.to_string();
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);

  std::vector<uint16_t> o_bits(L * hq * d);
  std::vector<float> lse(hq * L);
  ASSERT_EQ(cudaMemcpy(o_bits.data(), d_o.data, o_bits.size() * 2, cudaMemcpyDeviceToHost), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(lse.data(), d_lse.data, lse.size() * sizeof(float), cudaMemcpyDeviceToHost),
            cudaSuccess);

  ref::QkvView view{shape, q.data(), k.data(), v.data(), 0.0};
  Result<ref::AttentionResult> expected = ref::dense_attention(view);
  ASSERT_TRUE(expected.is_ok()) << expected.status().to_string();

  double max_v = 0.0;
  for (float x : v) max_v = std::max(max_v, static_cast<double>(std::fabs(x)));
  const double o_tolerance = 2.0 * kBf16UnitRoundoff * max_v + 1e-6;
  double worst_o = 0.0, err2 = 0.0, ref2 = 0.0;
  for (size_t e = 0; e < o_bits.size(); ++e) {
    const double got = bf16_to_float(o_bits[e]), want = expected->o[e];
    const double diff = std::isfinite(got) ? std::fabs(got - want) : INFINITY;
    worst_o = std::max(worst_o, diff);
    err2 += diff * diff;
    ref2 += want * want;
  }
  double worst_lse = 0.0;
  for (size_t e = 0; e < lse.size(); ++e) {
    const double diff = std::isfinite(lse[e]) ? std::fabs(lse[e] - expected->lse[e]) : INFINITY;
    worst_lse = std::max(worst_lse, diff);
  }
  EXPECT_LE(worst_o, o_tolerance) << "max |O - O_ref| (relative L2 "
                                  << std::sqrt(err2 / std::max(ref2, 1e-300)) << ")";
  EXPECT_LE(worst_lse, 1e-3) << "max |LSE - LSE_ref|";
}

}  // namespace sacc::test
