// Shared by the flash kernel tests (test_flash_attention.cpp, test_flash_suffix.cpp): random bf16 inputs,
// device arrays, the selector's kernel, a run with poisoned outputs and canaries after them, the fp64-oracle
// comparison with its tolerances, and the fixture that skips without a GPU.
#pragma once

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "attention/attention.h"
#include "attention/attention_params.h"
#include "attention/flash_choice.h"
#include "attention/sparse_index.h"
#include "core/device_info.h"
#include "core/dtype.h"
#include "reference/dense_attention.h"
#include "runtime/attention_selector.h"

namespace sacc::flash_test {

// Error budget: a same-precision kernel rounds P to bf16 before P.V and O to bf16 at the end, each a relative
// rms error of 2^-8 / sqrt(3); we allow twice that pair, as a relative L2 error per head.
inline const double kOTolerance = 2.0 * std::sqrt(2.0) * std::ldexp(1.0, -8) / std::sqrt(3.0);
// LSE is fp32 throughout (no bf16 rounding): fp32 accumulation over d and the exp2/log2 approximations.
inline constexpr double kLseTolerance = 2e-3;
inline constexpr uint16_t kPoisonBf16 =
    0x7fc1;  // a NaN: an unwritten output element cannot pass the comparison
inline constexpr int kCanaryElems = 4096;
inline constexpr uint16_t kCanary = 0x5a5a;

struct HostInput {
  AttentionShape shape;
  std::vector<uint16_t> q, k, v;  // bf16 bits: [L, Hq, d], [L, Hkv, d], [L, Hkv, d]
  std::vector<float> qf, kf, vf;  // the same values widened, for the oracle
};

inline HostInput random_input(const AttentionShape& shape, uint64_t seed) {
  HostInput in;
  in.shape = shape;
  std::mt19937_64 rng(seed);
  // Queries scaled so softmax rows are peaked (some heads), exercising the running-max rescale.
  std::normal_distribution<float> normal(0.0f, 1.0f);
  auto fill = [&](std::vector<uint16_t>& bits, std::vector<float>& values, int64_t count, float scale) {
    bits.resize(count);
    values.resize(count);
    for (int64_t i = 0; i < count; ++i) {
      bits[i] = float_to_bf16(normal(rng) * scale);
      values[i] = bf16_to_float(bits[i]);
    }
  };
  const int64_t q_count = shape.seq_len * shape.num_q_heads * shape.head_dim;
  const int64_t kv_count = shape.seq_len * shape.num_kv_heads * shape.head_dim;
  fill(in.q, in.qf, q_count, 2.0f);
  fill(in.k, in.kf, kv_count, 1.0f);
  fill(in.v, in.vf, kv_count, 1.0f);
  return in;
}

template <typename T>
struct DeviceArray {
  T* data = nullptr;
  size_t count = 0;
  explicit DeviceArray(size_t n) : count(n) {
    if (n) {
      EXPECT_EQ(cudaMalloc(&data, n * sizeof(T)), cudaSuccess);
    }
  }
  DeviceArray(const std::vector<T>& host) : DeviceArray(host.size()) {
    if (count) {
      EXPECT_EQ(cudaMemcpy(data, host.data(), count * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
    }
  }
  ~DeviceArray() {
    if (data) cudaFree(data);
  }
  std::vector<T> download() const {
    std::vector<T> host(count);
    if (count) {
      EXPECT_EQ(cudaMemcpy(host.data(), data, count * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    }
    return host;
  }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
};

struct GpuOutput {
  std::vector<uint16_t> o;  // [n, Hq, d] bf16 bits: the n query rows run (all L, or the rows from q_begin on)
  std::vector<float> lse;   // [Hq, n]
};

// The attention selector's kernel on the current device (SACC_FLASH_BODY picks the body under test).
inline FlashKernelChoice selected_kernel(const AttentionShape& s, const IndexGeometry* maybe_geometry) {
  int device = 0;
  EXPECT_EQ(cudaGetDevice(&device), cudaSuccess);
  Result<FlashKernelChoice> choice = flash_kernel_for_device(device, maybe_geometry, s.group_size());
  EXPECT_TRUE(choice.is_ok()) << choice.status().to_string();
  return choice.is_ok() ? *choice : FlashKernelChoice{};
}

// Q, K and V interleaved per token as one fused projection output: [L, Hq + 2 Hkv, d].
inline std::vector<uint16_t> fuse_qkv(const HostInput& in) {
  const AttentionShape& s = in.shape;
  const int64_t width = s.num_q_heads + 2 * s.num_kv_heads;
  std::vector<uint16_t> fused(s.seq_len * width * s.head_dim);
  for (int64_t i = 0; i < s.seq_len; ++i) {
    for (int h = 0; h < s.num_q_heads; ++h)
      std::copy_n(in.q.begin() + (i * s.num_q_heads + h) * s.head_dim, s.head_dim,
                  fused.begin() + (i * width + h) * s.head_dim);
    for (int h = 0; h < s.num_kv_heads; ++h) {
      std::copy_n(in.k.begin() + (i * s.num_kv_heads + h) * s.head_dim, s.head_dim,
                  fused.begin() + (i * width + s.num_q_heads + h) * s.head_dim);
      std::copy_n(in.v.begin() + (i * s.num_kv_heads + h) * s.head_dim, s.head_dim,
                  fused.begin() + (i * width + s.num_q_heads + s.num_kv_heads + h) * s.head_dim);
    }
  }
  return fused;
}

// Where the kernel reads Q and writes O.
enum class Layout {
  CONTIGUOUS,  // separate Q, K, V and O tensors
  FUSED_QKV,   // Q/K/V through token/head strides out of one fused projection buffer
  O_OVER_Q,    // O written over Q (the runtime's in-place use)
};

// Runs attention_run_cuda with poisoned O/LSE and a canary region after O; fails the test on any error.
// maybe_kernel: a kernel choice to force (default: the selector's). q_begin > 0: only the query rows
// [q_begin, L) are handed to the kernel (AttentionParams::q_begin), and only they come back.
// A host SparseIndex uploaded to the device, and the view the kernels read (empty arrays: a null view).
struct DeviceIndex {
  DeviceArray<int32_t> block_offsets, block_ids, column_offsets, column_ids;
  SparseIndexView view;

  explicit DeviceIndex(const SparseIndex& index)
      : block_offsets(index.block_offsets),
        block_ids(index.block_ids),
        column_offsets(index.column_offsets),
        column_ids(index.column_ids) {
    view.geometry = index.geometry;
    view.block_offsets = block_offsets.data;
    view.block_ids = block_ids.data;
    view.column_offsets = column_offsets.data;
    view.column_ids = column_ids.data;
  }
};

inline GpuOutput run_gpu(const HostInput& in, const SparseIndex* maybe_index,
                         Layout layout = Layout::CONTIGUOUS,
                         std::optional<FlashKernelChoice> maybe_kernel = std::nullopt, int64_t q_begin = 0,
                         size_t extra_workspace = 0) {
  const AttentionShape& s = in.shape;
  const bool fused_qkv = layout == Layout::FUSED_QKV;
  const int64_t n = s.seq_len - q_begin;  // query rows
  const size_t o_count = static_cast<size_t>(n) * s.num_q_heads * s.head_dim;
  const std::vector<uint16_t> q_rows(in.q.end() - static_cast<std::ptrdiff_t>(o_count), in.q.end());
  DeviceArray<uint16_t> q(fused_qkv ? std::vector<uint16_t>{} : q_rows),
      k(fused_qkv ? std::vector<uint16_t>{} : in.k), v(fused_qkv ? std::vector<uint16_t>{} : in.v);
  DeviceArray<uint16_t> fused(fused_qkv ? fuse_qkv(in) : std::vector<uint16_t>{});
  std::vector<uint16_t> o_init(o_count + kCanaryElems, kPoisonBf16);
  std::fill(o_init.begin() + o_count, o_init.end(), kCanary);
  if (layout == Layout::O_OVER_Q) std::copy(q_rows.begin(), q_rows.end(), o_init.begin());
  DeviceArray<uint16_t> o(o_init);
  DeviceArray<float> lse(std::vector<float>(n * s.num_q_heads, std::nanf("")));

  const DeviceIndex device_index(maybe_index ? *maybe_index : SparseIndex{});
  const SparseIndexView& view = device_index.view;
  auto selection = attention_select_cuda(s, maybe_index ? &view.geometry : nullptr);
  EXPECT_TRUE(selection.is_ok()) << selection.status().to_string();
  if (!selection.is_ok()) return {};
  // Beyond what the selector asks: room a suffix launch may use to split its keys (attention.h).
  const size_t workspace_bytes = selection->workspace_bytes + extra_workspace;
  DeviceArray<unsigned char> workspace(workspace_bytes);

  AttentionParams params;
  params.shape = s;
  params.q = q.data;
  params.k = k.data;
  params.v = v.data;
  if (fused_qkv) {
    const int64_t token_stride = int64_t{s.num_q_heads + 2 * s.num_kv_heads} * s.head_dim;
    params.q = fused.data + q_begin * token_stride;
    params.k = fused.data + int64_t{s.num_q_heads} * s.head_dim;
    params.v = fused.data + int64_t{s.num_q_heads + s.num_kv_heads} * s.head_dim;
    params.q_token_stride = params.kv_token_stride = token_stride;
    params.q_head_stride = params.kv_head_stride = s.head_dim;
  }
  params.o = o.data;
  if (layout == Layout::O_OVER_Q) params.q = o.data;
  params.maybe_lse = lse.data;
  params.q_begin = q_begin;
  const FlashKernelChoice kernel =
      maybe_kernel.value_or(selected_kernel(s, maybe_index ? &maybe_index->geometry : nullptr));
  const Status status = attention_run_cuda(params, maybe_index ? &view : nullptr, kernel, workspace.data,
                                           workspace_bytes, nullptr);
  EXPECT_TRUE(status.is_ok()) << status.to_string();
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);

  GpuOutput out;
  std::vector<uint16_t> o_all = o.download();
  for (size_t i = o_count; i < o_all.size(); ++i) {
    if (o_all[i] != kCanary) {
      ADD_FAILURE() << "canary after O overwritten at element " << i - o_count;
      break;
    }
  }
  o_all.resize(o_count);
  out.o = std::move(o_all);
  out.lse = lse.download();
  return out;
}

// Per-head relative L2 error of O and max LSE error against an fp64 result; NaN (unwritten) never passes.
inline void expect_close(const GpuOutput& gpu, const ref::AttentionResult& want, const std::string& what) {
  const AttentionShape& s = want.shape;
  ASSERT_EQ(gpu.o.size(), want.o.size()) << what;
  for (int h = 0; h < s.num_q_heads; ++h) {
    double err = 0, norm = 0;
    for (int64_t i = 0; i < s.seq_len; ++i) {
      for (int c = 0; c < s.head_dim; ++c) {
        const size_t at = (static_cast<size_t>(i) * s.num_q_heads + h) * s.head_dim + c;
        const double got = bf16_to_float(gpu.o[at]);
        ASSERT_FALSE(std::isnan(got))
            << what << ": O[" << i << ", " << h << ", " << c << "] unwritten or NaN";
        err += (got - want.o[at]) * (got - want.o[at]);
        norm += want.o[at] * want.o[at];
      }
    }
    const double rel = norm > 0 ? std::sqrt(err / norm) : std::sqrt(err);
    EXPECT_LE(rel, kOTolerance) << what << ": head " << h << " relative L2 error of O";
  }
  for (size_t i = 0; i < want.lse.size(); ++i) {
    const double w = want.lse[i], g = gpu.lse[i];
    if (std::isinf(w)) {
      ASSERT_TRUE(std::isinf(g) && g < 0) << what << ": LSE[" << i << "] = " << g << ", want -inf";
    } else {
      ASSERT_LE(std::abs(g - w), kLseTolerance * (1.0 + std::abs(w))) << what << ": LSE[" << i << "]";
    }
  }
}

inline ref::QkvView oracle_view(const HostInput& in) {
  return {in.shape, in.qf.data(), in.kf.data(), in.vf.data(), 0.0};
}

class FlashGpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  }
};

}  // namespace sacc::flash_test
