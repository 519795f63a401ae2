// `sacc serve`'s counters for GET /metrics, in the Prometheus text format: requests by status code, prompt
// and generated tokens, time to first token and inter-token latency histograms, the queue depth and whether
// the last prefill was sparse, and the prefix cache's hits, misses, reused tokens and size. Thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "runtime/prefix_cache.h"

namespace sacc::cli {

// Cumulative histogram with fixed upper bounds in seconds.
class LatencyHistogram {
 public:
  static constexpr std::array<double, 14> kBounds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                     0.25,  0.5,    1.0,   2.5,  5.0,   10.0, 30.0};
  void observe(double seconds);
  // "name_bucket{le="..."} n" lines, then name_sum and name_count.
  std::string render(const std::string& name) const;

 private:
  std::array<uint64_t, kBounds.size()> buckets_{};  // per bound, not cumulative
  uint64_t count_ = 0;
  double sum_ = 0.0;
};

class ServeMetrics {
 public:
  void count_request(int http_status);
  void add_tokens(int64_t prompt_tokens, int64_t generated_tokens);
  void observe_ttft(double seconds);
  void observe_itl(double seconds);
  void set_queue_depth(int64_t depth);
  void set_last_prefill_sparse(bool sparse);
  void set_prefix_cache(const PrefixCacheStats& stats, uint64_t bytes, size_t entries);
  std::string render() const;

 private:
  mutable std::mutex mutex_;
  std::map<int, uint64_t> requests_by_status_;
  uint64_t prompt_tokens_ = 0;
  uint64_t generated_tokens_ = 0;
  LatencyHistogram ttft_;
  LatencyHistogram itl_;
  int64_t queue_depth_ = 0;
  bool last_prefill_sparse_ = false;
  PrefixCacheStats prefix_cache_;
  uint64_t prefix_cache_bytes_ = 0;
  size_t prefix_cache_entries_ = 0;
};

}  // namespace sacc::cli
