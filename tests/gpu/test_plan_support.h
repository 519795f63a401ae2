// Shared by the GPU plan() tests: upload synthetic Q/K, run plan() (eagerly or captured in a CUDA graph),
// copy the index and the Interval-Slash selections back, and check selections against the CPU oracle's scores
// with a tie-tolerant rule.
#pragma once

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "attention/attention_params.h"
#include "attention/cuda/plan_layout.h"
#include "attention/plan.h"
#include "core/dtype.h"
#include "reference/qkv.h"

namespace sacc::plan_test {

// Device memory freed at scope exit.
class DeviceMemory {
 public:
  explicit DeviceMemory(size_t bytes) {
    ok_ = cudaMalloc(&data_, std::max<size_t>(bytes, 256)) == cudaSuccess;
  }
  ~DeviceMemory() { cudaFree(data_); }
  DeviceMemory(const DeviceMemory&) = delete;
  DeviceMemory& operator=(const DeviceMemory&) = delete;
  void* get() const { return data_; }
  bool ok() const { return ok_; }

 private:
  void* data_ = nullptr;
  bool ok_ = false;
};

struct GpuPlanResult {
  SparseIndex index;
  // Per index head (empty for other kinds): the chosen verticals and slash offsets, ascending.
  std::vector<std::vector<int32_t>> verticals;
  std::vector<std::vector<int32_t>> slashes;
};

inline std::vector<uint16_t> to_bf16(const std::vector<float>& values) {
  std::vector<uint16_t> out(values.size());
  for (size_t n = 0; n < values.size(); ++n) out[n] = float_to_bf16(values[n]);
  return out;
}

template <typename T>
std::vector<T> copy_back(const char* base, size_t offset, size_t count) {
  std::vector<T> out(count);
  if (count > 0) {
    EXPECT_EQ(cudaMemcpy(out.data(), base + offset, count * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
  }
  return out;
}

// Runs plan() on the GPU; with `capture` the call is recorded into a CUDA graph (global capture mode fails on
// any host synchronisation) and the graph is launched instead.
inline void run_gpu_plan(const ref::HostQkv& qkv, const LayerPatterns& patterns,
                         const IndexGeometry& geometry, bool capture, GpuPlanResult* out) {
  const std::vector<uint16_t> q = to_bf16(qkv.q);
  const std::vector<uint16_t> k = to_bf16(qkv.k);
  DeviceMemory q_dev(q.size() * 2), k_dev(k.size() * 2);
  ASSERT_TRUE(q_dev.ok() && k_dev.ok());
  ASSERT_EQ(cudaMemcpy(q_dev.get(), q.data(), q.size() * 2, cudaMemcpyHostToDevice), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(k_dev.get(), k.data(), k.size() * 2, cudaMemcpyHostToDevice), cudaSuccess);
  AttentionParams params;
  params.shape = qkv.shape;
  params.q = q_dev.get();
  params.k = k_dev.get();
  const Result<size_t> bytes = plan_workspace_bytes(qkv.shape, patterns, geometry);
  ASSERT_TRUE(bytes.is_ok()) << bytes.status().to_string();
  DeviceMemory workspace(*bytes);
  ASSERT_TRUE(workspace.ok());
  // Poison: every entry the index exposes must have been written by plan().
  ASSERT_EQ(cudaMemset(workspace.get(), 0xA5, *bytes), cudaSuccess);
  // plan() runs on a non-blocking stream, which does not wait for the legacy stream: the uploads above (a
  // pageable cudaMemcpy may return before its DMA lands) and the poison must be complete first.
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  Result<SparseIndexView> view = Status(StatusCode::INTERNAL, "not run");
  if (capture) {
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), cudaSuccess);
    view = plan(params, patterns, geometry, workspace.get(), *bytes, stream);
    ASSERT_EQ(cudaStreamEndCapture(stream, &graph), cudaSuccess);
    ASSERT_TRUE(view.is_ok()) << view.status().to_string();
    ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
    ASSERT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);
    ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
  } else {
    view = plan(params, patterns, geometry, workspace.get(), *bytes, stream);
    ASSERT_TRUE(view.is_ok()) << view.status().to_string();
    ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  }
  cudaStreamDestroy(stream);

  const char* base = static_cast<const char*>(workspace.get());
  const size_t slots = static_cast<size_t>(geometry.num_slots());
  SparseIndex& index = out->index;
  index.geometry = geometry;
  index.block_offsets.resize(slots + 1);
  index.column_offsets.resize(slots + 1);
  ASSERT_EQ(
      cudaMemcpy(index.block_offsets.data(), view->block_offsets, (slots + 1) * 4, cudaMemcpyDeviceToHost),
      cudaSuccess);
  ASSERT_EQ(
      cudaMemcpy(index.column_offsets.data(), view->column_offsets, (slots + 1) * 4, cudaMemcpyDeviceToHost),
      cudaSuccess);
  ASSERT_GE(index.block_offsets.back(), 0);
  ASSERT_GE(index.column_offsets.back(), 0);
  index.block_ids.resize(index.block_offsets.back());
  index.column_ids.resize(index.column_offsets.back());
  if (!index.block_ids.empty()) {
    ASSERT_EQ(cudaMemcpy(index.block_ids.data(), view->block_ids, index.block_ids.size() * 4,
                         cudaMemcpyDeviceToHost),
              cudaSuccess);
  }
  if (!index.column_ids.empty()) {
    ASSERT_EQ(cudaMemcpy(index.column_ids.data(), view->column_ids, index.column_ids.size() * 4,
                         cudaMemcpyDeviceToHost),
              cudaSuccess);
  }

  // The Interval-Slash selections, read from the workspace layout (internal, for tests).
  const Result<plan_detail::PlanLayout> layout = plan_detail::make_plan_layout(qkv.shape, patterns, geometry);
  ASSERT_TRUE(layout.is_ok());
  out->verticals.assign(geometry.num_heads, {});
  out->slashes.assign(geometry.num_heads, {});
  const int64_t seq_len = qkv.shape.seq_len;
  for (int h = 0; h < geometry.num_heads; ++h) {
    const plan_detail::HeadPlan& head = layout->heads.head[h];
    if (head.kind != plan_detail::kKindIntervalSlash) continue;
    const auto count = copy_back<int32_t>(base, layout->is_column_count + head.ordinal * 4, 1);
    ASSERT_TRUE(count[0] >= 0 && count[0] <= seq_len);
    out->verticals[h] = copy_back<int32_t>(base, layout->is_columns + head.ordinal * seq_len * 4, count[0]);
    const auto prefix =
        copy_back<int32_t>(base, layout->is_slash_prefix + head.ordinal * (seq_len + 1) * 4, seq_len + 1);
    for (int64_t o = 0; o < seq_len; ++o) {
      if (prefix[o + 1] != prefix[o]) out->slashes[h].push_back(static_cast<int32_t>(o));
    }
    ASSERT_EQ(static_cast<int64_t>(out->slashes[h].size()), prefix[seq_len]);
  }
}

// What a correct selection from `scores` must satisfy, whatever the tie-breaking and fp32 rounding:
//  * forced entries first: if any non-forced entry is chosen, every forced one is;
//  * top by score: every chosen non-forced score >= every unchosen non-forced score (relative slack `eps`);
//  * size: fixed budget -> exactly the cap; adaptive -> at most the cap, reaching gamma * total (or the cap),
//    and minimal: without its weakest member the set stays short of the target (slack eps * total).
struct SelectionRuleCheck {
  int64_t cap = 0;
  double gamma = 0.0;
  double total = 0.0;
  bool keep_all_forced = false;
  double eps = 2e-3;
};

inline ::testing::AssertionResult check_selection(const std::vector<float>& scores,
                                                  const std::vector<int32_t>& forced,
                                                  const std::vector<int32_t>& chosen,
                                                  const SelectionRuleCheck& rule) {
  const int64_t n = static_cast<int64_t>(scores.size());
  std::vector<char> is_forced(n, 0), is_chosen(n, 0);
  for (int32_t f : forced) is_forced[f] = 1;
  for (size_t i = 0; i < chosen.size(); ++i) {
    if (chosen[i] < 0 || chosen[i] >= n || (i > 0 && chosen[i] <= chosen[i - 1])) {
      return ::testing::AssertionFailure() << "chosen ids are not ascending in range at " << i;
    }
    is_chosen[chosen[i]] = 1;
  }
  bool any_rest = false, all_forced = true;
  float min_chosen = INFINITY, max_unchosen = -INFINITY;
  int32_t weakest = -1;
  for (int64_t i = 0; i < n; ++i) {
    if (is_forced[i]) {
      all_forced = all_forced && is_chosen[i];
      continue;
    }
    if (is_chosen[i]) {
      any_rest = true;
      if (scores[i] < min_chosen) {
        min_chosen = scores[i];
        weakest = static_cast<int32_t>(i);
      }
    } else {
      max_unchosen = std::max(max_unchosen, scores[i]);
    }
  }
  if (any_rest && !all_forced) return ::testing::AssertionFailure() << "a forced entry was dropped";
  if (any_rest && min_chosen < max_unchosen * (1.0 - rule.eps) - 1e-7) {
    return ::testing::AssertionFailure()
           << "chosen score " << min_chosen << " below unchosen " << max_unchosen;
  }
  const int64_t size = static_cast<int64_t>(chosen.size());
  if (rule.gamma <= 0.0) {
    if (size != rule.cap) return ::testing::AssertionFailure() << "chose " << size << ", budget " << rule.cap;
    return ::testing::AssertionSuccess();
  }
  if (size > rule.cap)
    return ::testing::AssertionFailure() << "adaptive chose " << size << " > cap " << rule.cap;
  double mass = 0.0;
  for (int32_t c : chosen) mass += scores[c];
  const double target = rule.gamma * rule.total;
  const double slack = rule.eps * rule.total;
  if (size < rule.cap && mass < target - slack) {
    return ::testing::AssertionFailure() << "adaptive mass " << mass << " short of " << target;
  }
  const int64_t minimum = rule.keep_all_forced ? static_cast<int64_t>(forced.size()) : 0;
  if (size > minimum && weakest >= 0 && mass - scores[weakest] >= target + slack) {
    return ::testing::AssertionFailure()
           << "adaptive set not minimal: mass " << mass << ", target " << target;
  }
  return ::testing::AssertionSuccess();
}

// One slot's block list of an index.
inline std::vector<int32_t> slot_blocks(const SparseIndex& index, int64_t slot) {
  return {index.block_ids.begin() + index.block_offsets[slot],
          index.block_ids.begin() + index.block_offsets[slot + 1]};
}
inline std::vector<int32_t> slot_columns(const SparseIndex& index, int64_t slot) {
  return {index.column_ids.begin() + index.column_offsets[slot],
          index.column_ids.begin() + index.column_offsets[slot + 1]};
}

}  // namespace sacc::plan_test
