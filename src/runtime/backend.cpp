#include "runtime/backend.h"

#include <algorithm>

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

Status Backend::reserve(int64_t max_tokens) {
  if (slot_count() != 1) SACC_RETURN_IF_ERROR(set_slot_count(1));
  return reserve_slot(0, max_tokens);
}

Status check_batch_slots(std::span<const int32_t> tokens, std::span<const int> slots, int slot_count) {
  if (slots.empty() || tokens.size() != slots.size())
    return make_error(StatusCode::INVALID_ARGUMENT, "decode_batch: {} tokens for {} slots", tokens.size(),
                      slots.size());
  std::vector<bool> seen(static_cast<size_t>(std::max(slot_count, 0)), false);
  for (const int slot : slots) {
    if (slot < 0 || slot >= slot_count)
      return make_error(StatusCode::INVALID_ARGUMENT, "decode_batch: slot {} outside [0, {})", slot,
                        slot_count);
    if (seen[static_cast<size_t>(slot)])
      return make_error(StatusCode::INVALID_ARGUMENT, "decode_batch: slot {} appears twice", slot);
    seen[static_cast<size_t>(slot)] = true;
  }
  return Status::ok();
}

Status Backend::decode_batch(std::span<const int32_t> tokens, std::span<const int> slots,
                             std::vector<float>& logits) {
  SACC_RETURN_IF_ERROR(check_batch_slots(tokens, slots, slot_count()));
  std::vector<float> row;
  for (size_t i = 0; i < slots.size(); ++i) {
    SACC_RETURN_IF_ERROR(decode(slots[i], tokens[i], row));
    if (i == 0) logits.resize(slots.size() * row.size());
    std::copy(row.begin(), row.end(), logits.begin() + static_cast<std::ptrdiff_t>(i * row.size()));
  }
  return Status::ok();
}

Result<std::unique_ptr<KvSnapshot>> Backend::export_kv(int, int64_t) {
  return make_error(StatusCode::UNSUPPORTED, "this backend cannot copy its KV cache (prefix reuse)");
}

Status Backend::import_kv(int, const KvSnapshot&, int64_t) {
  return make_error(StatusCode::UNSUPPORTED, "this backend cannot restore a KV snapshot (prefix reuse)");
}

Status Backend::extend(int, std::span<const int32_t>, std::vector<float>&) {
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

Status check_token_ids(std::span<const int32_t> tokens, int64_t first_position, int64_t vocab) {
  for (size_t i = 0; i < tokens.size(); ++i)
    if (tokens[i] < 0 || tokens[i] >= vocab)
      return make_error(StatusCode::INVALID_ARGUMENT,
                        "token id {} at position {} is outside the vocabulary [0, {})", tokens[i],
                        first_position + static_cast<int64_t>(i), vocab);
  return Status::ok();
}

}  // namespace sacc
