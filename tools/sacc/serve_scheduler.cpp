#include "tools/sacc/serve_scheduler.h"

#include <algorithm>

#include "attention/cost_model.h"
#include "attention/kernel_tile.h"
#include "core/log.h"
#include "tools/sacc/serve_options.h"
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

namespace {

double seconds_since(ServeClock::time_point start) {
  return std::chrono::duration<double>(ServeClock::now() - start).count();
}

// The attention density of a prompt of `length` tokens whose prefill ran `first` tokens at `first_density`
// (its first step) and the rest as dense chunks: those visit exactly the causal tiles of their rows, since
// chunks end on kPrefillChunkAlign.
static_assert(kPrefillChunkAlign % kTileBlockQ == 0, "a prefill chunk must end on a query block");
double chunked_density(double first_density, int64_t first, int64_t length) {
  IndexGeometry head;
  head.num_heads = 1;
  head.seq_len = first;
  const auto first_tiles = static_cast<double>(causal_tiles(head));
  head.seq_len = length;
  const auto all_tiles = static_cast<double>(causal_tiles(head));
  return (first_density * first_tiles + (all_tiles - first_tiles)) / all_tiles;
}

}  // namespace

Scheduler::Sequence::Sequence(std::shared_ptr<GenerationJob> job_in, int slot_in,
                              const Tokenizer* maybe_tokenizer)
    : job(std::move(job_in)),
      slot(slot_in),
      sampler(job->options.sampling),
      maybe_decoder(maybe_tokenizer ? std::make_unique<StreamingDecoder>(*maybe_tokenizer) : nullptr),
      matcher(job->stop_strings),
      last(job->arrival) {}

Scheduler::Scheduler(Backend& backend, std::shared_ptr<const Tokenizer> maybe_tokenizer,
                     std::vector<int32_t> stop_tokens, size_t max_queue, ServeMetrics& metrics,
                     ServeBatching batching, ServePrefixCache prefix)
    : backend_(backend),
      maybe_tokenizer_(std::move(maybe_tokenizer)),
      stop_tokens_(std::move(stop_tokens)),
      max_queue_(max_queue),
      metrics_(metrics),
      batching_(std::move(batching)),
      prefix_(std::move(prefix)),
      slot_used_(static_cast<size_t>(std::max(batching_.max_batch, 1)), false),
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

uint64_t Scheduler::active_kv_bytes() const {
  uint64_t bytes = 0;
  for (const Sequence& seq : active_) bytes += seq.kv_bytes;
  return bytes;
}

int Scheduler::admissible_slot() const {
  const auto free = std::find(slot_used_.begin(), slot_used_.end(), false);
  if (free == slot_used_.end() || queue_.empty()) return -1;
  // Alone it always runs (the HTTP thread checked that it fits the device); beside others, only when their
  // KV caches leave it the room its own run needs.
  if (!active_.empty() && batching_.maybe_room_beside) {
    const GenerationJob& job = *queue_.front();
    const uint64_t room = batching_.maybe_room_beside(static_cast<int64_t>(job.prompt.size()),
                                                      job.options.max_new_tokens, job.attention->options);
    if (room < active_kv_bytes()) return -1;
  }
  return static_cast<int>(free - slot_used_.begin());
}

void Scheduler::worker_loop() {
  for (;;) {
    std::vector<Sequence*> admitted;
    {
      std::unique_lock lock(mutex_);
      queued_.wait(lock, [&] { return stopping_ || !queue_.empty() || !active_.empty(); });
      if (queue_.empty() && active_.empty()) return;  // stopping, nothing left
      for (int slot = admissible_slot(); slot >= 0; slot = admissible_slot()) {
        std::shared_ptr<GenerationJob> job = std::move(queue_.front());
        queue_.pop_front();
        job->phases.lap(RequestPhase::QUEUE);
        if (job->cancelled()) {
          job->end({make_error(StatusCode::IO_ERROR, "the client went away"), "stop", {}});
          continue;
        }
        slot_used_[static_cast<size_t>(slot)] = true;
        Sequence& seq = active_.emplace_back(std::move(job), slot, maybe_tokenizer_.get());
        // Counted from now on, so the next admission sees it.
        seq.kv_bytes = static_cast<uint64_t>(kv_positions_needed(static_cast<int64_t>(seq.job->prompt.size()),
                                                                 seq.job->options.max_new_tokens)) *
                       batching_.kv_bytes_per_token;
        admitted.push_back(&seq);
      }
      metrics_.set_queue_depth(static_cast<int64_t>(queue_.size()));
    }
    publish_active();
    for (Sequence* seq : admitted) start(*seq);
    // A client that went away frees its slot before the next step.
    for (Sequence& seq : active_)
      if (!seq.done && seq.job->cancelled()) finish(seq, {Status::ok(), "stop", {}});
    prefill_steps();
    decode_step();
    active_.remove_if([](const Sequence& s) { return s.done; });
  }
}

uint64_t Scheduler::cache_limit(const GenerationJob& job, uint64_t others_kv) const {
  if (!batching_.maybe_room_beside) return std::numeric_limits<uint64_t>::max();
  const uint64_t room = batching_.maybe_room_beside(static_cast<int64_t>(job.prompt.size()),
                                                    job.options.max_new_tokens, job.attention->options);
  return room > others_kv ? room - others_kv : 0;
}

void Scheduler::start(Sequence& seq) {
  GenerationJob& job = *seq.job;
  if (Status s = job.options.sampling.validate(); !s) return finish(seq, {s, "stop", {}});
  if (job.prompt.empty() || job.options.max_new_tokens < 1)
    return finish(seq, {make_error(StatusCode::INVALID_ARGUMENT, "{} prompt tokens, max_tokens {}",
                                   job.prompt.size(), job.options.max_new_tokens),
                        "stop",
                        {}});
  PrefixCache* cache = prefix_.maybe_cache && prefix_.maybe_cache->enabled() ? prefix_.maybe_cache : nullptr;
  seq.settings = prefix_.settings + "|" + job.attention->key;
  PrefixMatch match;
  // Evict first: the cache never takes room this request's own KV cache and workspace, or the running
  // requests' KV caches, need.
  if (cache)
    match = cache->acquire(seq.settings, job.prompt, cache_limit(job, active_kv_bytes() - seq.kv_bytes));
  job.phases.lap(RequestPhase::LOOKUP);
  const int64_t positions =
      kv_positions_needed(static_cast<int64_t>(job.prompt.size()), job.options.max_new_tokens);
  if (Status s = backend_.reserve_slot(seq.slot, positions); !s) return finish(seq, {s, "stop", {}});
  job.phases.lap(RequestPhase::RESERVE);
  if (match.maybe_snapshot) {
    if (match.tokens <= 0 || match.tokens >= static_cast<int64_t>(job.prompt.size()))
      return finish(seq, {make_error(StatusCode::INTERNAL, "prefix reuse of {} positions for a prompt of {}",
                                     match.tokens, job.prompt.size()),
                          "stop",
                          {}});
    if (Status s = backend_.import_kv(seq.slot, *match.maybe_snapshot, match.tokens); !s)
      return finish(seq, {s, "stop", {}});
    seq.computed = match.tokens;
  }
  job.phases.lap(RequestPhase::RESTORE);
}

void Scheduler::prefill_steps() {
  const bool decoding = std::any_of(active_.begin(), active_.end(),
                                    [](const Sequence& s) { return !s.done && s.next_token >= 0; });
  // --prefill-chunk tokens, fewer (down to one alignment) where the last chunk's pace says those would take
  // longer than kChunkDecodeSteps decode steps; one alignment while there is no pace yet.
  int64_t budget = batching_.prefill_chunk;
  if (prefill_token_seconds_ <= 0) {
    budget = std::min(kPrefillChunkAlign, budget);
  } else if (decode_step_seconds_ > 0) {
    const auto fit = static_cast<int64_t>(kChunkDecodeSteps * decode_step_seconds_ / prefill_token_seconds_);
    budget = std::min(std::max(fit / kPrefillChunkAlign * kPrefillChunkAlign, kPrefillChunkAlign),
                      batching_.prefill_chunk);
  }
  for (Sequence& seq : active_) {
    if (seq.done || seq.next_token >= 0) continue;
    const auto length = static_cast<int64_t>(seq.job->prompt.size());
    const int64_t begin = seq.computed;
    if (!decoding) return prefill_step(seq, length);  // alone: the whole prompt (it may run sparse)
    // Else up to the budget, a chunk ending on the alignment unless it ends the prompt.
    const int64_t end =
        begin + budget >= length ? length : (begin + budget) / kPrefillChunkAlign * kPrefillChunkAlign;
    if (end <= begin) return;
    budget -= end - begin;
    const ServeClock::time_point start = ServeClock::now();
    prefill_step(seq, end);
    const double seconds = seconds_since(start);
    SACC_LOG_DEBUG("serve: prefill chunk [{}, {}) of {} in {:.2f} ms (last decode step {:.2f} ms)", begin,
                   end, length, 1e3 * seconds, 1e3 * decode_step_seconds_);
    // Short steps are mostly fixed costs: only chunks of at least one alignment tell the pace.
    if (end - begin >= kPrefillChunkAlign)
      prefill_token_seconds_ = seconds / static_cast<double>(end - begin);
  }
}

void Scheduler::prefill_step(Sequence& seq, int64_t end) {
  GenerationJob& job = *seq.job;
  const auto length = static_cast<int64_t>(job.prompt.size());
  const int64_t begin = seq.computed;
  const std::span<const int32_t> tokens =
      std::span<const int32_t>(job.prompt)
          .subspan(static_cast<size_t>(begin), static_cast<size_t>(end - begin));
  Status s;
  if (begin == 0) {
    // The request's attention settings hold for its prefill from position 0 (later chunks run dense).
    if (job.attention->key != backend_attention_) {
      if (s = backend_.set_attention(job.attention->options); !s) return finish(seq, {s, "stop", {}});
      backend_attention_ = job.attention->key;
    }
    s = backend_.prefill(seq.slot, tokens, logits_);
    seq.prefill_attention = backend_.last_prefill_attention();
    seq.first_step_tokens = end;
  } else {
    s = backend_.extend(seq.slot, tokens, logits_);
  }
  if (!s) return finish(seq, {s, "stop", {}});
  // Part of a prompt: not its last step, or the last of several.
  if (end < length || seq.chunked) metrics_.count_prefill_chunk();
  seq.chunked = seq.chunked || end < length;
  seq.computed = end;
  if (end < length) return;
  if (seq.prefill_attention.sparse && seq.first_step_tokens < length)
    seq.prefill_attention.density =
        chunked_density(seq.prefill_attention.density, seq.first_step_tokens, length);
  // From the restore to the last chunk's logits, the steps of other requests interleaved with it included.
  job.phases.lap(RequestPhase::PREFILL);
  const int32_t token = seq.sampler.sample(logits_);
  job.phases.lap(RequestPhase::SAMPLE);
  emit(seq, token, ServeClock::now());
}

void Scheduler::decode_step() {
  std::vector<Sequence*> rows;
  std::vector<int32_t> tokens;
  std::vector<int> slots;
  for (Sequence& seq : active_) {
    if (seq.done || seq.next_token < 0) continue;
    rows.push_back(&seq);
    tokens.push_back(seq.next_token);
    slots.push_back(seq.slot);
  }
  if (rows.empty()) return;
  const ServeClock::time_point start = ServeClock::now();
  const Status s = backend_.decode_batch(tokens, slots, logits_);
  const ServeClock::time_point now = ServeClock::now();
  decode_step_seconds_ = std::chrono::duration<double>(now - start).count();
  metrics_.count_decode_step(static_cast<int64_t>(rows.size()));
  if (!s) {
    for (Sequence* seq : rows) finish(*seq, {s, "stop", {}});
    return;
  }
  const size_t vocab = logits_.size() / rows.size();
  for (size_t i = 0; i < rows.size(); ++i)
    emit(*rows[i], rows[i]->sampler.sample(std::span<float>(logits_).subspan(i * vocab, vocab)), now);
}

void Scheduler::emit(Sequence& seq, int32_t token, ServeClock::time_point now) {
  GenerationJob& job = *seq.job;
  const double seconds = std::chrono::duration<double>(now - seq.last).count();
  if (seq.generated == 0) {
    metrics_.observe_ttft(seconds);
    seq.first_token = now;
  } else {
    metrics_.observe_itl(seconds);
  }
  seq.last = now;
  ++seq.generated;
  seq.next_token = -1;
  const bool stop_token = std::find(stop_tokens_.begin(), stop_tokens_.end(), token) != stop_tokens_.end();
  if (!stop_token)
    job.append(
        seq.matcher.push(seq.maybe_decoder ? seq.maybe_decoder->push(token) : fmt::format("[{}]", token)));
  if (stop_token || seq.matcher.stopped() || job.cancelled()) return finish(seq, {Status::ok(), "stop", {}});
  if (seq.generated >= job.options.max_new_tokens) return finish(seq, {Status::ok(), "length", {}});
  seq.next_token = token;
}

void Scheduler::finish(Sequence& seq, JobOutcome outcome) {
  GenerationJob& job = *seq.job;
  const bool ok = outcome.status.is_ok() && seq.generated > 0;
  if (ok) {
    job.phases.set(RequestPhase::DECODE,
                   std::chrono::duration<double>(ServeClock::now() - seq.first_token).count());
    metrics_.observe_phases(job.phases.times());
    if (seq.maybe_decoder) job.append(seq.matcher.push(seq.maybe_decoder->finish()));
    job.append(seq.matcher.finish());
    const auto prompt_tokens = static_cast<int64_t>(job.prompt.size());
    metrics_.add_tokens(prompt_tokens, seq.generated);
    metrics_.observe_prefill_attention(seq.prefill_attention);
    outcome.usage = {prompt_tokens, seq.generated};
  }
  // The phases are observed: the snapshot's copy delays the next step, not this request's phases. The job
  // ends last, so a client that reads /metrics after its answer sees the server as this request left it.
  PrefixCache* cache = prefix_.maybe_cache && prefix_.maybe_cache->enabled() ? prefix_.maybe_cache : nullptr;
  if (cache) {
    if (ok) remember(seq, cache_limit(job, active_kv_bytes() - seq.kv_bytes));
    metrics_.set_prefix_cache(cache->stats(), cache->bytes(), cache->entries());
  }
  if (Status s = backend_.release_slot(seq.slot); !s)
    SACC_LOG_WARN("serve: freeing sequence slot {}: {}", seq.slot, s.to_string());
  slot_used_[static_cast<size_t>(seq.slot)] = false;
  seq.kv_bytes = 0;
  seq.done = true;
  publish_active();
  job.end(std::move(outcome));
}

void Scheduler::publish_active() {
  int64_t sequences = 0;
  uint64_t kv_bytes = 0;
  for (const Sequence& s : active_) {
    if (s.done) continue;
    ++sequences;
    kv_bytes += s.kv_bytes;
  }
  metrics_.set_active(sequences, kv_bytes);
}

void Scheduler::remember(const Sequence& seq, uint64_t limit) {
  PrefixCache& cache = *prefix_.maybe_cache;
  const std::vector<int32_t>& prompt = seq.job->prompt;
  // A sparse prefill's early positions depend on the prompt's tail (prefix_cache.h): not exact for others.
  if (seq.prefill_attention.sparse && !prefix_.keep_sparse) return;
  const int64_t n = cache.snapshot_length(seq.settings, prompt);
  if (n == 0) return;
  const uint64_t bytes = static_cast<uint64_t>(n) * prefix_.kv_bytes_per_token;
  const uint64_t room = std::min(cache.capacity(), limit);
  if (bytes > room) return;
  cache.shrink_to(room - bytes);  // before the copy is allocated, not after
  Result<std::unique_ptr<KvSnapshot>> snapshot = backend_.export_kv(seq.slot, n);
  if (!snapshot) {
    // Only a missed reuse later; the request itself has been answered.
    SACC_LOG_WARN("prefix cache: no snapshot of {} positions: {}", n, snapshot.status().to_string());
    return;
  }
  cache.insert(seq.settings, std::span<const int32_t>(prompt).first(static_cast<size_t>(n)),
               std::move(snapshot).value(), limit);
}

}  // namespace sacc::cli
