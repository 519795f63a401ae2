// The set-up `sacc generate` and `sacc serve` share: the model, device, attention and memory flags, and the
// steps that turn them into a loaded model, backend options, a memory check for one run, and a backend.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <memory>
#include <string>

#include "core/status.h"
#include "model/model_loader.h"
#include "runtime/backend.h"
#include "tools/sacc/gpu_options.h"

namespace sacc::cli {

struct EngineArgs {
  std::string model;
  uint64_t seed = 0;  // random: models' weights
  std::string device;
  std::string attention = "auto";
  std::string pattern;
  std::string pattern_config;
  int64_t chunk = 8192;
  std::string linear = "bf16";
  std::string budget;
  int64_t max_context = 0;
  GpuArgs gpu;
};

// -m, --device, --attention, --pattern, --pattern-config, --chunk, --linear, --budget, --max-context and the
// GPU flags.
void add_engine_options(CLI::App& cmd, EngineArgs& args);

struct EngineSetup {
  LoadedModel model;
  Device device;
  AttentionMode mode = AttentionMode::AUTO;
  BackendOptions options;
};

// Parses the flags, loads the model (context limit applied) and configures attention; `quiet` drops the log
// line on AUTO's choice.
Result<EngineSetup> load_engine(const EngineArgs& args, bool quiet);

// Whether a run of `prompt_tokens` then `max_new_tokens` fits the context and the device memory (budget
// applied). With several GPUs the per-GPU placement is checked and, when asked, described into
// `maybe_placement`. Reads `setup` only, so request threads may call it concurrently.
Status check_run_fits(const EngineArgs& args, const EngineSetup& setup, int64_t prompt_tokens,
                      int64_t max_new_tokens, std::string* maybe_placement = nullptr);

Result<std::unique_ptr<Backend>> make_backend(const EngineSetup& setup);

}  // namespace sacc::cli
