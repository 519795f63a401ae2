// Pre-tokenization of byte-level BPE models: a chain of "split" stages, each a regex whose matches and the
// gaps between them both become pieces (HF `Split` with behaviour "Isolated"). Llama-3, Qwen2, GPT-2 and
// SmolLM2 are all expressed this way (SmolLM2's individual digits are a `\p{N}` stage before the GPT-2
// regex).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace sacc {

// Split regexes of the model families, in HF tokenizer.json spelling.
inline constexpr std::string_view kLlama3SplitRegex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
inline constexpr std::string_view kQwen2SplitRegex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
inline constexpr std::string_view kGpt2SplitRegex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
inline constexpr std::string_view kIndividualDigitsRegex = R"(\p{N})";
inline constexpr std::string_view kDigitRunsRegex = R"(\p{N}+)";

// A piece of the input: [begin, end) byte offsets.
struct TextSpan {
  size_t begin = 0;
  size_t end = 0;
};

class SplitRegex {
 public:
  // Compiles `pattern` (UTF-8, Unicode properties, JIT where available); INVALID_ARGUMENT with PCRE2's
  // message.
  static Result<SplitRegex> compile(std::string_view pattern);
  SplitRegex(SplitRegex&&) noexcept;
  SplitRegex& operator=(SplitRegex&&) noexcept;
  ~SplitRegex();

  const std::string& pattern() const { return pattern_; }
  // Appends to `out` the pieces of text[span]: every match and every non-empty gap between matches, in order.
  void split(std::string_view text, TextSpan span, std::vector<TextSpan>& out) const;

 private:
  SplitRegex() = default;
  std::string pattern_;
  void* code_ = nullptr;  // pcre2_code_8*
};

class PreTokenizer {
 public:
  PreTokenizer() = default;
  Status add_stage(std::string_view pattern);
  bool empty() const { return stages_.empty(); }
  // Whether every piece boundary is one a split starting there would also find: true for a single stage
  // (each match starts where the previous one ended, with no look-behind in the models' patterns); with
  // several stages a later stage's boundary may lie inside an earlier stage's piece.
  bool resumable() const { return stages_.size() <= 1; }
  // Pieces of text[span] after all stages (the whole span when there are none).
  void split(std::string_view text, TextSpan span, std::vector<TextSpan>& out) const;

 private:
  std::vector<SplitRegex> stages_;
};

}  // namespace sacc
