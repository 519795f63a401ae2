#include "runtime/tiny_model.h"

#include <unistd.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>

#include "attention/cpu/cpu_attention.h"
#include "core/dtype.h"
#include "model/hf_checkpoint.h"

namespace sacc::test {
namespace {

using Matrix = std::vector<double>;

// y[r, o] = sum_i x[r, i] * w[o, i]
Matrix matmul_t(const Matrix& x, int rows, int in, const Matrix& w, int out) {
  Matrix y(static_cast<size_t>(rows) * out, 0.0);
  for (int r = 0; r < rows; ++r)
    for (int o = 0; o < out; ++o) {
      double s = 0.0;
      for (int i = 0; i < in; ++i) s += x[r * in + i] * w[static_cast<size_t>(o) * in + i];
      y[r * out + o] = s;
    }
  return y;
}

Matrix rms_norm(const Matrix& x, int rows, int width, const Matrix& w, double eps) {
  Matrix y(x.size());
  for (int r = 0; r < rows; ++r) {
    double ss = 0.0;
    for (int i = 0; i < width; ++i) ss += x[r * width + i] * x[r * width + i];
    const double inv = 1.0 / std::sqrt(ss / width + eps);
    for (int i = 0; i < width; ++i) y[r * width + i] = x[r * width + i] * inv * w[i];
  }
  return y;
}

// Llama-3 frequency scaling (factor 4, low 1, high 4) with an original context of 32 positions.
std::vector<double> inverse_frequencies(const TinySpec& s) {
  std::vector<double> inv(s.head_dim / 2);
  for (int i = 0; i < s.head_dim / 2; ++i) {
    double f = std::pow(s.rope_theta, -2.0 * i / s.head_dim);
    if (s.llama3_scaling) {
      const double wavelen = 2.0 * M_PI / f, old_len = 32.0, factor = 4.0;
      if (wavelen > old_len / 1.0) {
        f = f / factor;
      } else if (wavelen >= old_len / 4.0) {
        const double smooth = (old_len / wavelen - 1.0) / (4.0 - 1.0);
        f = (1.0 - smooth) * f / factor + smooth * f;
      }
    }
    inv[i] = f;
  }
  return inv;
}

void rope(Matrix& x, int rows, int heads, int d, const std::vector<double>& inv) {
  for (int r = 0; r < rows; ++r)
    for (int h = 0; h < heads; ++h) {
      double* v = x.data() + (static_cast<size_t>(r) * heads + h) * d;
      for (int i = 0; i < d / 2; ++i) {
        const double a = v[i], b = v[i + d / 2], c = std::cos(r * inv[i]), sn = std::sin(r * inv[i]);
        v[i] = a * c - b * sn;
        v[i + d / 2] = b * c + a * sn;
      }
    }
}

}  // namespace

TinyWeights make_tiny_weights(const TinySpec& s) {
  TinyWeights w;
  w.spec = s;
  std::mt19937_64 rng(s.seed);
  auto add = [&](const std::string& name, std::vector<int64_t> shape, double center, double scale,
                 bool bf16) {
    int64_t n = 1;
    for (int64_t v : shape) n *= v;
    std::uniform_real_distribution<double> u(-1.0, 1.0);
    std::vector<double> values(n);
    for (double& v : values) {
      const float f = static_cast<float>(center + scale * u(rng));
      v = bf16 ? static_cast<double>(round_to_bf16(f)) : static_cast<double>(f);
    }
    w.tensors[name] = std::move(values);
    w.shapes[name] = std::move(shape);
    w.dtypes[name] = bf16 ? "BF16" : "F32";
  };
  const int64_t D = s.hidden, Q = s.heads * s.head_dim, KV = s.kv_heads * s.head_dim, F = s.ffn;
  add("model.embed_tokens.weight", {s.vocab, D}, 0.0, 1.0, true);
  for (int l = 0; l < s.layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    add(p + "input_layernorm.weight", {D}, 1.0, 0.2, false);
    add(p + "self_attn.q_proj.weight", {Q, D}, 0.0, 2.0 / std::sqrt(D), true);
    add(p + "self_attn.k_proj.weight", {KV, D}, 0.0, 2.0 / std::sqrt(D), true);
    add(p + "self_attn.v_proj.weight", {KV, D}, 0.0, 1.5 / std::sqrt(D), true);
    if (s.qkv_bias) {
      add(p + "self_attn.q_proj.bias", {Q}, 0.0, 0.3, false);
      add(p + "self_attn.k_proj.bias", {KV}, 0.0, 0.3, false);
      add(p + "self_attn.v_proj.bias", {KV}, 0.0, 0.3, false);
    }
    add(p + "self_attn.o_proj.weight", {D, Q}, 0.0, 1.5 / std::sqrt(Q), true);
    add(p + "post_attention_layernorm.weight", {D}, 1.0, 0.2, false);
    add(p + "mlp.gate_proj.weight", {F, D}, 0.0, 1.5 / std::sqrt(D), true);
    add(p + "mlp.up_proj.weight", {F, D}, 0.0, 1.5 / std::sqrt(D), true);
    add(p + "mlp.down_proj.weight", {D, F}, 0.0, 1.5 / std::sqrt(F), true);
  }
  add("model.norm.weight", {D}, 1.0, 0.2, false);
  if (!s.tied) add("lm_head.weight", {s.vocab, D}, 0.0, 1.5 / std::sqrt(D), true);
  return w;
}

std::string tiny_config_json(const TinySpec& s) {
  nlohmann::json j = {{"architectures", {s.qkv_bias ? "Qwen2ForCausalLM" : "LlamaForCausalLM"}},
                      {"model_type", s.qkv_bias ? "qwen2" : "llama"},
                      {"hidden_size", s.hidden},
                      {"num_hidden_layers", s.layers},
                      {"num_attention_heads", s.heads},
                      {"num_key_value_heads", s.kv_heads},
                      {"head_dim", s.head_dim},
                      {"intermediate_size", s.ffn},
                      {"vocab_size", s.vocab},
                      {"rope_theta", s.rope_theta},
                      {"rms_norm_eps", s.rms_eps},
                      {"tie_word_embeddings", s.tied},
                      {"max_position_embeddings", s.max_context},
                      {"bos_token_id", 1},
                      {"eos_token_id", 2},
                      {"torch_dtype", "bfloat16"}};
  if (s.llama3_scaling)
    j["rope_scaling"] = {{"rope_type", "llama3"},
                         {"factor", 4.0},
                         {"low_freq_factor", 1.0},
                         {"high_freq_factor", 4.0},
                         {"original_max_position_embeddings", 32}};
  return j.dump(2);
}

void write_safetensors_file(const TinyWeights& w, const std::string& path,
                            const std::vector<std::string>& names) {
  std::vector<std::string> order = names;
  if (order.empty())
    for (const auto& [name, values] : w.tensors) order.push_back(name);
  nlohmann::json header = nlohmann::json::object();
  std::string data;
  for (const std::string& name : order) {
    const std::vector<double>& values = w.tensors.at(name);
    const bool bf16 = w.dtypes.at(name) == "BF16";
    const size_t begin = data.size();
    for (double v : values) {
      if (w.dtypes.at(name) == "I32") {
        const int32_t i = static_cast<int32_t>(v);
        data.append(reinterpret_cast<const char*>(&i), 4);
      } else if (bf16) {
        const uint16_t bits = float_to_bf16(static_cast<float>(v));
        data.append(reinterpret_cast<const char*>(&bits), 2);
      } else {
        const float f = static_cast<float>(v);
        data.append(reinterpret_cast<const char*>(&f), 4);
      }
    }
    header[name] = {
        {"dtype", w.dtypes.at(name)}, {"shape", w.shapes.at(name)}, {"data_offsets", {begin, data.size()}}};
  }
  header["__metadata__"] = {{"format", "pt"}};
  std::string text = header.dump();
  while (text.size() % 8) text.push_back(' ');
  const uint64_t size = text.size();
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(&size), 8);
  out << text << data;
  if (!out) throw std::runtime_error("cannot write " + path);
}

void write_hf_dir(const TinyWeights& w, const std::string& directory, int shards) {
  namespace fs = std::filesystem;
  fs::create_directories(directory);
  std::ofstream(fs::path(directory) / "config.json") << tiny_config_json(w.spec);
  std::ofstream(fs::path(directory) / "generation_config.json")
      << R"({"bos_token_id": 1, "eos_token_id": [2, 3]})";
  if (shards <= 1) {
    write_safetensors_file(w, (fs::path(directory) / "model.safetensors").string());
    return;
  }
  std::vector<std::vector<std::string>> parts(shards);
  int i = 0;
  for (const auto& [name, values] : w.tensors) parts[i++ % shards].push_back(name);
  nlohmann::json map = nlohmann::json::object();
  for (int s = 0; s < shards; ++s) {
    const std::string file =
        "model-0000" + std::to_string(s + 1) + "-of-0000" + std::to_string(shards) + ".safetensors";
    write_safetensors_file(w, (fs::path(directory) / file).string(), parts[s]);
    for (const std::string& name : parts[s]) map[name] = file;
  }
  std::ofstream(fs::path(directory) / "model.safetensors.index.json")
      << nlohmann::json({{"metadata", {{"total_size", 0}}}, {"weight_map", map}}).dump(2);
}

namespace {

// The fp64 forward pass; fills `maybe_qkv` with each layer's attention inputs when given.
std::vector<double> reference_forward(const TinyWeights& w, const std::vector<int32_t>& tokens,
                                      std::vector<ReferenceQkv>* maybe_qkv) {
  const TinySpec& s = w.spec;
  const int L = static_cast<int>(tokens.size()), D = s.hidden, d = s.head_dim;
  const int Q = s.heads * d, KV = s.kv_heads * d, F = s.ffn, group = s.heads / s.kv_heads;
  const auto& T = w.tensors;
  const std::vector<double> inv = inverse_frequencies(s);
  Matrix x(static_cast<size_t>(L) * D);
  for (int i = 0; i < L; ++i)
    for (int c = 0; c < D; ++c) x[i * D + c] = T.at("model.embed_tokens.weight")[tokens[i] * D + c];
  for (int l = 0; l < s.layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    const Matrix h = rms_norm(x, L, D, T.at(p + "input_layernorm.weight"), s.rms_eps);
    Matrix q = matmul_t(h, L, D, T.at(p + "self_attn.q_proj.weight"), Q);
    Matrix k = matmul_t(h, L, D, T.at(p + "self_attn.k_proj.weight"), KV);
    Matrix v = matmul_t(h, L, D, T.at(p + "self_attn.v_proj.weight"), KV);
    if (s.qkv_bias)
      for (int i = 0; i < L; ++i) {
        for (int c = 0; c < Q; ++c) q[i * Q + c] += T.at(p + "self_attn.q_proj.bias")[c];
        for (int c = 0; c < KV; ++c) k[i * KV + c] += T.at(p + "self_attn.k_proj.bias")[c];
        for (int c = 0; c < KV; ++c) v[i * KV + c] += T.at(p + "self_attn.v_proj.bias")[c];
      }
    rope(q, L, s.heads, d, inv);
    rope(k, L, s.kv_heads, d, inv);
    for (double& e : k) e = round_to_bf16(static_cast<float>(e));
    for (double& e : v) e = round_to_bf16(static_cast<float>(e));
    if (maybe_qkv) maybe_qkv->push_back({q, k, v});
    Matrix o(static_cast<size_t>(L) * Q, 0.0);
    for (int hq = 0; hq < s.heads; ++hq) {
      const int hk = hq / group;
      for (int i = 0; i < L; ++i) {
        std::vector<double> score(i + 1);
        double mx = -1e300;
        for (int j = 0; j <= i; ++j) {
          double dot = 0.0;
          for (int c = 0; c < d; ++c) dot += q[(i * s.heads + hq) * d + c] * k[(j * s.kv_heads + hk) * d + c];
          score[j] = dot / std::sqrt(static_cast<double>(d));
          mx = std::max(mx, score[j]);
        }
        double sum = 0.0;
        for (double& e : score) sum += (e = std::exp(e - mx));
        for (int j = 0; j <= i; ++j)
          for (int c = 0; c < d; ++c)
            o[(i * s.heads + hq) * d + c] += score[j] / sum * v[(j * s.kv_heads + hk) * d + c];
      }
    }
    const Matrix attn = matmul_t(o, L, Q, T.at(p + "self_attn.o_proj.weight"), D);
    for (size_t e = 0; e < x.size(); ++e) x[e] += attn[e];
    const Matrix h2 = rms_norm(x, L, D, T.at(p + "post_attention_layernorm.weight"), s.rms_eps);
    Matrix g = matmul_t(h2, L, D, T.at(p + "mlp.gate_proj.weight"), F);
    const Matrix u = matmul_t(h2, L, D, T.at(p + "mlp.up_proj.weight"), F);
    for (size_t e = 0; e < g.size(); ++e) g[e] = g[e] / (1.0 + std::exp(-g[e])) * u[e];
    const Matrix down = matmul_t(g, L, F, T.at(p + "mlp.down_proj.weight"), D);
    for (size_t e = 0; e < x.size(); ++e) x[e] += down[e];
  }
  const Matrix last(x.end() - D, x.end());
  const Matrix normed = rms_norm(last, 1, D, T.at("model.norm.weight"), s.rms_eps);
  return matmul_t(normed, 1, D, T.at(s.tied ? "model.embed_tokens.weight" : "lm_head.weight"), s.vocab);
}

}  // namespace

double cpu_logit_tolerance() {
  const bool bf16_products = best_cpu_attention_isa() == CpuAttentionIsa::AVX512_BF16;
  return 2e-3 + (bf16_products ? 1.0 / 256 : 0.0);
}

std::vector<double> reference_logits(const TinyWeights& w, const std::vector<int32_t>& tokens) {
  return reference_forward(w, tokens, nullptr);
}

std::vector<ReferenceQkv> reference_qkv(const TinyWeights& w, const std::vector<int32_t>& tokens) {
  std::vector<ReferenceQkv> layers;
  reference_forward(w, tokens, &layers);
  return layers;
}

std::string make_temp_dir(const std::string& tag) {
  namespace fs = std::filesystem;
  static int counter = 0;
  const fs::path dir = fs::temp_directory_path() / ("sacc_runtime_" + tag + "_" + std::to_string(::getpid()) +
                                                    "_" + std::to_string(counter++));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

Result<LlamaWeights> load_hf_dir(const std::string& directory) {
  Result<HfCheckpoint> checkpoint = HfCheckpoint::open(directory, false);
  if (!checkpoint) return checkpoint.status();
  return checkpoint->weights();
}

}  // namespace sacc::test
