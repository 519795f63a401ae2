#include "tools/sacc/serve_metrics.h"

#include <fmt/format.h>

namespace sacc::cli {

void BoundsHistogram::observe(double seconds) {
  for (size_t i = 0; i < bounds_.size(); ++i) {
    if (seconds <= bounds_[i]) {
      ++buckets_[i];
      break;
    }
  }
  ++count_;
  sum_ += seconds;
}

std::string BoundsHistogram::render(const std::string& name, const std::string& labels) const {
  const std::string before_le = labels.empty() ? "" : labels + ",";
  const std::string own = labels.empty() ? "" : "{" + labels + "}";
  std::string out;
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += buckets_[i];
    out += fmt::format("{}_bucket{{{}le=\"{}\"}} {}\n", name, before_le, bounds_[i], cumulative);
  }
  out += fmt::format("{}_bucket{{{}le=\"+Inf\"}} {}\n", name, before_le, count_);
  out += fmt::format("{}_sum{} {}\n{}_count{} {}\n", name, own, sum_, name, own, count_);
  return out;
}

std::array<BoundsHistogram, kRequestPhases> ServeMetrics::make_phase_histograms() {
  std::array<BoundsHistogram, kRequestPhases> histograms;
  histograms.fill(BoundsHistogram(kPhaseBounds));
  return histograms;
}

void ServeMetrics::count_request(int http_status) {
  std::lock_guard lock(mutex_);
  ++requests_by_status_[http_status];
}

void ServeMetrics::add_tokens(int64_t prompt_tokens, int64_t generated_tokens) {
  std::lock_guard lock(mutex_);
  prompt_tokens_ += static_cast<uint64_t>(prompt_tokens);
  generated_tokens_ += static_cast<uint64_t>(generated_tokens);
}

void ServeMetrics::observe_ttft(double seconds) {
  std::lock_guard lock(mutex_);
  ttft_.observe(seconds);
}

void ServeMetrics::observe_itl(double seconds) {
  std::lock_guard lock(mutex_);
  itl_.observe(seconds);
}

void ServeMetrics::observe_phases(const RequestPhaseTimes& times) {
  std::lock_guard lock(mutex_);
  for (size_t i = 0; i < kRequestPhases; ++i) phases_[i].observe(times.seconds[i]);
}

void ServeMetrics::set_queue_depth(int64_t depth) {
  std::lock_guard lock(mutex_);
  queue_depth_ = depth;
}

void ServeMetrics::count_prefill_chunk() {
  std::lock_guard lock(mutex_);
  ++prefill_chunks_;
}

void ServeMetrics::count_decode_step(int64_t rows) {
  std::lock_guard lock(mutex_);
  ++decode_steps_;
  decode_rows_ += static_cast<uint64_t>(rows);
}

void ServeMetrics::set_active(int64_t sequences, uint64_t kv_bytes) {
  std::lock_guard lock(mutex_);
  active_sequences_ = sequences;
  kv_cache_bytes_ = kv_bytes;
}

void ServeMetrics::observe_prefill_attention(const PrefillAttentionStats& attention) {
  std::lock_guard lock(mutex_);
  last_prefill_ = attention;
  prefill_density_.observe(attention.density);
}

void ServeMetrics::set_prefix_cache(const PrefixCacheStats& stats, uint64_t bytes, size_t entries) {
  std::lock_guard lock(mutex_);
  prefix_cache_ = stats;
  prefix_cache_bytes_ = bytes;
  prefix_cache_entries_ = entries;
}

std::string ServeMetrics::render() const {
  std::lock_guard lock(mutex_);
  std::string out;
  out += "# HELP sacc_requests_total HTTP requests answered, by status code.\n";
  out += "# TYPE sacc_requests_total counter\n";
  for (const auto& [status, n] : requests_by_status_)
    out += fmt::format("sacc_requests_total{{code=\"{}\"}} {}\n", status, n);
  out +=
      "# HELP sacc_prompt_tokens_total Prompt tokens prefilled.\n# TYPE sacc_prompt_tokens_total counter\n";
  out += fmt::format("sacc_prompt_tokens_total {}\n", prompt_tokens_);
  out +=
      "# HELP sacc_generation_tokens_total Tokens generated.\n# TYPE sacc_generation_tokens_total counter\n";
  out += fmt::format("sacc_generation_tokens_total {}\n", generated_tokens_);
  out +=
      "# HELP sacc_time_to_first_token_seconds Request arrival to first generated token (queue wait "
      "included).\n# TYPE sacc_time_to_first_token_seconds histogram\n";
  out += ttft_.render("sacc_time_to_first_token_seconds");
  out +=
      "# HELP sacc_inter_token_latency_seconds Time between consecutive generated tokens.\n"
      "# TYPE sacc_inter_token_latency_seconds histogram\n";
  out += itl_.render("sacc_inter_token_latency_seconds");
  out +=
      "# HELP sacc_request_phase_seconds Time per phase of each finished request: parse, tokenize, queue, "
      "lookup (prefix cache), reserve (KV cache), restore (reused KV), prefill, sample (first token), then "
      "decode; the phases before decode sum to at most the time to first token.\n"
      "# TYPE sacc_request_phase_seconds histogram\n";
  for (size_t i = 0; i < kRequestPhases; ++i)
    out += phases_[i].render("sacc_request_phase_seconds",
                             fmt::format("phase=\"{}\"", request_phase_name(static_cast<RequestPhase>(i))));
  out += "# HELP sacc_queue_depth Requests waiting for the worker.\n# TYPE sacc_queue_depth gauge\n";
  out += fmt::format("sacc_queue_depth {}\n", queue_depth_);
  out +=
      "# HELP sacc_active_sequences Requests in a sequence slot (prefilling or decoding).\n"
      "# TYPE sacc_active_sequences gauge\n";
  out += fmt::format("sacc_active_sequences {}\n", active_sequences_);
  out +=
      "# HELP sacc_kv_cache_bytes KV cache bytes held by the requests in sequence slots (each sized for its "
      "prompt + max_tokens).\n"
      "# TYPE sacc_kv_cache_bytes gauge\n";
  out += fmt::format("sacc_kv_cache_bytes {}\n", kv_cache_bytes_);
  out +=
      "# HELP sacc_decode_steps_total Decode steps (one forward over every decoding request).\n"
      "# TYPE sacc_decode_steps_total counter\n";
  out += fmt::format("sacc_decode_steps_total {}\n", decode_steps_);
  out +=
      "# HELP sacc_decode_rows_total Request rows over all decode steps (over the steps: the mean batch).\n"
      "# TYPE sacc_decode_rows_total counter\n";
  out += fmt::format("sacc_decode_rows_total {}\n", decode_rows_);
  out +=
      "# HELP sacc_prefill_chunks_total Prefill steps that ran part of a prompt between decode steps.\n"
      "# TYPE sacc_prefill_chunks_total counter\n";
  out += fmt::format("sacc_prefill_chunks_total {}\n", prefill_chunks_);
  out +=
      "# HELP sacc_last_prefill_sparse 1 when the last prefill used sparse attention.\n"
      "# TYPE sacc_last_prefill_sparse gauge\n";
  out += fmt::format("sacc_last_prefill_sparse {}\n", last_prefill_.sparse ? 1 : 0);
  out +=
      "# HELP sacc_last_prefill_density Attention density of the last prefill: the flops its attention "
      "kernels ran over dense causal attention's (1 when dense).\n"
      "# TYPE sacc_last_prefill_density gauge\n";
  out += fmt::format("sacc_last_prefill_density {:.4f}\n", last_prefill_.density);
  out +=
      "# HELP sacc_prefill_density Attention density of each request's prompt (a chunked prompt: its first "
      "step and the dense chunks after it together; a prefix hit's suffix counts as dense).\n"
      "# TYPE sacc_prefill_density histogram\n";
  out += prefill_density_.render("sacc_prefill_density");
  out +=
      "# HELP sacc_prefix_cache_hits_total Requests that reused a cached prompt prefix's KV.\n"
      "# TYPE sacc_prefix_cache_hits_total counter\n";
  out += fmt::format("sacc_prefix_cache_hits_total {}\n", prefix_cache_.hits);
  out +=
      "# HELP sacc_prefix_cache_misses_total Requests that found no cached prefix (prefix cache on).\n"
      "# TYPE sacc_prefix_cache_misses_total counter\n";
  out += fmt::format("sacc_prefix_cache_misses_total {}\n", prefix_cache_.misses);
  out +=
      "# HELP sacc_prefix_cache_reused_tokens_total Prompt tokens restored from the prefix cache, not "
      "prefilled.\n# TYPE sacc_prefix_cache_reused_tokens_total counter\n";
  out += fmt::format("sacc_prefix_cache_reused_tokens_total {}\n", prefix_cache_.reused_tokens);
  out +=
      "# HELP sacc_prefix_cache_evictions_total Prefix-cache entries evicted to make room.\n"
      "# TYPE sacc_prefix_cache_evictions_total counter\n";
  out += fmt::format("sacc_prefix_cache_evictions_total {}\n", prefix_cache_.evictions);
  out +=
      "# HELP sacc_prefix_cache_bytes Bytes of KV held by the prefix cache.\n"
      "# TYPE sacc_prefix_cache_bytes gauge\n";
  out += fmt::format("sacc_prefix_cache_bytes {}\n", prefix_cache_bytes_);
  out +=
      "# HELP sacc_prefix_cache_entries KV snapshots held by the prefix cache.\n"
      "# TYPE sacc_prefix_cache_entries gauge\n";
  out += fmt::format("sacc_prefix_cache_entries {}\n", prefix_cache_entries_);
  return out;
}

}  // namespace sacc::cli
