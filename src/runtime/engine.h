// The engine: prefill the prompt, then decode until a stop token or the token limit, streaming each sampled
// id to a callback, and measure TTFT, prefill throughput, inter-token latency and peak memory.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "runtime/backend.h"
#include "runtime/sampling.h"

namespace sacc {

struct GenerateOptions {
  int64_t max_new_tokens = 128;
  SamplingOptions sampling;
  std::vector<int32_t>
      stop_tokens;  // generation ends after sampling one of these (it is reported, not printed)
  // Asked after each token's callback; true ends the run with stop_reason "cancelled" (a server's stop string
  // or a client that went away). Null: never.
  std::function<bool()> maybe_cancel;
  // Prefix reuse (a server's prefix cache): the prompt's first `reuse_tokens` positions are restored from
  // `maybe_reuse` (Backend::import_kv) and only the rest is prefilled (Backend::extend). Null: a full
  // prefill.
  const KvSnapshot* maybe_reuse = nullptr;
  int64_t reuse_tokens = 0;  // 0 < reuse_tokens < prompt size when maybe_reuse is set
};

struct GenerationMetrics {
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;  // including a final stop token
  int64_t reused_tokens = 0;     // prompt positions restored from a KV snapshot, not prefilled
  // Prompt ids in host memory -> first sampled id in host memory (prefill, LM head, sampling, all syncs).
  double ttft_seconds = 0.0;
  double prefill_tokens_per_second = 0.0;  // prompt_tokens / ttft
  double mean_itl_seconds = 0.0;  // mean time between consecutive generated tokens (0 with one token)
  // Where the time went before the first token (seconds). reserve: sizing the KV cache (before ttft_seconds
  // starts). Then restore + prefill + sample = ttft_seconds: restore, the reused positions' KV copied in (0
  // without reuse; Backend::import_kv returns once the copy is done); prefill, the computed positions through
  // the model until their logits are on the host (the backends wait for the device before reading them);
  // sample, the first token drawn from those logits.
  double reserve_seconds = 0.0;
  double restore_seconds = 0.0;
  double prefill_seconds = 0.0;
  double sample_seconds = 0.0;
  PrefillAttentionStats prefill_attention;
  std::string stop_reason;  // "stop token", "length", "cancelled"
  std::vector<DeviceMemoryReport> memory;
  std::vector<int32_t> tokens;  // generated ids
};

// on_token runs for every sampled id (including a stop token) as soon as it is on the host.
// KV-cache positions a run of `max_new_tokens` after a prompt needs: the last generated token is returned,
// never fed back, so a 131072-token window holds a 131072-token prompt and its first token.
inline int64_t kv_positions_needed(int64_t prompt_tokens, int64_t max_new_tokens) {
  return prompt_tokens + (max_new_tokens > 0 ? max_new_tokens - 1 : 0);
}

// An allocation that fails anywhere in the run (KV cache, workspace, logits) is an OUT_OF_MEMORY status
// naming it, never a std::bad_alloc.
Result<GenerationMetrics> generate(Backend& backend, std::span<const int32_t> prompt,
                                   const GenerateOptions& options,
                                   const std::function<void(int32_t)>& on_token);

// "prompt 8192 tok | TTFT 1.234 s | prefill 6640 tok/s | ITL 25.1 ms | peak cuda:0 17.20 GiB (device 18.01
// GiB)"
std::string format_metrics_line(const GenerationMetrics& metrics);
std::string format_metrics_json(const GenerationMetrics& metrics);

}  // namespace sacc
