#include "runtime/engine.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>

#include "core/out_of_memory.h"

namespace sacc {

namespace {

Result<GenerationMetrics> generate_unguarded(Backend& backend, std::span<const int32_t> prompt,
                                             const GenerateOptions& options,
                                             const std::function<void(int32_t)>& on_token) {
  SACC_RETURN_IF_ERROR(options.sampling.validate());
  if (prompt.empty()) return make_error(StatusCode::INVALID_ARGUMENT, "the prompt has no tokens");
  if (options.max_new_tokens < 1)
    return make_error(StatusCode::INVALID_ARGUMENT, "-n {} must be at least 1", options.max_new_tokens);
  using Clock = std::chrono::steady_clock;
  // The seconds since `mark`, which moves to now.
  auto lap = [](Clock::time_point& mark) {
    const Clock::time_point now = Clock::now();
    const double seconds = std::chrono::duration<double>(now - mark).count();
    mark = now;
    return seconds;
  };
  GenerationMetrics m;
  auto mark = Clock::now();
  SACC_RETURN_IF_ERROR(
      backend.reserve(kv_positions_needed(static_cast<int64_t>(prompt.size()), options.max_new_tokens)));
  m.reserve_seconds = lap(mark);
  m.prompt_tokens = static_cast<int64_t>(prompt.size());
  Sampler sampler(options.sampling);
  std::vector<float> logits;
  const auto start = mark;
  if (options.maybe_reuse) {
    const int64_t reuse = options.reuse_tokens;
    if (reuse <= 0 || reuse >= m.prompt_tokens)
      return make_error(StatusCode::INTERNAL, "prefix reuse of {} positions for a prompt of {} tokens", reuse,
                        m.prompt_tokens);
    SACC_RETURN_IF_ERROR(backend.import_kv(*options.maybe_reuse, reuse));
    m.restore_seconds = lap(mark);
    SACC_RETURN_IF_ERROR(backend.extend(prompt.subspan(static_cast<size_t>(reuse)), logits));
    m.reused_tokens = reuse;
  } else {
    SACC_RETURN_IF_ERROR(backend.prefill(prompt, logits));
  }
  m.prefill_seconds = lap(mark);
  int32_t token = sampler.sample(logits);
  m.sample_seconds = lap(mark);
  auto last = mark;
  m.ttft_seconds = std::chrono::duration<double>(last - start).count();
  m.prefill_tokens_per_second = static_cast<double>(m.prompt_tokens) / std::max(m.ttft_seconds, 1e-9);
  m.prefill_attention = backend.last_prefill_attention();
  double itl_total = 0.0;
  m.stop_reason = "length";
  for (;;) {
    m.tokens.push_back(token);
    on_token(token);
    if (std::find(options.stop_tokens.begin(), options.stop_tokens.end(), token) !=
        options.stop_tokens.end()) {
      m.stop_reason = "stop token";
      break;
    }
    if (options.maybe_cancel && options.maybe_cancel()) {
      m.stop_reason = "cancelled";
      break;
    }
    if (static_cast<int64_t>(m.tokens.size()) >= options.max_new_tokens) break;
    SACC_RETURN_IF_ERROR(backend.decode(token, logits));
    token = sampler.sample(logits);
    const auto now = Clock::now();
    itl_total += std::chrono::duration<double>(now - last).count();
    last = now;
  }
  m.generated_tokens = static_cast<int64_t>(m.tokens.size());
  if (m.generated_tokens > 1) m.mean_itl_seconds = itl_total / static_cast<double>(m.generated_tokens - 1);
  m.memory = backend.memory();
  return m;
}

}  // namespace

Result<GenerationMetrics> generate(Backend& backend, std::span<const int32_t> prompt,
                                   const GenerateOptions& options,
                                   const std::function<void(int32_t)>& on_token) {
  // The backends name their own large allocations; this catches the rest (logits, sampling, host copies).
  return guard_host_allocation(fmt::format("generating after a prompt of {} tokens", prompt.size()), 0,
                               [&] { return generate_unguarded(backend, prompt, options, on_token); });
}

std::string format_metrics_line(const GenerationMetrics& m) {
  std::string line =
      fmt::format("prompt {} tok | TTFT {:.3f} s | prefill {:.0f} tok/s | ITL {:.1f} ms | {} tok ({})",
                  m.prompt_tokens, m.ttft_seconds, m.prefill_tokens_per_second, m.mean_itl_seconds * 1e3,
                  m.generated_tokens, m.stop_reason);
  line += m.prefill_attention.sparse
              ? fmt::format(" | sparse prefill (density {:.3f})", m.prefill_attention.density)
              : std::string(" | dense prefill");
  uint64_t total = 0, total_in_use = 0;
  for (const DeviceMemoryReport& d : m.memory) {
    line += fmt::format(" | peak {} {}", d.device, format_bytes(d.peak_allocated));
    if (d.peak_in_use)
      line += fmt::format(" ({} {})", d.device == "cpu" ? "RSS high-water" : "device",
                          format_bytes(d.peak_in_use));
    total += d.peak_allocated;
    total_in_use += d.peak_in_use;
  }
  // Several GPUs: their sum too (the paper's Table 2: GPU0, GPU1, total).
  if (m.memory.size() > 1) {
    line += fmt::format(" | peak total {}", format_bytes(total));
    if (total_in_use) line += fmt::format(" (devices {})", format_bytes(total_in_use));
  }
  return line;
}

std::string format_metrics_json(const GenerationMetrics& m) {
  nlohmann::json j;
  j["prompt_tokens"] = m.prompt_tokens;
  j["generated_tokens"] = m.generated_tokens;
  j["ttft_s"] = m.ttft_seconds;
  j["prefill_tokens_per_s"] = m.prefill_tokens_per_second;
  j["mean_itl_s"] = m.mean_itl_seconds;
  j["sparse_prefill"] = m.prefill_attention.sparse;
  j["attention_density"] = m.prefill_attention.density;
  j["reused_tokens"] = m.reused_tokens;
  j["stop_reason"] = m.stop_reason;
  j["tokens"] = m.tokens;
  nlohmann::json mem = nlohmann::json::array();
  for (const DeviceMemoryReport& d : m.memory)
    mem.push_back({{"device", d.device},
                   {"peak_allocated_bytes", d.peak_allocated},
                   {"peak_in_use_bytes", d.peak_in_use}});
  j["memory"] = mem;
  return j.dump();
}

}  // namespace sacc
