// The layer work of a device shard: llama_layer.h's sequence over the shard's weights, KV cache and workspace
// (LayerOps), the attention the selector chose for the prompt, and the final norm and LM head.
#include <cstdint>
#include <vector>

#include "attention/attention.h"
#include "attention/cuda/cudnn_sdpa.h"
#include "attention/cuda/eager_attention.h"
#include "attention/kernel_tile.h"
#include "attention/plan.h"
#include "core/cuda/cuda_check.h"
#include "runtime/cuda/cuda_kernels.h"
#include "runtime/cuda/device_shard.h"
#include "runtime/llama_layer.h"

namespace sacc::cuda_rt {

// llama_layer.h's operations on one shard, enqueued on its stream, over bf16 activations in the step's
// workspace (DeviceShard::ws_: the prefill's, or the batch steps' own):
//   x       hidden [n, D]
//   normed  scratch [chunk, D] (outside attention; the attention workspace during it)
//   q       q_or_mlp [n, q] until every o_proj() has read O; then gate|up [chunk, 2F'] (up F' after gate)
//   o       [n, q] over the queries (our flash kernels, a batch step), or attn_out (the baselines)
//   k, v    straight into the KV-cache rows [capacity, kv]
// with q = local Hq * d, kv = local Hkv * d, F' = local MLP columns. The caller has selected the shard's
// device and checked that `layer` is one of the shard's. A batch step (begin_batch: rows of different
// sequences) stages k, v in batch_kv_ [2, rows, kv], rotates each row at its own position and stores it
// into its own slot's cache; attention is one batched decode launch.
class DeviceShard::LayerOps {
 public:
  explicit LayerOps(DeviceShard& shard)
      : s_(shard),
        hidden_(shard.model_.hidden),
        q_width_(shard.config_.q_dim()),
        kv_width_(shard.config_.kv_dim()),
        ffn_(shard.config_.ffn),
        eps_(static_cast<float>(shard.model_.rms_eps)) {}

  int64_t chunk_rows(int64_t n) const { return s_.chunk_rows(n); }

  Status attn_norm(int layer, int64_t row0, int64_t rows) {
    SACC_CUDA_TRY(
        rms_norm(x(row0), hidden_, weights(layer).attn_norm, normed(), rows, hidden_, eps_, stream()));
    return Status::ok();
  }

  Status qkv_proj(int layer, int64_t row0, int64_t rows, int64_t position) {
    const Layer& l = weights(layer);
    SACC_RETURN_IF_ERROR(s_.linear(normed(), l.wq, q(row0), rows, hidden_, q_width_, false));
    uint16_t* k_out = batch() ? staged_k(row0) : k(layer, position);
    uint16_t* v_out = batch() ? staged_v(row0) : v(layer, position);
    SACC_RETURN_IF_ERROR(s_.linear(normed(), l.wk, k_out, rows, hidden_, kv_width_, false, Input::SAME));
    return s_.linear(normed(), l.wv, v_out, rows, hidden_, kv_width_, false, Input::SAME);
  }

  // One kernel adds the bias and rotates (V: the bias alone).
  Status bias_rope(int layer, Qkv which, int64_t row0, int64_t rows, int64_t position, bool rotate) {
    const Layer& l = weights(layer);
    const ModelConfig& c = s_.config_;
    const double* maybe_inv_freq = rotate ? s_.inv_freq_.as<double>() : nullptr;
    const int32_t* maybe_positions = batch() ? s_.batch_positions() + row0 : nullptr;
    if (which == Qkv::Q) {
      SACC_CUDA_TRY(cuda_rt::bias_rope(q(row0), q_width_, rows, c.num_heads, c.head_dim, l.maybe_bq,
                                       maybe_inv_freq, position, stream(), maybe_positions));
    } else {
      const bool is_k = which == Qkv::K;
      uint16_t* x = batch() ? (is_k ? staged_k(row0) : staged_v(row0))
                            : (is_k ? k(layer, position) : v(layer, position));
      SACC_CUDA_TRY(cuda_rt::bias_rope(x, kv_width_, rows, c.num_kv_heads, c.head_dim,
                                       is_k ? l.maybe_bk : l.maybe_bv, maybe_inv_freq, position, stream(),
                                       maybe_positions));
    }
    return Status::ok();
  }

  // A sequence step's qkv_proj() wrote K and V into their cache rows already; a batch step stores each
  // staged row into its own slot's cache at its own position.
  Status append_kv(int layer, int64_t row0, int64_t rows, int64_t) {
    if (!batch()) return Status::ok();
    const int local = layer - s_.spec_.layer_begin;
    const int32_t* positions = s_.batch_positions() + row0;
    SACC_CUDA_TRY(
        store_rows(staged_k(row0), kv_width_, s_.batch_k_rows(local) + row0, positions, rows, stream()));
    SACC_CUDA_TRY(
        store_rows(staged_v(row0), kv_width_, s_.batch_v_rows(local) + row0, positions, rows, stream()));
    return Status::ok();
  }

  bool observing(int64_t start) const { return !batch() && s_.qkv_feed_.active(start); }

  // Copies q (before attention overwrites it), k and v of rows [0, n) to the host for the observer.
  Status observe_qkv(int layer, int64_t n) {
    // Q rows [n, Hq*d] match the observer's [L, Hq, d] only when the shard holds every head.
    if (s_.config_.num_kv_heads != s_.model_.num_kv_heads)
      return make_error(StatusCode::UNSUPPORTED, "the Q/K/V observer needs every head of a layer on one GPU");
    std::vector<uint16_t>& host = s_.host_qkv_;
    host.resize(static_cast<size_t>(n * (q_width_ + 2 * kv_width_)));
    uint16_t* host_q = host.data();  // [n, q], then k [n, kv], then v [n, kv]
    uint16_t* host_k = host_q + n * q_width_;
    uint16_t* host_v = host_k + n * kv_width_;
    const auto copy = [&](uint16_t* dst, const void* src, int64_t count) {
      return cudaMemcpyAsync(dst, src, static_cast<size_t>(count) * 2, cudaMemcpyDeviceToHost, stream());
    };
    SACC_CUDA_TRY(copy(host_q, q(0), n * q_width_));
    SACC_CUDA_TRY(copy(host_k, k(layer, 0), n * kv_width_));
    SACC_CUDA_TRY(copy(host_v, v(layer, 0), n * kv_width_));
    SACC_CUDA_TRY(cudaStreamSynchronize(stream()));
    s_.qkv_feed_.deliver(layer, n, {q_width_, kv_width_}, host_q, host_k, host_v);
    return Status::ok();
  }

  Status attention(int layer, int64_t n, int64_t start) {
    Status status = run_attention(layer - s_.spec_.layer_begin, n, start);
    if (!status) return status.with_context(fmt::format("layer {} attention", layer));
    return Status::ok();
  }

  Status o_proj(int layer, int64_t row0, int64_t rows, bool add_residual) {
    return s_.linear(o(row0), weights(layer).wo, x(row0), rows, q_width_, hidden_, add_residual);
  }

  Status mlp_norm(int layer, int64_t row0, int64_t rows) {
    SACC_CUDA_TRY(
        rms_norm(x(row0), hidden_, weights(layer).mlp_norm, normed(), rows, hidden_, eps_, stream()));
    return Status::ok();
  }

  // One GEMM for both: the weight holds gate's rows, then up's.
  Status gate_up(int layer, int64_t, int64_t rows) {
    return s_.linear(normed(), weights(layer).gate_up, mlp_chunk(), rows, hidden_, 2 * ffn_, false);
  }

  Status swiglu(int64_t rows) {
    SACC_CUDA_TRY(cuda_rt::swiglu(mlp_chunk(), rows, ffn_, stream()));
    return Status::ok();
  }

  // swiglu() left its product in the gate half of each [2F'] row.
  Status down(int layer, int64_t row0, int64_t rows, bool add_residual) {
    return s_.linear(mlp_chunk(), weights(layer).down, x(row0), rows, ffn_, hidden_, add_residual,
                     Input::FRESH, 2 * ffn_);
  }

  // The workspace's logits [logit_step_rows, V] fp32 are copied out before the next step overwrites them.
  int64_t logit_step_rows(int64_t) const { return s_.ws_->logit_step_rows; }

  Status final_norm(int64_t row0, int64_t rows) {
    SACC_CUDA_TRY(rms_norm(x(row0), hidden_, s_.maybe_final_norm_, normed(), rows, hidden_, eps_, stream()));
    return Status::ok();
  }

  // [rows, D] x [V, D]^T -> fp32 logits [rows, V], copied to the host (pageable: the copy completes by the
  // next synchronize()).
  Status lm_head(int64_t r0, int64_t rows, float* logits) {
    const int64_t vocab = s_.model_.vocab;
    SACC_RETURN_IF_ERROR(
        s_.gemm(normed(), s_.maybe_lm_head_, s_.ws_->logits.data(), rows, hidden_, vocab, false, 0, true));
    SACC_CUDA_TRY(cudaMemcpyAsync(logits + r0 * vocab, s_.ws_->logits.data(),
                                  static_cast<size_t>(rows * vocab) * sizeof(float), cudaMemcpyDeviceToHost,
                                  stream()));
    return Status::ok();
  }

 private:
  // A prefill runs the method the selector chose for the prompt. The rest of a prompt after a restored prefix
  // (Backend::extend: rows [start, start + n), K/V already in the cache) runs the dense flash kernel once
  // over its query blocks when start is a whole number of them (the prefix cache's 256-token blocks always
  // are); a decode step (n = 1) and other starts run the split-key decode kernel row after row (row i attends
  // keys [0, start + i]).
  Status run_attention(int local, int64_t n, int64_t start) {
    const ModelConfig& c = s_.config_;
    if (batch())
      return cuda_status(
          decode_attention_batch(q(0), s_.batch_k_rows(local), s_.batch_v_rows(local), s_.batch_positions(),
                                 o(0), static_cast<int>(n), c.num_heads, c.num_kv_heads, c.head_dim,
                                 s_.batch_key_bound_, s_.decode_scratch_.data(), s_.decode_scratch_.size(),
                                 stream()),
          "batched decode attention");
    const AttentionDecision& decision = s_.attention_;
    AttentionParams p;
    p.shape = {start + n, c.num_heads, c.num_kv_heads, c.head_dim};
    p.q = q(0);
    p.k = s_.k_cache(local);
    p.v = s_.v_cache(local);
    p.o = o(0);
    p.q_begin = start;
    p = p.with_defaults();
    if (start > 0) {
      if (n > 1 && start % kTileBlockQ == 0) {
        // The selector's body (packing is for sparse indices only); the scratch lets a short suffix split
        // its keys over the SMs (attention.h).
        FlashKernelChoice dense = decision.kernel(local);
        dense.gqa_pack = false;
        return attention_run_cuda(p, nullptr, dense, scratch().data(), scratch().size(), stream());
      }
      for (int64_t i = 0; i < n; ++i) {
        SACC_RETURN_IF_ERROR(
            cuda_status(decode_attention(q(i), s_.k_cache(local), s_.v_cache(local), o(i), c.num_heads,
                                         c.num_kv_heads, c.head_dim, start + i + 1, s_.decode_scratch_.data(),
                                         s_.decode_scratch_.size(), stream()),
                        "decode attention"));
      }
      return Status::ok();
    }
    const AttentionBytes& bytes = decision.workspace;
    void* workspace = scratch().data();
    switch (decision.method) {
      case AttentionMethod::CUDNN:
        return cudnn_sdpa_run(p, stream());
      case AttentionMethod::EAGER:
        return eager_attention_run(p, workspace, scratch().size(), stream());
      case AttentionMethod::FLASH_DENSE:
        return attention_run_cuda(p, nullptr, decision.kernel(local), workspace, bytes.select, stream());
      case AttentionMethod::FLASH_SPARSE:
        break;
    }
    const IndexGeometry g = layer_geometry(c, s_.options_, local, n);
    char* plan_space = static_cast<char*>(workspace) + bytes.select;
    SACC_ASSIGN_OR_RETURN(SparseIndexView view,
                          plan(p, s_.options_.patterns[local], g, plan_space, bytes.plan, stream()));
    SACC_RETURN_IF_ERROR(s_.record_index_totals(local, g, view));
    return attention_run_cuda(p, &view, decision.kernel(local), workspace, bytes.select, stream());
  }

  bool batch() const { return s_.batch_rows_ > 0; }
  // A batch step's staged K and V rows: batch_kv_ [2, rows, kv].
  uint16_t* staged_k(int64_t row0) const { return s_.batch_kv_.as<uint16_t>() + row0 * kv_width_; }
  uint16_t* staged_v(int64_t row0) const {
    return s_.batch_kv_.as<uint16_t>() + (s_.batch_rows_ + row0) * kv_width_;
  }
  const Layer& weights(int layer) const { return s_.layers_[layer - s_.spec_.layer_begin]; }
  cudaStream_t stream() const { return s_.stream_; }
  uint16_t* x(int64_t row0) const { return s_.hidden() + row0 * hidden_; }
  const DeviceBuffer& scratch() const { return s_.ws_->scratch; }
  uint16_t* normed() const { return scratch().as<uint16_t>(); }
  uint16_t* q(int64_t row0) const { return s_.ws_->q_or_mlp.as<uint16_t>() + row0 * q_width_; }
  uint16_t* mlp_chunk() const { return s_.ws_->q_or_mlp.as<uint16_t>(); }
  uint16_t* o(int64_t row0) const {
    const Workspace& w = *s_.ws_;
    uint16_t* base = w.attn_out.data() ? w.attn_out.as<uint16_t>() : w.q_or_mlp.as<uint16_t>();
    return base + row0 * q_width_;
  }
  uint16_t* k(int layer, int64_t position) const {
    return s_.k_cache(layer - s_.spec_.layer_begin) + position * kv_width_;
  }
  uint16_t* v(int layer, int64_t position) const {
    return s_.v_cache(layer - s_.spec_.layer_begin) + position * kv_width_;
  }

  DeviceShard& s_;
  const int64_t hidden_, q_width_, kv_width_, ffn_;  // D, q, kv, F'
  const float eps_;
};

Status DeviceShard::select(int layer) const {
  if (layer < spec_.layer_begin || layer >= spec_.layer_end)
    return make_error(StatusCode::INTERNAL, "layer {} is not on cuda:{} (it holds {}..{})", layer,
                      spec_.device, spec_.layer_begin, spec_.layer_end - 1);
  SACC_CUDA_TRY(cudaSetDevice(spec_.device));
  return Status::ok();
}

Status DeviceShard::attention(int layer, int64_t n, int64_t start) {
  SACC_RETURN_IF_ERROR(select(layer));
  LayerOps ops(*this);
  return llama_attention(ops, layer, n, start);
}

Status DeviceShard::o_proj(int layer, int64_t row0, int64_t rows, bool add_residual) {
  SACC_RETURN_IF_ERROR(select(layer));
  LayerOps ops(*this);
  return ops.o_proj(layer, row0, rows, add_residual);
}

Status DeviceShard::mlp(int layer, int64_t row0, int64_t rows, bool add_residual) {
  SACC_RETURN_IF_ERROR(select(layer));
  LayerOps ops(*this);
  return llama_mlp(ops, layer, row0, rows, add_residual);
}

Status DeviceShard::layer(int layer, int64_t n, int64_t start) {
  SACC_RETURN_IF_ERROR(select(layer));
  LayerOps ops(*this);
  return llama_layer(ops, layer, n, start);
}

Status DeviceShard::logits(int64_t n, int64_t rows, float* out) {
  if (!maybe_lm_head_) return make_error(StatusCode::INTERNAL, "cuda:{} holds no LM head", spec_.device);
  if (rows < 1 || rows > n || ws_->logit_step_rows < 1)
    return make_error(StatusCode::INTERNAL, "{} logit rows of a {}-token step (workspace steps of {})", rows,
                      n, ws_->logit_step_rows);
  SACC_CUDA_TRY(cudaSetDevice(spec_.device));
  LayerOps ops(*this);
  return llama_logits(ops, n, rows, out);
}

}  // namespace sacc::cuda_rt
