#include "model/tokenizer_pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <utility>

namespace sacc {
namespace {

pcre2_code* as_code(void* code) {
  return static_cast<pcre2_code*>(code);
}

// Length of the UTF-8 sequence starting with `lead` (1 for invalid lead bytes, so scanning always advances).
uint32_t utf8_length(uint8_t lead) {
  if (lead < 0xc0) return 1;
  if (lead < 0xe0) return 2;
  if (lead < 0xf0) return 3;
  return lead < 0xf8 ? 4 : 1;
}

// Match data sized for the regex, reused across split() calls of one thread.
struct MatchData {
  pcre2_match_data* data = nullptr;
  MatchData() : data(pcre2_match_data_create(1, nullptr)) {}
  ~MatchData() { pcre2_match_data_free(data); }
};

}  // namespace

Result<SplitRegex> SplitRegex::compile(std::string_view pattern) {
  int error = 0;
  PCRE2_SIZE error_offset = 0;
  // UCP: \s, \d and \w follow Unicode properties like the Rust regex crate HF uses; MATCH_INVALID_UTF: bytes
  // that are not UTF-8 are never matched (they end up in gaps) instead of failing the match.
  const uint32_t options = PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), options,
                                   &error, &error_offset, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof(message));
    return make_error(StatusCode::INVALID_ARGUMENT,
                      "pre-tokenizer regex '{}' does not compile at offset {}: {}", pattern, error_offset,
                      reinterpret_cast<const char*>(message));
  }
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter when JIT is unavailable
  SplitRegex regex;
  regex.pattern_ = std::string(pattern);
  regex.code_ = code;
  return regex;
}

SplitRegex::SplitRegex(SplitRegex&& other) noexcept
    : pattern_(std::move(other.pattern_)), code_(std::exchange(other.code_, nullptr)) {}

SplitRegex& SplitRegex::operator=(SplitRegex&& other) noexcept {
  if (this != &other) {
    pcre2_code_free(as_code(code_));
    pattern_ = std::move(other.pattern_);
    code_ = std::exchange(other.code_, nullptr);
  }
  return *this;
}

SplitRegex::~SplitRegex() {
  pcre2_code_free(as_code(code_));
}

void SplitRegex::split(std::string_view text, TextSpan span, std::vector<TextSpan>& out) const {
  thread_local MatchData match;
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data() + span.begin);
  const PCRE2_SIZE length = span.end - span.begin;
  PCRE2_SIZE gap_start = 0, position = 0;
  while (position < length) {
    const int rc = pcre2_match(as_code(code_), subject, length, position, 0, match.data, nullptr);
    if (rc < 0) break;  // no further match (or a matcher error): the rest is one gap
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match.data);
    const PCRE2_SIZE start = ovector[0], end = ovector[1];
    if (end == start) {
      // An empty match produces no piece; step over one character so the scan advances.
      position = std::min<PCRE2_SIZE>(length, start + utf8_length(subject[start]));
      continue;
    }
    if (start > gap_start) out.push_back({span.begin + gap_start, span.begin + start});
    out.push_back({span.begin + start, span.begin + end});
    position = end;
    gap_start = end;
  }
  if (gap_start < length) out.push_back({span.begin + gap_start, span.end});
}

Status PreTokenizer::add_stage(std::string_view pattern) {
  SACC_ASSIGN_OR_RETURN(SplitRegex regex, SplitRegex::compile(pattern));
  stages_.push_back(std::move(regex));
  return Status::ok();
}

void PreTokenizer::split(std::string_view text, TextSpan span, std::vector<TextSpan>& out) const {
  if (stages_.empty()) {
    out.push_back(span);
    return;
  }
  if (stages_.size() == 1) {
    stages_[0].split(text, span, out);
    return;
  }
  std::vector<TextSpan> current{span}, next;
  for (const SplitRegex& stage : stages_) {
    next.clear();
    for (const TextSpan& piece : current) stage.split(text, piece, next);
    std::swap(current, next);
  }
  out.insert(out.end(), current.begin(), current.end());
}

}  // namespace sacc
