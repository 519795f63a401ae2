// Tokenizer::from_gguf: the tokenizer.ggml.* metadata of a GGUF file (byte-level BPE, model "gpt2").
#include "core/log.h"
#include "model/gguf.h"
#include "model/tokenizer.h"
#include "model/tokenizer_model.h"

namespace sacc {
namespace {

// GGUF token types (the file format's codes).
constexpr int64_t kTokenControl = 3;
constexpr int64_t kTokenUserDefined = 4;

// Split regexes by tokenizer.ggml.pre; ignore_merges is what the model family's tokenizer.json declares.
Status configure_pre_tokenizer(const std::string& pre, TokenizerModel& model, const std::string& source) {
  if (pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3" || pre == "smaug-bpe") {
    model.ignore_merges = true;
    model.pre_tokenizer_name = "llama3";
    return model.pre_tokenizer.add_stage(kLlama3SplitRegex);
  }
  if (pre == "qwen2") {
    model.pre_tokenizer_name = "qwen2";
    return model.pre_tokenizer.add_stage(kQwen2SplitRegex);
  }
  if (pre == "smollm") {
    model.pre_tokenizer_name = "smollm";
    SACC_RETURN_IF_ERROR(model.pre_tokenizer.add_stage(kIndividualDigitsRegex));
    return model.pre_tokenizer.add_stage(kGpt2SplitRegex);
  }
  if (pre != "gpt2" && pre != "gpt-2" && pre != "default" && !pre.empty()) {
    SACC_LOG_WARN("{}: pre-tokenizer '{}' is not known; using GPT-2's split (tokens may differ)", source,
                  pre);
  }
  model.pre_tokenizer_name = "gpt2";
  return model.pre_tokenizer.add_stage(kGpt2SplitRegex);
}

Result<int32_t> token_id_key(const GgufFile& file, const std::string& key, int32_t vocab_size) {
  if (!file.has(key)) return -1;
  SACC_ASSIGN_OR_RETURN(int64_t id, file.get_int(key));
  if (id < 0 || id >= vocab_size) {
    return make_error(StatusCode::CORRUPT_DATA, "{}: {} = {} is outside the vocabulary of {} tokens",
                      file.path(), key, id, vocab_size);
  }
  return static_cast<int32_t>(id);
}

}  // namespace

Result<Tokenizer> Tokenizer::from_gguf(const GgufFile& file) {
  const std::string& source = file.path();
  auto context = [&](const Status& status) { return status.with_context(source); };
  auto kind = file.get_string("tokenizer.ggml.model");
  if (!kind.is_ok()) return context(kind.status());
  if (*kind != "gpt2") {
    return make_error(StatusCode::UNSUPPORTED,
                      "{}: tokenizer model '{}' is not supported (byte-level BPE, 'gpt2', only)", source,
                      *kind);
  }
  auto tokens = file.get_string_array("tokenizer.ggml.tokens");
  if (!tokens.is_ok()) return context(tokens.status());
  if (tokens->empty() || tokens->size() >= (size_t{1} << 24)) {
    return make_error(StatusCode::CORRUPT_DATA, "{}: tokenizer.ggml.tokens has {} entries", source,
                      tokens->size());
  }
  std::vector<int64_t> types(tokens->size(), 1);
  if (file.has("tokenizer.ggml.token_type")) {
    auto read = file.get_int_array("tokenizer.ggml.token_type");
    if (!read.is_ok()) return context(read.status());
    if (read->size() != tokens->size()) {
      return make_error(StatusCode::CORRUPT_DATA, "{}: {} token types for {} tokens", source, read->size(),
                        tokens->size());
    }
    types = std::move(*read);
  }

  auto model = std::make_shared<TokenizerModel>();
  model->token_bytes.resize(tokens->size());
  std::string raw;
  for (size_t id = 0; id < tokens->size(); ++id) {
    const std::string& spelled = (*tokens)[id];
    // Control and user-defined tokens are stored as their text; the others in the byte-level alphabet.
    const bool literal = types[id] == kTokenControl || types[id] == kTokenUserDefined;
    model->token_bytes[id] = !literal && byte_level_decode(spelled, &raw) ? raw : spelled;
  }
  model->index_vocab();
  for (size_t id = 0; id < tokens->size(); ++id) {
    if (types[id] != kTokenControl && types[id] != kTokenUserDefined) continue;
    model->special[id] = types[id] == kTokenControl ? 1 : 0;
    model->add_split_token(model->token_bytes[id], static_cast<int32_t>(id));
  }

  if (file.has("tokenizer.ggml.merges")) {
    auto merges = file.get_string_array("tokenizer.ggml.merges");
    if (!merges.is_ok()) return context(merges.status());
    model->merges.reserve(merges->size());
    for (size_t i = 0; i < merges->size(); ++i) {
      const std::string& text = (*merges)[i];
      const size_t space = text.find(' ', 1);
      if (space == std::string::npos) {
        return make_error(StatusCode::CORRUPT_DATA, "{}: tokenizer.ggml.merges[{}] '{}' is not a pair",
                          source, i, text);
      }
      SACC_RETURN_IF_ERROR(model->add_merge(std::string_view(text).substr(0, space),
                                            std::string_view(text).substr(space + 1), static_cast<int32_t>(i),
                                            source + ": tokenizer.ggml.merges"));
    }
  }
  const std::string pre = file.get_string_or("tokenizer.ggml.pre", "");
  SACC_RETURN_IF_ERROR(configure_pre_tokenizer(pre, *model, source));

  const auto vocab = model->vocab_size();
  SACC_ASSIGN_OR_RETURN(model->bos, token_id_key(file, "tokenizer.ggml.bos_token_id", vocab));
  SACC_ASSIGN_OR_RETURN(model->eos, token_id_key(file, "tokenizer.ggml.eos_token_id", vocab));
  SACC_ASSIGN_OR_RETURN(model->eot, token_id_key(file, "tokenizer.ggml.eot_token_id", vocab));
  model->adds_bos = file.get_bool_or("tokenizer.ggml.add_bos_token", model->pre_tokenizer_name == "llama3");
  model->finalize(file.get_string_or("tokenizer.chat_template", ""));
  return Tokenizer(std::move(model));
}

}  // namespace sacc
