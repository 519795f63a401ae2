#include "model/model_loader.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>

#include "core/out_of_memory.h"
#include "model/gguf.h"
#include "model/gguf_hparams.h"
#include "model/hf_checkpoint.h"

namespace sacc {
namespace fs = std::filesystem;
namespace {

constexpr std::string_view kRandomPrefix = "random:";
constexpr std::string_view kRopeFreqsTensor = "rope_freqs.weight";

bool is_random(const std::string& spec) {
  return spec.rfind(kRandomPrefix, 0) == 0;
}

Status check_exists(const std::string& spec) {
  if (!fs::exists(spec))
    return make_error(StatusCode::NOT_FOUND,
                      "model '{}' not found: expected an HF model directory, a .gguf file or random:<name>",
                      spec);
  return Status::ok();
}

std::vector<int32_t> merge_stops(std::vector<int32_t> a, const std::vector<int32_t>& b) {
  for (int32_t t : b)
    if (t >= 0 && std::find(a.begin(), a.end(), t) == a.end()) a.push_back(t);
  return a;
}

// Q and K rows of a converter that interleaves RoPE pairs, reordered into halves: a copy of the tensor's
// file bytes (block format kept; rows are independent), so only these two matrices per layer are copied.
std::shared_ptr<std::vector<uint8_t>> unpermuted_rows(const GgufTensorInfo& info, const uint8_t* data,
                                                      int64_t n_heads, Status* status) {
  auto bytes = std::make_shared<std::vector<uint8_t>>(data, data + info.nbytes);
  const int64_t rows = info.shape[0];
  *status = unpermute_rope_rows(bytes->data(), rows, info.nbytes / static_cast<uint64_t>(rows), n_heads);
  return bytes;
}

// Tensors stay in the file's format inside its read-only mapping (one copy of the weights, paged in as the
// backend reads them); F32/F16/BF16 tensors become plain views, block formats QuantRows.
Result<LoadedModel> load_gguf(const std::string& path, const ModelLoadOptions& options) {
  Result<GgufFile> opened = GgufFile::open(path);
  if (!opened) return opened.status();
  auto file = std::make_shared<GgufFile>(std::move(*opened));
  SACC_ASSIGN_OR_RETURN(GgufHyperparams hp, read_gguf_hyperparams(*file));
  SACC_ASSIGN_OR_RETURN(ModelConfig config, model_config_from_gguf(*file));
  LoadedModel model;
  model.kind = ModelSourceKind::GGUF;
  std::map<std::string, QuantRows> quantized;
  std::vector<std::shared_ptr<const void>> copies;
  TensorLookup lookup = [&](const std::string& name) -> Result<TensorView> {
    const GgufTensorInfo* info = file->find_tensor(name);
    if (info == nullptr) return make_error(StatusCode::NOT_FOUND, "{}: tensor '{}' is missing", path, name);
    const uint8_t* data = file->tensor_data(*info);
    const bool q = name.ends_with("attn_q.weight") || name.ends_with("attn_q.bias");
    const bool k = name.ends_with("attn_k.weight") || name.ends_with("attn_k.bias");
    if (hp.rope_rows_interleaved && (q || k)) {
      Status status;
      auto bytes = unpermuted_rows(*info, data, q ? config.num_heads : config.num_kv_heads, &status);
      if (!status) return status.with_context(fmt::format("{}: {}", path, name));
      data = bytes->data();
      copies.push_back(bytes);
    }
    const GgmlType type = info->type.type;
    if (type == GgmlType::F32 || type == GgmlType::F16 || type == GgmlType::BF16) {
      const DType dtype = type == GgmlType::F32   ? DType::F32
                          : type == GgmlType::F16 ? DType::F16
                                                  : DType::BF16;
      return TensorView(const_cast<uint8_t*>(data), dtype, info->shape);
    }
    if (info->shape.ndim != 2)
      return make_error(StatusCode::CORRUPT_DATA, "{}: tensor '{}' of type {} is not a matrix", path, name,
                        info->type.name);
    quantized[name] = {type, data, static_cast<int64_t>(info->nbytes) / info->shape[0]};
    return TensorView(nullptr, DType::F32, info->shape);
  };
  SACC_ASSIGN_OR_RETURN(model.weights, llama_weights_from_lookup(config, lookup, TensorNaming::GGUF));
  model.weights.total_bytes_on_host = 0;
  for (WeightTensor* t : model.weights.all_mutable()) {
    auto it = quantized.find(t->name);
    if (it != quantized.end()) t->quant = it->second;
  }
  for (const WeightTensor* t : model.weights.all()) model.weights.total_bytes_on_host += t->host_bytes();
  model.weights.storage.push_back(file);
  for (auto& copy : copies) model.weights.storage.push_back(copy);
  if (options.load_tokenizer) {
    SACC_ASSIGN_OR_RETURN(Tokenizer tokenizer, Tokenizer::from_gguf(*file));
    model.maybe_tokenizer = std::make_shared<const Tokenizer>(std::move(tokenizer));
  }
  return model;
}

// llama.cpp's converter writes Llama 3.1's llama3 RoPE scaling as rope_freqs.weight: F32 [head_dim / 2]
// divisors of the plain inverse frequencies. Small, so it is read straight from the mapping.
Result<std::vector<double>> read_rope_freq_divisors(const GgufFile& file, int64_t head_dim) {
  const GgufTensorInfo* info = file.find_tensor(kRopeFreqsTensor);
  if (info == nullptr) return std::vector<double>{};
  if (info->type.type != GgmlType::F32)
    return make_error(StatusCode::CORRUPT_DATA, "{}: tensor '{}' has type {}, expected F32", file.path(),
                      kRopeFreqsTensor, info->type.name);
  if (info->shape.ndim != 1 || info->shape[0] != head_dim / 2)
    return make_error(StatusCode::CORRUPT_DATA, "{}: tensor '{}' has shape {}, expected [{}] (head_dim / 2)",
                      file.path(), kRopeFreqsTensor, info->shape.to_string(), head_dim / 2);
  std::vector<float> values(static_cast<size_t>(head_dim / 2));
  std::memcpy(values.data(), file.tensor_data(*info), values.size() * sizeof(float));
  std::vector<double> divisors(values.begin(), values.end());
  for (size_t i = 0; i < divisors.size(); ++i)
    if (!std::isfinite(divisors[i]) || divisors[i] <= 0.0)
      return make_error(
          StatusCode::CORRUPT_DATA,
          "{}: tensor '{}' element {} is {}; RoPE frequency divisors must be positive and finite",
          file.path(), kRopeFreqsTensor, i, divisors[i]);
  return divisors;
}

}  // namespace

Result<ModelConfig> model_config_from_gguf(const GgufFile& file) {
  SACC_ASSIGN_OR_RETURN(GgufHyperparams hp, read_gguf_hyperparams(file));
  ModelConfig c;
  c.name = hp.name.empty() ? fs::path(file.path()).stem().string() : hp.name;
  c.architecture = hp.architecture;
  c.hidden = hp.embedding_length;
  SACC_ASSIGN_OR_RETURN(c.num_layers, model_count(hp.block_count, "block_count", file.path()));
  SACC_ASSIGN_OR_RETURN(c.num_heads, model_count(hp.head_count, "attention.head_count", file.path()));
  SACC_ASSIGN_OR_RETURN(c.num_kv_heads,
                        model_count(hp.head_count_kv, "attention.head_count_kv", file.path()));
  SACC_ASSIGN_OR_RETURN(c.head_dim, model_count(hp.head_dim, "attention.key_length (head_dim)", file.path()));
  c.ffn = hp.feed_forward_length;
  c.vocab = hp.vocab_size;
  c.rope_theta = hp.rope_freq_base;
  c.rms_eps = hp.rms_norm_eps;
  c.tied_embeddings = hp.tied_embeddings;
  c.qkv_bias = hp.qkv_bias;
  c.max_context = hp.context_length;
  if (hp.rope_scaling_type == "llama3") {
    // Absent keys (0) take Llama 3.1's values, as config.json's rope_scaling does.
    const RopeScaling llama31;
    c.rope_scaling = {true, hp.rope_scaling_factor,
                      hp.rope_low_freq_factor > 0.0 ? hp.rope_low_freq_factor : llama31.low_freq_factor,
                      hp.rope_high_freq_factor > 0.0 ? hp.rope_high_freq_factor : llama31.high_freq_factor,
                      hp.rope_original_context_length > 0 ? hp.rope_original_context_length
                                                          : llama31.original_max_position};
  } else if (hp.rope_scaling_type != "none" && !hp.rope_scaling_type.empty()) {
    return make_error(StatusCode::UNSUPPORTED, "{}: rope scaling '{}' is not supported (llama3 only)",
                      file.path(), hp.rope_scaling_type);
  }
  SACC_ASSIGN_OR_RETURN(c.rope_freq_divisors, read_rope_freq_divisors(file, hp.head_dim));
  c.bos_token = static_cast<int32_t>(file.get_int_or("tokenizer.ggml.bos_token_id", -1));
  const int64_t eos = file.get_int_or("tokenizer.ggml.eos_token_id", -1);
  if (eos >= 0) c.eos_tokens = {static_cast<int32_t>(eos)};
  Status valid = c.validate();
  if (!valid) return valid.with_context(file.path());
  return c;
}

Result<ModelConfig> load_model_config(const std::string& spec) {
  if (is_random(spec)) return builtin_model_config(spec.substr(kRandomPrefix.size()));
  SACC_RETURN_IF_ERROR(check_exists(spec));
  if (fs::is_directory(spec)) {
    SACC_ASSIGN_OR_RETURN(HfCheckpoint ckpt, HfCheckpoint::open(spec, false));
    return ckpt.config();
  }
  Result<GgufFile> file = GgufFile::open(spec);
  if (!file) return file.status();
  return model_config_from_gguf(*file);
}

namespace {

Result<LoadedModel> load_model_unguarded(const std::string& spec, const ModelLoadOptions& options) {
  LoadedModel model;
  if (is_random(spec)) {
    SACC_ASSIGN_OR_RETURN(ModelConfig config, builtin_model_config(spec.substr(kRandomPrefix.size())));
    model.kind = ModelSourceKind::RANDOM;
    model.weights = llama_weights_random(config, options.seed);
  } else {
    SACC_RETURN_IF_ERROR(check_exists(spec));
    if (fs::is_directory(spec)) {
      SACC_ASSIGN_OR_RETURN(HfCheckpoint ckpt, HfCheckpoint::open(spec, options.show_progress));
      model.kind = ModelSourceKind::HF_DIRECTORY;
      SACC_ASSIGN_OR_RETURN(model.weights, ckpt.weights());
      if (options.load_tokenizer && ckpt.has_tokenizer()) {
        SACC_ASSIGN_OR_RETURN(Tokenizer tokenizer, Tokenizer::from_hf_json(spec));
        model.maybe_tokenizer = std::make_shared<const Tokenizer>(std::move(tokenizer));
      }
    } else {
      SACC_ASSIGN_OR_RETURN(model, load_gguf(spec, options));
    }
  }
  model.stop_tokens = model.weights.config.eos_tokens;
  if (model.maybe_tokenizer)
    model.stop_tokens = merge_stops(model.stop_tokens, model.maybe_tokenizer->stop_ids());
  return model;
}

}  // namespace

Result<LoadedModel> load_model(const std::string& spec, const ModelLoadOptions& options) {
  // Weights converted or read into host memory, the tokenizer's tables: std::bad_alloc is OUT_OF_MEMORY.
  return guard_host_allocation(fmt::format("loading {}", spec), 0,
                               [&] { return load_model_unguarded(spec, options); });
}

}  // namespace sacc
