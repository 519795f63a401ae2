#include "tools/sacc/serve_scheduler.h"

#include <algorithm>

#include "core/log.h"
#include "tools/sacc/stop_strings.h"

namespace sacc::cli {

bool GenerationJob::next(std::string& text) {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return ended_ || !ready_.empty(); });
  if (ready_.empty()) return false;
  text = std::move(ready_);
  ready_.clear();
  return true;
}

void GenerationJob::append(const std::string& text) {
  if (text.empty()) return;
  {
    std::lock_guard lock(mutex_);
    ready_ += text;
  }
  changed_.notify_all();
}

void GenerationJob::end(JobOutcome outcome) {
  {
    std::lock_guard lock(mutex_);
    outcome_ = std::move(outcome);
    ended_ = true;
  }
  changed_.notify_all();
}

Scheduler::Scheduler(Backend& backend, std::shared_ptr<const Tokenizer> maybe_tokenizer,
                     std::vector<int32_t> stop_tokens, size_t max_queue, ServeMetrics& metrics,
                     ServePrefixCache prefix)
    : backend_(backend),
      maybe_tokenizer_(std::move(maybe_tokenizer)),
      stop_tokens_(std::move(stop_tokens)),
      max_queue_(max_queue),
      metrics_(metrics),
      prefix_(std::move(prefix)),
      worker_([this] { worker_loop(); }) {}

Scheduler::~Scheduler() {
  stop();
}

Scheduler::Admission Scheduler::submit(std::shared_ptr<GenerationJob> job) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return Admission::STOPPING;
    if (queue_.size() >= max_queue_) return Admission::FULL;
    queue_.push_back(std::move(job));
    metrics_.set_queue_depth(static_cast<int64_t>(queue_.size()));
  }
  queued_.notify_one();
  return Admission::QUEUED;
}

void Scheduler::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  queued_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void Scheduler::worker_loop() {
  for (;;) {
    std::shared_ptr<GenerationJob> job;
    {
      std::unique_lock lock(mutex_);
      queued_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, nothing left
      job = std::move(queue_.front());
      job->phases.lap(RequestPhase::QUEUE);
      queue_.pop_front();
      metrics_.set_queue_depth(static_cast<int64_t>(queue_.size()));
    }
    if (job->cancelled()) {
      job->end({make_error(StatusCode::IO_ERROR, "the client went away"), "stop", {}});
      continue;
    }
    run(*job);
  }
}

void Scheduler::run(GenerationJob& job) {
  if (job.attention->key != backend_attention_) {
    if (Status s = backend_.set_attention(job.attention->options); !s) {
      job.end({s, "stop", {}});
      return;
    }
    backend_attention_ = job.attention->key;
  }
  std::unique_ptr<StreamingDecoder> decoder;
  if (maybe_tokenizer_) decoder = std::make_unique<StreamingDecoder>(*maybe_tokenizer_);
  StopStringMatcher matcher(job.stop_strings);
  GenerateOptions options = job.options;
  options.stop_tokens = stop_tokens_;
  options.maybe_cancel = [&] { return matcher.stopped() || job.cancelled(); };
  ServeClock::time_point last = job.arrival, first_token;
  bool first = true;
  auto on_token = [&](int32_t id) {
    const ServeClock::time_point now = ServeClock::now();
    const double seconds = std::chrono::duration<double>(now - last).count();
    first ? metrics_.observe_ttft(seconds) : metrics_.observe_itl(seconds);
    if (first) first_token = now;
    first = false;
    last = now;
    if (std::find(stop_tokens_.begin(), stop_tokens_.end(), id) != stop_tokens_.end()) return;
    job.append(matcher.push(decoder ? decoder->push(id) : fmt::format("[{}]", id)));
  };
  PrefixCache* cache = prefix_.maybe_cache && prefix_.maybe_cache->enabled() ? prefix_.maybe_cache : nullptr;
  uint64_t limit = std::numeric_limits<uint64_t>::max();
  const std::string settings = prefix_.settings + "|" + job.attention->key;
  if (cache) {
    // Evict first: the cache never takes room this request's own KV cache and workspace need.
    if (prefix_.maybe_room_beside)
      limit = prefix_.maybe_room_beside(static_cast<int64_t>(job.prompt.size()), options.max_new_tokens,
                                        job.attention->options);
    const PrefixMatch match = cache->acquire(settings, job.prompt, limit);
    options.maybe_reuse = match.maybe_snapshot;
    options.reuse_tokens = match.tokens;
  }
  job.phases.lap(RequestPhase::LOOKUP);
  Result<GenerationMetrics> m = generate(backend_, job.prompt, options, on_token);
  if (m) {
    // Before remember(): the snapshot's copy delays the next request (its queue phase), not this one.
    job.phases.set(RequestPhase::DECODE,
                   std::chrono::duration<double>(ServeClock::now() - first_token).count());
    job.phases.set(RequestPhase::RESERVE, m->reserve_seconds);
    job.phases.set(RequestPhase::RESTORE, m->restore_seconds);
    job.phases.set(RequestPhase::PREFILL, m->prefill_seconds);
    job.phases.set(RequestPhase::SAMPLE, m->sample_seconds);
    metrics_.observe_phases(job.phases.times());
  }
  if (cache) {
    if (m) remember(settings, job.prompt, m->sparse_prefill, limit);
    metrics_.set_prefix_cache(cache->stats(), cache->bytes(), cache->entries());
  }
  if (!m) {
    job.end({m.status(), "stop", {}});
    return;
  }
  if (decoder) job.append(matcher.push(decoder->finish()));
  job.append(matcher.finish());
  metrics_.add_tokens(m->prompt_tokens, m->generated_tokens);
  metrics_.set_last_prefill_sparse(m->sparse_prefill);
  const bool length = m->stop_reason == "length" && !matcher.stopped();
  job.end({Status::ok(), length ? "length" : "stop", {m->prompt_tokens, m->generated_tokens}});
}

void Scheduler::remember(const std::string& settings, const std::vector<int32_t>& prompt, bool sparse_prefill,
                         uint64_t limit) {
  PrefixCache& cache = *prefix_.maybe_cache;
  // A sparse prefill's early positions depend on the prompt's tail (prefix_cache.h): not exact for others.
  if (sparse_prefill && !prefix_.keep_sparse) return;
  const int64_t n = cache.snapshot_length(settings, prompt);
  if (n == 0) return;
  const uint64_t bytes = static_cast<uint64_t>(n) * prefix_.kv_bytes_per_token;
  const uint64_t room = std::min(cache.capacity(), limit);
  if (bytes > room) return;
  cache.shrink_to(room - bytes);  // before the copy is allocated, not after
  Result<std::unique_ptr<KvSnapshot>> snapshot = backend_.export_kv(n);
  if (!snapshot) {
    // Only a missed reuse later; the request itself has been answered.
    SACC_LOG_WARN("prefix cache: no snapshot of {} positions: {}", n, snapshot.status().to_string());
    return;
  }
  cache.insert(settings, std::span<const int32_t>(prompt).first(static_cast<size_t>(n)),
               std::move(snapshot).value(), limit);
}

}  // namespace sacc::cli
