#include "runtime/backend.h"

namespace sacc {

Result<AttentionMode> parse_attention_mode(const std::string& text) {
  if (text == "auto") return AttentionMode::AUTO;
  if (text == "dense") return AttentionMode::DENSE;
  if (text == "cudnn") return AttentionMode::CUDNN;
  if (text == "eager") return AttentionMode::EAGER;
  if (text == "sparse") return AttentionMode::SPARSE;
  return make_error(StatusCode::INVALID_ARGUMENT,
                    "--attention '{}': expected auto, dense, cudnn, eager or sparse", text);
}

const char* attention_mode_name(AttentionMode mode) {
  switch (mode) {
    case AttentionMode::AUTO:
      return "auto";
    case AttentionMode::DENSE:
      return "dense";
    case AttentionMode::CUDNN:
      return "cudnn";
    case AttentionMode::EAGER:
      return "eager";
    case AttentionMode::SPARSE:
      return "sparse";
  }
  return "?";
}

bool attention_needs_separate_output(AttentionMode mode) {
  return mode == AttentionMode::CUDNN || mode == AttentionMode::EAGER;
}

void copy_attention_settings(const BackendOptions& from, BackendOptions& to) {
  to.attention = from.attention;
  to.patterns = from.patterns;
  to.sparse_min_length = from.sparse_min_length;
  to.auto_basis = from.auto_basis;
}

Result<std::unique_ptr<KvSnapshot>> Backend::export_kv(int64_t) {
  return make_error(StatusCode::UNSUPPORTED, "this backend cannot copy its KV cache (prefix reuse)");
}

Status Backend::import_kv(const KvSnapshot&, int64_t) {
  return make_error(StatusCode::UNSUPPORTED, "this backend cannot restore a KV snapshot (prefix reuse)");
}

Status Backend::extend(std::span<const int32_t>, std::vector<float>&) {
  return make_error(StatusCode::UNSUPPORTED, "this backend cannot continue a prompt after a cached prefix");
}

#if !defined(SACC_WITH_CUDA)
Result<uint64_t> cuda_attention_workspace_bytes(const ModelConfig&, const BackendOptions&, int64_t) {
  return uint64_t{0};
}

Result<std::unique_ptr<Backend>> make_cuda_backend(const LlamaWeights&, const BackendOptions&) {
  return make_error(StatusCode::UNSUPPORTED, "this sacc was built without CUDA; use --device cpu");
}
#endif

}  // namespace sacc
