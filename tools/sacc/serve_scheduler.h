// `sacc serve`'s scheduling: a bounded FIFO queue of generation jobs and one worker thread that runs them one
// at a time on the one backend. HTTP threads submit a job and read its text back as the worker produces it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/status.h"
#include "model/tokenizer.h"
#include "runtime/backend.h"
#include "runtime/engine.h"
#include "tools/sacc/openai_protocol.h"
#include "tools/sacc/serve_metrics.h"

namespace sacc::cli {

using ServeClock = std::chrono::steady_clock;

struct JobOutcome {
  Status status;              // not ok: the generation failed
  std::string finish_reason;  // "stop" (stop token or string) or "length"
  Usage usage;
};

// One request's generation: the worker appends text and ends it; the HTTP thread reads it.
class GenerationJob {
 public:
  GenerationJob(std::vector<int32_t> prompt, GenerateOptions options, std::vector<std::string> stop_strings,
                ServeClock::time_point arrival)
      : prompt(std::move(prompt)),
        options(std::move(options)),
        stop_strings(std::move(stop_strings)),
        arrival(arrival) {}

  const std::vector<int32_t> prompt;
  const GenerateOptions options;  // stop tokens are the model's, set by the worker
  const std::vector<std::string> stop_strings;
  const ServeClock::time_point arrival;  // for the time to first token

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

class Scheduler {
 public:
  // `maybe_tokenizer` null: the text is the token ids ("[12]"), as `sacc generate` prints for random models.
  Scheduler(Backend& backend, std::shared_ptr<const Tokenizer> maybe_tokenizer,
            std::vector<int32_t> stop_tokens, size_t max_queue, ServeMetrics& metrics);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  enum class Admission { QUEUED, FULL, STOPPING };
  Admission submit(std::shared_ptr<GenerationJob> job);
  // Refuses new jobs, runs those already queued, then joins the worker.
  void stop();

 private:
  void worker_loop();
  void run(GenerationJob& job);

  Backend& backend_;
  std::shared_ptr<const Tokenizer> maybe_tokenizer_;
  std::vector<int32_t> stop_tokens_;
  size_t max_queue_;
  ServeMetrics& metrics_;
  std::mutex mutex_;
  std::condition_variable queued_;
  std::deque<std::shared_ptr<GenerationJob>> queue_;  // waiting; the running job is not counted
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace sacc::cli
