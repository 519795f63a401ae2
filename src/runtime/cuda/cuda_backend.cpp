// CUDA backend: the model as one or more device shards (device_shard.h) run by a schedule (shard_schedule.h):
// one GPU, layer split across GPUs under per-GPU caps, or tensor parallel over NCCL. bf16 weights and
// activations, cuBLASLt GEMMs over token chunks, bf16 KV cache, prefill attention through the attention
// library, a split-key decode kernel. Everything is enqueued on the shards' streams; the host waits once per
// step, for the logits. On one GPU a decode step is replayed from a CUDA graph (decode_graphs.h).
#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <memory>

#include "attention/cuda/cudnn_sdpa.h"
#include "core/cuda/cuda_check.h"
#include "core/device_info.h"
#include "core/log.h"
#include "core/progress.h"
#include "runtime/backend.h"
#include "runtime/cuda/decode_graphs.h"
#include "runtime/cuda/device_shard.h"
#include "runtime/cuda/shard_schedule.h"
#include "runtime/eval_hooks.h"
#include "runtime/multi_gpu_plan.h"

namespace sacc {
namespace {

using cuda_rt::DeviceShard;

double milliseconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

// Per-layer progress (one host wait per layer) only where it shows.
constexpr int64_t kProgressMinTokens = 32768;

// One device buffer per shard, [2 * shard layers, n, shard Hkv * d] bf16 (DeviceShard::copy_kv_out).
class CudaKvSnapshot final : public KvSnapshot {
 public:
  CudaKvSnapshot(const void* owner, int64_t tokens) : owner_(owner), tokens_(tokens) {}
  int64_t tokens() const override { return tokens_; }
  uint64_t bytes() const override {
    uint64_t total = 0;
    for (const DeviceBuffer& b : shards_) total += b.size();
    return total;
  }

  const void* owner_;  // the backend that made it
  int64_t tokens_;
  std::vector<DeviceBuffer> shards_;  // in the backend's shard order
};

class CudaBackend final : public Backend {
 public:
  CudaBackend(const ModelConfig& config, const BackendOptions& options)
      : config_(config), options_(options) {}

  Status init(const LlamaWeights& weights, const GpuPlacement& placement) {
    for (const ShardSpec& spec : placement.shards) {
      BackendOptions shard_options = options_;
      shard_options.device = Device::cuda(spec.device);
      shard_options.patterns = shard_patterns(options_.patterns, config_, spec);
      Result<std::unique_ptr<DeviceShard>> shard = DeviceShard::create(weights, spec, shard_options);
      if (!shard) return shard.status().with_context(fmt::format("cuda:{}", spec.device));
      shards_.push_back(std::move(shard).value());
      if (spec.has_lm_head) head_ = shards_.back().get();
    }
    std::vector<DeviceShard*> shards;
    for (auto& shard : shards_) shards.push_back(shard.get());
    const bool tensor = options_.split == SplitMode::TENSOR && shards.size() > 1;
    SACC_ASSIGN_OR_RETURN(schedule_, tensor ? cuda_rt::make_tensor_parallel(shards, config_.hidden)
                                            : cuda_rt::make_layer_pipeline(shards, config_.hidden));
    // Several GPUs keep the plain path: their steps hand hidden states between GPUs (layer split) or
    // all-reduce over NCCL (tensor parallel), which this capture does not cover.
    if (shards_.size() == 1 && cuda_rt::cuda_graphs_enabled())
      maybe_graphs_ = std::make_unique<cuda_rt::DecodeGraphs>(shards_.front()->device());
    return Status::ok();
  }

  Status set_slot_count(int slots) override {
    if (slots < 1) return make_error(StatusCode::INVALID_ARGUMENT, "{} sequence slots", slots);
    for (auto& shard : shards_) SACC_RETURN_IF_ERROR(shard->set_slot_count(slots));
    slots_ = std::vector<SlotState>(static_cast<size_t>(slots));
    return Status::ok();
  }

  int slot_count() const override { return static_cast<int>(slots_.size()); }

  Status reserve_slot(int slot, int64_t max_tokens) override {
    SACC_ASSIGN_OR_RETURN(SlotState * s, find_slot(slot));
    if (max_tokens > config_.max_context)
      return make_error(StatusCode::INVALID_ARGUMENT, "{} tokens exceed the model's context of {} tokens",
                        max_tokens, config_.max_context);
    *s = SlotState{};
    for (auto& shard : shards_) SACC_RETURN_IF_ERROR(shard->reserve(slot, max_tokens));
    s->capacity = max_tokens;
    return Status::ok();
  }

  Status release_slot(int slot) override {
    SACC_ASSIGN_OR_RETURN(SlotState * s, find_slot(slot));
    for (auto& shard : shards_) shard->release(slot);
    *s = SlotState{};
    return Status::ok();
  }

  Status prefill(int slot, std::span<const int32_t> tokens, std::vector<float>& logits) override {
    SACC_ASSIGN_OR_RETURN(SlotState * s, find_slot(slot));
    s->position = 0;
    const int64_t n = static_cast<int64_t>(tokens.size());
    if (n > s->capacity)
      return make_error(StatusCode::INVALID_ARGUMENT,
                        "{} prompt tokens exceed the reserved KV cache of {} tokens", n, s->capacity);
    for (auto& shard : shards_) SACC_RETURN_IF_ERROR(shard->begin_prefill(n));
    last_attention_ = {};
    SACC_RETURN_IF_ERROR(forward(slot, tokens, logits));
    if (shards_.front()->prefill_sparse()) {
      // forward() synchronised every shard: their index totals are on the host.
      AttentionCost cost;
      for (const auto& shard : shards_) cost += shard->prefill_index_cost();
      last_attention_ = {true, cost.density()};
    }
    return Status::ok();
  }

  // On one GPU a decode is a batch step of one row, with or without graphs (the same launches either way,
  // so the same bits), replayed from a graph when graphs are on; over several GPUs, and before a prefill,
  // the sequence step.
  Status decode(int slot, int32_t token, std::vector<float>& logits) override {
    SACC_ASSIGN_OR_RETURN(const SlotState* s, find_slot(slot));
    if (shards_.size() == 1 && s->position > 0)
      return decode_batch(std::span<const int32_t>(&token, 1), std::span<const int>(&slot, 1), logits);
    return forward(slot, std::span<const int32_t>(&token, 1), logits);
  }

  Status decode_batch(std::span<const int32_t> tokens, std::span<const int> slots,
                      std::vector<float>& logits) override;

  Result<std::unique_ptr<KvSnapshot>> export_kv(int slot, int64_t n) override {
    SACC_ASSIGN_OR_RETURN(SlotState * s, find_slot(slot));
    if (n < 0 || n > s->position)
      return make_error(StatusCode::INVALID_ARGUMENT, "export_kv({}): the cache holds {}", n, s->position);
    auto snapshot = std::make_unique<CudaKvSnapshot>(this, n);
    for (auto& shard : shards_) {
      SACC_ASSIGN_OR_RETURN(DeviceBuffer copy, shard->copy_kv_out(slot, n));
      snapshot->shards_.push_back(std::move(copy));
    }
    // The copies are done before the cache may be overwritten by the next request.
    for (auto& shard : shards_) SACC_RETURN_IF_ERROR(shard->synchronize());
    return std::unique_ptr<KvSnapshot>(std::move(snapshot));
  }

  Status import_kv(int slot, const KvSnapshot& snapshot, int64_t n) override {
    SACC_ASSIGN_OR_RETURN(SlotState * slot_state, find_slot(slot));
    const auto* s = dynamic_cast<const CudaKvSnapshot*>(&snapshot);
    if (!s || s->owner_ != this || s->shards_.size() != shards_.size())
      return make_error(StatusCode::INVALID_ARGUMENT, "KV snapshot was made by another backend");
    if (n > slot_state->capacity)
      return make_error(StatusCode::INVALID_ARGUMENT, "{} restored positions exceed the reserved {}", n,
                        slot_state->capacity);
    for (size_t i = 0; i < shards_.size(); ++i)
      SACC_RETURN_IF_ERROR(shards_[i]->copy_kv_in(slot, s->shards_[i], s->tokens_, n));
    // One wait per restored prompt, never per decode step: the restore's time is then its own, not the
    // suffix prefill's (the copies and the suffix share each shard's stream, so nothing overlaps on the
    // device; only the host's launches of the suffix start later).
    for (auto& shard : shards_) SACC_RETURN_IF_ERROR(shard->synchronize());
    slot_state->position = n;
    return Status::ok();
  }

  // The suffix runs as a short prefill at an offset: linear layers over its rows, attention of its rows
  // against every cached key (DeviceShard::run_attention: one dense flash launch where the offset is a
  // whole number of query tiles, else the decode kernel per row).
  Status extend(int slot, std::span<const int32_t> tokens, std::vector<float>& logits) override {
    SACC_ASSIGN_OR_RETURN(SlotState * s, find_slot(slot));
    const int64_t n = static_cast<int64_t>(tokens.size());
    if (s->position + n > s->capacity)
      return make_error(StatusCode::INVALID_ARGUMENT, "{} tokens exceed the reserved KV cache of {} tokens",
                        s->position + n, s->capacity);
    const auto started = std::chrono::steady_clock::now();
    for (auto& shard : shards_) SACC_RETURN_IF_ERROR(shard->begin_prefill(std::max<int64_t>(n, 1)));
    SACC_LOG_DEBUG("extend: step buffers for {} rows in {:.2f} ms", n, milliseconds_since(started));
    last_attention_ = {};
    return forward(slot, tokens, logits);
  }

  int64_t position(int slot) const override {
    return slot >= 0 && slot < slot_count() ? slots_[static_cast<size_t>(slot)].position : 0;
  }
  PrefillAttentionStats last_prefill_attention() const override { return last_attention_; }

  Status set_attention(const BackendOptions& options) override;

  cuda_rt::DecodeGraphStats graph_stats() const {
    return maybe_graphs_ ? maybe_graphs_->stats() : cuda_rt::DecodeGraphStats{};
  }

  std::vector<DeviceMemoryReport> memory() const override {
    std::vector<DeviceMemoryReport> reports;
    for (const auto& shard : shards_) reports.push_back(shard->memory());
    return reports;
  }

 private:
  // One slot's capacity and the tokens in its cache.
  struct SlotState {
    int64_t capacity = 0;
    int64_t position = 0;
  };

  Result<SlotState*> find_slot(int slot) {
    if (slot < 0 || slot >= slot_count())
      return make_error(StatusCode::INVALID_ARGUMENT, "sequence slot {} outside [0, {})", slot, slot_count());
    return &slots_[static_cast<size_t>(slot)];
  }

  Status check_tokens(std::span<const int32_t> tokens, int64_t first_position) const {
    return check_token_ids(tokens, first_position, config_.vocab);
  }

  // A sequence step of `slot` at positions [position(slot), + n).
  Status forward(int slot, std::span<const int32_t> tokens, std::vector<float>& logits) {
    SlotState& s = slots_[static_cast<size_t>(slot)];
    const int64_t n = static_cast<int64_t>(tokens.size()), start = s.position;
    if (n == 0) return make_error(StatusCode::INVALID_ARGUMENT, "empty prompt");
    if (start + n > s.capacity)
      return make_error(StatusCode::INVALID_ARGUMENT, "{} tokens exceed the reserved KV cache of {} tokens",
                        start + n, s.capacity);
    if (n > shards_.front()->workspace_tokens())
      return make_error(StatusCode::INTERNAL, "workspace sized for {} tokens, step has {}",
                        shards_.front()->workspace_tokens(), n);
    SACC_RETURN_IF_ERROR(check_tokens(tokens, start));
    for (auto& shard : shards_) shard->select_slot(slot);
    const bool show = options_.show_progress && n >= kProgressMinTokens;
    Progress progress("prefill", config_.num_layers, show);
    const auto started = std::chrono::steady_clock::now();
    SACC_RETURN_IF_ERROR(schedule_->run(tokens, start, show ? &progress : nullptr));
    const double enqueued = milliseconds_since(started);
    const int64_t rows = step_logit_rows(options_, n, start);
    logits.resize(rows * config_.vocab);
    SACC_RETURN_IF_ERROR(head_->logits(n, rows, logits.data()));
    for (auto& shard : shards_) SACC_RETURN_IF_ERROR(shard->synchronize());
    // Where a step's time goes: the host enqueueing the layers, or the device running them (and the logits).
    SACC_LOG_DEBUG(
        "forward of {} rows at position {}: layers enqueued in {:.2f} ms, logits on the host after "
        "{:.2f} ms",
        n, start, enqueued, milliseconds_since(started));
    s.position = start + n;
    if (n > 1)
      for (auto& shard : shards_) shard->sample_device_memory();
    return Status::ok();
  }

  ModelConfig config_;
  BackendOptions options_;
  std::vector<std::unique_ptr<DeviceShard>> shards_;  // in layer order (layer split) or rank order (tensor)
  DeviceShard* head_ = nullptr;                       // the shard with the LM head
  std::unique_ptr<cuda_rt::ShardSchedule> schedule_;
  std::vector<SlotState> slots_{1};
  PrefillAttentionStats last_attention_;
  std::unique_ptr<cuda_rt::DecodeGraphs> maybe_graphs_;  // one GPU with SACC_CUDA_GRAPHS on
};

// The linear layers once over the B rows, the batched decode attention (DeviceShard::begin_batch) on every
// shard: the schedule runs as for any step (layer split hands the B hidden rows on, tensor parallel sums
// the B rows' partials). On one GPU with graphs the step from the embedding to the logits in pinned memory
// is one graph launch after the table's copy (decode_graphs.h).
Status CudaBackend::decode_batch(std::span<const int32_t> tokens, std::span<const int> slots,
                                 std::vector<float>& logits) {
  SACC_RETURN_IF_ERROR(check_batch_slots(tokens, slots, slot_count()));
  const auto rows = static_cast<int64_t>(slots.size());
  std::vector<int32_t> positions(slots.size());
  for (size_t i = 0; i < slots.size(); ++i) {
    const SlotState& s = slots_[static_cast<size_t>(slots[i])];
    if (s.position == 0 || s.position + 1 > s.capacity)
      return make_error(StatusCode::INVALID_ARGUMENT,
                        "slot {}: a decode at position {} of a KV cache of {} tokens (after its prefill)",
                        slots[i], s.position, s.capacity);
    SACC_RETURN_IF_ERROR(check_tokens(tokens.subspan(i, 1), s.position));
    positions[i] = static_cast<int32_t>(s.position);
  }
  const auto started = std::chrono::steady_clock::now();
  logits.resize(static_cast<size_t>(rows * config_.vocab));
  float* out = logits.data();
  Status run = Status::ok();
  if (maybe_graphs_) {
    // Room for a batch of every slot: one address whatever B is.
    Result<float*> pinned = maybe_graphs_->host_logits(slot_count() * config_.vocab);
    if (pinned) out = *pinned;
    run = pinned.status();
  }
  for (auto& shard : shards_)
    if (run) run = shard->begin_batch(slots, positions, tokens);
  const auto enqueue = [&]() -> Status {
    SACC_RETURN_IF_ERROR(schedule_->run(tokens, 0, nullptr));
    return head_->logits(rows, rows, out);
  };
  if (run) {
    run = maybe_graphs_ ? maybe_graphs_->run(rows, head_->batch_step_signature(), head_->stream(), enqueue)
                        : enqueue();
  }
  const double enqueued = milliseconds_since(started);
  // Waited for even after a failure: the next step rewrites the pinned table and logits these copies read.
  for (auto& shard : shards_) {
    const Status synced = shard->synchronize();
    if (run) run = synced;
    shard->end_batch();
  }
  SACC_RETURN_IF_ERROR(run);
  if (out != logits.data()) std::copy_n(out, logits.size(), logits.data());
  // As forward()'s line: the host's share of the step (the table, then the launches or the graph's), then
  // the whole step.
  SACC_LOG_DEBUG(
      "decode step of {} rows (the first at position {}): {} in {:.2f} ms, logits on the host "
      "after {:.2f} ms",
      rows, positions.front(), maybe_graphs_ ? maybe_graphs_->last_step() : "layers enqueued", enqueued,
      milliseconds_since(started));
  for (const int slot : slots) ++slots_[static_cast<size_t>(slot)].position;
  return Status::ok();
}

Status check_patterns(const ModelConfig& c, const std::vector<LayerPatterns>& patterns) {
  if (patterns.empty()) return Status::ok();
  if (static_cast<int>(patterns.size()) != c.num_layers)
    return make_error(StatusCode::INVALID_ARGUMENT, "pattern config has {} layers, the model has {}",
                      patterns.size(), c.num_layers);
  for (int l = 0; l < c.num_layers; ++l) {
    const size_t heads = patterns[l].shared_per_kv_group ? c.num_kv_heads : c.num_heads;
    if (patterns[l].heads.size() != heads)
      return make_error(StatusCode::INVALID_ARGUMENT,
                        "pattern config layer {} has {} heads, the model has {}", l, patterns[l].heads.size(),
                        heads);
  }
  return Status::ok();
}

Status check_gpus(const BackendOptions& options) {
  const int visible = cuda_device_count();
  for (int gpu : options.gpus)
    if (gpu >= visible)
      return make_error(StatusCode::INVALID_ARGUMENT, "--gpus names GPU {} but {} GPU(s) are visible", gpu,
                        visible);
  return Status::ok();
}

// The attention settings (copy_attention_settings) the CUDA backend runs.
Status check_cuda_attention(const ModelConfig& config, const BackendOptions& options) {
  SACC_RETURN_IF_ERROR(check_patterns(config, options.patterns));
  if (options.attention == AttentionMode::CUDNN) SACC_RETURN_IF_ERROR(cudnn_sdpa_available());
  return Status::ok();
}

Status CudaBackend::set_attention(const BackendOptions& options) {
  SACC_RETURN_IF_ERROR(check_cuda_attention(config_, options));
  copy_attention_settings(options, options_);
  for (auto& shard : shards_) {
    BackendOptions shard_options = options;
    shard_options.patterns = shard_patterns(options.patterns, config_, shard->spec());
    shard->set_attention(shard_options);
  }
  return Status::ok();
}

}  // namespace

namespace cuda_rt {

Result<DecodeGraphStats> decode_graph_stats(const Backend& backend) {
  const auto* cuda = dynamic_cast<const CudaBackend*>(&backend);
  if (!cuda) return make_error(StatusCode::INVALID_ARGUMENT, "decode graph counters of a non-CUDA backend");
  return cuda->graph_stats();
}

}  // namespace cuda_rt

Result<uint64_t> cuda_attention_workspace_bytes(const ModelConfig& config, const BackendOptions& options,
                                                int64_t tokens) {
  SACC_ASSIGN_OR_RETURN(AttentionBytes b,
                        attention_workspace(config, options, tokens, select_method(options, tokens)));
  return static_cast<uint64_t>(b.select + b.plan);
}

Result<std::unique_ptr<Backend>> make_cuda_backend(const LlamaWeights& weights,
                                                   const BackendOptions& options) {
  const ModelConfig& config = weights.config;
  SACC_RETURN_IF_ERROR(config.validate());
  if (options.device.is_cpu() && options.gpus.empty())
    return make_error(StatusCode::INVALID_ARGUMENT, "make_cuda_backend on a CPU device");
  SACC_RETURN_IF_ERROR(check_cuda_attention(config, options));
  SACC_RETURN_IF_ERROR(check_gpus(options));
  if (config.head_dim != 64 && config.head_dim != 128)
    return make_error(StatusCode::UNSUPPORTED,
                      "the CUDA backend supports head_dim 64 and 128, the model has {}; use --device cpu",
                      config.head_dim);
  // Tensor parallel spreads a layer's heads over the GPUs; the observer wants them all in one call.
  if (options.maybe_qkv_observer && options.split == SplitMode::TENSOR && options.gpus.size() > 1)
    return make_error(
        StatusCode::UNSUPPORTED,
        "capturing Q/K/V (sacc eval recall, sacc search) needs every head of a layer on one GPU; "
        "tensor parallel splits them: use --split layer or a single GPU");
  apply_gpu_caps(options);
  SACC_ASSIGN_OR_RETURN(GpuPlacement placement, plan_gpu_placement(config, options));
  auto backend = std::make_unique<CudaBackend>(config, options);
  SACC_RETURN_IF_ERROR(backend->init(weights, placement));
  return std::unique_ptr<Backend>(std::move(backend));
}

}  // namespace sacc
