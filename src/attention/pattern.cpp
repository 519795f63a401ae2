#include "attention/pattern.h"

#include "attention/sparse_index.h"

#include <cerrno>
#include <cstdlib>
#include <vector>

namespace sacc {
namespace {

constexpr const char* kPatternHelp =
    "patterns: dense | triangular:SINK,WINDOW | interval-slash:VERTICAL,SLASH | block-cluster:BLOCKS, "
    "optionally followed by @GAMMA (0 < GAMMA <= 1) for an adaptive budget; "
    "interval-slash:...|block-cluster:... chooses between the two per head and input, "
    "interval-slash:...+block-cluster:... joins them; a trailing +tail:ROWS makes the query blocks of the "
    "prompt's last ROWS rows dense";

Result<int64_t> parse_count(const std::string& text, const std::string& whole) {
  errno = 0;
  char* end = nullptr;
  long long value = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno == ERANGE || value < 0) {
    return make_error(StatusCode::INVALID_ARGUMENT, "pattern '{}': '{}' is not a non-negative integer ({})",
                      whole, text, kPatternHelp);
  }
  return static_cast<int64_t>(value);
}

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t at = text.find(separator, start);
    parts.push_back(text.substr(start, at == std::string::npos ? std::string::npos : at - start));
    if (at == std::string::npos) break;
    start = at + 1;
  }
  return parts;
}

}  // namespace

const char* pattern_kind_name(PatternKind kind) {
  switch (kind) {
    case PatternKind::DENSE:
      return "dense";
    case PatternKind::TRIANGULAR:
      return "triangular";
    case PatternKind::INTERVAL_SLASH:
      return "interval-slash";
    case PatternKind::BLOCK_CLUSTER:
      return "block-cluster";
  }
  return "?";
}

PatternSpec PatternSpec::alternative() const {
  PatternSpec out;
  out.kind = PatternKind::BLOCK_CLUSTER;
  out.blocks = alternative_blocks;
  out.gamma = alternative_gamma;
  return out;
}

PatternSpec PatternSpec::primary() const {
  PatternSpec out = *this;
  out.alternative_blocks = 0;
  out.alternative_gamma = 0.0;
  out.alternative_union = false;
  return out;
}

namespace {

Result<PatternSpec> parse_single(const std::string& text) {
  PatternSpec spec;
  std::string body = text;
  if (size_t at = text.find('@'); at != std::string::npos) {
    body = text.substr(0, at);
    const std::string gamma_text = text.substr(at + 1);
    char* end = nullptr;
    spec.gamma = std::strtod(gamma_text.c_str(), &end);
    if (gamma_text.empty() || *end != '\0' || !(spec.gamma > 0.0 && spec.gamma <= 1.0)) {
      return make_error(StatusCode::INVALID_ARGUMENT, "pattern '{}': adaptive mass '{}' must be in (0, 1]",
                        text, gamma_text);
    }
  }
  const size_t colon = body.find(':');
  const std::string name = body.substr(0, colon);
  const std::vector<std::string> args =
      colon == std::string::npos ? std::vector<std::string>{} : split(body.substr(colon + 1), ',');
  auto expect_args = [&](size_t count) -> Status {
    if (args.size() != count) {
      return make_error(StatusCode::INVALID_ARGUMENT, "pattern '{}': '{}' takes {} number(s), got {} ({})",
                        text, name, count, args.size(), kPatternHelp);
    }
    return Status::ok();
  };
  if (name == "dense") {
    SACC_RETURN_IF_ERROR(expect_args(0));
    if (spec.is_adaptive()) {
      return make_error(StatusCode::INVALID_ARGUMENT, "pattern '{}': dense has no budget to adapt", text);
    }
    spec.kind = PatternKind::DENSE;
  } else if (name == "triangular" || name == "a-shape") {
    SACC_RETURN_IF_ERROR(expect_args(2));
    spec.kind = PatternKind::TRIANGULAR;
    SACC_ASSIGN_OR_RETURN(spec.sink, parse_count(args[0], text));
    SACC_ASSIGN_OR_RETURN(spec.window, parse_count(args[1], text));
    if (spec.window < 1)
      return make_error(StatusCode::INVALID_ARGUMENT, "pattern '{}': window must be >= 1", text);
    if (spec.is_adaptive()) {
      return make_error(StatusCode::INVALID_ARGUMENT,
                        "pattern '{}': triangular is static, it takes no @GAMMA", text);
    }
  } else if (name == "interval-slash" || name == "vertical-slash") {
    SACC_RETURN_IF_ERROR(expect_args(2));
    spec.kind = PatternKind::INTERVAL_SLASH;
    SACC_ASSIGN_OR_RETURN(spec.vertical, parse_count(args[0], text));
    SACC_ASSIGN_OR_RETURN(spec.slash, parse_count(args[1], text));
    if (spec.slash < 1) {
      return make_error(StatusCode::INVALID_ARGUMENT,
                        "pattern '{}': at least one slash (the diagonal) is needed", text);
    }
  } else if (name == "block-cluster" || name == "block-sparse") {
    SACC_RETURN_IF_ERROR(expect_args(1));
    spec.kind = PatternKind::BLOCK_CLUSTER;
    SACC_ASSIGN_OR_RETURN(spec.blocks, parse_count(args[0], text));
    if (spec.blocks < 1)
      return make_error(StatusCode::INVALID_ARGUMENT, "pattern '{}': blocks must be >= 1", text);
  } else {
    return make_error(StatusCode::INVALID_ARGUMENT, "unknown pattern '{}' ({})", text, kPatternHelp);
  }
  return spec;
}

}  // namespace

namespace {

constexpr const char* kTailPrefix = "+tail:";

Result<PatternSpec> parse_without_tail(const std::string& text) {
  const size_t split_at = text.find_first_of("|+");
  if (split_at == std::string::npos) return parse_single(text);
  SACC_ASSIGN_OR_RETURN(PatternSpec spec, parse_single(text.substr(0, split_at)));
  SACC_ASSIGN_OR_RETURN(const PatternSpec alternative, parse_single(text.substr(split_at + 1)));
  if (spec.kind != PatternKind::INTERVAL_SLASH || alternative.kind != PatternKind::BLOCK_CLUSTER) {
    return make_error(StatusCode::INVALID_ARGUMENT,
                      "pattern '{}': only 'interval-slash:...|block-cluster:...' (runtime choice) or "
                      "'interval-slash:...+block-cluster:...' (union) combine two patterns",
                      text);
  }
  spec.alternative_blocks = alternative.blocks;
  spec.alternative_gamma = alternative.gamma;
  spec.alternative_union = text[split_at] == '+';
  return spec;
}

}  // namespace

Result<PatternSpec> parse_pattern(const std::string& text) {
  const size_t tail_at = text.rfind(kTailPrefix);
  if (tail_at == std::string::npos) return parse_without_tail(text);
  SACC_ASSIGN_OR_RETURN(PatternSpec spec, parse_without_tail(text.substr(0, tail_at)));
  SACC_ASSIGN_OR_RETURN(spec.tail, parse_count(text.substr(tail_at + std::string(kTailPrefix).size()), text));
  if (spec.tail < 1) {
    return make_error(StatusCode::INVALID_ARGUMENT, "pattern '{}': a dense tail needs at least one row",
                      text);
  }
  if (spec.kind == PatternKind::DENSE) {
    return make_error(StatusCode::INVALID_ARGUMENT,
                      "pattern '{}': dense is dense everywhere, it takes no tail", text);
  }
  return spec;
}

std::string to_string(const PatternSpec& spec) {
  std::string out;
  switch (spec.kind) {
    case PatternKind::DENSE:
      return "dense";
    case PatternKind::TRIANGULAR:
      out = fmt::format("triangular:{},{}", spec.sink, spec.window);
      break;
    case PatternKind::INTERVAL_SLASH:
      out = fmt::format("interval-slash:{},{}", spec.vertical, spec.slash);
      break;
    case PatternKind::BLOCK_CLUSTER:
      out = fmt::format("block-cluster:{}", spec.blocks);
      break;
  }
  if (spec.is_adaptive()) out += fmt::format("@{}", spec.gamma);
  if (spec.has_alternative()) {
    out += spec.alternative_union ? '+' : '|';
    out += to_string(spec.alternative());
  }
  if (spec.tail > 0) out += fmt::format("{}{}", kTailPrefix, spec.tail);
  return out;
}

PatternSpec clamp_pattern_to_length(const PatternSpec& spec, const IndexGeometry& geometry) {
  PatternSpec out = spec;
  out.sink = std::min(out.sink, geometry.seq_len);
  out.window = std::min(out.window, geometry.seq_len);
  out.vertical = std::min(out.vertical, geometry.seq_len);
  out.slash = std::min(out.slash, geometry.seq_len);
  out.tail = std::min(out.tail, geometry.seq_len);
  out.blocks = std::min(out.blocks, geometry.num_k_blocks());
  out.alternative_blocks = std::min(out.alternative_blocks, geometry.num_k_blocks());
  return out;
}

}  // namespace sacc
