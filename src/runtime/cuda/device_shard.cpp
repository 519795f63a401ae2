#include "runtime/cuda/device_shard.h"

#include <algorithm>

#include "attention/attention.h"
#include "attention/cuda/cudnn_sdpa.h"
#include "attention/cuda/eager_attention.h"
#include "attention/plan.h"
#include "core/cuda/cuda_check.h"
#include "core/progress.h"
#include "runtime/cuda/cuda_kernels.h"
#include "runtime/cuda/fp8_kernels.h"
#include "runtime/eval_hooks.h"
#include "runtime/memory_plan.h"

namespace sacc::cuda_rt {
namespace {

constexpr size_t kAlign = 256;

size_t align_up(size_t bytes) {
  return (bytes + kAlign - 1) / kAlign * kAlign;
}

// The part of a row-major [rows, cols] weight a shard holds: rows [row0, +row_count) x cols [col0,
// +col_count), stored contiguously ([row_count, col_count]).
struct Slice {
  int64_t rows = 0, cols = 0, row0 = 0, row_count = 0, col0 = 0, col_count = 0;
  bool whole() const { return row_count == rows && col_count == cols; }
  int64_t numel() const { return row_count * col_count; }
};

Slice whole(const WeightTensor& t) {
  const int64_t rows = t.view.shape[0], cols = t.view.numel() / std::max<int64_t>(rows, 1);
  return {rows, cols, 0, rows, 0, cols};
}

Slice rows_of(const WeightTensor& t, int64_t row0, int64_t count) {
  Slice s = whole(t);
  s.row0 = row0;
  s.row_count = count;
  return s;
}

Slice cols_of(const WeightTensor& t, int64_t col0, int64_t count) {
  Slice s = whole(t);
  s.col0 = col0;
  s.col_count = count;
  return s;
}

// Copies slice `s` of `t` (host data or the random generator) to `dst` on the current device. Random and
// converted tensors go through `staging` (device or host, the whole tensor) when only a slice is wanted.
class Uploader {
 public:
  Uploader(int device, cudaStream_t stream) : device_(device), stream_(stream) {}

  Status upload(const WeightTensor& t, const Slice& s, uint16_t* dst) {
    const uint16_t* source = nullptr;
    cudaMemcpyKind kind = cudaMemcpyHostToDevice;
    if (t.is_random()) {
      if (s.whole())
        return cuda_status(fill_random_bf16(dst, s.numel(), t.random, stream_), "random weights");
      const size_t bytes = static_cast<size_t>(t.view.numel()) * 2;
      if (device_staging_.size() < bytes) {
        SACC_CUDA_TRY(cudaStreamSynchronize(stream_));
        device_staging_.reset();
        SACC_ASSIGN_OR_RETURN(device_staging_, DeviceBuffer::create(device_, bytes, "weight slice staging"));
      }
      SACC_CUDA_TRY(fill_random_bf16(device_staging_.as<uint16_t>(), t.view.numel(), t.random, stream_));
      source = device_staging_.as<uint16_t>();
      kind = cudaMemcpyDeviceToDevice;
    } else if (t.view.dtype == DType::BF16) {
      source = static_cast<const uint16_t*>(t.view.data);
    } else {
      host_staging_.resize(t.view.numel());
      weight_to_bf16(t, host_staging_.data());
      source = host_staging_.data();
    }
    if (s.whole()) {
      SACC_CUDA_TRY(cudaMemcpyAsync(dst, source, s.numel() * 2, kind, stream_));
    } else {
      SACC_CUDA_TRY(cudaMemcpy2DAsync(dst, s.col_count * 2, source + s.row0 * s.cols + s.col0, s.cols * 2,
                                      s.col_count * 2, s.row_count, kind, stream_));
    }
    // Host sources may be pageable and staging is reused: finish before the next tensor.
    return cuda_status(cudaStreamSynchronize(stream_), "weight upload");
  }

 private:
  int device_;
  cudaStream_t stream_;
  DeviceBuffer device_staging_;
  std::vector<uint16_t> host_staging_;
};

}  // namespace

DeviceShard::DeviceShard(const LlamaWeights& weights, const ShardSpec& spec, const BackendOptions& options)
    : model_(weights.config),
      config_(shard_config(weights.config, spec)),
      spec_(spec),
      options_(options),
      qkv_feed_(options.maybe_qkv_observer) {}

DeviceShard::~DeviceShard() {
  if (stream_) {
    cudaSetDevice(spec_.device);
    cudaStreamDestroy(stream_);
  }
}

Result<std::unique_ptr<DeviceShard>> DeviceShard::create(const LlamaWeights& weights, const ShardSpec& spec,
                                                         const BackendOptions& options) {
  std::unique_ptr<DeviceShard> shard(new DeviceShard(weights, spec, options));
  SACC_RETURN_IF_ERROR(shard->load(weights));
  return shard;
}

Status DeviceShard::load(const LlamaWeights& w) {
  const int device = spec_.device;
  SACC_CUDA_TRY(cudaSetDevice(device));
  SACC_CUDA_TRY(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  DeviceAllocator::reset_peak(device);
  SACC_ASSIGN_OR_RETURN(GemmRunner * runner, GemmRunner::create(device));
  gemm_.reset(runner);
  // One allocation for all weights; each tensor (slice) at an aligned offset.
  struct Upload {
    const WeightTensor* tensor;
    Slice slice;
    size_t offset;
  };
  std::vector<Upload> uploads;
  std::vector<std::pair<uint16_t**, size_t>> pointers;
  size_t total = 0;
  auto place = [&](const WeightTensor& t, const Slice& s, uint16_t** where) {
    pointers.push_back({where, total});
    uploads.push_back({&t, s, total});
    total += align_up(s.numel() * 2);
  };
  // A linear layer's weight [out, in] from one or more slices (offsets in its bf16 image): bf16 in place, or
  // (FP8) e4m3 [out, in] + scales [out] fp32, quantised on the device from a bf16 staging copy.
  const bool fp8 = options_.linear == LinearMode::FP8;
  struct LinearUpload {
    Linear* where;
    std::vector<Upload> parts;
    int64_t out, in;
    size_t offset, scale_offset;
  };
  std::vector<LinearUpload> linears;
  size_t staging_bytes = 0;
  auto place_linear = [&](Linear* where, std::vector<Upload> parts, int64_t out, int64_t in) {
    LinearUpload u{where, std::move(parts), out, in, total, 0};
    total += align_up(static_cast<size_t>(out * in) * (fp8 ? 1 : 2));
    if (fp8) {
      u.scale_offset = total;
      total += align_up(static_cast<size_t>(out) * sizeof(float));
      staging_bytes = std::max<size_t>(staging_bytes, static_cast<size_t>(out * in) * 2);
    }
    linears.push_back(std::move(u));
  };
  const int64_t d = model_.head_dim, D = model_.hidden, F = spec_.ffn;
  const int64_t q0 = static_cast<int64_t>(spec_.kv_head_begin) * (model_.num_heads / model_.num_kv_heads) * d;
  const int64_t kv0 = spec_.kv_head_begin * d, q = config_.q_dim(), kv = config_.kv_dim();
  if (spec_.embeds) place(w.embed, whole(w.embed), &maybe_embed_);
  if (spec_.has_lm_head) {
    place(w.final_norm, whole(w.final_norm), &maybe_final_norm_);
    // A tied head reads the embedding table, uploaded once where this shard embeds too.
    if (!model_.tied_embeddings)
      place(w.lm_head, whole(w.lm_head), &maybe_lm_head_);
    else if (!spec_.embeds)
      place(w.embed, whole(w.embed), &maybe_lm_head_);
  }
  layers_.assign(spec_.num_layers(), Layer{});
  for (int i = 0; i < spec_.num_layers(); ++i) {
    const LayerWeights& s = w.layers[spec_.layer_begin + i];
    Layer& l = layers_[i];
    place(s.attn_norm, whole(s.attn_norm), &l.attn_norm);
    place_linear(&l.wq, {{&s.wq, rows_of(s.wq, q0, q), 0}}, q, D);
    place_linear(&l.wk, {{&s.wk, rows_of(s.wk, kv0, kv), 0}}, kv, D);
    place_linear(&l.wv, {{&s.wv, rows_of(s.wv, kv0, kv), 0}}, kv, D);
    if (model_.qkv_bias) {
      place(s.bq, rows_of(s.bq, q0, q), &l.maybe_bq);
      place(s.bk, rows_of(s.bk, kv0, kv), &l.maybe_bk);
      place(s.bv, rows_of(s.bv, kv0, kv), &l.maybe_bv);
    }
    place_linear(&l.wo, {{&s.wo, cols_of(s.wo, q0, q), 0}}, D, q);
    place(s.mlp_norm, whole(s.mlp_norm), &l.mlp_norm);
    // gate and up side by side: one GEMM computes both; up starts F' rows after gate.
    place_linear(&l.gate_up,
                 {{&s.w_gate, rows_of(s.w_gate, spec_.ffn_begin, F), 0},
                  {&s.w_up, rows_of(s.w_up, spec_.ffn_begin, F), static_cast<size_t>(F * D * 2)}},
                 2 * F, D);
    place_linear(&l.down, {{&s.w_down, cols_of(s.w_down, spec_.ffn_begin, F), 0}}, D, F);
  }
  SACC_ASSIGN_OR_RETURN(weights_,
                        DeviceBuffer::create(device, std::max<size_t>(total, kAlign), "model weights"));
  auto* base = static_cast<char*>(weights_.data());
  for (auto& [where, offset] : pointers) *where = reinterpret_cast<uint16_t*>(base + offset);
  for (const LinearUpload& u : linears) {
    u.where->w = base + u.offset;
    if (fp8) u.where->maybe_scale = reinterpret_cast<float*>(base + u.scale_offset);
  }
  if (model_.tied_embeddings && spec_.has_lm_head && spec_.embeds) maybe_lm_head_ = maybe_embed_;
  Progress progress(fmt::format("uploading weights to cuda:{}", device),
                    static_cast<int64_t>(uploads.size() + linears.size()), options_.show_progress);
  Uploader uploader(device, stream_);
  for (const Upload& u : uploads) {
    SACC_RETURN_IF_ERROR(uploader.upload(*u.tensor, u.slice, reinterpret_cast<uint16_t*>(base + u.offset)));
    progress.advance();
  }
  DeviceBuffer staging;  // FP8: one linear layer's bf16 image [out, in], freed after the load
  if (fp8 && staging_bytes) {
    SACC_ASSIGN_OR_RETURN(staging, DeviceBuffer::create(device, staging_bytes, "FP8 weight staging"));
  }
  for (const LinearUpload& u : linears) {
    char* image = fp8 ? staging.as<char>() : base + u.offset;
    for (const Upload& part : u.parts)
      SACC_RETURN_IF_ERROR(
          uploader.upload(*part.tensor, part.slice, reinterpret_cast<uint16_t*>(image + part.offset)));
    if (fp8)
      SACC_CUDA_TRY(quantize_rows_e4m3(reinterpret_cast<uint16_t*>(image), u.in, u.out, u.in,
                                       static_cast<uint8_t*>(u.where->w), u.where->maybe_scale, stream_));
    progress.advance();
  }
  SACC_CUDA_TRY(cudaStreamSynchronize(stream_));
  std::vector<double> inv = rope_inverse_frequencies(model_);
  SACC_ASSIGN_OR_RETURN(inv_freq_,
                        DeviceBuffer::create(device, inv.size() * sizeof(double), "RoPE frequencies"));
  SACC_CUDA_TRY(
      cudaMemcpy(inv_freq_.data(), inv.data(), inv.size() * sizeof(double), cudaMemcpyHostToDevice));
  sample_device_memory();
  return Status::ok();
}

Status DeviceShard::reserve(int64_t max_tokens) {
  SACC_CUDA_TRY(cudaSetDevice(spec_.device));
  kv_.reset();
  hidden_ = {};
  q_or_mlp_ = {};
  attn_out_ = {};
  scratch_ = {};
  tokens_ = 0;
  capacity_ = max_tokens;
  const size_t per_layer = static_cast<size_t>(capacity_) * config_.kv_dim() * 2;
  if (config_.num_layers > 0) {
    SACC_ASSIGN_OR_RETURN(kv_,
                          DeviceBuffer::create(spec_.device, 2 * per_layer * config_.num_layers, "KV cache"));
  }
  SACC_ASSIGN_OR_RETURN(
      decode_scratch_,
      DeviceBuffer::create(spec_.device,
                           decode_attention_scratch_bytes(config_.num_heads, config_.head_dim, capacity_),
                           "decode attention scratch"));
  return Status::ok();
}

Status DeviceShard::begin_prefill(int64_t n) {
  SACC_CUDA_TRY(cudaSetDevice(spec_.device));
  // Free the previous prompt's buffers first.
  hidden_ = {};
  q_or_mlp_ = {};
  attn_out_ = {};
  scratch_ = {};
  ids_ = {};
  logits_ = {};
  fp8_input_ = {};
  fp8_input_scales_ = nullptr;
  tokens_ = 0;
  logit_step_rows_ = 0;
  int sm_major = 0;
  SACC_CUDA_TRY(cudaDeviceGetAttribute(&sm_major, cudaDevAttrComputeCapabilityMajor, spec_.device));
  attention_ = decide_attention(config_, options_, n, sm_major, attention_overrides());
  SACC_ASSIGN_OR_RETURN(attention_.workspace, attention_workspace(config_, options_, n, attention_.method));
  const AttentionBytes& attn = attention_.workspace;
  const int64_t logit_rows = spec_.has_lm_head ? step_logit_rows(options_, n, 0) : 0;
  const CudaWorkspaceSizes s =
      cuda_workspace_sizes(config_, n, options_.chunk, attn.select + attn.plan,
                           attention_needs_separate_output(options_.attention), logit_rows, options_.linear);
  const int dev = spec_.device;
  SACC_ASSIGN_OR_RETURN(hidden_, DeviceBuffer::create(dev, s.hidden, "hidden states"));
  SACC_ASSIGN_OR_RETURN(q_or_mlp_, DeviceBuffer::create(dev, s.q_or_mlp, "queries / MLP chunk"));
  if (s.attn_out) {
    SACC_ASSIGN_OR_RETURN(attn_out_, DeviceBuffer::create(dev, s.attn_out, "attention output"));
  }
  SACC_ASSIGN_OR_RETURN(scratch_,
                        DeviceBuffer::create(dev, s.scratch(), "normed chunk / attention workspace"));
  SACC_ASSIGN_OR_RETURN(ids_, DeviceBuffer::create(dev, n * sizeof(int32_t), "token ids"));
  if (s.fp8_input) {
    SACC_ASSIGN_OR_RETURN(fp8_input_, DeviceBuffer::create(dev, s.fp8_input, "FP8 linear-layer input"));
    const int64_t widest = std::max({config_.hidden, config_.q_dim(), config_.ffn});
    fp8_input_scales_ = reinterpret_cast<float*>(fp8_input_.as<char>() +
                                                 align_up(static_cast<size_t>(chunk_rows(n) * widest)));
  }
  if (s.logits) {
    SACC_ASSIGN_OR_RETURN(logits_, DeviceBuffer::create(dev, s.logits, "logits"));
    logit_step_rows_ = logit_rows_per_step(logit_rows, n, options_.chunk);
  }
  tokens_ = n;
  return Status::ok();
}

Result<int> DeviceShard::local_layer(int layer) const {
  if (layer < spec_.layer_begin || layer >= spec_.layer_end)
    return make_error(StatusCode::INTERNAL, "layer {} is not on cuda:{} (it holds {}..{})", layer,
                      spec_.device, spec_.layer_begin, spec_.layer_end - 1);
  return layer - spec_.layer_begin;
}

uint16_t* DeviceShard::k_cache(int local) const {
  return kv_.as<uint16_t>() + static_cast<size_t>(2 * local) * capacity_ * config_.kv_dim();
}

uint16_t* DeviceShard::v_cache(int local) const {
  return kv_.as<uint16_t>() + static_cast<size_t>(2 * local + 1) * capacity_ * config_.kv_dim();
}

Status DeviceShard::gemm(const uint16_t* x, const uint16_t* w, void* y, int64_t rows, int64_t in, int64_t out,
                         bool accumulate, int64_t ldx, bool y_f32) {
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

Status DeviceShard::linear(const uint16_t* x, const Linear& w, uint16_t* y, int64_t rows, int64_t in,
                           int64_t out, bool accumulate, Input input, int64_t ldx) {
  if (options_.linear == LinearMode::BF16)
    return gemm(x, static_cast<const uint16_t*>(w.w), y, rows, in, out, accumulate, ldx);
  auto* xq = fp8_input_.as<uint8_t>();  // [rows, in] e4m3, scales [rows]
  if (input == Input::FRESH)
    SACC_CUDA_TRY(quantize_rows_e4m3(x, ldx ? ldx : in, rows, in, xq, fp8_input_scales_, stream_));
  Fp8GemmArgs g;
  g.x = xq;
  g.x_scale = fp8_input_scales_;
  g.w = static_cast<const uint8_t*>(w.w);
  g.w_scale = w.maybe_scale;
  g.y = y;
  g.rows = rows;
  g.in = in;
  g.out = out;
  g.accumulate = accumulate;
  return gemm_->run_fp8(g, stream_);
}

Status DeviceShard::embed(std::span<const int32_t> tokens) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (!maybe_embed_)
    return make_error(StatusCode::INTERNAL, "cuda:{} holds no embedding table", spec_.device);
  SACC_CUDA_TRY(cudaSetDevice(spec_.device));
  SACC_CUDA_TRY(
      cudaMemcpyAsync(ids_.data(), tokens.data(), n * sizeof(int32_t), cudaMemcpyHostToDevice, stream_));
  return cuda_status(embed_rows(ids_.as<int32_t>(), maybe_embed_, hidden(), n, model_.hidden, stream_),
                     "embed");
}

Status DeviceShard::run_attention(int local, int64_t n, int64_t start, const uint16_t* q, uint16_t* o) {
  if (start > 0) {
    // A decode step (n = 1), or the rest of a prompt after a restored prefix (Backend::extend): row i attends
    // keys [0, start + i] with the decode kernel, one row after another (a short suffix: few launches).
    const int64_t Q = config_.q_dim();
    for (int64_t i = 0; i < n; ++i)
      SACC_RETURN_IF_ERROR(cuda_status(
          decode_attention(q + i * Q, k_cache(local), v_cache(local), o + i * Q, config_.num_heads,
                           config_.num_kv_heads, config_.head_dim, start + i + 1, decode_scratch_.data(),
                           decode_scratch_.size(), stream_),
          "decode attention"));
    return Status::ok();
  }
  AttentionParams p;
  p.shape = {n, config_.num_heads, config_.num_kv_heads, config_.head_dim};
  p.q = q;
  p.k = k_cache(local);
  p.v = v_cache(local);
  p.o = o;
  p = p.with_defaults();
  const AttentionBytes& bytes = attention_.workspace;
  switch (attention_.method) {
    case AttentionMethod::CUDNN:
      return cudnn_sdpa_run(p, stream_);
    case AttentionMethod::EAGER:
      return eager_attention_run(p, scratch_.data(), scratch_.size(), stream_);
    case AttentionMethod::FLASH_DENSE:
      return attention_run_cuda(p, nullptr, attention_.kernel(local), scratch_.data(), bytes.select, stream_);
    case AttentionMethod::FLASH_SPARSE:
      break;
  }
  const IndexGeometry g = layer_geometry(config_, options_, local, n);
  char* plan_space = static_cast<char*>(scratch_.data()) + bytes.select;
  SACC_ASSIGN_OR_RETURN(SparseIndexView view,
                        plan(p, options_.patterns[local], g, plan_space, bytes.plan, stream_));
  return attention_run_cuda(p, &view, attention_.kernel(local), scratch_.data(), bytes.select, stream_);
}

int64_t DeviceShard::chunk_rows(int64_t n) const {
  return std::min(n, std::max<int64_t>(1, options_.chunk));
}

uint16_t* DeviceShard::attention_output() const {
  // Our flash kernels write O over the queries (one [L, Hq*d] buffer less); the baselines need their own.
  return attn_out_.data() ? attn_out_.as<uint16_t>() : q_or_mlp_.as<uint16_t>();
}

Status DeviceShard::attention(int layer, int64_t n, int64_t start) {
  SACC_ASSIGN_OR_RETURN(const int local, local_layer(layer));
  SACC_CUDA_TRY(cudaSetDevice(spec_.device));
  const Layer& l = layers_[local];
  const int64_t D = model_.hidden, Q = config_.q_dim(), KV = config_.kv_dim();
  const int64_t chunk = chunk_rows(n);
  const float eps = static_cast<float>(model_.rms_eps);
  const uint16_t* x = hidden();
  auto* q = q_or_mlp_.as<uint16_t>();
  auto* normed = scratch_.as<uint16_t>();
  const auto* inv_freq = inv_freq_.as<double>();
  for (int64_t c0 = 0; c0 < n; c0 += chunk) {
    const int64_t c = std::min(chunk, n - c0);
    uint16_t* kc = k_cache(local) + (start + c0) * KV;
    uint16_t* vc = v_cache(local) + (start + c0) * KV;
    SACC_CUDA_TRY(rms_norm(x + c0 * D, D, l.attn_norm, normed, c, D, eps, stream_));
    SACC_RETURN_IF_ERROR(linear(normed, l.wq, q + c0 * Q, c, D, Q, false));
    SACC_RETURN_IF_ERROR(linear(normed, l.wk, kc, c, D, KV, false, Input::SAME));
    SACC_RETURN_IF_ERROR(linear(normed, l.wv, vc, c, D, KV, false, Input::SAME));
    SACC_CUDA_TRY(bias_rope(q + c0 * Q, Q, c, config_.num_heads, config_.head_dim, l.maybe_bq, inv_freq,
                            start + c0, stream_));
    SACC_CUDA_TRY(bias_rope(kc, KV, c, config_.num_kv_heads, config_.head_dim, l.maybe_bk, inv_freq,
                            start + c0, stream_));
    SACC_CUDA_TRY(bias_rope(vc, KV, c, config_.num_kv_heads, config_.head_dim, l.maybe_bv, nullptr,
                            start + c0, stream_));
  }
  // The flash kernels write O over q: the observer sees q before attention runs.
  if (qkv_feed_.active(start)) SACC_RETURN_IF_ERROR(observe_qkv(layer, local, n));
  Status attn = run_attention(local, n, start, q, attention_output());
  if (!attn) return attn.with_context(fmt::format("layer {} attention", layer));
  return Status::ok();
}

Status DeviceShard::observe_qkv(int layer, int local, int64_t n) {
  // Q rows [n, Hq*d] match the observer's [L, Hq, d] only when the shard holds every head.
  if (config_.num_kv_heads != model_.num_kv_heads)
    return make_error(StatusCode::UNSUPPORTED, "the Q/K/V observer needs every head of a layer on one GPU");
  const int64_t Q = config_.q_dim(), KV = config_.kv_dim();
  host_qkv_.resize(static_cast<size_t>(n * (Q + 2 * KV)));
  uint16_t* q = host_qkv_.data();  // [n, Q], then k [n, KV], then v [n, KV]
  uint16_t* k = q + n * Q;
  uint16_t* v = k + n * KV;
  const auto copy = [&](uint16_t* dst, const void* src, int64_t count) {
    return cudaMemcpyAsync(dst, src, static_cast<size_t>(count) * 2, cudaMemcpyDeviceToHost, stream_);
  };
  SACC_CUDA_TRY(copy(q, q_or_mlp_.data(), n * Q));
  SACC_CUDA_TRY(copy(k, k_cache(local), n * KV));
  SACC_CUDA_TRY(copy(v, v_cache(local), n * KV));
  SACC_CUDA_TRY(cudaStreamSynchronize(stream_));
  qkv_feed_.deliver(layer, n, {Q, KV}, q, k, v);
  return Status::ok();
}

Status DeviceShard::o_proj(int layer, int64_t row0, int64_t rows, bool add_residual) {
  SACC_ASSIGN_OR_RETURN(const int local, local_layer(layer));
  SACC_CUDA_TRY(cudaSetDevice(spec_.device));
  const int64_t D = model_.hidden, Q = config_.q_dim();
  return linear(attention_output() + row0 * Q, layers_[local].wo, hidden() + row0 * D, rows, Q, D,
                add_residual);
}

Status DeviceShard::mlp(int layer, int64_t row0, int64_t rows, bool add_residual) {
  SACC_ASSIGN_OR_RETURN(const int local, local_layer(layer));
  SACC_CUDA_TRY(cudaSetDevice(spec_.device));
  const Layer& l = layers_[local];
  const int64_t D = model_.hidden, F = config_.ffn;
  uint16_t* x = hidden() + row0 * D;
  auto* gate_up = q_or_mlp_.as<uint16_t>();
  auto* normed = scratch_.as<uint16_t>();
  // The rows of x are read (norm) before the down projection writes them.
  SACC_CUDA_TRY(rms_norm(x, D, l.mlp_norm, normed, rows, D, static_cast<float>(model_.rms_eps), stream_));
  SACC_RETURN_IF_ERROR(linear(normed, l.gate_up, gate_up, rows, D, 2 * F, false));
  SACC_CUDA_TRY(swiglu(gate_up, rows, F, stream_));
  return linear(gate_up, l.down, x, rows, F, D, add_residual, Input::FRESH, 2 * F);
}

Status DeviceShard::layer(int layer, int64_t n, int64_t start) {
  SACC_RETURN_IF_ERROR(attention(layer, n, start));
  const int64_t chunk = chunk_rows(n);
  // All output projections first (every row of x has been read): the queries are dead afterwards, so the
  // MLP chunk reuses their memory.
  for (int64_t c0 = 0; c0 < n; c0 += chunk)
    SACC_RETURN_IF_ERROR(o_proj(layer, c0, std::min(chunk, n - c0), true));
  for (int64_t c0 = 0; c0 < n; c0 += chunk)
    SACC_RETURN_IF_ERROR(mlp(layer, c0, std::min(chunk, n - c0), true));
  return Status::ok();
}

Status DeviceShard::logits(int64_t n, int64_t rows, float* out) {
  if (!maybe_lm_head_) return make_error(StatusCode::INTERNAL, "cuda:{} holds no LM head", spec_.device);
  if (rows < 1 || rows > n || logit_step_rows_ < 1)
    return make_error(StatusCode::INTERNAL, "{} logit rows of a {}-token step (workspace steps of {})", rows,
                      n, logit_step_rows_);
  SACC_CUDA_TRY(cudaSetDevice(spec_.device));
  const int64_t D = model_.hidden, V = model_.vocab;
  auto* normed = scratch_.as<uint16_t>();
  // The LM head on the last `rows` positions only (usually one), logit_step_rows_ rows at a time:
  // [step, D] x [V, D]^T -> fp32 logits [step, V], copied out before the next step overwrites them.
  for (int64_t r0 = 0; r0 < rows; r0 += logit_step_rows_) {
    const int64_t c = std::min(logit_step_rows_, rows - r0);
    SACC_CUDA_TRY(rms_norm(hidden() + (n - rows + r0) * D, D, maybe_final_norm_, normed, c, D,
                           static_cast<float>(model_.rms_eps), stream_));
    SACC_RETURN_IF_ERROR(gemm(normed, maybe_lm_head_, logits_.data(), c, D, V, false, 0, true));
    SACC_CUDA_TRY(cudaMemcpyAsync(out + r0 * V, logits_.data(), static_cast<size_t>(c * V) * sizeof(float),
                                  cudaMemcpyDeviceToHost, stream_));
  }
  return Status::ok();
}

Status DeviceShard::synchronize() {
  SACC_CUDA_TRY(cudaSetDevice(spec_.device));
  return cuda_status(cudaStreamSynchronize(stream_), "stream synchronize");
}

void DeviceShard::sample_device_memory() {
  size_t free_bytes = 0, total_bytes = 0;
  if (cudaSetDevice(spec_.device) == cudaSuccess && cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess)
    peak_device_in_use_ = std::max<uint64_t>(peak_device_in_use_, total_bytes - free_bytes);
}

DeviceMemoryReport DeviceShard::memory() const {
  return {fmt::format("cuda:{}", spec_.device), DeviceAllocator::stats(spec_.device).peak,
          peak_device_in_use_};
}

}  // namespace sacc::cuda_rt
