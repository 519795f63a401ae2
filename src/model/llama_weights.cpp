#include "model/llama_weights.h"

#include <cmath>

#include "core/log.h"

namespace sacc {
namespace {

std::string layer_name(TensorNaming naming, int layer, const char* hf_part, const char* gguf_part) {
  return naming == TensorNaming::HF ? fmt::format("model.layers.{}.{}", layer, hf_part)
                                    : fmt::format("blk.{}.{}", layer, gguf_part);
}

Result<WeightTensor> fetch(const TensorLookup& lookup, const std::string& name, Shape expected) {
  SACC_ASSIGN_OR_RETURN(TensorView view, lookup(name));
  if (view.dtype != DType::F32 && view.dtype != DType::F16 && view.dtype != DType::BF16)
    return make_error(StatusCode::CORRUPT_DATA, "{}: dtype {} is not a float type (F32, F16 or BF16)", name,
                      dtype_name(view.dtype));
  if (!(view.shape == expected))
    return make_error(StatusCode::CORRUPT_DATA, "{}: shape {}, expected {} from the model config", name,
                      view.shape.to_string(), expected.to_string());
  if (!view.is_contiguous())
    return make_error(StatusCode::CORRUPT_DATA, "{}: tensor is not contiguous", name);
  WeightTensor t;
  t.name = name;
  t.view = view;
  return t;
}

int64_t row_length(const WeightTensor& t) {
  return t.view.shape.ndim == 2 ? t.view.shape[1] : t.view.numel();
}

}  // namespace

uint64_t WeightTensor::host_bytes() const {
  if (is_quantized()) return static_cast<uint64_t>(quant.row_bytes) * (view.numel() / row_length(*this));
  return is_random() ? 0 : view.nbytes();
}

std::vector<WeightTensor*> LlamaWeights::all_mutable() {
  std::vector<WeightTensor*> out{&embed};
  for (LayerWeights& l : layers)
    for (WeightTensor* t : {&l.attn_norm, &l.wq, &l.wk, &l.wv, &l.bq, &l.bk, &l.bv, &l.wo, &l.mlp_norm,
                            &l.w_gate, &l.w_up, &l.w_down})
      if (t->defined()) out.push_back(t);
  out.push_back(&final_norm);
  out.push_back(&lm_head);
  return out;
}

std::vector<const WeightTensor*> LlamaWeights::all() const {
  std::vector<const WeightTensor*> out{&embed};
  for (const LayerWeights& l : layers)
    for (const WeightTensor* t : {&l.attn_norm, &l.wq, &l.wk, &l.wv, &l.bq, &l.bk, &l.bv, &l.wo, &l.mlp_norm,
                                  &l.w_gate, &l.w_up, &l.w_down})
      if (t->defined()) out.push_back(t);
  out.push_back(&final_norm);
  if (!config.tied_embeddings) out.push_back(&lm_head);
  return out;
}

Result<LlamaWeights> llama_weights_from_lookup(const ModelConfig& config, const TensorLookup& lookup,
                                               TensorNaming naming) {
  const bool hf = naming == TensorNaming::HF;
  const int64_t D = config.hidden, Q = config.q_dim(), KV = config.kv_dim(), F = config.ffn;
  LlamaWeights w;
  w.config = config;
  SACC_ASSIGN_OR_RETURN(
      w.embed, fetch(lookup, hf ? "model.embed_tokens.weight" : "token_embd.weight", {config.vocab, D}));
  SACC_ASSIGN_OR_RETURN(w.final_norm, fetch(lookup, hf ? "model.norm.weight" : "output_norm.weight", {D}));
  const std::string head_name = hf ? "lm_head.weight" : "output.weight";
  if (config.tied_embeddings) {
    w.lm_head = w.embed;
  } else {
    Result<WeightTensor> head = fetch(lookup, head_name, {config.vocab, D});
    if (!head) {
      if (head.status().code() != StatusCode::NOT_FOUND) return head.status();
      // Some exports drop the head of tied models without setting tie_word_embeddings.
      SACC_LOG_WARN("{} not found; using the token embeddings as the LM head", head_name);
      w.lm_head = w.embed;
      w.config.tied_embeddings = true;
    } else {
      w.lm_head = std::move(head).value();
    }
  }
  w.layers.resize(config.num_layers);
  for (int i = 0; i < config.num_layers; ++i) {
    LayerWeights& l = w.layers[i];
    auto get = [&](const char* hf_part, const char* gguf_part, Shape shape) {
      return fetch(lookup, layer_name(naming, i, hf_part, gguf_part), shape);
    };
    SACC_ASSIGN_OR_RETURN(l.attn_norm, get("input_layernorm.weight", "attn_norm.weight", {D}));
    SACC_ASSIGN_OR_RETURN(l.wq, get("self_attn.q_proj.weight", "attn_q.weight", {Q, D}));
    SACC_ASSIGN_OR_RETURN(l.wk, get("self_attn.k_proj.weight", "attn_k.weight", {KV, D}));
    SACC_ASSIGN_OR_RETURN(l.wv, get("self_attn.v_proj.weight", "attn_v.weight", {KV, D}));
    if (config.qkv_bias) {
      SACC_ASSIGN_OR_RETURN(l.bq, get("self_attn.q_proj.bias", "attn_q.bias", {Q}));
      SACC_ASSIGN_OR_RETURN(l.bk, get("self_attn.k_proj.bias", "attn_k.bias", {KV}));
      SACC_ASSIGN_OR_RETURN(l.bv, get("self_attn.v_proj.bias", "attn_v.bias", {KV}));
    }
    SACC_ASSIGN_OR_RETURN(l.wo, get("self_attn.o_proj.weight", "attn_output.weight", {D, Q}));
    SACC_ASSIGN_OR_RETURN(l.mlp_norm, get("post_attention_layernorm.weight", "ffn_norm.weight", {D}));
    SACC_ASSIGN_OR_RETURN(l.w_gate, get("mlp.gate_proj.weight", "ffn_gate.weight", {F, D}));
    SACC_ASSIGN_OR_RETURN(l.w_up, get("mlp.up_proj.weight", "ffn_up.weight", {F, D}));
    SACC_ASSIGN_OR_RETURN(l.w_down, get("mlp.down_proj.weight", "ffn_down.weight", {D, F}));
  }
  for (const WeightTensor* t : w.all()) w.total_bytes_on_host += t->host_bytes();
  return w;
}

LlamaWeights llama_weights_random(const ModelConfig& config, uint64_t seed) {
  const int64_t D = config.hidden, Q = config.q_dim(), KV = config.kv_dim(), F = config.ffn;
  LlamaWeights w;
  w.config = config;
  uint64_t ordinal = 0;
  auto make = [&](const std::string& name, Shape shape, float center, float scale) {
    WeightTensor t;
    t.name = name;
    t.view = TensorView(nullptr, DType::BF16, shape);
    t.random = {mix64(seed * 0x100000001B3ull + ++ordinal), center, scale};
    return t;
  };
  // Uniform in [-a, a] has std a/sqrt(3): a = sqrt(3 / fan_in) keeps activations of order one.
  auto matrix = [&](const std::string& name, int64_t rows, int64_t cols) {
    return make(name, {rows, cols}, 0.0f, static_cast<float>(std::sqrt(3.0 / static_cast<double>(cols))));
  };
  auto norm = [&](const std::string& name) { return make(name, {D}, 1.0f, 0.1f); };
  w.embed = make("embed", {config.vocab, D}, 0.0f, 1.0f);
  w.layers.resize(config.num_layers);
  for (int i = 0; i < config.num_layers; ++i) {
    LayerWeights& l = w.layers[i];
    const std::string p = fmt::format("layers.{}.", i);
    l.attn_norm = norm(p + "attn_norm");
    l.wq = matrix(p + "wq", Q, D);
    l.wk = matrix(p + "wk", KV, D);
    l.wv = matrix(p + "wv", KV, D);
    if (config.qkv_bias) {
      l.bq = make(p + "bq", {Q}, 0.0f, 0.1f);
      l.bk = make(p + "bk", {KV}, 0.0f, 0.1f);
      l.bv = make(p + "bv", {KV}, 0.0f, 0.1f);
    }
    l.wo = matrix(p + "wo", D, Q);
    l.mlp_norm = norm(p + "mlp_norm");
    l.w_gate = matrix(p + "w_gate", F, D);
    l.w_up = matrix(p + "w_up", F, D);
    l.w_down = matrix(p + "w_down", D, F);
  }
  w.final_norm = norm("final_norm");
  w.lm_head = config.tied_embeddings ? w.embed : matrix("lm_head", config.vocab, D);
  return w;
}

float weight_value(const WeightTensor& tensor, int64_t index) {
  if (tensor.is_quantized()) {
    // Decodes the one block that holds the element.
    const int64_t cols = row_length(tensor), block = ggml_block_size(tensor.quant.type);
    const int64_t row = index / cols, first = index % cols / block * block;
    float values[kMaxGgmlBlockSize];
    dequantize_to_f32(tensor.quant.type,
                      tensor.quant.data + row * tensor.quant.row_bytes +
                          first / block * ggml_block_bytes(tensor.quant.type),
                      block, values);
    return values[index % cols - first];
  }
  if (tensor.is_random()) return random_value(tensor.random, static_cast<uint64_t>(index));
  return load_as_float(tensor.view.data, tensor.view.dtype, static_cast<size_t>(index));
}

void weight_row_to_f32(const WeightTensor& tensor, int64_t row, float* out) {
  const int64_t cols = row_length(tensor);
  if (tensor.is_quantized()) {
    dequantize_to_f32(tensor.quant.type, tensor.quant.data + row * tensor.quant.row_bytes, cols, out);
    return;
  }
  for (int64_t i = 0; i < cols; ++i) out[i] = weight_value(tensor, row * cols + i);
}

void weight_to_f32(const WeightTensor& tensor, float* out) {
  const int64_t n = tensor.view.numel();
  if (tensor.is_quantized()) {
    const int64_t cols = row_length(tensor);
    for (int64_t r = 0; r < n / cols; ++r) weight_row_to_f32(tensor, r, out + r * cols);
    return;
  }
  if (tensor.is_random()) {
    // Random weights are defined as bf16 values so that every backend holds exactly the same numbers.
    for (int64_t i = 0; i < n; ++i) out[i] = round_to_bf16(random_value(tensor.random, i));
    return;
  }
  const void* data = tensor.view.data;
  switch (tensor.view.dtype) {
    case DType::F32:
      for (int64_t i = 0; i < n; ++i) out[i] = static_cast<const float*>(data)[i];
      break;
    case DType::BF16:
      for (int64_t i = 0; i < n; ++i) out[i] = bf16_to_float(static_cast<const uint16_t*>(data)[i]);
      break;
    default:
      for (int64_t i = 0; i < n; ++i) out[i] = load_as_float(data, tensor.view.dtype, i);
  }
}

void weight_to_bf16(const WeightTensor& tensor, uint16_t* out) {
  const int64_t n = tensor.view.numel();
  if (tensor.is_quantized()) {
    const int64_t cols = row_length(tensor);
    for (int64_t r = 0; r < n / cols; ++r)
      dequantize_to_bf16(tensor.quant.type, tensor.quant.data + r * tensor.quant.row_bytes, cols,
                         out + r * cols);
    return;
  }
  if (!tensor.is_random() && tensor.view.dtype == DType::BF16) {
    const auto* src = static_cast<const uint16_t*>(tensor.view.data);
    for (int64_t i = 0; i < n; ++i) out[i] = src[i];
    return;
  }
  for (int64_t i = 0; i < n; ++i) out[i] = float_to_bf16(weight_value(tensor, i));
}

}  // namespace sacc
