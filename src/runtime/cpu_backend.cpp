// CPU backend: weights kept in their file format (GGUF blocks through quantised dot products, fp32 through
// OpenBLAS), fp32 activations over token chunks, bf16 KV cache, the runtime's own multi-threaded CPU
// attention.
#include <algorithm>
#include <cmath>

#include "attention/cost_model.h"
#include "attention/cpu/cpu_attention.h"
#include "attention/cpu/plan_cpu.h"
#include "core/out_of_memory.h"
#include "core/process_memory.h"
#include "core/progress.h"
#include "runtime/backend.h"
#include "runtime/cpu/cpu_kv_snapshot.h"
#include "runtime/cpu/cpu_matrix.h"
#include "runtime/cpu_kernels.h"
#include "runtime/eval_hooks.h"
#include "runtime/llama_layer.h"
#include "runtime/memory_plan.h"

namespace sacc {
namespace {

struct CpuLayer {
  std::vector<float> attn_norm, bq, bk, bv, mlp_norm;  // [D], [Q], [KV], [KV], [D] (biases empty if absent)
  CpuMatrix wq, wk, wv, wo, w_gate, w_up, w_down;      // [Q, D], [KV, D] x2, [D, Q], [F, D] x2, [D, F]
};

// One sequence's KV cache (backend.h: slots).
struct CpuSlot {
  std::vector<CpuKvLayer> k, v;  // [N][capacity, Hkv*d] bf16
  int64_t capacity = 0;
  int64_t position = 0;
};

// One row of a batched decode step: its sequence and the position its token takes.
struct BatchRow {
  CpuSlot* slot = nullptr;
  int64_t position = 0;
};

std::vector<float> to_f32(const WeightTensor& t) {
  std::vector<float> out(t.defined() ? t.view.numel() : 0);
  if (!out.empty()) weight_to_f32(t, out.data());
  return out;
}

class CpuBackend final : public Backend {
 public:
  CpuBackend(const LlamaWeights& weights, const BackendOptions& options)
      : config_(weights.config),
        options_(with_linear_chunk(options, true, weights.config)),
        inv_freq_(rope_inverse_frequencies(weights.config)),
        qkv_feed_(options.maybe_qkv_observer) {}

  // The fp32 copies of norms and of weights the quantised dot products cannot read in place: std::bad_alloc
  // becomes OUT_OF_MEMORY.
  Status load(const LlamaWeights& w) {
    return guard_host_allocation("model weights (CPU backend copies)", 0, [&] { load_weights(w); });
  }

  Status set_slot_count(int slots) override {
    if (slots < 1) return make_error(StatusCode::INVALID_ARGUMENT, "{} sequence slots", slots);
    slots_ = std::vector<CpuSlot>(static_cast<size_t>(slots));
    return Status::ok();
  }

  int slot_count() const override { return static_cast<int>(slots_.size()); }

  Status reserve_slot(int slot, int64_t max_tokens) override {
    SACC_ASSIGN_OR_RETURN(CpuSlot * s, find_slot(slot));
    if (max_tokens > config_.max_context)
      return make_error(StatusCode::INVALID_ARGUMENT, "{} tokens exceed the model's context of {} tokens",
                        max_tokens, config_.max_context);
    // The old cache goes first; the new one is built in locals, so a failure has freed what it allocated by
    // the time the error reads what is left, and the backend stays usable for a smaller request.
    *s = CpuSlot{};
    return guard_host_allocation(fmt::format("KV cache for {} tokens", max_tokens),
                                 kv_cache_bytes(config_, max_tokens), [&] { allocate_kv(*s, max_tokens); });
  }

  Status release_slot(int slot) override {
    SACC_ASSIGN_OR_RETURN(CpuSlot * s, find_slot(slot));
    *s = CpuSlot{};
    return Status::ok();
  }

 private:
  void load_weights(const LlamaWeights& w) {
    const QuantIsa isa = best_quant_isa();
    embed_ = make_cpu_matrix(w.embed, isa);
    final_norm_ = to_f32(w.final_norm);
    if (!config_.tied_embeddings) lm_head_ = make_cpu_matrix(w.lm_head, isa);
    layers_.resize(config_.num_layers);
    for (int i = 0; i < config_.num_layers; ++i) {
      const LayerWeights& s = w.layers[i];
      CpuLayer& l = layers_[i];
      l.attn_norm = to_f32(s.attn_norm);
      l.wq = make_cpu_matrix(s.wq, isa);
      l.wk = make_cpu_matrix(s.wk, isa);
      l.wv = make_cpu_matrix(s.wv, isa);
      l.bq = to_f32(s.bq);
      l.bk = to_f32(s.bk);
      l.bv = to_f32(s.bv);
      l.wo = make_cpu_matrix(s.wo, isa);
      l.mlp_norm = to_f32(s.mlp_norm);
      l.w_gate = make_cpu_matrix(s.w_gate, isa);
      l.w_up = make_cpu_matrix(s.w_up, isa);
      l.w_down = make_cpu_matrix(s.w_down, isa);
    }
  }

  void allocate_kv(CpuSlot& slot, int64_t max_tokens) {
    const auto per_layer = static_cast<size_t>(max_tokens * config_.kv_dim());
    CpuSlot fresh;
    fresh.k.resize(config_.num_layers);
    fresh.v.resize(config_.num_layers);
    for (int i = 0; i < config_.num_layers; ++i) {
      fresh.k[i].resize(per_layer);
      fresh.v[i].resize(per_layer);
    }
    fresh.capacity = max_tokens;
    slot = std::move(fresh);
  }

  Result<CpuSlot*> find_slot(int slot) {
    if (slot < 0 || slot >= slot_count())
      return make_error(StatusCode::INVALID_ARGUMENT, "sequence slot {} outside [0, {})", slot, slot_count());
    return &slots_[static_cast<size_t>(slot)];
  }

 public:
  Status prefill(int slot, std::span<const int32_t> tokens, std::vector<float>& logits) override {
    SACC_ASSIGN_OR_RETURN(CpuSlot * s, find_slot(slot));
    s->position = 0;
    return forward(*s, tokens, logits);
  }

  Status decode(int slot, int32_t token, std::vector<float>& logits) override {
    SACC_ASSIGN_OR_RETURN(CpuSlot * s, find_slot(slot));
    return forward(*s, std::span<const int32_t>(&token, 1), logits);
  }

  Status decode_batch(std::span<const int32_t> tokens, std::span<const int> slots,
                      std::vector<float>& logits) override;

  Result<std::unique_ptr<KvSnapshot>> export_kv(int slot, int64_t n) override {
    SACC_ASSIGN_OR_RETURN(CpuSlot * s, find_slot(slot));
    if (n < 0 || n > s->position)
      return make_error(StatusCode::INVALID_ARGUMENT, "export_kv({}): the cache holds {}", n, s->position);
    return guard_host_allocation(fmt::format("prefix cache snapshot of {} positions", n),
                                 kv_cache_bytes(config_, n), [&]() -> Result<std::unique_ptr<KvSnapshot>> {
                                   return export_cpu_kv(s->k, s->v, n, config_.kv_dim());
                                 });
  }

  Status import_kv(int slot, const KvSnapshot& snapshot, int64_t n) override {
    SACC_ASSIGN_OR_RETURN(CpuSlot * s, find_slot(slot));
    SACC_RETURN_IF_ERROR(import_cpu_kv(snapshot, n, config_.kv_dim(), s->k, s->v));
    s->position = n;
    return Status::ok();
  }

  Status extend(int slot, std::span<const int32_t> tokens, std::vector<float>& logits) override {
    SACC_ASSIGN_OR_RETURN(CpuSlot * s, find_slot(slot));
    last_attention_ = {};  // forward() runs dense attention at a position offset
    return forward(*s, tokens, logits);
  }

  int64_t position(int slot) const override {
    return slot >= 0 && slot < slot_count() ? slots_[static_cast<size_t>(slot)].position : 0;
  }
  PrefillAttentionStats last_prefill_attention() const override { return last_attention_; }

  Status set_attention(const BackendOptions& options) override;

  std::vector<DeviceMemoryReport> memory() const override {
    // The engine's accounting, and the process's RSS high-water mark as the kernel counts it.
    return {{"cpu", static_cast<uint64_t>(peak_bytes_), process_peak_rss_bytes()}};
  }

 private:
  class StepOps;

  // Runs `tokens` at positions [slot.position, + n): linear layers over chunks, attention over all n
  // queries against every cached key of the slot (llama_layer.h). The step's activations, sparse index and
  // logits are host allocations: std::bad_alloc becomes OUT_OF_MEMORY naming the step and its activation
  // bytes.
  Status forward(CpuSlot& slot, std::span<const int32_t> tokens, std::vector<float>& logits);
  Status forward_step(CpuSlot& slot, std::span<const int32_t> tokens, std::vector<float>& logits);
  // decode_batch's step over checked rows: tokens [B], rows [B], logits [B, V].
  Status batch_step(std::span<const int32_t> tokens, std::span<const BatchRow> rows,
                    std::vector<float>& logits);
  Status check_tokens(std::span<const int32_t> tokens, int64_t first_position) const;

  bool use_sparse(int64_t n) const {
    if (options_.patterns.empty()) return false;
    if (options_.attention == AttentionMode::SPARSE) return true;
    return options_.attention == AttentionMode::AUTO && n >= options_.sparse_min_length;
  }

  // Quantises a chunk's normalised input once for the matrices that share it (q, k, v; gate, up): nullptr
  // when they are fp32 and read `x` directly.
  const QuantizedInput* quantize_shared(const CpuMatrix& first, const float* x, int64_t rows) {
    if (!first.is_quantized()) return nullptr;
    shared_input_.quantize(x, rows, first.cols, quant_act_group(first.quant.type));
    return &shared_input_;
  }

  // Weights (mapped file blocks and owned fp32 alike), activations, quantised inputs and the KV cache.
  void track_peak(size_t activation_floats) {
    uint64_t weights = embed_.bytes() + lm_head_.bytes() + final_norm_.size() * 4;
    for (const CpuLayer& l : layers_) {
      for (const auto* v : {&l.attn_norm, &l.bq, &l.bk, &l.bv, &l.mlp_norm}) weights += v->size() * 4;
      for (const CpuMatrix* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down})
        weights += m->bytes();
    }
    const uint64_t quantized_inputs =
        (shared_input_.blocks.capacity() + scratch_.blocks.capacity()) * sizeof(ActBlock);
    int64_t kv_positions = 0;
    for (const CpuSlot& slot : slots_) kv_positions += slot.capacity;
    const uint64_t bytes =
        weights + activation_floats * 4 + quantized_inputs + kv_cache_bytes(config_, kv_positions);
    peak_bytes_ = std::max(peak_bytes_, bytes);
  }

  ModelConfig config_;
  BackendOptions options_;
  std::vector<double> inv_freq_;
  QkvObserverFeed qkv_feed_;
  CpuMatrix embed_, lm_head_;      // [V, D] each (lm_head_ empty when tied)
  std::vector<float> final_norm_;  // [D]
  std::vector<CpuLayer> layers_;
  QuantizedInput shared_input_, scratch_;  // [c, cols / 32] blocks of the current chunk's inputs
  std::vector<CpuSlot> slots_{1};          // the sequences' KV caches (backend.h: slots)
  PrefillAttentionStats last_attention_;
  AttentionCost sparse_cost_;  // the sparse indices of the current prefill, summed over its layers
  size_t peak_bytes_ = 0;
};

// llama_layer.h's operations for one step of the CPU backend: the step's fp32 activations, the backend's
// weights, bf16 KV cache and quantised-input scratch. A sequence step runs n rows of one slot at consecutive
// positions (`maybe_slot`); a batch step (`batch`, n rows) runs each row at its own slot and position, its
// RoPE, KV append and attention row by row.
class CpuBackend::StepOps {
 public:
  StepOps(CpuBackend& backend, int64_t n, bool sparse, CpuSlot* maybe_slot, std::span<const BatchRow> batch)
      : b_(backend),
        maybe_slot_(maybe_slot),
        batch_(batch),
        c_(backend.config_),
        hidden_(c_.hidden),
        q_width_(c_.q_dim()),
        kv_width_(c_.kv_dim()),
        ffn_(c_.ffn),
        chunk_(std::min(n, std::max<int64_t>(1, backend.options_.chunk))),
        eps_(static_cast<float>(c_.rms_eps)),
        sparse_(sparse),
        x_(n * hidden_),
        q_(n * q_width_),
        o_(n * q_width_),
        normed_(chunk_ * hidden_),
        k_(chunk_ * kv_width_),
        v_(chunk_ * kv_width_),
        gate_(chunk_ * ffn_),
        up_(chunk_ * ffn_) {}

  float* x() { return x_.data(); }  // [n, D]: the embedding writes the step's rows here
  // The activations' floats, for the memory accounting.
  size_t floats() const {
    return x_.size() + q_.size() + o_.size() + normed_.size() + k_.size() + v_.size() + gate_.size() +
           up_.size();
  }

  int64_t chunk_rows(int64_t) const { return chunk_; }

  Status attn_norm(int layer, int64_t row0, int64_t rows) {
    cpu_rms_norm(x_.data() + row0 * hidden_, b_.layers_[layer].attn_norm.data(), normed_.data(), rows,
                 hidden_, eps_);
    return Status::ok();
  }

  Status qkv_proj(int layer, int64_t row0, int64_t rows, int64_t) {
    const CpuLayer& l = b_.layers_[layer];
    const QuantizedInput* in = b_.quantize_shared(l.wq, normed_.data(), rows);
    cpu_matmul(l.wq, normed_.data(), q_.data() + row0 * q_width_, rows, false, b_.scratch_, in);
    cpu_matmul(l.wk, normed_.data(), k_.data(), rows, false, b_.scratch_, in);
    cpu_matmul(l.wv, normed_.data(), v_.data(), rows, false, b_.scratch_, in);
    return Status::ok();
  }

  Status bias_rope(int layer, Qkv which, int64_t row0, int64_t rows, int64_t position, bool rotate) {
    const CpuLayer& l = b_.layers_[layer];
    float* y = which == Qkv::Q ? q_.data() + row0 * q_width_ : which == Qkv::K ? k_.data() : v_.data();
    const std::vector<float>& bias = which == Qkv::Q ? l.bq : which == Qkv::K ? l.bk : l.bv;
    const int heads = which == Qkv::Q ? c_.num_heads : c_.num_kv_heads;
    const int64_t width = int64_t{heads} * c_.head_dim;
    if (!bias.empty()) cpu_add_bias(y, bias.data(), rows, width);
    if (!rotate) return Status::ok();
    if (batch_.empty()) {
      cpu_rope(y, rows, heads, c_.head_dim, position, b_.inv_freq_);
      return Status::ok();
    }
    for (int64_t i = 0; i < rows; ++i)
      cpu_rope(y + i * width, 1, heads, c_.head_dim, batch_[row0 + i].position, b_.inv_freq_);
    return Status::ok();
  }

  Status append_kv(int layer, int64_t row0, int64_t rows, int64_t position) {
    for (int64_t i = 0; i < rows; ++i) {
      CpuSlot& slot = batch_.empty() ? *maybe_slot_ : *batch_[row0 + i].slot;
      const int64_t at = batch_.empty() ? position + i : batch_[row0 + i].position;
      uint16_t* k = slot.k[layer].data() + at * kv_width_;
      uint16_t* v = slot.v[layer].data() + at * kv_width_;
      const float* k_row = k_.data() + i * kv_width_;
      const float* v_row = v_.data() + i * kv_width_;
      for (int64_t j = 0; j < kv_width_; ++j) k[j] = float_to_bf16(k_row[j]);
      for (int64_t j = 0; j < kv_width_; ++j) v[j] = float_to_bf16(v_row[j]);
    }
    return Status::ok();
  }

  bool observing(int64_t start) const { return batch_.empty() && b_.qkv_feed_.active(start); }

  Status observe_qkv(int layer, int64_t n) {
    b_.qkv_feed_.deliver(layer, n, {q_width_, kv_width_}, q_.data(), maybe_slot_->k[layer].data(),
                         maybe_slot_->v[layer].data());
    return Status::ok();
  }

  Status attention(int layer, int64_t n, int64_t start) {
    if (!batch_.empty()) return batch_attention(layer, n);
    CpuAttentionArgs args;
    args.num_queries = n;
    args.num_keys = start + n;
    args.num_q_heads = c_.num_heads;
    args.num_kv_heads = c_.num_kv_heads;
    args.head_dim = c_.head_dim;
    args.q = q_.data();
    args.k = maybe_slot_->k[layer].data();
    args.v = maybe_slot_->v[layer].data();
    args.o = o_.data();
    if (!sparse_) return cpu_attention_dense(args);
    const LayerPatterns& patterns = b_.options_.patterns[layer];
    IndexGeometry geometry;
    geometry.seq_len = n;
    geometry.shared_per_kv_group = patterns.shared_per_kv_group;
    geometry.num_heads = patterns.shared_per_kv_group ? c_.num_kv_heads : c_.num_heads;
    // Online estimation from this prompt's own post-RoPE Q and cached K (rows 0..n-1).
    AttentionParams plan_params;
    plan_params.shape = {n, c_.num_heads, c_.num_kv_heads, c_.head_dim};
    plan_params.q = q_.data();                     // [n, Hq, d] fp32
    plan_params.k = maybe_slot_->k[layer].data();  // [n, Hkv, d] bf16
    Result<SparseIndex> index = plan_cpu(plan_params, patterns, geometry, {DType::F32, DType::BF16});
    if (!index) return index.status().with_context(fmt::format("layer {}", layer));
    b_.sparse_cost_ += index_cost(*index, c_.head_dim);
    return cpu_attention_sparse(args, *index);
  }

  Status o_proj(int layer, int64_t row0, int64_t rows, bool add_residual) {
    cpu_matmul(b_.layers_[layer].wo, o_.data() + row0 * q_width_, x_.data() + row0 * hidden_, rows,
               add_residual, b_.scratch_);
    return Status::ok();
  }

  Status mlp_norm(int layer, int64_t row0, int64_t rows) {
    cpu_rms_norm(x_.data() + row0 * hidden_, b_.layers_[layer].mlp_norm.data(), normed_.data(), rows, hidden_,
                 eps_);
    return Status::ok();
  }

  Status gate_up(int layer, int64_t, int64_t rows) {
    const CpuLayer& l = b_.layers_[layer];
    const QuantizedInput* in = b_.quantize_shared(l.w_gate, normed_.data(), rows);
    cpu_matmul(l.w_gate, normed_.data(), gate_.data(), rows, false, b_.scratch_, in);
    cpu_matmul(l.w_up, normed_.data(), up_.data(), rows, false, b_.scratch_, in);
    return Status::ok();
  }

  Status swiglu(int64_t rows) {
    cpu_swiglu(gate_.data(), up_.data(), rows * ffn_);
    return Status::ok();
  }

  Status down(int layer, int64_t row0, int64_t rows, bool add_residual) {
    cpu_matmul(b_.layers_[layer].w_down, gate_.data(), x_.data() + row0 * hidden_, rows, add_residual,
               b_.scratch_);
    return Status::ok();
  }

  // Every requested row at once: `last_` holds them all.
  int64_t logit_step_rows(int64_t rows) const { return rows; }

  Status final_norm(int64_t row0, int64_t rows) {
    last_.resize(rows * hidden_);
    cpu_rms_norm(x_.data() + row0 * hidden_, b_.final_norm_.data(), last_.data(), rows, hidden_, eps_);
    return Status::ok();
  }

  Status lm_head(int64_t r0, int64_t rows, float* logits) {
    cpu_matmul(c_.tied_embeddings ? b_.embed_ : b_.lm_head_, last_.data(), logits + r0 * c_.vocab, rows,
               false, b_.scratch_);
    return Status::ok();
  }

 private:
  // Row i of a batch step: its one query at its position against keys [0, position] of its own slot.
  Status batch_attention(int layer, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
      const BatchRow& row = batch_[i];
      CpuAttentionArgs args;
      args.num_queries = 1;
      args.num_keys = row.position + 1;
      args.num_q_heads = c_.num_heads;
      args.num_kv_heads = c_.num_kv_heads;
      args.head_dim = c_.head_dim;
      args.q = q_.data() + i * q_width_;
      args.k = row.slot->k[layer].data();
      args.v = row.slot->v[layer].data();
      args.o = o_.data() + i * q_width_;
      SACC_RETURN_IF_ERROR(cpu_attention_dense(args));
    }
    return Status::ok();
  }

  CpuBackend& b_;
  CpuSlot* maybe_slot_;              // a sequence step's slot (null in a batch step)
  std::span<const BatchRow> batch_;  // a batch step's rows [n] (empty in a sequence step)
  const ModelConfig& c_;
  const int64_t hidden_, q_width_, kv_width_, ffn_, chunk_;
  const float eps_;
  const bool sparse_;
  std::vector<float> x_, q_, o_;       // [n, D] residual stream, [n, Q] queries, [n, Q] attention output
  std::vector<float> normed_, k_, v_;  // [c, D], [c, KV], [c, KV] (Q = Hq * d, KV = Hkv * d, c = chunk_)
  std::vector<float> gate_, up_;       // [c, F]
  std::vector<float> last_;            // [rows, D] the final norm of the logit rows
};

// StepOps' buffers and the logit rows, as plan_memory counts the CPU workspace.
uint64_t cpu_step_bytes(const ModelConfig& c, int64_t n, int64_t chunk, int64_t logit_rows) {
  return static_cast<uint64_t>(n * (c.hidden + 2 * c.q_dim()) +
                               chunk * (c.hidden + 2 * c.kv_dim() + 2 * c.ffn) +
                               logit_rows * (c.hidden + c.vocab)) *
         sizeof(float);
}

Status CpuBackend::forward(CpuSlot& slot, std::span<const int32_t> tokens, std::vector<float>& logits) {
  const int64_t n = static_cast<int64_t>(tokens.size()), start = slot.position;
  const int64_t chunk = std::clamp<int64_t>(options_.chunk, 1, std::max<int64_t>(n, 1));
  const uint64_t activations = cpu_step_bytes(config_, n, chunk, step_logit_rows(options_, n, start));
  const std::string what =
      start == 0 ? fmt::format("prefill workspace for {} tokens", n)
                 : fmt::format("{} workspace at position {}", n == 1 ? "decode" : "extend", start);
  return guard_host_allocation(what, activations, [&] { return forward_step(slot, tokens, logits); });
}

Status CpuBackend::check_tokens(std::span<const int32_t> tokens, int64_t first_position) const {
  return check_token_ids(tokens, first_position, config_.vocab);
}

Status CpuBackend::forward_step(CpuSlot& slot, std::span<const int32_t> tokens, std::vector<float>& logits) {
  const int64_t n = static_cast<int64_t>(tokens.size()), start = slot.position;
  if (n == 0) return make_error(StatusCode::INVALID_ARGUMENT, "empty prompt");
  if (start + n > slot.capacity)
    return make_error(StatusCode::INVALID_ARGUMENT, "{} tokens exceed the reserved KV cache of {} tokens",
                      start + n, slot.capacity);
  SACC_RETURN_IF_ERROR(check_tokens(tokens, start));
  const bool sparse = start == 0 && use_sparse(n);
  if (start == 0) sparse_cost_ = {};

  StepOps ops(*this, n, sparse, &slot, {});
  const int64_t D = config_.hidden;
  for (int64_t i = 0; i < n; ++i) embed_.row_to_f32(tokens[i], ops.x() + i * D);
  Progress progress("prefill", config_.num_layers, options_.show_progress && n >= 4096);
  for (int layer = 0; layer < config_.num_layers; ++layer) {
    SACC_RETURN_IF_ERROR(llama_layer(ops, layer, n, start));
    progress.advance();
  }
  // Evaluations may ask a prefill for the last `prefill_logit_rows` positions.
  const int64_t rows = step_logit_rows(options_, n, start);
  logits.resize(rows * config_.vocab);
  SACC_RETURN_IF_ERROR(llama_logits(ops, n, rows, logits.data()));
  track_peak(ops.floats());
  if (start == 0) last_attention_ = {sparse, sparse ? sparse_cost_.density() : 1.0};
  slot.position = start + n;
  return Status::ok();
}

Status CpuBackend::decode_batch(std::span<const int32_t> tokens, std::span<const int> slots,
                                std::vector<float>& logits) {
  SACC_RETURN_IF_ERROR(check_batch_slots(tokens, slots, slot_count()));
  std::vector<BatchRow> rows(slots.size());
  for (size_t i = 0; i < slots.size(); ++i) {
    CpuSlot& slot = slots_[static_cast<size_t>(slots[i])];
    if (slot.position + 1 > slot.capacity)
      return make_error(StatusCode::INVALID_ARGUMENT,
                        "slot {}: {} tokens exceed the reserved KV cache of {} tokens", slots[i],
                        slot.position + 1, slot.capacity);
    if (slot.position == 0)
      return make_error(StatusCode::INVALID_ARGUMENT, "slot {}: decode before a prefill", slots[i]);
    SACC_RETURN_IF_ERROR(check_tokens(tokens.subspan(i, 1), slot.position));
    rows[i] = {&slot, slot.position};
  }
  const auto n = static_cast<int64_t>(rows.size());
  const int64_t chunk = std::clamp<int64_t>(options_.chunk, 1, n);
  return guard_host_allocation(fmt::format("decode workspace for a batch of {}", n),
                               cpu_step_bytes(config_, n, chunk, n),
                               [&] { return batch_step(tokens, rows, logits); });
}

Status CpuBackend::batch_step(std::span<const int32_t> tokens, std::span<const BatchRow> rows,
                              std::vector<float>& logits) {
  const auto n = static_cast<int64_t>(rows.size());
  StepOps ops(*this, n, false, nullptr, rows);
  const int64_t D = config_.hidden;
  for (int64_t i = 0; i < n; ++i) embed_.row_to_f32(tokens[i], ops.x() + i * D);
  // llama_layer's `start` is unused by a batch step: each row carries its own position.
  for (int layer = 0; layer < config_.num_layers; ++layer)
    SACC_RETURN_IF_ERROR(llama_layer(ops, layer, n, 0));
  logits.resize(n * config_.vocab);
  SACC_RETURN_IF_ERROR(llama_logits(ops, n, n, logits.data()));
  track_peak(ops.floats());
  for (const BatchRow& row : rows) row.slot->position = row.position + 1;
  return Status::ok();
}

// The attention settings (copy_attention_settings) the CPU backend runs.
Status check_cpu_attention(const ModelConfig& config, const BackendOptions& options) {
  if (options.attention == AttentionMode::CUDNN || options.attention == AttentionMode::EAGER)
    return make_error(StatusCode::INVALID_ARGUMENT,
                      "--attention {} is a GPU baseline; use --device cuda, or auto/dense/sparse on the CPU",
                      attention_mode_name(options.attention));
  if (!options.patterns.empty() && static_cast<int>(options.patterns.size()) != config.num_layers)
    return make_error(StatusCode::INVALID_ARGUMENT, "pattern config has {} layers, the model has {}",
                      options.patterns.size(), config.num_layers);
  return Status::ok();
}

Status CpuBackend::set_attention(const BackendOptions& options) {
  SACC_RETURN_IF_ERROR(check_cpu_attention(config_, options));
  copy_attention_settings(options, options_);
  return Status::ok();
}

}  // namespace

Result<std::unique_ptr<Backend>> make_cpu_backend(const LlamaWeights& weights,
                                                  const BackendOptions& options) {
  SACC_RETURN_IF_ERROR(weights.config.validate());
  SACC_RETURN_IF_ERROR(check_cpu_attention(weights.config, options));
  if (options.linear != LinearMode::BF16)
    return make_error(
        StatusCode::INVALID_ARGUMENT,
        "--linear {}: FP8 linear layers run on the CUDA backend only; use --device cuda or --linear "
        "bf16",
        linear_mode_name(options.linear));
  auto backend = std::make_unique<CpuBackend>(weights, options);
  SACC_RETURN_IF_ERROR(backend->load(weights));
  return std::unique_ptr<Backend>(std::move(backend));
}

}  // namespace sacc
