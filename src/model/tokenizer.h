// Byte-level BPE tokenizer (Llama-3, SmolLM2, Qwen2, GPT-2 families) from a Hugging Face tokenizer.json or
// from GGUF metadata. encode() follows HF `tokenizer(text, add_special_tokens=add_bos)`: added/special tokens
// are split out of the text first (so "<|eot_id|>" in a prompt is one token), the rest is pre-tokenized by
// the model's split regex, then merged by rank. Encode a rendered chat with encode_chat() (or add_bos=false):
// the template already starts with the BOS text, so no double BOS.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "model/chat_template.h"

namespace sacc {

class GgufFile;
struct TokenizerModel;

// One text's encoding, kept so that a later encode() of a text starting with the same bytes (a server's
// repeated document with a new question) reuses every pre-token that ends before the first differing byte
// instead of splitting and merging it again. The result is the same token for token.
class EncodeMemo {
 public:
  // Tokens the last encode() with this memo took from the previous text.
  size_t reused_tokens() const { return reused_tokens_; }

 private:
  friend class Tokenizer;
  std::string text_;
  bool add_bos_ = false;
  bool valid_ = false;
  std::vector<int32_t> ids_;
  // (byte offset in text_, tokens before it), ascending: the ends of pre-tokens and added tokens, where
  // encoding can start over.
  std::vector<std::pair<uint32_t, uint32_t>> resume_;
  size_t reused_tokens_ = 0;
};

class Tokenizer {
 public:
  // `path` is a tokenizer.json file or a directory holding one (tokenizer_config.json beside it is read for
  // the BOS/EOS tokens, add_bos_token and the chat template when present).
  static Result<Tokenizer> from_hf_json(const std::string& path);
  // The same from the files' texts (`config_text` empty when there is no tokenizer_config.json); `source`
  // names the tokenizer.json in errors.
  static Result<Tokenizer> from_hf_json_text(std::string_view json_text, std::string_view config_text,
                                             const std::string& source);
  // tokenizer.ggml.* keys (model "gpt2"), the pre-tokenizer from tokenizer.ggml.pre.
  static Result<Tokenizer> from_gguf(const GgufFile& file);

  // Token ids of `text`; with add_bos, the model's BOS first (when it has one and adds one). Exactly HF's
  // behaviour, so a text that itself starts with the BOS text gets two BOS tokens.
  std::vector<int32_t> encode(std::string_view text, bool add_bos) const;
  // The same, reusing `memo`'s previous text where `text` starts like it; `memo` then holds `text`.
  std::vector<int32_t> encode(std::string_view text, bool add_bos, EncodeMemo& memo) const;
  // Whether a memo can save work: pre-tokenizers of one split pattern (not SmolLM2's digits-then-words).
  bool reuses_prefixes() const;
  // A user's prompt: BOS when the model adds one, unless the text already starts with it (no double BOS).
  std::vector<int32_t> encode_prompt(std::string_view text) const;
  // Text of `ids`; invalid UTF-8 (a cut multi-byte character) becomes U+FFFD. Special tokens skipped by
  // default.
  std::string decode(std::span<const int32_t> ids, bool skip_special = true) const;
  // Raw bytes of one token (may be an incomplete UTF-8 sequence); "" for an id out of range.
  std::string token_bytes(int32_t id) const;
  // Id of a token given by its text (e.g. "<|eot_id|>"); -1 when absent.
  int32_t token_id(std::string_view token_text) const;

  int32_t vocab_size() const;
  int32_t bos_id() const;             // -1 when the model has none
  int32_t eos_id() const;             // -1 when unknown
  int32_t eot_id() const;             // end of turn: <|eot_id|> / <|im_end|>; -1 when absent
  bool adds_bos() const;              // whether the model's own pipeline prepends BOS
  bool is_special(int32_t id) const;  // control/added special tokens (skipped when decoding)
  // Ids that end generation: eos, eot and other end-of-turn specials, deduplicated.
  std::vector<int32_t> stop_ids() const;
  std::string_view pre_tokenizer_name() const;  // "llama3", "qwen2", "smollm", "gpt2", or "custom"

  const ChatTemplate& chat_template() const;
  Result<std::string> apply_chat_template(std::span<const ChatMessage> messages,
                                          bool add_generation_prompt) const;
  // Renders and encodes without adding another BOS.
  Result<std::vector<int32_t>> encode_chat(std::span<const ChatMessage> messages,
                                           bool add_generation_prompt) const;
  Result<std::vector<int32_t>> encode_chat(std::span<const ChatMessage> messages, bool add_generation_prompt,
                                           EncodeMemo& memo) const;

 private:
  explicit Tokenizer(std::shared_ptr<const TokenizerModel> model) : model_(std::move(model)) {}
  // encode() from byte `start` (0, or a resume point of a memo) after `out`'s tokens; records resume points
  // into `maybe_resume` when given.
  void encode_from(std::string_view text, size_t start, std::vector<int32_t>& out,
                   std::vector<std::pair<uint32_t, uint32_t>>* maybe_resume) const;
  std::shared_ptr<const TokenizerModel> model_;
};

// Turns a stream of generated ids into printable text: bytes of an incomplete UTF-8 character are held back
// until the character completes, so a multi-token emoji is never printed half.
class StreamingDecoder {
 public:
  explicit StreamingDecoder(const Tokenizer& tokenizer, bool skip_special = true);
  // Text that became complete with this token (possibly "").
  std::string push(int32_t id);
  // Whatever is held back, with invalid bytes as U+FFFD; resets the decoder.
  std::string finish();

 private:
  const Tokenizer* tokenizer_;
  bool skip_special_;
  std::string pending_;  // bytes of an incomplete UTF-8 character
};

}  // namespace sacc
