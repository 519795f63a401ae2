// What a run needs on its device — weights + KV cache + workspace — against what the device has, so a prompt
// that cannot fit fails up front with the shortfall named instead of dying halfway through prefill.
#pragma once

#include <cstdint>
#include <string>

#include "core/tensor.h"
#include "model/model_config.h"
#include "runtime/linear_mode.h"

namespace sacc {

struct MemoryPlan {
  std::string device;     // "cpu", "cuda:0"
  int64_t tokens = 0;     // prompt + generated positions the KV cache holds
  uint64_t weights = 0;   // bytes: fp32 on the CPU, bf16 on the GPU (linear layers e4m3 + scales with FP8)
  uint64_t kv_cache = 0;  // bytes: 2 * N * tokens * Hkv * d * 2 (bf16)
  uint64_t workspace =
      0;  // bytes: activations of the longest step (prefill), attention workspace, a decode step's
  uint64_t available = 0;  // bytes the device can give (free memory, capped by a budget); 0 when unknown
  uint64_t total() const { return weights + kv_cache + workspace; }
  std::string describe() const;  // multi-line table for `sacc info`
};

// The bf16 KV cache of `tokens` positions, every layer's K and V: 2 * N * tokens * Hkv * d * 2 bytes.
uint64_t kv_cache_bytes(const ModelConfig& config, int64_t tokens);

// Device buffers of the CUDA backend's prefill, in bytes (used by both the plan and the backend's allocator).
struct CudaWorkspaceSizes {
  uint64_t hidden = 0;     // [L, D] bf16 residual stream
  uint64_t q_or_mlp = 0;   // [L, Hq*d] bf16 queries; reused by the MLP chunk buffers [c, 2F] after attention
  uint64_t attn_out = 0;   // [L, Hq*d] bf16; 0 when attention writes its output over the queries
  uint64_t normed = 0;     // [c, D] bf16
  uint64_t attention = 0;  // attention kernels' own workspace (sparse plan: index, estimation scratch)
  // FP8 linear layers: a chunk's quantised input [c, max(D, Hq*d, F)] e4m3 + its per-token scales [c] fp32.
  uint64_t fp8_input = 0;
  // The normed chunk and the attention workspace are never live at once: one buffer holds either.
  uint64_t scratch() const { return normed > attention ? normed : attention; }
  uint64_t logits = 0;  // [logit_rows_per_step, V] fp32 LM-head output (0 on a GPU without the LM head)
  uint64_t small = 0;   // RoPE tables, GEMM workspace
  uint64_t total() const { return hidden + q_or_mlp + attn_out + scratch() + fp8_input + logits + small; }
};

// The LM head over several rows (BackendOptions::prefill_logit_rows) runs in steps of at most this many rows,
// so the device holds fp32 logits [256, V] (148 MiB at V = 151936) and never [rows, V]; the host receives
// [rows, V].
constexpr int64_t kMaxLogitRowsPerStep = 256;
// Rows per LM-head step for the last `logit_rows` positions of a `tokens`-token prefill whose linear layers
// run over `chunk` tokens: at most a chunk, since the step's normed rows live in the [chunk, D] buffer.
// 0 when logit_rows is 0 (a GPU without the LM head).
int64_t logit_rows_per_step(int64_t logit_rows, int64_t tokens, int64_t chunk);

// `separate_output`: the attention kernel cannot write over its queries (the cuDNN and eager baselines);
// `logit_rows`: prefill logit rows on this GPU (1 for generation, 0 on a GPU without the LM head).
CudaWorkspaceSizes cuda_workspace_sizes(const ModelConfig& config, int64_t tokens, int64_t chunk,
                                        uint64_t attention_workspace, bool separate_output,
                                        int64_t logit_rows = 1, LinearMode linear = LinearMode::BF16);

// The CUDA backend's batch-step workspace (DeviceShard: the decode steps of up to `rows` sequences, beside
// the prefill's): the activations of `rows` tokens, no attention workspace (a step's attention runs in the
// decode scratch), the output over the queries, logits for every row where `lm_head`; small is 0 (counted
// with the prefill's).
CudaWorkspaceSizes cuda_step_workspace_sizes(const ModelConfig& config, int64_t rows, int64_t chunk,
                                             bool lm_head, LinearMode linear);

// The plan for `tokens` positions with linear layers over `chunk` tokens; `attention_workspace` as the
// attention library reports it for that length (0 on the CPU); `logit_rows` and `linear` as BackendOptions
// has them.
MemoryPlan plan_memory(const ModelConfig& config, int64_t tokens, int64_t chunk, const Device& device,
                       uint64_t attention_workspace = 0, bool separate_output = false, int64_t logit_rows = 1,
                       LinearMode linear = LinearMode::BF16);

// INVALID_ARGUMENT when tokens exceed the model's context, OUT_OF_MEMORY naming each part and the shortfall
// when the plan does not fit the available memory (the plan's table attached, core/out_of_memory.h).
Status check_plan(const MemoryPlan& plan, const ModelConfig& config);

// --budget: caps what the plan may use ("24GiB"; "" = no cap). On a GPU it also caps the DeviceAllocator, so
// the run itself fails cleanly at the budget.
Status apply_memory_budget(const std::string& budget, const Device& device, MemoryPlan& plan);

// Free memory a device can give: MemAvailable for the CPU; for a GPU, cudaMemGetInfo's free bytes capped by a
// DeviceAllocator budget. 0 when it cannot be determined.
uint64_t available_memory(const Device& device);

}  // namespace sacc
