// `sacc serve`'s scheduling: a bounded FIFO queue of generation jobs and one worker thread that runs them one
// at a time on the one backend. HTTP threads submit a job and read its text back as the worker produces it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/status.h"
#include "model/tokenizer.h"
#include "runtime/backend.h"
#include "runtime/engine.h"
#include "runtime/prefix_cache.h"
#include "tools/sacc/openai_protocol.h"
#include "tools/sacc/serve_attention.h"
#include "tools/sacc/serve_metrics.h"
#include "tools/sacc/serve_phases.h"

namespace sacc::cli {

struct JobOutcome {
  Status status;              // not ok: the generation failed
  std::string finish_reason;  // "stop" (stop token or string) or "length"
  Usage usage;
};

// One request's generation: the worker appends text and ends it; the HTTP thread reads it.
class GenerationJob {
 public:
  // `phases`: started at the arrival, lapped by the HTTP thread up to now.
  GenerationJob(std::vector<int32_t> prompt, GenerateOptions options, std::vector<std::string> stop_strings,
                std::shared_ptr<const ServeAttention> attention, ServeClock::time_point arrival,
                PhaseClock phases)
      : prompt(std::move(prompt)),
        options(std::move(options)),
        stop_strings(std::move(stop_strings)),
        attention(std::move(attention)),
        arrival(arrival),
        phases(phases) {}

  const std::vector<int32_t> prompt;
  const GenerateOptions options;  // stop tokens are the model's, set by the worker
  const std::vector<std::string> stop_strings;
  const std::shared_ptr<const ServeAttention> attention;  // the request's (serve_attention.h)
  const ServeClock::time_point arrival;                   // for the time to first token
  PhaseClock phases;                                      // the worker's once it has taken the job

  // Reader: waits for new text or the end, then moves the new text into `text`. False once the job has ended
  // and nothing is left to read; outcome() is then final.
  bool next(std::string& text);
  const JobOutcome& outcome() const { return outcome_; }
  // The client went away: the worker ends the generation at the next token (or skips the job if queued).
  void cancel() { cancelled_ = true; }
  bool cancelled() const { return cancelled_; }

  // Worker.
  void append(const std::string& text);
  void end(JobOutcome outcome);

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::string ready_;  // produced, not yet read
  bool ended_ = false;
  JobOutcome outcome_;
  std::atomic<bool> cancelled_{false};
};

// The prefix cache as the worker uses it (runtime/prefix_cache.h); a null cache: off.
struct ServePrefixCache {
  PrefixCache* maybe_cache = nullptr;
  std::string settings;             // the model and engine flags every entry is made under; the worker
                                    // appends each request's attention key (serve_attention.h)
  bool keep_sparse = false;         // --prefix-cache-sparse: also keep snapshots of sparse prefills
  uint64_t kv_bytes_per_token = 0;  // a snapshot's bytes per position (every layer's K and V)
  // Bytes the cache may hold while a request of (prompt tokens, max new tokens, its options) runs: what the
  // memory plan leaves beside that request's own KV cache and workspace. Null: no limit beyond the capacity.
  std::function<uint64_t(int64_t, int64_t, const BackendOptions&)> maybe_room_beside;
};

class Scheduler {
 public:
  // `maybe_tokenizer` null: the text is the token ids ("[12]"), as `sacc generate` prints for random models.
  Scheduler(Backend& backend, std::shared_ptr<const Tokenizer> maybe_tokenizer,
            std::vector<int32_t> stop_tokens, size_t max_queue, ServeMetrics& metrics,
            ServePrefixCache prefix = {});
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  enum class Admission { QUEUED, FULL, STOPPING };
  Admission submit(std::shared_ptr<GenerationJob> job);
  // Refuses new jobs, runs those already queued, then joins the worker.
  void stop();
  // Bytes the worker frees before a run that needs them (the prefix cache); any thread.
  uint64_t reclaimable_bytes() const { return prefix_.maybe_cache ? prefix_.maybe_cache->bytes() : 0; }

 private:
  void worker_loop();
  void run(GenerationJob& job);
  // After a run: snapshots the prompt's KV into the prefix cache when it is worth keeping and fits `limit`.
  void remember(const std::string& settings, const std::vector<int32_t>& prompt, bool sparse_prefill,
                uint64_t limit);

  Backend& backend_;
  std::shared_ptr<const Tokenizer> maybe_tokenizer_;
  std::vector<int32_t> stop_tokens_;
  size_t max_queue_;
  ServeMetrics& metrics_;
  ServePrefixCache prefix_;
  std::string backend_attention_;  // the key of the attention settings the backend holds (empty: its own)
  std::mutex mutex_;
  std::condition_variable queued_;
  std::deque<std::shared_ptr<GenerationJob>> queue_;  // waiting; the running job is not counted
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace sacc::cli
