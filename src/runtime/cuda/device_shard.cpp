#include "runtime/cuda/device_shard.h"

#include <algorithm>

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

CudaWorkspaceSizes element_max(const CudaWorkspaceSizes& a, const CudaWorkspaceSizes& b) {
  CudaWorkspaceSizes m;
  m.hidden = std::max(a.hidden, b.hidden);
  m.q_or_mlp = std::max(a.q_or_mlp, b.q_or_mlp);
  m.attn_out = std::max(a.attn_out, b.attn_out);
  m.normed = std::max(a.normed, b.normed);
  m.attention = std::max(a.attention, b.attention);
  m.fp8_input = std::max(a.fp8_input, b.fp8_input);
  m.logits = std::max(a.logits, b.logits);
  m.small = std::max(a.small, b.small);
  return m;
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
      options_(with_linear_chunk(options, false, weights.config)),
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
  SACC_ASSIGN_OR_RETURN(
      index_totals_,
      PinnedBuffer::create(2 * sizeof(int32_t) * std::max<size_t>(layers_.size(), 1), "sparse index totals"));
  sample_device_memory();
  return Status::ok();
}

Status DeviceShard::record_index_totals(int local_layer, const IndexGeometry& geometry,
                                        const SparseIndexView& view) {
  int32_t* totals = index_totals_.as<int32_t>() + 2 * local_layer;
  const int64_t slots = geometry.num_slots();
  SACC_CUDA_TRY(
      cudaMemcpyAsync(totals, view.block_offsets + slots, sizeof(int32_t), cudaMemcpyDeviceToHost, stream_));
  SACC_CUDA_TRY(cudaMemcpyAsync(totals + 1, view.column_offsets + slots, sizeof(int32_t),
                                cudaMemcpyDeviceToHost, stream_));
  index_geometry_[static_cast<size_t>(local_layer)] = geometry;
  return Status::ok();
}

AttentionCost DeviceShard::prefill_index_cost() const {
  AttentionCost cost;
  for (size_t l = 0; l < index_geometry_.size(); ++l) {
    if (index_geometry_[l].num_heads == 0) continue;
    const int32_t* totals = index_totals_.as<int32_t>() + 2 * l;
    cost += index_cost(index_geometry_[l], totals[0], totals[1], config_.head_dim);
  }
  return cost;
}

Status DeviceShard::set_slot_count(int slots) {
  if (slots < 1) return make_error(StatusCode::INVALID_ARGUMENT, "{} sequence slots", slots);
  SACC_CUDA_TRY(cudaSetDevice(spec_.device));
  slots_ = std::vector<SlotKv>(static_cast<size_t>(slots));
  active_ = 0;
  batch_rows_ = 0;
  ws_ = &prefill_ws_;
  return ensure_step_workspace();
}

Status DeviceShard::reserve(int slot, int64_t max_tokens) {
  if (slot < 0 || slot >= static_cast<int>(slots_.size()))
    return make_error(StatusCode::INVALID_ARGUMENT, "sequence slot {} outside [0, {})", slot, slots_.size());
  SACC_CUDA_TRY(cudaSetDevice(spec_.device));
  SlotKv& s = slots_[static_cast<size_t>(slot)];
  s = SlotKv{};
  prefill_ws_ = {};
  const size_t per_layer = static_cast<size_t>(max_tokens) * config_.kv_dim() * 2;
  if (config_.num_layers > 0) {
    SACC_ASSIGN_OR_RETURN(s.kv,
                          DeviceBuffer::create(spec_.device, 2 * per_layer * config_.num_layers, "KV cache"));
  }
  s.capacity = max_tokens;
  return ensure_decode_scratch(
      decode_attention_scratch_bytes(config_.num_heads, config_.head_dim, std::max<int64_t>(max_tokens, 1)));
}

void DeviceShard::release(int slot) {
  if (slot < 0 || slot >= static_cast<int>(slots_.size())) return;
  if (cudaSetDevice(spec_.device) != cudaSuccess) return;
  slots_[static_cast<size_t>(slot)] = SlotKv{};
}

Status DeviceShard::ensure_decode_scratch(size_t bytes) {
  if (decode_scratch_.size() >= bytes) return Status::ok();
  ++reallocations_;
  decode_scratch_ = {};
  SACC_ASSIGN_OR_RETURN(decode_scratch_,
                        DeviceBuffer::create(spec_.device, bytes, "decode attention scratch"));
  return Status::ok();
}

Status DeviceShard::allocate(Workspace& w, const CudaWorkspaceSizes& s, int64_t n, int64_t logit_rows) {
  w = {};
  const int dev = spec_.device;
  SACC_ASSIGN_OR_RETURN(w.hidden, DeviceBuffer::create(dev, s.hidden, "hidden states"));
  SACC_ASSIGN_OR_RETURN(w.q_or_mlp, DeviceBuffer::create(dev, s.q_or_mlp, "queries / MLP chunk"));
  if (s.attn_out) {
    SACC_ASSIGN_OR_RETURN(w.attn_out, DeviceBuffer::create(dev, s.attn_out, "attention output"));
  }
  SACC_ASSIGN_OR_RETURN(w.scratch,
                        DeviceBuffer::create(dev, s.scratch(), "normed chunk / attention workspace"));
  SACC_ASSIGN_OR_RETURN(w.ids, DeviceBuffer::create(dev, n * sizeof(int32_t), "token ids"));
  if (s.fp8_input) {
    SACC_ASSIGN_OR_RETURN(w.fp8_input, DeviceBuffer::create(dev, s.fp8_input, "FP8 linear-layer input"));
    const int64_t widest = std::max({config_.hidden, config_.q_dim(), config_.ffn});
    w.fp8_input_scales = reinterpret_cast<float*>(w.fp8_input.as<char>() +
                                                  align_up(static_cast<size_t>(chunk_rows(n) * widest)));
  }
  if (s.logits) {
    SACC_ASSIGN_OR_RETURN(w.logits, DeviceBuffer::create(dev, s.logits, "logits"));
    w.logit_step_rows = logit_rows_per_step(logit_rows, n, options_.chunk);
  }
  w.tokens = n;
  return Status::ok();
}

bool DeviceShard::fits(const Workspace& w, const CudaWorkspaceSizes& s) {
  // A separate attention output is there exactly when the attention needs one (o() writes into it if it is).
  return w.tokens > 0 && w.hidden.size() >= s.hidden && w.q_or_mlp.size() >= s.q_or_mlp &&
         (w.attn_out.size() > 0) == (s.attn_out > 0) && w.attn_out.size() >= s.attn_out &&
         w.scratch.size() >= s.scratch() && w.fp8_input.size() >= s.fp8_input && w.logits.size() >= s.logits;
}

Status DeviceShard::ensure_step_workspace() {
  const auto rows = static_cast<int64_t>(slots_.size());
  if (step_ws_.tokens == rows) return Status::ok();
  SACC_CUDA_TRY(cudaSetDevice(spec_.device));
  ++reallocations_;
  const CudaWorkspaceSizes s =
      cuda_step_workspace_sizes(config_, rows, options_.chunk, spec_.has_lm_head, options_.linear);
  return allocate(step_ws_, s, rows, spec_.has_lm_head ? rows : 0);
}

Status DeviceShard::begin_prefill(int64_t n) {
  SACC_CUDA_TRY(cudaSetDevice(spec_.device));
  index_geometry_.assign(layers_.size(), IndexGeometry{});
  int sm_major = 0;
  SACC_CUDA_TRY(cudaDeviceGetAttribute(&sm_major, cudaDevAttrComputeCapabilityMajor, spec_.device));
  attention_ = decide_attention(config_, options_, n, sm_major, attention_overrides());
  SACC_ASSIGN_OR_RETURN(attention_.workspace, attention_workspace(config_, options_, n, attention_.method));
  const bool separate_output = attention_needs_separate_output(options_.attention);
  const int64_t logit_rows = spec_.has_lm_head ? step_logit_rows(options_, n, 0) : 0;
  const auto sizes = [&](int64_t tokens, uint64_t attention_bytes) {
    return cuda_workspace_sizes(config_, tokens, options_.chunk, attention_bytes, separate_output, logit_rows,
                                options_.linear);
  };
  const AttentionBytes& attn = attention_.workspace;
  CudaWorkspaceSizes s = sizes(n, attn.select + attn.plan);
  int64_t tokens = n;
  const int64_t kept = options_.prefill_workspace_tokens;
  if (n <= kept) {
    // One workspace for every prefill of up to `kept` tokens, kept while it fits (BackendOptions).
    SACC_ASSIGN_OR_RETURN(const AttentionBytes most,
                          attention_workspace(config_, options_, kept, attention_.method));
    s = element_max(s, sizes(kept, most.select + most.plan));
    tokens = kept;
    if (fits(prefill_ws_, s)) {
      prefill_ws_.logit_step_rows = logit_rows_per_step(logit_rows, n, options_.chunk);
      return Status::ok();
    }
  }
  // Free the previous prompt's buffers first.
  prefill_ws_ = {};
  SACC_RETURN_IF_ERROR(allocate(prefill_ws_, s, tokens, logit_rows));
  prefill_ws_.logit_step_rows = logit_rows_per_step(logit_rows, n, options_.chunk);
  return Status::ok();
}

uint16_t* DeviceShard::k_cache(int slot, int local) const {
  const SlotKv& s = slots_[static_cast<size_t>(slot)];
  return s.kv.as<uint16_t>() + static_cast<size_t>(2 * local) * s.capacity * config_.kv_dim();
}

uint16_t* DeviceShard::v_cache(int slot, int local) const {
  const SlotKv& s = slots_[static_cast<size_t>(slot)];
  return s.kv.as<uint16_t>() + static_cast<size_t>(2 * local + 1) * s.capacity * config_.kv_dim();
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
  auto* xq = ws_->fp8_input.as<uint8_t>();  // [rows, in] e4m3, scales [rows]
  if (input == Input::FRESH)
    SACC_CUDA_TRY(quantize_rows_e4m3(x, ldx ? ldx : in, rows, in, xq, ws_->fp8_input_scales, stream_));
  Fp8GemmArgs g;
  g.x = xq;
  g.x_scale = ws_->fp8_input_scales;
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
  const int32_t* ids = ws_->ids.as<int32_t>();
  if (batch_rows_ > 0) {
    // A batch step's ids came with its table (begin_batch): no copy from the caller's memory.
    if (n != batch_rows_)
      return make_error(StatusCode::INTERNAL, "embed of {} tokens in a {}-row batch step", n, batch_rows_);
    ids = batch_tokens();
  } else {
    SACC_CUDA_TRY(cudaMemcpyAsync(ws_->ids.data(), tokens.data(), n * sizeof(int32_t), cudaMemcpyHostToDevice,
                                  stream_));
  }
  return cuda_status(embed_rows(ids, maybe_embed_, hidden(), n, model_.hidden, stream_), "embed");
}

int64_t DeviceShard::chunk_rows(int64_t n) const {
  return std::min(n, std::max<int64_t>(1, options_.chunk));
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
