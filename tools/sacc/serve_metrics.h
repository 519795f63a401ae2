// `sacc serve`'s counters for GET /metrics, in the Prometheus text format: requests by status code, prompt
// and generated tokens, time to first token and inter-token latency histograms, the queue depth, whether
// the last prefill was sparse and the attention density of the prefills, the requests in a sequence slot,
// decode steps and their rows, chunked prefill steps, the prefix cache's hits, misses, reused tokens and
// size, and each request's time per phase (serve_phases.h). Thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "runtime/backend.h"
#include "runtime/prefix_cache.h"
#include "tools/sacc/serve_phases.h"

namespace sacc::cli {

// Upper bounds in seconds: request latencies (time to first token, inter-token), and request phases, which
// also need the sub-millisecond ones (a sample, a KV restore).
inline constexpr std::array<double, 14> kLatencyBounds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                          0.25,  0.5,    1.0,   2.5,  5.0,   10.0, 30.0};
inline constexpr std::array<double, 18> kPhaseBounds = {0.00001, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                                        0.005,   0.01,   0.025,   0.05,   0.1,   0.25,
                                                        0.5,     1.0,    2.5,     5.0,    10.0,  30.0};

// Upper bounds of the prefills' attention density (backend.h: PrefillAttentionStats; 1 = dense).
inline constexpr std::array<double, 11> kDensityBounds = {0.02, 0.05, 0.1, 0.2, 0.3, 0.4,
                                                          0.5,  0.6,  0.7, 0.8, 1.0};

// Cumulative histogram with fixed upper bounds (seconds, or a density).
class BoundsHistogram {
 public:
  explicit BoundsHistogram(std::span<const double> bounds = kLatencyBounds)
      : bounds_(bounds), buckets_(bounds.size()) {}
  void observe(double seconds);
  // "name_bucket{le="..."} n" lines, then name_sum and name_count; `labels` ("phase=\"restore\"") go before
  // le and on the sum and count.
  std::string render(const std::string& name, const std::string& labels = "") const;

 private:
  std::span<const double> bounds_;
  std::vector<uint64_t> buckets_;  // per bound, not cumulative
  uint64_t count_ = 0;
  double sum_ = 0.0;
};

class ServeMetrics {
 public:
  void count_request(int http_status);
  void add_tokens(int64_t prompt_tokens, int64_t generated_tokens);
  void observe_ttft(double seconds);
  void observe_itl(double seconds);
  // One observation per phase of a request that has finished generating.
  void observe_phases(const RequestPhaseTimes& times);
  void set_queue_depth(int64_t depth);
  // The requests in a sequence slot and the KV bytes their slots hold (each: prompt + max_tokens positions).
  void set_active(int64_t sequences, uint64_t kv_bytes);
  void count_prefill_chunk();            // a prefill step that ran part of a prompt (others decoding)
  void count_decode_step(int64_t rows);  // a decode step over `rows` requests
  // One per request that finished generating: its prefill's attention (a prefix hit's suffix runs dense).
  void observe_prefill_attention(const PrefillAttentionStats& attention);
  void set_prefix_cache(const PrefixCacheStats& stats, uint64_t bytes, size_t entries);
  std::string render() const;

 private:
  static std::array<BoundsHistogram, kRequestPhases> make_phase_histograms();

  mutable std::mutex mutex_;
  std::map<int, uint64_t> requests_by_status_;
  uint64_t prompt_tokens_ = 0;
  uint64_t generated_tokens_ = 0;
  BoundsHistogram ttft_;
  BoundsHistogram itl_;
  std::array<BoundsHistogram, kRequestPhases> phases_ = make_phase_histograms();
  int64_t queue_depth_ = 0;
  int64_t active_sequences_ = 0;
  uint64_t kv_cache_bytes_ = 0;
  uint64_t prefill_chunks_ = 0;
  uint64_t decode_steps_ = 0, decode_rows_ = 0;
  PrefillAttentionStats last_prefill_;
  BoundsHistogram prefill_density_{kDensityBounds};
  PrefixCacheStats prefix_cache_;
  uint64_t prefix_cache_bytes_ = 0;
  size_t prefix_cache_entries_ = 0;
};

}  // namespace sacc::cli
