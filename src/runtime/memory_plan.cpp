#include "runtime/memory_plan.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "core/device_info.h"
#include "core/out_of_memory.h"
#if defined(SACC_WITH_CUDA)
#include "core/cuda/device_memory.h"
#endif

namespace sacc {
namespace {
constexpr uint64_t kBf16 = 2, kF32 = 4;
constexpr uint64_t kGemmWorkspace = 32ull << 20;  // cuBLASLt workspace
uint64_t align256(uint64_t bytes) {
  return (bytes + 255) / 256 * 256;
}
}  // namespace

uint64_t kv_cache_bytes(const ModelConfig& c, int64_t tokens) {
  return 2ull * c.num_layers * static_cast<uint64_t>(std::max<int64_t>(tokens, 0)) * c.kv_dim() * kBf16;
}

int64_t logit_rows_per_step(int64_t logit_rows, int64_t tokens, int64_t chunk) {
  if (logit_rows <= 0) return 0;
  const int64_t L = std::max<int64_t>(tokens, 1);
  return std::min({logit_rows, L, std::clamp<int64_t>(chunk, 1, L), kMaxLogitRowsPerStep});
}

CudaWorkspaceSizes cuda_workspace_sizes(const ModelConfig& c, int64_t tokens, int64_t chunk,
                                        uint64_t attention_workspace, bool separate_output,
                                        int64_t logit_rows, LinearMode linear) {
  const uint64_t L = static_cast<uint64_t>(std::max<int64_t>(tokens, 1));
  const uint64_t C = static_cast<uint64_t>(std::clamp<int64_t>(chunk, 1, tokens));
  CudaWorkspaceSizes s;
  s.hidden = L * c.hidden * kBf16;
  s.q_or_mlp = std::max(L * c.q_dim() * kBf16, 2 * C * c.ffn * kBf16);
  s.attn_out = separate_output ? L * c.q_dim() * kBf16 : 0;
  s.normed = C * c.hidden * kBf16;
  s.attention = attention_workspace;
  if (linear == LinearMode::FP8) {
    const uint64_t widest = static_cast<uint64_t>(std::max({c.hidden, c.q_dim(), c.ffn}));
    s.fp8_input = align256(C * widest) + align256(C * kF32);
  }
  s.logits = static_cast<uint64_t>(logit_rows_per_step(logit_rows, tokens, chunk)) * c.vocab * kF32;
  s.small = static_cast<uint64_t>(c.vocab) * kBf16 + c.hidden * kBf16 + kGemmWorkspace +
            static_cast<uint64_t>(c.head_dim) * kF32 * 2;
  return s;
}

CudaWorkspaceSizes cuda_step_workspace_sizes(const ModelConfig& c, int64_t rows, int64_t chunk, bool lm_head,
                                             LinearMode linear) {
  CudaWorkspaceSizes s = cuda_workspace_sizes(c, rows, chunk, 0, false, lm_head ? rows : 0, linear);
  s.small = 0;
  return s;
}

MemoryPlan plan_memory(const ModelConfig& c, int64_t tokens, int64_t chunk, const Device& device,
                       uint64_t attention_workspace, bool separate_output, int64_t logit_rows,
                       LinearMode linear) {
  MemoryPlan plan;
  plan.device = device.to_string();
  plan.tokens = tokens;
  const uint64_t params = static_cast<uint64_t>(c.parameter_count());
  const uint64_t L = static_cast<uint64_t>(std::max<int64_t>(tokens, 1));
  plan.kv_cache = kv_cache_bytes(c, static_cast<int64_t>(L));
  chunk = linear_chunk_rows(chunk, device.is_cpu(), c);
  if (device.is_cpu()) {
    const uint64_t C = static_cast<uint64_t>(std::clamp<int64_t>(chunk, 1, tokens));
    plan.weights = params * kF32;
    // The CPU backend computes all logit rows at once: normed rows [R, D] and logits [R, V].
    const uint64_t R = static_cast<uint64_t>(std::clamp<int64_t>(logit_rows, 1, static_cast<int64_t>(L)));
    plan.workspace = (L * (c.hidden + 2 * c.q_dim()) + C * (c.hidden + c.kv_dim() + 2 * c.ffn)) * kF32 +
                     R * (c.hidden + static_cast<uint64_t>(c.vocab)) * kF32;
  } else {
    // Embeddings, LM head and final norm in bf16; the layers by linear_mode.h.
    plan.weights =
        (params - static_cast<uint64_t>(c.num_layers) * layer_weight_bytes(c, LinearMode::BF16) / kBf16) *
            kBf16 +
        static_cast<uint64_t>(c.num_layers) * layer_weight_bytes(c, linear);
    plan.workspace =
        cuda_workspace_sizes(c, tokens, chunk, attention_workspace, separate_output, logit_rows, linear)
            .total() +
        cuda_step_workspace_sizes(c, 1, chunk, logit_rows > 0, linear).total();
  }
  plan.available = available_memory(device);
  return plan;
}

std::string MemoryPlan::describe() const {
  std::string out = fmt::format("memory plan for {} tokens on {}\n", tokens, device);
  out += fmt::format("  weights    {:>12}\n  KV cache   {:>12}\n  workspace  {:>12}\n  total      {:>12}\n",
                     format_bytes(weights), format_bytes(kv_cache), format_bytes(workspace),
                     format_bytes(total()));
  if (available)
    out += fmt::format("  available  {:>12}  ({})\n", format_bytes(available),
                       total() <= available ? "fits" : "does NOT fit");
  return out;
}

Status check_plan(const MemoryPlan& plan, const ModelConfig& config) {
  if (plan.tokens > config.max_context)
    return make_error(
        StatusCode::INVALID_ARGUMENT,
        "{} tokens (prompt + generated) exceed the model's context of {} tokens; shorten the prompt "
        "or lower -n",
        plan.tokens, config.max_context);
  if (plan.available && plan.total() > plan.available)
    return attach_memory_plan(
        make_error(
            StatusCode::OUT_OF_MEMORY,
            "{} tokens need {} on {} (weights {} + KV cache {} + workspace {}) but only {} is available: "
            "short by {}; shorten the prompt, lower --chunk, or use a larger device",
            plan.tokens, format_bytes(plan.total()), plan.device, format_bytes(plan.weights),
            format_bytes(plan.kv_cache), format_bytes(plan.workspace), format_bytes(plan.available),
            format_bytes(plan.total() - plan.available)),
        plan.describe());
  return Status::ok();
}

Status apply_memory_budget(const std::string& budget, const Device& device, MemoryPlan& plan) {
  if (budget.empty()) return Status::ok();
  Result<uint64_t> bytes = parse_bytes(budget);
  if (!bytes) return bytes.status().with_context("--budget");
#if defined(SACC_WITH_CUDA)
  if (!device.is_cpu()) DeviceAllocator::set_budget(device.index, *bytes);
#endif
  plan.available = plan.available ? std::min(plan.available, *bytes) : *bytes;
  return Status::ok();
}

uint64_t available_memory(const Device& device) {
  if (device.is_cpu()) {
    std::ifstream meminfo("/proc/meminfo");
    std::string line;
    while (std::getline(meminfo, line)) {
      if (line.rfind("MemAvailable:", 0) != 0) continue;
      std::istringstream fields(line.substr(13));
      uint64_t kib = 0;
      fields >> kib;
      return kib * 1024;
    }
    return 0;
  }
  Result<GpuInfo> info = query_gpu(device.index);
  if (!info) return 0;
  uint64_t free_bytes = info->free_memory;
#if defined(SACC_WITH_CUDA)
  const DeviceMemoryStats stats = DeviceAllocator::stats(device.index);
  if (stats.budget)
    free_bytes = std::min(free_bytes, stats.budget > stats.in_use ? stats.budget - stats.in_use : 0);
#endif
  return free_bytes;
}

}  // namespace sacc
