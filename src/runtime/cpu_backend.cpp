// CPU backend: weights kept in their file format (GGUF blocks through quantised dot products, fp32 through
// OpenBLAS), fp32 activations over token chunks, bf16 KV cache, the runtime's own multi-threaded CPU
// attention.
#include <algorithm>
#include <cmath>

#include "attention/cpu/cpu_attention.h"
#include "attention/cpu/plan_cpu.h"
#include "core/process_memory.h"
#include "core/progress.h"
#include "runtime/backend.h"
#include "runtime/cpu/cpu_kv_snapshot.h"
#include "runtime/cpu/cpu_matrix.h"
#include "runtime/cpu_kernels.h"
#include "runtime/eval_hooks.h"

namespace sacc {
namespace {

struct CpuLayer {
  std::vector<float> attn_norm, bq, bk, bv, mlp_norm;  // [D], [Q], [KV], [KV], [D] (biases empty if absent)
  CpuMatrix wq, wk, wv, wo, w_gate, w_up, w_down;      // [Q, D], [KV, D] x2, [D, Q], [F, D] x2, [D, F]
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
        options_(options),
        inv_freq_(rope_inverse_frequencies(weights.config)),
        qkv_feed_(options.maybe_qkv_observer) {}

  Status load(const LlamaWeights& w) {
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
    return Status::ok();
  }

  Status reserve(int64_t max_tokens) override {
    if (max_tokens > config_.max_context)
      return make_error(StatusCode::INVALID_ARGUMENT, "{} tokens exceed the model's context of {} tokens",
                        max_tokens, config_.max_context);
    capacity_ = max_tokens;
    k_cache_.assign(config_.num_layers, {});
    v_cache_.assign(config_.num_layers, {});
    for (int i = 0; i < config_.num_layers; ++i) {
      k_cache_[i].resize(capacity_ * config_.kv_dim());
      v_cache_[i].resize(capacity_ * config_.kv_dim());
    }
    position_ = 0;
    return Status::ok();
  }

  Status prefill(std::span<const int32_t> tokens, std::vector<float>& logits) override {
    position_ = 0;
    return forward(tokens, logits);
  }

  Status decode(int32_t token, std::vector<float>& logits) override {
    return forward(std::span<const int32_t>(&token, 1), logits);
  }

  Result<std::unique_ptr<KvSnapshot>> export_kv(int64_t n) override {
    if (n < 0 || n > position_)
      return make_error(StatusCode::INVALID_ARGUMENT, "export_kv({}): the cache holds {}", n, position_);
    return export_cpu_kv(k_cache_, v_cache_, n, config_.kv_dim());
  }

  Status import_kv(const KvSnapshot& snapshot, int64_t n) override {
    SACC_RETURN_IF_ERROR(import_cpu_kv(snapshot, n, config_.kv_dim(), k_cache_, v_cache_));
    position_ = n;
    return Status::ok();
  }

  Status extend(std::span<const int32_t> tokens, std::vector<float>& logits) override {
    last_sparse_ = false;  // forward() runs dense attention at a position offset
    return forward(tokens, logits);
  }

  int64_t position() const override { return position_; }
  bool last_prefill_sparse() const override { return last_sparse_; }

  std::vector<DeviceMemoryReport> memory() const override {
    // The engine's accounting, and the process's RSS high-water mark as the kernel counts it.
    return {{"cpu", static_cast<uint64_t>(peak_bytes_), process_peak_rss_bytes()}};
  }

 private:
  // Runs `tokens` at positions [position_, position_ + n): linear layers over chunks, attention over all n
  // queries against every cached key.
  Status forward(std::span<const int32_t> tokens, std::vector<float>& logits) {
    const int64_t n = static_cast<int64_t>(tokens.size()), start = position_;
    if (n == 0) return make_error(StatusCode::INVALID_ARGUMENT, "empty prompt");
    if (start + n > capacity_)
      return make_error(StatusCode::INVALID_ARGUMENT, "{} tokens exceed the reserved KV cache of {} tokens",
                        start + n, capacity_);
    const int64_t D = config_.hidden, Q = config_.q_dim(), KV = config_.kv_dim(), F = config_.ffn;
    for (int64_t i = 0; i < n; ++i)
      if (tokens[i] < 0 || tokens[i] >= config_.vocab)
        return make_error(StatusCode::INVALID_ARGUMENT,
                          "token id {} at position {} is outside the vocabulary [0, {})", tokens[i],
                          start + i, config_.vocab);
    const int64_t chunk = std::min(n, std::max<int64_t>(1, options_.chunk));
    const bool sparse = start == 0 && use_sparse(n);
    last_sparse_ = start == 0 ? sparse : last_sparse_;

    std::vector<float> x(n * D), q(n * Q), o(n * Q);       // [n, D], [n, Q], [n, Q]
    std::vector<float> normed(chunk * D), kv(chunk * KV);  // [c, D], [c, KV]
    std::vector<float> gate(chunk * F), up(chunk * F);     // [c, F]
    for (int64_t i = 0; i < n; ++i) embed_.row_to_f32(tokens[i], x.data() + i * D);

    const float eps = static_cast<float>(config_.rms_eps);
    Progress progress("prefill", config_.num_layers, options_.show_progress && n >= 4096);
    for (int layer = 0; layer < config_.num_layers; ++layer) {
      const CpuLayer& l = layers_[layer];
      for (int64_t c0 = 0; c0 < n; c0 += chunk) {
        const int64_t c = std::min(chunk, n - c0);
        cpu_rms_norm(x.data() + c0 * D, l.attn_norm.data(), normed.data(), c, D, eps);
        const QuantizedInput* in = quantize_shared(l.wq, normed.data(), c);
        float* qc = q.data() + c0 * Q;
        cpu_matmul(l.wq, normed.data(), qc, c, false, scratch_, in);
        if (!l.bq.empty()) cpu_add_bias(qc, l.bq.data(), c, Q);
        cpu_rope(qc, c, config_.num_heads, config_.head_dim, start + c0, inv_freq_);
        for (int which = 0; which < 2; ++which) {
          cpu_matmul(which == 0 ? l.wk : l.wv, normed.data(), kv.data(), c, false, scratch_, in);
          const std::vector<float>& bias = which == 0 ? l.bk : l.bv;
          if (!bias.empty()) cpu_add_bias(kv.data(), bias.data(), c, KV);
          if (which == 0)
            cpu_rope(kv.data(), c, config_.num_kv_heads, config_.head_dim, start + c0, inv_freq_);
          uint16_t* cache = (which == 0 ? k_cache_ : v_cache_)[layer].data() + (start + c0) * KV;
          for (int64_t i = 0; i < c * KV; ++i) cache[i] = float_to_bf16(kv[i]);
        }
      }
      if (qkv_feed_.active(start))
        qkv_feed_.deliver(layer, n, {Q, KV}, q.data(), k_cache_[layer].data(), v_cache_[layer].data());
      CpuAttentionArgs args;
      args.num_queries = n;
      args.num_keys = start + n;
      args.num_q_heads = config_.num_heads;
      args.num_kv_heads = config_.num_kv_heads;
      args.head_dim = config_.head_dim;
      args.q = q.data();
      args.k = k_cache_[layer].data();
      args.v = v_cache_[layer].data();
      args.o = o.data();
      if (sparse) {
        const LayerPatterns& patterns = options_.patterns[layer];
        IndexGeometry geometry;
        geometry.seq_len = n;
        geometry.shared_per_kv_group = patterns.shared_per_kv_group;
        geometry.num_heads = patterns.shared_per_kv_group ? config_.num_kv_heads : config_.num_heads;
        // Online estimation from this prompt's own post-RoPE Q and cached K (rows 0..n-1).
        AttentionParams plan_params;
        plan_params.shape = {n, config_.num_heads, config_.num_kv_heads, config_.head_dim};
        plan_params.q = q.data();                // [n, Hq, d] fp32
        plan_params.k = k_cache_[layer].data();  // [n, Hkv, d] bf16
        Result<SparseIndex> index = plan_cpu(plan_params, patterns, geometry, {DType::F32, DType::BF16});
        if (!index) return index.status().with_context(fmt::format("layer {}", layer));
        SACC_RETURN_IF_ERROR(cpu_attention_sparse(args, *index));
      } else {
        SACC_RETURN_IF_ERROR(cpu_attention_dense(args));
      }
      for (int64_t c0 = 0; c0 < n; c0 += chunk) {
        const int64_t c = std::min(chunk, n - c0);
        float* xc = x.data() + c0 * D;
        cpu_matmul(l.wo, o.data() + c0 * Q, xc, c, true, scratch_);
        cpu_rms_norm(xc, l.mlp_norm.data(), normed.data(), c, D, eps);
        const QuantizedInput* in = quantize_shared(l.w_gate, normed.data(), c);
        cpu_matmul(l.w_gate, normed.data(), gate.data(), c, false, scratch_, in);
        cpu_matmul(l.w_up, normed.data(), up.data(), c, false, scratch_, in);
        cpu_swiglu(gate.data(), up.data(), c * F);
        cpu_matmul(l.w_down, gate.data(), xc, c, true, scratch_);
      }
      progress.advance();
    }
    // Only the last position's logits are needed for TTFT and decode, never [n, V]; evaluations may ask a
    // prefill for the last `prefill_logit_rows` positions: logits [rows, V].
    const int64_t rows = step_logit_rows(options_, n, start);
    std::vector<float> last(rows * D);
    cpu_rms_norm(x.data() + (n - rows) * D, final_norm_.data(), last.data(), rows, D, eps);
    logits.resize(rows * config_.vocab);
    cpu_matmul(config_.tied_embeddings ? embed_ : lm_head_, last.data(), logits.data(), rows, false,
               scratch_);
    track_peak(x.size() + q.size() + o.size() + normed.size() + kv.size() + gate.size() + up.size());
    position_ = start + n;
    return Status::ok();
  }

  bool use_sparse(int64_t n) const {
    if (options_.patterns.empty()) return false;
    if (options_.attention == AttentionMode::SPARSE) return true;
    return options_.attention == AttentionMode::AUTO && n >= options_.sparse_min_length;
  }

  // Quantises a chunk's normalised input once for the matrices that share it (q, k, v; gate, up): nullptr
  // when they are fp32 and read `x` directly.
  const QuantizedInput* quantize_shared(const CpuMatrix& first, const float* x, int64_t rows) {
    if (!first.is_quantized()) return nullptr;
    shared_input_.quantize(x, rows, first.cols);
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
    const uint64_t bytes = weights + activation_floats * 4 + quantized_inputs +
                           static_cast<uint64_t>(2 * config_.num_layers) * capacity_ * config_.kv_dim() * 2;
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
  std::vector<std::vector<uint16_t>> k_cache_, v_cache_;  // [N][capacity, Hkv*d] bf16
  int64_t capacity_ = 0;
  int64_t position_ = 0;
  bool last_sparse_ = false;
  size_t peak_bytes_ = 0;
};

}  // namespace

Result<std::unique_ptr<Backend>> make_cpu_backend(const LlamaWeights& weights,
                                                  const BackendOptions& options) {
  SACC_RETURN_IF_ERROR(weights.config.validate());
  if (options.attention == AttentionMode::CUDNN || options.attention == AttentionMode::EAGER)
    return make_error(StatusCode::INVALID_ARGUMENT,
                      "--attention {} is a GPU baseline; use --device cuda, or auto/dense/sparse on the CPU",
                      attention_mode_name(options.attention));
  if (options.linear != LinearMode::BF16)
    return make_error(
        StatusCode::INVALID_ARGUMENT,
        "--linear {}: FP8 linear layers run on the CUDA backend only; use --device cuda or --linear "
        "bf16",
        linear_mode_name(options.linear));
  if (!options.patterns.empty() && static_cast<int>(options.patterns.size()) != weights.config.num_layers)
    return make_error(StatusCode::INVALID_ARGUMENT, "pattern config has {} layers, the model has {}",
                      options.patterns.size(), weights.config.num_layers);
  auto backend = std::make_unique<CpuBackend>(weights, options);
  SACC_RETURN_IF_ERROR(backend->load(weights));
  return std::unique_ptr<Backend>(std::move(backend));
}

}  // namespace sacc
