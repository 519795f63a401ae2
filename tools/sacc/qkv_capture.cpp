#include "tools/sacc/qkv_capture.h"

#include <algorithm>
#include <filesystem>

#include "core/safetensors.h"

namespace sacc::cli {

Result<std::map<int, ref::HostQkv>> capture_qkv(const EvalModel& model, const std::vector<int32_t>& prompt,
                                                const std::vector<int>& layers) {
  const ModelConfig& config = model.model.weights.config;
  for (int layer : layers) {
    if (layer < 0 || layer >= config.num_layers) {
      return make_error(StatusCode::INVALID_ARGUMENT, "--layers: layer {} out of range (the model has {})",
                        layer, config.num_layers);
    }
  }
  const AttentionShape shape{static_cast<int64_t>(prompt.size()), config.num_heads, config.num_kv_heads,
                             config.head_dim};
  std::map<int, ref::HostQkv> captured;
  BackendOptions options;
  options.show_progress = false;
  options.maybe_qkv_observer = [&](int layer, const float* q, const float* k, const float* v) {
    if (!layers.empty() && std::find(layers.begin(), layers.end(), layer) == layers.end()) return;
    ref::HostQkv& qkv = captured[layer];
    qkv.shape = shape;
    qkv.q.assign(q, q + shape.seq_len * shape.num_q_heads * shape.head_dim);
    qkv.k.assign(k, k + shape.seq_len * shape.num_kv_heads * shape.head_dim);
    qkv.v.assign(v, v + shape.seq_len * shape.num_kv_heads * shape.head_dim);
  };
  const std::string where = "capturing Q/K/V on " + model.device.to_string();
  Result<std::unique_ptr<Backend>> backend = make_setting_backend(model, "dense", options);
  if (!backend) return backend.status().with_context(where);
  std::vector<float> logits;
  Status run = (*backend)->reserve(shape.seq_len);
  if (run) run = (*backend)->prefill(prompt, logits);
  if (!run) return run.with_context(where);
  return captured;
}

Result<std::vector<int32_t>> prose_prompt(const EvalModel& model, const std::string& text_path,
                                          int64_t length) {
  if (length < 2) return make_error(StatusCode::INVALID_ARGUMENT, "--length {} must be >= 2", length);
  if (length > model.model.weights.config.max_context) {
    return make_error(StatusCode::INVALID_ARGUMENT, "--length {} exceeds the model's context of {}", length,
                      model.model.weights.config.max_context);
  }
  return prose_ids(model.model, text_path, length);
}

Status dump_qkv(const std::map<int, ref::HostQkv>& captured, const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return make_error(StatusCode::IO_ERROR, "--dump-qkv {}: {}", dir, ec.message());
  for (const auto& [layer, qkv] : captured) {
    const AttentionShape& s = qkv.shape;
    auto to_bf16 = [](const std::vector<float>& values, Shape shape) -> Result<Tensor> {
      SACC_ASSIGN_OR_RETURN(Tensor t, Tensor::empty(DType::BF16, shape));
      for (size_t i = 0; i < values.size(); ++i) t.set(static_cast<int64_t>(i), values[i]);
      return t;
    };
    SACC_ASSIGN_OR_RETURN(Tensor q, to_bf16(qkv.q, {s.seq_len, s.num_q_heads, s.head_dim}));
    SACC_ASSIGN_OR_RETURN(Tensor k, to_bf16(qkv.k, {s.seq_len, s.num_kv_heads, s.head_dim}));
    SACC_ASSIGN_OR_RETURN(Tensor v, to_bf16(qkv.v, {s.seq_len, s.num_kv_heads, s.head_dim}));
    SACC_RETURN_IF_ERROR(write_safetensors(fmt::format("{}/layer_{}.safetensors", dir, layer),
                                           {{"q", q.view()}, {"k", k.view()}, {"v", v.view()}},
                                           {{"layer", std::to_string(layer)}}));
  }
  return Status::ok();
}

}  // namespace sacc::cli
