#include "model/gguf_hparams.h"

#include <cstring>
#include <vector>

namespace sacc {
namespace {

Result<int64_t> required_int(const GgufFile& file, const std::string& key) {
  auto value = file.get_int(key);
  if (!value.is_ok()) {
    return make_error(StatusCode::CORRUPT_DATA, "{}: {}", file.path(), value.status().message());
  }
  if (*value <= 0) {
    return make_error(StatusCode::CORRUPT_DATA, "{}: metadata key '{}' must be positive, got {}", file.path(),
                      key, *value);
  }
  return *value;
}

}  // namespace

Result<GgufHyperparams> read_gguf_hyperparams(const GgufFile& file) {
  GgufHyperparams hp;
  auto arch = file.get_string("general.architecture");
  if (!arch.is_ok()) {
    return make_error(StatusCode::CORRUPT_DATA, "{}: {}", file.path(), arch.status().message());
  }
  hp.architecture = *arch;
  if (hp.architecture != "llama" && hp.architecture != "qwen2") {
    return make_error(StatusCode::UNSUPPORTED, "{}: architecture '{}' is not supported (llama and qwen2 are)",
                      file.path(), hp.architecture);
  }
  hp.name = file.get_string_or("general.name", "");
  const std::string p = hp.architecture + ".";
  SACC_ASSIGN_OR_RETURN(hp.context_length, required_int(file, p + "context_length"));
  SACC_ASSIGN_OR_RETURN(hp.embedding_length, required_int(file, p + "embedding_length"));
  SACC_ASSIGN_OR_RETURN(hp.block_count, required_int(file, p + "block_count"));
  SACC_ASSIGN_OR_RETURN(hp.feed_forward_length, required_int(file, p + "feed_forward_length"));
  SACC_ASSIGN_OR_RETURN(hp.head_count, required_int(file, p + "attention.head_count"));
  hp.head_count_kv = file.get_int_or(p + "attention.head_count_kv", hp.head_count);
  if (hp.head_count_kv <= 0 || hp.head_count % hp.head_count_kv != 0) {
    return make_error(StatusCode::CORRUPT_DATA, "{}: {} query heads are not a multiple of {} key/value heads",
                      file.path(), hp.head_count, hp.head_count_kv);
  }
  hp.head_dim = file.get_int_or(p + "attention.key_length", hp.embedding_length / hp.head_count);
  if (hp.head_dim <= 0 ||
      (!file.has(p + "attention.key_length") && hp.embedding_length % hp.head_count != 0)) {
    return make_error(StatusCode::CORRUPT_DATA, "{}: hidden size {} is not divisible into {} heads",
                      file.path(), hp.embedding_length, hp.head_count);
  }
  if (const GgufValue* tokens = file.find("tokenizer.ggml.tokens")) {
    hp.vocab_size = static_cast<int64_t>(tokens->array_size());
  }
  hp.vocab_size = file.get_int_or(p + "vocab_size", hp.vocab_size);
  if (const GgufTensorInfo* embed = file.find_tensor("token_embd.weight");
      embed != nullptr && hp.vocab_size == 0) {
    hp.vocab_size = embed->shape[0];
  }
  if (hp.vocab_size <= 0) {
    return make_error(StatusCode::CORRUPT_DATA, "{}: vocabulary size unknown (no {}vocab_size, no tokens)",
                      file.path(), p);
  }
  hp.rope_freq_base = file.get_float_or(p + "rope.freq_base", hp.rope_freq_base);
  hp.rms_norm_eps = file.get_float_or(p + "attention.layer_norm_rms_epsilon", hp.rms_norm_eps);
  hp.rope_scaling_type = file.get_string_or(p + "rope.scaling.type", "none");
  hp.rope_scaling_factor = file.get_float_or(p + "rope.scaling.factor", 1.0);
  hp.rope_original_context_length = file.get_int_or(p + "rope.scaling.original_context_length", 0);
  hp.rope_low_freq_factor = file.get_float_or(p + "rope.scaling.low_freq_factor", 0.0);
  hp.rope_high_freq_factor = file.get_float_or(p + "rope.scaling.high_freq_factor", 0.0);
  hp.tied_embeddings = file.find_tensor("output.weight") == nullptr;
  hp.qkv_bias = file.find_tensor("blk.0.attn_q.bias") != nullptr;
  hp.rope_rows_interleaved = hp.architecture == "llama";
  hp.rope_freqs_tensor = file.find_tensor("rope_freqs.weight") != nullptr;
  return hp;
}

Status unpermute_rope_rows(Tensor& weight, int64_t n_heads) {
  const Shape& shape = weight.shape();
  if (shape.ndim < 1 || shape.ndim > 2)
    return make_error(StatusCode::INVALID_ARGUMENT, "cannot split a {} tensor into {} RoPE heads",
                      shape.to_string(), n_heads);
  const size_t row_bytes = (shape.ndim == 2 ? static_cast<size_t>(shape[1]) : 1) * dtype_size(weight.dtype());
  return unpermute_rope_rows(static_cast<uint8_t*>(weight.data()), shape[0], row_bytes, n_heads);
}

Status unpermute_rope_rows(uint8_t* data, int64_t rows, size_t row_bytes, int64_t n_heads) {
  if (n_heads <= 0 || rows % (2 * n_heads) != 0) {
    return make_error(StatusCode::INVALID_ARGUMENT, "cannot split {} rows into {} RoPE heads of even size",
                      rows, n_heads);
  }
  const int64_t head_dim = rows / n_heads;
  std::vector<uint8_t> head(static_cast<size_t>(head_dim) * row_bytes);
  for (int64_t h = 0; h < n_heads; ++h) {
    uint8_t* base = data + static_cast<size_t>(h * head_dim) * row_bytes;
    std::memcpy(head.data(), base, head.size());
    for (int64_t i = 0; i < head_dim / 2; ++i) {
      for (int64_t j = 0; j < 2; ++j) {
        std::memcpy(base + static_cast<size_t>(j * head_dim / 2 + i) * row_bytes,
                    head.data() + static_cast<size_t>(2 * i + j) * row_bytes, row_bytes);
      }
    }
  }
  return Status::ok();
}

}  // namespace sacc
