#include "tools/sacc/serve_attention.h"

#include <fmt/format.h>

#include "runtime/attention_policy.h"

namespace sacc::cli {
namespace {

// What of the attention settings changes the KV a prefill writes (the rest of the key: serve_prefix_cache.h).
std::string attention_key(AttentionMode mode, const std::string& pattern, const std::string& pattern_config,
                          int64_t sparse_min_length) {
  return fmt::format("attention={}|pattern={}|pattern_config={}|sparse_min={}", attention_mode_name(mode),
                     pattern, pattern_config, sparse_min_length);
}

}  // namespace

std::shared_ptr<const ServeAttention> server_attention(const EngineArgs& args, const EngineSetup& setup) {
  return std::make_shared<const ServeAttention>(ServeAttention{
      setup.options,
      attention_key(setup.mode, args.pattern, args.pattern_config, setup.options.sparse_min_length)});
}

Result<std::shared_ptr<const ServeAttention>> request_attention(
    const EngineArgs& args, const EngineSetup& setup, const std::shared_ptr<const ServeAttention>& server,
    const AttentionOverride& request, std::string& bad_param) {
  const std::string field = kAttentionOverrideField;
  AttentionMode mode = setup.mode;
  if (request.attention) {
    const std::string param = field + ".attention";
    Result<AttentionMode> parsed = parse_attention_mode(*request.attention);
    if (!parsed) {
      bad_param = param;
      return parsed.status().with_context(param);
    }
    if (*parsed != AttentionMode::AUTO && *parsed != AttentionMode::DENSE &&
        *parsed != AttentionMode::SPARSE) {
      bad_param = param;
      return make_error(StatusCode::INVALID_ARGUMENT,
                        "{}: '{}' is a benchmark baseline; a request may ask for auto, dense or sparse",
                        param, *request.attention);
    }
    mode = *parsed;
  }
  const std::string pattern = request.pattern.value_or(args.pattern);
  const std::string pattern_config = request.pattern ? "" : args.pattern_config;
  if (mode == setup.mode && pattern == args.pattern && pattern_config == args.pattern_config) return server;
  ServeAttention out{setup.options, ""};
  if (Status s = configure_attention(setup.model.weights.config, mode, pattern, pattern_config, out.options);
      !s) {
    // The server's own pattern was checked at start-up: a failure here is the request's.
    bad_param = field + (request.pattern ? ".pattern" : ".attention");
    return s.with_context(bad_param);
  }
  out.key = attention_key(mode, pattern, pattern_config, out.options.sparse_min_length);
  return std::make_shared<const ServeAttention>(std::move(out));
}

}  // namespace sacc::cli
