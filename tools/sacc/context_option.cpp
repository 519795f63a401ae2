#include "tools/sacc/context_option.h"

#include "core/log.h"

namespace sacc::cli {

void add_max_context_option(CLI::App* cmd, int64_t& max_context) {
  cmd->add_option("--max-context", max_context,
                  "tokens the run may hold, replacing the model's declared context window (longer windows "
                  "warn: RoPE extrapolates past the trained length)");
}

Status apply_max_context(int64_t max_context, ModelConfig& config) {
  if (max_context == 0) return Status::ok();
  if (max_context < 0)
    return make_error(StatusCode::INVALID_ARGUMENT, "--max-context {} must be positive", max_context);
  if (max_context > config.max_context)
    SACC_LOG_WARN(
        "--max-context {} is past the model's context window of {} tokens: positions beyond it "
        "extrapolate RoPE, so a real model's answers may degrade there",
        max_context, config.max_context);
  config.max_context = max_context;
  return Status::ok();
}

Status check_within_context(int64_t tokens, const char* flag, const ModelConfig& config) {
  if (tokens <= config.max_context) return Status::ok();
  return make_error(StatusCode::INVALID_ARGUMENT,
                    "{} {} is longer than the model's context window of {} tokens; pass --max-context {} to "
                    "run past it",
                    flag, tokens, config.max_context, tokens);
}

}  // namespace sacc::cli
