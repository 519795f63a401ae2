#include "model/model_config.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numbers>
#include <sstream>

#include "core/json_guard.h"

namespace sacc {
namespace {

Result<int64_t> get_int(const nlohmann::json& json, const char* key, const std::string& origin) {
  auto it = json.find(key);
  if (it == json.end() || !it->is_number_integer())
    return make_error(StatusCode::CORRUPT_DATA, "{}: '{}' is missing or not an integer", origin, key);
  return it->get<int64_t>();
}

int64_t get_int_or(const nlohmann::json& json, const char* key, int64_t fallback) {
  auto it = json.find(key);
  return it != json.end() && it->is_number_integer() ? it->get<int64_t>() : fallback;
}

double get_double_or(const nlohmann::json& json, const char* key, double fallback) {
  auto it = json.find(key);
  return it != json.end() && it->is_number() ? it->get<double>() : fallback;
}

bool get_bool_or(const nlohmann::json& json, const char* key, bool fallback) {
  auto it = json.find(key);
  return it != json.end() && it->is_boolean() ? it->get<bool>() : fallback;
}

// eos_token_id is an integer or a list of integers in HF configs.
std::vector<int32_t> token_list(const nlohmann::json& json, const char* key) {
  std::vector<int32_t> out;
  auto it = json.find(key);
  if (it == json.end()) return out;
  if (it->is_number_integer()) out.push_back(it->get<int32_t>());
  if (it->is_array())
    for (const auto& v : *it)
      if (v.is_number_integer()) out.push_back(v.get<int32_t>());
  return out;
}

}  // namespace

int64_t ModelConfig::parameter_count() const {
  const int64_t per_layer = 2 * hidden + hidden * (q_dim() + 2 * kv_dim()) + q_dim() * hidden +
                            3 * hidden * ffn + (qkv_bias ? q_dim() + 2 * kv_dim() : 0);
  return vocab * hidden * (tied_embeddings ? 1 : 2) + num_layers * per_layer + hidden;
}

Result<int> model_count(int64_t value, std::string_view key, const std::string& origin) {
  if (value < 1 || value > kMaxModelCount) {
    return make_error(StatusCode::CORRUPT_DATA, "{}: '{}' is {}; it must be in [1, {}]", origin, key, value,
                      kMaxModelCount);
  }
  return static_cast<int>(value);
}

Status ModelConfig::validate() const {
  if (hidden <= 0 || num_layers <= 0 || num_heads <= 0 || num_kv_heads <= 0 || head_dim <= 0 || ffn <= 0 ||
      vocab <= 0)
    return make_error(StatusCode::CORRUPT_DATA,
                      "{}: sizes must be positive (hidden {}, layers {}, heads {}, kv heads {}, head_dim {}, "
                      "ffn {}, vocab {})",
                      name, hidden, num_layers, num_heads, num_kv_heads, head_dim, ffn, vocab);
  if (hidden > kMaxModelWidth || ffn > kMaxModelWidth || vocab > kMaxModelWidth ||
      std::max({num_layers, num_heads, num_kv_heads, head_dim}) > kMaxModelCount)
    return make_error(
        StatusCode::CORRUPT_DATA,
        "{}: sizes past the limits (hidden, ffn and vocab at most {}; layers, heads, kv heads and "
        "head_dim at most {}): hidden {}, layers {}, heads {}, kv heads {}, head_dim {}, ffn {}, "
        "vocab {}",
        name, kMaxModelWidth, kMaxModelCount, hidden, num_layers, num_heads, num_kv_heads, head_dim, ffn,
        vocab);
  if (num_heads % num_kv_heads != 0)
    return make_error(StatusCode::CORRUPT_DATA, "{}: {} attention heads are not a multiple of {} KV heads",
                      name, num_heads, num_kv_heads);
  if (head_dim % 2 != 0)
    return make_error(StatusCode::CORRUPT_DATA, "{}: head_dim {} must be even for RoPE", name, head_dim);
  if (max_context <= 0) return make_error(StatusCode::CORRUPT_DATA, "{}: max context must be positive", name);
  if (rms_eps <= 0.0) return make_error(StatusCode::CORRUPT_DATA, "{}: rms eps must be positive", name);
  const RopeScaling& s = rope_scaling;
  // The llama3 ramp divides by (high - low) and by each factor: anything else is not a llama3 config.
  if (s.enabled && !(s.factor > 0.0 && s.low_freq_factor > 0.0 && s.high_freq_factor > s.low_freq_factor &&
                     s.original_max_position > 0))
    return make_error(
        StatusCode::CORRUPT_DATA,
        "{}: llama3 rope scaling needs factor > 0, 0 < low_freq_factor < high_freq_factor and a "
        "positive original context (got factor {}, low {}, high {}, original {})",
        name, s.factor, s.low_freq_factor, s.high_freq_factor, s.original_max_position);
  if (!rope_freq_divisors.empty() && std::ssize(rope_freq_divisors) != head_dim / 2)
    return make_error(StatusCode::CORRUPT_DATA, "{}: {} RoPE frequency divisors, expected head_dim / 2 = {}",
                      name, rope_freq_divisors.size(), head_dim / 2);
  for (size_t i = 0; i < rope_freq_divisors.size(); ++i)
    if (!std::isfinite(rope_freq_divisors[i]) || rope_freq_divisors[i] <= 0.0)
      return make_error(StatusCode::CORRUPT_DATA,
                        "{}: RoPE frequency divisor {} is {}; divisors must be positive and finite", name, i,
                        rope_freq_divisors[i]);
  return Status::ok();
}

std::string ModelConfig::summary() const {
  std::string eos;
  for (int32_t t : eos_tokens) eos += fmt::format("{}{}", eos.empty() ? "" : ",", t);
  std::string out = fmt::format(
      "model        {}\narchitecture {}{}\nparameters   {:.3f} B\nhidden       {}\nlayers       {}\n"
      "heads        {} (kv {}, head_dim {})\nffn          {}\nvocab        {}\nrope theta   {}\n",
      name, architecture, qkv_bias ? " (qkv bias)" : "", static_cast<double>(parameter_count()) * 1e-9,
      hidden, num_layers, num_heads, num_kv_heads, head_dim, ffn, vocab, rope_theta);
  if (rope_scaling.enabled)
    out += fmt::format("rope scaling llama3 (factor {}, low {}, high {}, original {})\n", rope_scaling.factor,
                       rope_scaling.low_freq_factor, rope_scaling.high_freq_factor,
                       rope_scaling.original_max_position);
  if (!rope_scaling.enabled && rope_freq_divisors.empty()) out += "rope scaling none\n";
  if (!rope_freq_divisors.empty()) {
    const auto [lo, hi] = std::minmax_element(rope_freq_divisors.begin(), rope_freq_divisors.end());
    out += fmt::format("rope freqs   {} per-frequency divisors in [{:.6g}, {:.6g}]{}\n",
                       rope_freq_divisors.size(), *lo, *hi,
                       rope_scaling.enabled ? ", used instead of the llama3 formula" : "");
  }
  // {:.6g}: GGUF stores eps as fp32, whose exact decimal expansion (9.999999747378752e-06) is noise.
  out += fmt::format("rms eps      {:.6g}\ntied embed   {}\nmax context  {}\nbos / eos    {} / {}\n", rms_eps,
                     tied_embeddings ? "yes" : "no", max_context, bos_token, eos.empty() ? "-" : eos);
  return out;
}

Result<ModelConfig> model_config_from_hf_json(const nlohmann::json& json, const std::string& origin) {
  if (!json.is_object()) return make_error(StatusCode::CORRUPT_DATA, "{}: not a JSON object", origin);
  return guard_json(origin, [&]() -> Result<ModelConfig> {
    ModelConfig c;
    c.name = origin;
    const std::string model_type = json.value("model_type", std::string("llama"));
    if (model_type == "qwen2") {
      c.architecture = "qwen2";
      c.qkv_bias = true;
    } else if (model_type == "llama" || model_type == "mistral") {
      c.architecture = "llama";
      c.qkv_bias = get_bool_or(json, "attention_bias", false);
    } else {
      return make_error(StatusCode::UNSUPPORTED,
                        "{}: model_type '{}' is not a Llama-family model (supported: llama, mistral, qwen2)",
                        origin, model_type);
    }
    SACC_ASSIGN_OR_RETURN(c.hidden, get_int(json, "hidden_size", origin));
    SACC_ASSIGN_OR_RETURN(int64_t layers, get_int(json, "num_hidden_layers", origin));
    SACC_ASSIGN_OR_RETURN(int64_t heads, get_int(json, "num_attention_heads", origin));
    SACC_ASSIGN_OR_RETURN(c.ffn, get_int(json, "intermediate_size", origin));
    SACC_ASSIGN_OR_RETURN(c.vocab, get_int(json, "vocab_size", origin));
    SACC_ASSIGN_OR_RETURN(c.num_layers, model_count(layers, "num_hidden_layers", origin));
    SACC_ASSIGN_OR_RETURN(c.num_heads, model_count(heads, "num_attention_heads", origin));
    SACC_ASSIGN_OR_RETURN(c.num_kv_heads, model_count(get_int_or(json, "num_key_value_heads", heads),
                                                      "num_key_value_heads", origin));
    SACC_ASSIGN_OR_RETURN(c.head_dim,
                          model_count(get_int_or(json, "head_dim", c.hidden / heads), "head_dim", origin));
    c.rope_theta = get_double_or(json, "rope_theta", 10000.0);
    c.rms_eps = get_double_or(json, "rms_norm_eps", 1e-5);
    c.tied_embeddings = get_bool_or(json, "tie_word_embeddings", false);
    c.max_context = get_int_or(json, "max_position_embeddings", 2048);
    c.bos_token = static_cast<int32_t>(get_int_or(json, "bos_token_id", -1));
    c.eos_tokens = token_list(json, "eos_token_id");
    auto scaling = json.find("rope_scaling");
    if (scaling != json.end() && scaling->is_object()) {
      std::string type = scaling->value("rope_type", scaling->value("type", std::string()));
      if (type == "llama3") {
        c.rope_scaling.enabled = true;
        c.rope_scaling.factor = get_double_or(*scaling, "factor", 8.0);
        c.rope_scaling.low_freq_factor = get_double_or(*scaling, "low_freq_factor", 1.0);
        c.rope_scaling.high_freq_factor = get_double_or(*scaling, "high_freq_factor", 4.0);
        c.rope_scaling.original_max_position = get_int_or(*scaling, "original_max_position_embeddings", 8192);
      } else if (type != "default" && !type.empty()) {
        return make_error(StatusCode::UNSUPPORTED,
                          "{}: rope_scaling type '{}' is not supported (llama3 only)", origin, type);
      }
    }
    SACC_RETURN_IF_ERROR(c.validate());
    return c;
  });
}

Result<ModelConfig> model_config_from_hf_text(std::string_view text, const std::string& origin) {
  const nlohmann::json json = nlohmann::json::parse(text, nullptr, false);
  if (json.is_discarded()) return make_error(StatusCode::CORRUPT_DATA, "{}: not valid JSON", origin);
  return model_config_from_hf_json(json, origin);
}

Result<ModelConfig> model_config_from_hf_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(StatusCode::NOT_FOUND, "{}: cannot open", path);
  std::stringstream text;
  text << in.rdbuf();
  return model_config_from_hf_text(text.str(), path);
}

std::vector<std::string> builtin_model_names() {
  return {"llama-3.1-8b", "llama-3.2-1b", "smollm2-135m", "qwen2.5-0.5b"};
}

Result<ModelConfig> builtin_model_config(const std::string& name) {
  ModelConfig c;
  c.name = name;
  if (name == "llama-3.1-8b" || name == "llama-3.2-1b") {
    const bool big = name == "llama-3.1-8b";
    c.hidden = big ? 4096 : 2048;
    c.num_layers = big ? 32 : 16;
    c.num_heads = 32;
    c.num_kv_heads = 8;
    c.head_dim = big ? 128 : 64;
    c.ffn = big ? 14336 : 8192;
    c.vocab = 128256;
    c.rope_theta = 500000.0;
    c.rope_scaling = {true, big ? 8.0 : 32.0, 1.0, 4.0, 8192};
    c.rms_eps = 1e-5;
    c.tied_embeddings = !big;
    c.max_context = 131072;
    c.bos_token = 128000;
    c.eos_tokens = {128001, 128008, 128009};
  } else if (name == "smollm2-135m") {
    c.hidden = 576;
    c.num_layers = 30;
    c.num_heads = 9;
    c.num_kv_heads = 3;
    c.head_dim = 64;
    c.ffn = 1536;
    c.vocab = 49152;
    c.rope_theta = 100000.0;
    c.rms_eps = 1e-5;
    c.tied_embeddings = true;
    c.max_context = 8192;
    c.bos_token = 1;
    c.eos_tokens = {2};
  } else if (name == "qwen2.5-0.5b") {
    c.architecture = "qwen2";
    c.qkv_bias = true;
    c.hidden = 896;
    c.num_layers = 24;
    c.num_heads = 14;
    c.num_kv_heads = 2;
    c.head_dim = 64;
    c.ffn = 4864;
    c.vocab = 151936;
    c.rope_theta = 1000000.0;
    c.rms_eps = 1e-6;
    c.tied_embeddings = true;
    c.max_context = 32768;
    c.eos_tokens = {151645, 151643};
  } else {
    std::string names;
    for (const auto& n : builtin_model_names()) names += (names.empty() ? "" : ", ") + n;
    return make_error(StatusCode::INVALID_ARGUMENT, "random:{}: unknown built-in config (known: {})", name,
                      names);
  }
  return c;
}

std::vector<double> rope_inverse_frequencies(const ModelConfig& config) {
  const int pairs = config.head_dim / 2;
  std::vector<double> inv(pairs);
  for (int i = 0; i < pairs; ++i)
    inv[i] = 1.0 / std::pow(config.rope_theta, 2.0 * i / static_cast<double>(config.head_dim));
  if (std::ssize(config.rope_freq_divisors) == pairs) {
    for (int i = 0; i < pairs; ++i) inv[i] /= config.rope_freq_divisors[i];
    return inv;
  }
  if (!config.rope_scaling.enabled) return inv;
  const RopeScaling& s = config.rope_scaling;
  const double old_len = static_cast<double>(s.original_max_position);
  const double low_wavelen = old_len / s.low_freq_factor;
  const double high_wavelen = old_len / s.high_freq_factor;
  for (double& f : inv) {
    const double wavelen = 2.0 * std::numbers::pi / f;
    if (wavelen < high_wavelen) continue;
    if (wavelen > low_wavelen) {
      f /= s.factor;
    } else {
      const double smooth =
          (old_len / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
      f = (1.0 - smooth) * f / s.factor + smooth * f;
    }
  }
  return inv;
}

}  // namespace sacc
