// `sacc serve`'s scheduling: a bounded FIFO queue of generation jobs and one worker thread that runs up to
// --max-batch of them at once on the one backend, each in its own sequence slot (backend.h), by continuous
// batching: every iteration admits queued jobs into free slots, runs prefill work (a new job's whole prompt
// when nothing is decoding, else at most --prefill-chunk prompt tokens of the waiting jobs), then one decode
// step of every decoding job at once (Backend::decode_batch). HTTP threads submit a job and read its text
// back as the worker produces it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <limits>
#include <list>
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
#include "runtime/sampling.h"
#include "tools/sacc/openai_protocol.h"
#include "tools/sacc/serve_attention.h"
#include "tools/sacc/serve_metrics.h"
#include "tools/sacc/serve_phases.h"
#include "tools/sacc/stop_strings.h"

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

// Bytes a run of (prompt tokens, max new tokens, its options) leaves of the device beside the weights and its
// own KV cache and workspace (what the memory plan leaves beside that request); see serve_memory.h.
using RoomBeside = std::function<uint64_t(int64_t, int64_t, const BackendOptions&)>;

// The prefix cache as the worker uses it (runtime/prefix_cache.h); a null cache: off.
struct ServePrefixCache {
  PrefixCache* maybe_cache = nullptr;
  std::string settings;             // the model and engine flags every entry is made under; the worker
                                    // appends each request's attention key (serve_attention.h)
  bool keep_sparse = false;         // --prefix-cache-sparse: also keep snapshots of sparse prefills
  uint64_t kv_bytes_per_token = 0;  // a snapshot's bytes per position (every layer's K and V)
};

// How the worker shares the backend among requests.
struct ServeBatching {
  int max_batch = 1;                // sequences at once (--max-batch): the backend's slots
  int64_t prefill_chunk = 2048;     // the most prompt tokens per prefill step while others decode (x 256)
  uint64_t kv_bytes_per_token = 0;  // a slot's KV bytes per position, for the KV accounting
  // The room beside one request (RoomBeside); null: unknown, slots alone limit. A queued request waits while
  // the KV caches of the running ones would not leave it that room.
  RoomBeside maybe_room_beside;
};

class Scheduler {
 public:
  // `maybe_tokenizer` null: the text is the token ids ("[12]"), as `sacc generate` prints for random models.
  // The backend must have batching.max_batch slots (Backend::set_slot_count).
  Scheduler(Backend& backend, std::shared_ptr<const Tokenizer> maybe_tokenizer,
            std::vector<int32_t> stop_tokens, size_t max_queue, ServeMetrics& metrics, ServeBatching batching,
            ServePrefixCache prefix = {});
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  enum class Admission { QUEUED, FULL, STOPPING };
  Admission submit(std::shared_ptr<GenerationJob> job);
  // Refuses new jobs, runs those already queued and running, then joins the worker.
  void stop();
  // Bytes the worker frees before a run that needs them (the prefix cache); any thread.
  uint64_t reclaimable_bytes() const { return prefix_.maybe_cache ? prefix_.maybe_cache->bytes() : 0; }

 private:
  // A job in a slot: its prompt's progress, then its decoding.
  struct Sequence {
    Sequence(std::shared_ptr<GenerationJob> job, int slot, const Tokenizer* maybe_tokenizer);
    std::shared_ptr<GenerationJob> job;
    int slot;
    Sampler sampler;
    std::unique_ptr<StreamingDecoder> maybe_decoder;
    StopStringMatcher matcher;
    std::string settings;     // the prefix cache's key for this job
    uint64_t kv_bytes = 0;    // its slot's KV cache
    int64_t computed = 0;     // prompt positions in the slot (restored or prefilled)
    int64_t generated = 0;    // sampled tokens, a stop token included
    int32_t next_token = -1;  // sampled, not yet fed to the model (a decoding sequence)
    // Its prompt's attention: the first step's, over the whole prompt once the last chunk ran (a prefix hit:
    // dense).
    PrefillAttentionStats prefill_attention;
    int64_t first_step_tokens = 0;             // the prompt positions its prefill from position 0 ran
    bool chunked = false;                      // its prompt is being prefilled over several steps
    bool done = false;                         // ended, its slot freed: swept out of active_
    ServeClock::time_point last, first_token;  // the last token's time (the arrival before the first)
  };

  void worker_loop();
  // Under the lock: the free slot the queue's head may take now (-1: none free, or the running sequences' KV
  // caches do not leave it the room it needs).
  int admissible_slot() const;
  uint64_t active_kv_bytes() const;  // the running sequences' KV caches
  // Takes the job into its slot: prefix-cache lookup, the slot's KV cache, the restore (or ends it).
  void start(Sequence& seq);
  // This iteration's prefill steps, first come first served: when nothing decodes, the first waiting
  // prompt whole (a sparse prefill stays possible); else chunks of the waiting prompts, at most
  // --prefill-chunk tokens in all and about two decode steps' time, so the decode step that follows comes
  // soon.
  void prefill_steps();
  // Prefills `seq`'s prompt positions [computed, end); the step that ends the prompt samples the first token.
  void prefill_step(Sequence& seq, int64_t end);
  // One decode step of every decoding sequence.
  void decode_step();
  // Streams `token` of `seq` and decides whether it goes on (next_token) or ends.
  void emit(Sequence& seq, int32_t token, ServeClock::time_point now);
  // Ends the job, remembers its prompt's KV (a success), frees its slot.
  void finish(Sequence& seq, JobOutcome outcome);
  // After a run: snapshots the prompt's KV into the prefix cache when it is worth keeping and fits `limit`.
  void remember(const Sequence& seq, uint64_t limit);
  // The room the prefix cache may hold beside `job`'s run and the other running sequences' KV caches.
  uint64_t cache_limit(const GenerationJob& job, uint64_t others_kv) const;
  void publish_active();  // the sacc_active_sequences and sacc_kv_cache_bytes gauges: the sequences not ended

  Backend& backend_;
  std::shared_ptr<const Tokenizer> maybe_tokenizer_;
  std::vector<int32_t> stop_tokens_;
  size_t max_queue_;
  ServeMetrics& metrics_;
  ServeBatching batching_;
  ServePrefixCache prefix_;
  std::string backend_attention_;  // the key of the attention settings the backend holds (empty: its own)
  std::list<Sequence> active_;     // the worker's, in admission order (prefills go first come first served)
  std::vector<bool> slot_used_;    // [max_batch]
  std::vector<float> logits_;      // the last step's [rows, V]
  double decode_step_seconds_ = 0.0;    // the last decode step's time (0: none yet)
  double prefill_token_seconds_ = 0.0;  // the last prefill chunk's time per token (0: none yet)
  std::mutex mutex_;
  std::condition_variable queued_;
  std::deque<std::shared_ptr<GenerationJob>> queue_;  // waiting; the running jobs are not counted
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace sacc::cli
