// CUDA backend: bf16 weights and activations, cuBLASLt GEMMs over token chunks with fp32 accumulation (the
// residual add fused into the epilogue), bf16 KV cache contiguous per layer, prefill attention through the
// attention library (dense flash, sparse plan + run, cuDNN or eager baselines), a split-key decode kernel.
// Prefill enqueues everything on one stream; the host waits once, for the logits.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "attention/attention.h"
#include "attention/cuda/cudnn_sdpa.h"
#include "attention/cuda/eager_attention.h"
#include "attention/plan.h"
#include "core/cuda/cuda_check.h"
#include "core/cuda/device_memory.h"
#include "core/progress.h"
#include "runtime/backend.h"
#include "runtime/cuda/cublaslt_gemm.h"
#include "runtime/cuda/cuda_kernels.h"
#include "runtime/memory_plan.h"

namespace sacc {
namespace {

using cuda_rt::GemmArgs;

constexpr size_t kAlign = 256;
constexpr int64_t kProgressMinTokens =
    32768;  // per-layer progress (one host wait per layer) only when it shows

size_t align_up(size_t bytes) {
  return (bytes + kAlign - 1) / kAlign * kAlign;
}

bool prefill_uses_sparse(const BackendOptions& options, int64_t n) {
  if (options.patterns.empty()) return false;
  if (options.attention == AttentionMode::SPARSE) return true;
  return options.attention == AttentionMode::AUTO && n >= options.sparse_min_length;
}

IndexGeometry layer_geometry(const ModelConfig& c, const BackendOptions& options, int layer, int64_t n) {
  const LayerPatterns& p = options.patterns[layer];
  IndexGeometry g;
  g.seq_len = n;
  g.shared_per_kv_group = p.shared_per_kv_group;
  g.num_heads = p.shared_per_kv_group ? c.num_kv_heads : c.num_heads;
  return g;
}

// Device bytes of prefill attention at length n: the kernel's workspace and (sparse) the plan's index space.
struct AttentionBytes {
  size_t select = 0, plan = 0;
};

Result<AttentionBytes> attention_bytes(const ModelConfig& c, const BackendOptions& options, int64_t n) {
  AttentionBytes b;
  const AttentionShape shape{n, c.num_heads, c.num_kv_heads, c.head_dim};
  if (options.attention == AttentionMode::EAGER) {
    b.select = eager_attention_workspace_bytes(shape);
  } else if (options.attention == AttentionMode::CUDNN) {
    return b;
  } else if (prefill_uses_sparse(options, n)) {
    for (int l = 0; l < c.num_layers; ++l) {
      const IndexGeometry g = layer_geometry(c, options, l, n);
      SACC_ASSIGN_OR_RETURN(AttentionSelection sel, attention_select_cuda(shape, &g));
      SACC_ASSIGN_OR_RETURN(size_t bytes, plan_workspace_bytes(shape, options.patterns[l], g));
      b.select = std::max(b.select, sel.workspace_bytes);
      b.plan = std::max(b.plan, bytes);
    }
  } else {
    SACC_ASSIGN_OR_RETURN(AttentionSelection sel, attention_select_cuda(shape, nullptr));
    b.select = sel.workspace_bytes;
  }
  b.select = align_up(b.select);
  b.plan = align_up(b.plan);
  return b;
}

struct DeviceLayer {
  uint16_t *attn_norm, *wq, *wk, *wv, *wo, *mlp_norm, *w_gate_up,
      *w_down;  // see LayerWeights; gate_up [2F, D]
  uint16_t *maybe_bq, *maybe_bk, *maybe_bv;
};

class CudaBackend final : public Backend {
 public:
  CudaBackend(const LlamaWeights& weights, const BackendOptions& options)
      : config_(weights.config), options_(options), device_(options.device.index) {}

  ~CudaBackend() override {
    if (stream_) cudaStreamDestroy(stream_);
  }

  Status load(const LlamaWeights& w) {
    SACC_CUDA_TRY(cudaSetDevice(device_));
    SACC_CUDA_TRY(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    DeviceAllocator::reset_peak(device_);
    SACC_ASSIGN_OR_RETURN(cuda_rt::GemmRunner * runner, cuda_rt::GemmRunner::create(device_));
    gemm_.reset(runner);
    // One allocation for all weights; each tensor at an aligned offset.
    std::vector<std::pair<const WeightTensor*, uint16_t**>> uploads;
    size_t total = 0;
    std::vector<std::pair<uint16_t**, size_t>> offsets;
    auto place = [&](const WeightTensor& t, uint16_t** where, size_t elements) {
      offsets.push_back({where, total});
      if (t.defined()) uploads.push_back({&t, where});
      total += align_up(elements * 2);
    };
    const int64_t D = config_.hidden, F = config_.ffn;
    place(w.embed, &embed_, w.embed.view.numel());
    if (!config_.tied_embeddings) place(w.lm_head, &lm_head_, w.lm_head.view.numel());
    place(w.final_norm, &final_norm_, D);
    layers_.assign(config_.num_layers, DeviceLayer{});
    gate_rows_.clear();
    for (int i = 0; i < config_.num_layers; ++i) {
      const LayerWeights& s = w.layers[i];
      DeviceLayer& l = layers_[i];
      place(s.attn_norm, &l.attn_norm, D);
      place(s.wq, &l.wq, s.wq.view.numel());
      place(s.wk, &l.wk, s.wk.view.numel());
      place(s.wv, &l.wv, s.wv.view.numel());
      if (config_.qkv_bias) {
        place(s.bq, &l.maybe_bq, s.bq.view.numel());
        place(s.bk, &l.maybe_bk, s.bk.view.numel());
        place(s.bv, &l.maybe_bv, s.bv.view.numel());
      }
      place(s.wo, &l.wo, s.wo.view.numel());
      place(s.mlp_norm, &l.mlp_norm, D);
      // gate and up side by side: one GEMM computes both; up starts F rows after gate.
      place(s.w_gate, &l.w_gate_up, 2 * F * D);
      uploads.push_back({&s.w_up, nullptr});
      gate_rows_.push_back(&l.w_gate_up);
      place(s.w_down, &l.w_down, s.w_down.view.numel());
    }
    SACC_ASSIGN_OR_RETURN(weights_, DeviceBuffer::create(device_, total, "model weights"));
    auto* base = static_cast<char*>(weights_.data());
    for (auto& [where, offset] : offsets) *where = reinterpret_cast<uint16_t*>(base + offset);
    if (config_.tied_embeddings) lm_head_ = embed_;

    Progress progress("uploading weights", static_cast<int64_t>(uploads.size()), options_.show_progress);
    std::vector<uint16_t> staging;
    size_t up_index = 0;
    for (auto& [tensor, where] : uploads) {
      // A null destination is the up projection: it goes F rows after the gate placed just before it.
      uint16_t* dst = where ? *where : *gate_rows_[up_index++] + F * D;
      SACC_RETURN_IF_ERROR(upload(*tensor, dst, staging));
      progress.advance();
    }
    SACC_CUDA_TRY(cudaStreamSynchronize(stream_));
    std::vector<double> inv = rope_inverse_frequencies(config_);
    SACC_ASSIGN_OR_RETURN(inv_freq_,
                          DeviceBuffer::create(device_, inv.size() * sizeof(double), "RoPE frequencies"));
    SACC_CUDA_TRY(
        cudaMemcpy(inv_freq_.data(), inv.data(), inv.size() * sizeof(double), cudaMemcpyHostToDevice));
    sample_device_memory();
    return Status::ok();
  }

  Status reserve(int64_t max_tokens) override {
    if (max_tokens > config_.max_context)
      return make_error(StatusCode::INVALID_ARGUMENT, "{} tokens exceed the model's context of {} tokens",
                        max_tokens, config_.max_context);
    kv_.reset();
    workspace_ = {};
    capacity_ = max_tokens;
    const size_t per_layer = static_cast<size_t>(capacity_) * config_.kv_dim() * 2;
    SACC_ASSIGN_OR_RETURN(kv_, DeviceBuffer::create(device_, 2 * per_layer * config_.num_layers, "KV cache"));
    SACC_ASSIGN_OR_RETURN(
        decode_scratch_,
        DeviceBuffer::create(
            device_, cuda_rt::decode_attention_scratch_bytes(config_.num_heads, config_.head_dim, capacity_),
            "decode attention scratch"));
    position_ = 0;
    return Status::ok();
  }

  Status prefill(std::span<const int32_t> tokens, std::vector<float>& logits) override {
    position_ = 0;
    const int64_t n = static_cast<int64_t>(tokens.size());
    if (n > capacity_)
      return make_error(StatusCode::INVALID_ARGUMENT,
                        "{} prompt tokens exceed the reserved KV cache of {} tokens", n, capacity_);
    last_sparse_ = use_sparse(n);
    SACC_RETURN_IF_ERROR(allocate_workspace(n));
    return forward(tokens, logits);
  }

  Status decode(int32_t token, std::vector<float>& logits) override {
    return forward(std::span<const int32_t>(&token, 1), logits);
  }

  int64_t position() const override { return position_; }
  bool last_prefill_sparse() const override { return last_sparse_; }

  std::vector<DeviceMemoryReport> memory() const override {
    return {{options_.device.to_string(), DeviceAllocator::stats(device_).peak, peak_device_in_use_}};
  }

 private:
  struct Workspace {
    DeviceBuffer hidden, q_or_mlp, attn_out, normed, ids, logits, attention;
    int64_t tokens = 0;
    size_t attention_select_bytes = 0, plan_bytes = 0;
  };

  Status upload(const WeightTensor& t, uint16_t* dst, std::vector<uint16_t>& staging) {
    const int64_t n = t.view.numel();
    if (t.is_random())
      return cuda_status(cuda_rt::fill_random_bf16(dst, n, t.random, stream_), "random weights");
    if (t.view.dtype == DType::BF16) {
      SACC_CUDA_TRY(cudaMemcpyAsync(dst, t.view.data, n * 2, cudaMemcpyHostToDevice, stream_));
      return cuda_status(cudaStreamSynchronize(stream_), "weight upload");
    }
    staging.resize(n);
    weight_to_bf16(t, staging.data());
    SACC_CUDA_TRY(cudaMemcpyAsync(dst, staging.data(), n * 2, cudaMemcpyHostToDevice, stream_));
    return cuda_status(cudaStreamSynchronize(stream_), "weight upload");
  }

  bool use_sparse(int64_t n) const { return prefill_uses_sparse(options_, n); }

  IndexGeometry geometry_for(int layer, int64_t n) const {
    return layer_geometry(config_, options_, layer, n);
  }

  AttentionShape shape_for(int64_t n) const {
    return {n, config_.num_heads, config_.num_kv_heads, config_.head_dim};
  }

  Status allocate_workspace(int64_t n) {
    workspace_ = {};  // free the previous prompt's buffers first
    SACC_ASSIGN_OR_RETURN(AttentionBytes attn, attention_bytes(config_, options_, n));
    const CudaWorkspaceSizes s = cuda_workspace_sizes(config_, n, options_.chunk, attn.select + attn.plan,
                                                      attention_needs_separate_output(options_.attention));
    Workspace w;
    w.tokens = n;
    w.attention_select_bytes = attn.select;
    w.plan_bytes = attn.plan;
    SACC_ASSIGN_OR_RETURN(w.hidden, DeviceBuffer::create(device_, s.hidden, "hidden states"));
    SACC_ASSIGN_OR_RETURN(w.q_or_mlp, DeviceBuffer::create(device_, s.q_or_mlp, "queries / MLP chunk"));
    if (s.attn_out) {
      SACC_ASSIGN_OR_RETURN(w.attn_out, DeviceBuffer::create(device_, s.attn_out, "attention output"));
    }
    SACC_ASSIGN_OR_RETURN(w.normed, DeviceBuffer::create(device_, s.normed, "normed chunk"));
    SACC_ASSIGN_OR_RETURN(w.ids, DeviceBuffer::create(device_, n * sizeof(int32_t), "token ids"));
    SACC_ASSIGN_OR_RETURN(w.logits, DeviceBuffer::create(device_, config_.vocab * sizeof(float), "logits"));
    if (s.attention) {
      SACC_ASSIGN_OR_RETURN(w.attention, DeviceBuffer::create(device_, s.attention, "attention workspace"));
    }
    workspace_ = std::move(w);
    return Status::ok();
  }

  uint16_t* k_cache(int layer) const {
    return kv_.as<uint16_t>() + static_cast<size_t>(2 * layer) * capacity_ * config_.kv_dim();
  }
  uint16_t* v_cache(int layer) const {
    return kv_.as<uint16_t>() + static_cast<size_t>(2 * layer + 1) * capacity_ * config_.kv_dim();
  }

  Status gemm(const uint16_t* x, const uint16_t* w, void* y, int64_t rows, int64_t in, int64_t out,
              bool accumulate, int64_t ldx = 0, bool y_f32 = false) {
    GemmArgs g;
    g.x = x;
    g.w = w;
    g.y = y;
    g.rows = rows;
    g.in = in;
    g.out = out;
    g.ldx = ldx;
    g.accumulate = accumulate;
    g.y_f32 = y_f32;
    return gemm_->run(g, stream_);
  }

  Status attention(int layer, int64_t n, int64_t start, const uint16_t* q, uint16_t* o) {
    if (start > 0) {
      if (n != 1)
        return make_error(StatusCode::INTERNAL, "chunked continuation of a prompt is not supported");
      return cuda_status(cuda_rt::decode_attention(q, k_cache(layer), v_cache(layer), o, config_.num_heads,
                                                   config_.num_kv_heads, config_.head_dim, start + 1,
                                                   decode_scratch_.data(), decode_scratch_.size(), stream_),
                         "decode attention");
    }
    AttentionParams p;
    p.shape = shape_for(n);
    p.q = q;
    p.k = k_cache(layer);
    p.v = v_cache(layer);
    p.o = o;
    p = p.with_defaults();
    Workspace& w = workspace_;
    switch (options_.attention) {
      case AttentionMode::CUDNN:
        return cudnn_sdpa_run(p, stream_);
      case AttentionMode::EAGER:
        return eager_attention_run(p, w.attention.data(), w.attention.size(), stream_);
      default:
        break;
    }
    if (!last_sparse_)
      return attention_run_cuda(p, nullptr, w.attention.data(), w.attention_select_bytes, stream_);
    const IndexGeometry g = geometry_for(layer, n);
    char* plan_space = static_cast<char*>(w.attention.data()) + w.attention_select_bytes;
    SACC_ASSIGN_OR_RETURN(SparseIndexView view,
                          plan(p, options_.patterns[layer], g, plan_space, w.plan_bytes, stream_));
    return attention_run_cuda(p, &view, w.attention.data(), w.attention_select_bytes, stream_);
  }

  Status forward(std::span<const int32_t> tokens, std::vector<float>& logits) {
    const int64_t n = static_cast<int64_t>(tokens.size()), start = position_;
    if (n == 0) return make_error(StatusCode::INVALID_ARGUMENT, "empty prompt");
    if (start + n > capacity_)
      return make_error(StatusCode::INVALID_ARGUMENT, "{} tokens exceed the reserved KV cache of {} tokens",
                        start + n, capacity_);
    if (n > workspace_.tokens)
      return make_error(StatusCode::INTERNAL, "workspace sized for {} tokens, step has {}", workspace_.tokens,
                        n);
    for (int64_t i = 0; i < n; ++i)
      if (tokens[i] < 0 || tokens[i] >= config_.vocab)
        return make_error(StatusCode::INVALID_ARGUMENT,
                          "token id {} at position {} is outside the vocabulary [0, {})", tokens[i],
                          start + i, config_.vocab);
    const int64_t D = config_.hidden, Q = config_.q_dim(), KV = config_.kv_dim(), F = config_.ffn;
    const int64_t chunk = std::min(n, std::max<int64_t>(1, options_.chunk));
    const float eps = static_cast<float>(config_.rms_eps);
    Workspace& w = workspace_;
    auto* x = w.hidden.as<uint16_t>();
    auto* q = w.q_or_mlp.as<uint16_t>();
    auto* gate_up = w.q_or_mlp.as<uint16_t>();
    // Our flash kernels write O over the queries (one [L, Hq*d] buffer less); the baselines need their own.
    auto* o = w.attn_out.data() ? w.attn_out.as<uint16_t>() : q;
    auto* normed = w.normed.as<uint16_t>();
    const auto* inv_freq = inv_freq_.as<double>();
    SACC_CUDA_TRY(
        cudaMemcpyAsync(w.ids.data(), tokens.data(), n * sizeof(int32_t), cudaMemcpyHostToDevice, stream_));
    SACC_CUDA_TRY(cuda_rt::embed_rows(w.ids.as<int32_t>(), embed_, x, n, D, stream_));
    Progress progress("prefill", config_.num_layers, options_.show_progress && n >= kProgressMinTokens);
    for (int layer = 0; layer < config_.num_layers; ++layer) {
      const DeviceLayer& l = layers_[layer];
      for (int64_t c0 = 0; c0 < n; c0 += chunk) {
        const int64_t c = std::min(chunk, n - c0);
        uint16_t* kc = k_cache(layer) + (start + c0) * KV;
        uint16_t* vc = v_cache(layer) + (start + c0) * KV;
        SACC_CUDA_TRY(cuda_rt::rms_norm(x + c0 * D, D, l.attn_norm, normed, c, D, eps, stream_));
        SACC_RETURN_IF_ERROR(gemm(normed, l.wq, q + c0 * Q, c, D, Q, false));
        SACC_RETURN_IF_ERROR(gemm(normed, l.wk, kc, c, D, KV, false));
        SACC_RETURN_IF_ERROR(gemm(normed, l.wv, vc, c, D, KV, false));
        SACC_CUDA_TRY(cuda_rt::bias_rope(q + c0 * Q, Q, c, config_.num_heads, config_.head_dim, l.maybe_bq,
                                         inv_freq, start + c0, stream_));
        SACC_CUDA_TRY(cuda_rt::bias_rope(kc, KV, c, config_.num_kv_heads, config_.head_dim, l.maybe_bk,
                                         inv_freq, start + c0, stream_));
        SACC_CUDA_TRY(cuda_rt::bias_rope(vc, KV, c, config_.num_kv_heads, config_.head_dim, l.maybe_bv,
                                         nullptr, start + c0, stream_));
      }
      Status attn = attention(layer, n, start, q, o);
      if (!attn) return attn.with_context(fmt::format("layer {} attention", layer));
      // All output projections first: the queries are dead afterwards, so the MLP chunk reuses their memory.
      for (int64_t c0 = 0; c0 < n; c0 += chunk) {
        const int64_t c = std::min(chunk, n - c0);
        SACC_RETURN_IF_ERROR(gemm(o + c0 * Q, l.wo, x + c0 * D, c, Q, D, true));
      }
      for (int64_t c0 = 0; c0 < n; c0 += chunk) {
        const int64_t c = std::min(chunk, n - c0);
        SACC_CUDA_TRY(cuda_rt::rms_norm(x + c0 * D, D, l.mlp_norm, normed, c, D, eps, stream_));
        SACC_RETURN_IF_ERROR(gemm(normed, l.w_gate_up, gate_up, c, D, 2 * F, false));
        SACC_CUDA_TRY(cuda_rt::swiglu(gate_up, c, F, stream_));
        SACC_RETURN_IF_ERROR(gemm(gate_up, l.w_down, x + c0 * D, c, F, D, true, 2 * F));
      }
      if (progress_enabled(n)) {
        SACC_CUDA_TRY(cudaStreamSynchronize(stream_));
        progress.advance();
      }
    }
    // The LM head on the last position only: [1, D] x [V, D]^T -> fp32 logits.
    SACC_CUDA_TRY(cuda_rt::rms_norm(x + (n - 1) * D, D, final_norm_, normed, 1, D, eps, stream_));
    SACC_RETURN_IF_ERROR(gemm(normed, lm_head_, w.logits.data(), 1, D, config_.vocab, false, 0, true));
    logits.resize(config_.vocab);
    SACC_CUDA_TRY(cudaMemcpyAsync(logits.data(), w.logits.data(), config_.vocab * sizeof(float),
                                  cudaMemcpyDeviceToHost, stream_));
    SACC_CUDA_TRY(cudaStreamSynchronize(stream_));
    position_ = start + n;
    if (n > 1) sample_device_memory();
    return Status::ok();
  }

  bool progress_enabled(int64_t n) const { return options_.show_progress && n >= kProgressMinTokens; }

  void sample_device_memory() {
    size_t free_bytes = 0, total_bytes = 0;
    if (cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess)
      peak_device_in_use_ = std::max<uint64_t>(peak_device_in_use_, total_bytes - free_bytes);
  }

  ModelConfig config_;
  BackendOptions options_;
  int device_ = 0;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<cuda_rt::GemmRunner> gemm_;
  DeviceBuffer weights_, inv_freq_, kv_, decode_scratch_;
  uint16_t *embed_ = nullptr, *lm_head_ = nullptr, *final_norm_ = nullptr;  // [V, D], [V, D], [D]
  std::vector<DeviceLayer> layers_;
  std::vector<uint16_t**> gate_rows_;
  Workspace workspace_;
  int64_t capacity_ = 0, position_ = 0;
  bool last_sparse_ = false;
  uint64_t peak_device_in_use_ = 0;
};

}  // namespace

Result<uint64_t> cuda_attention_workspace_bytes(const ModelConfig& config, const BackendOptions& options,
                                                int64_t tokens) {
  SACC_ASSIGN_OR_RETURN(AttentionBytes b, attention_bytes(config, options, tokens));
  return static_cast<uint64_t>(b.select + b.plan);
}

Result<std::unique_ptr<Backend>> make_cuda_backend(const LlamaWeights& weights,
                                                   const BackendOptions& options) {
  SACC_RETURN_IF_ERROR(weights.config.validate());
  if (options.device.is_cpu())
    return make_error(StatusCode::INVALID_ARGUMENT, "make_cuda_backend on a CPU device");
  if (!options.patterns.empty() && static_cast<int>(options.patterns.size()) != weights.config.num_layers)
    return make_error(StatusCode::INVALID_ARGUMENT, "pattern config has {} layers, the model has {}",
                      options.patterns.size(), weights.config.num_layers);
  if (weights.config.head_dim != 64 && weights.config.head_dim != 128)
    return make_error(StatusCode::UNSUPPORTED,
                      "the CUDA backend supports head_dim 64 and 128, the model has {}",
                      weights.config.head_dim);
  if (options.maybe_qkv_observer || options.prefill_logit_rows != 1)
    return make_error(
        StatusCode::UNSUPPORTED,
        "the Q/K/V observer and multi-row prefill logits are evaluation hooks of the CPU backend "
        "(use --device cpu)");
  if (options.attention == AttentionMode::CUDNN) SACC_RETURN_IF_ERROR(cudnn_sdpa_available());
  auto backend = std::make_unique<CudaBackend>(weights, options);
  SACC_RETURN_IF_ERROR(backend->load(weights));
  return std::unique_ptr<Backend>(std::move(backend));
}

}  // namespace sacc
