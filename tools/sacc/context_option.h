// --max-context: lets a run go past the context window a model declares (e.g. a 512K prompt on
// random:llama-3.1-8b, which keeps Llama-3.1's 131072). Positions beyond the trained window are computed
// with the same RoPE, so speed and memory are real, but a real model's answers may degrade there.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>

#include "core/status.h"
#include "model/model_config.h"

namespace sacc::cli {

void add_max_context_option(CLI::App* cmd, int64_t& max_context);

// 0 keeps the model's own window; a positive value replaces it (with a warning when it is longer).
Status apply_max_context(int64_t max_context, ModelConfig& config);

// A prompt of `tokens` (the longest a command was asked for, named by `flag`) must fit the run's window
// (after apply_max_context); else an error naming --max-context.
Status check_within_context(int64_t tokens, const char* flag, const ModelConfig& config);

}  // namespace sacc::cli
