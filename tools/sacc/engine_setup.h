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
  int64_t chunk = 0;  // 0: the backend's default (linear_chunk_rows)
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
// `reclaimable_bytes`: memory the caller frees before the run if need be (the server's prefix cache), counted
// as available. `maybe_options`: setup.options with a server request's own attention settings (null:
// setup.options).
Status check_run_fits(const EngineArgs& args, const EngineSetup& setup, int64_t prompt_tokens,
                      int64_t max_new_tokens, std::string* maybe_placement = nullptr,
                      uint64_t reclaimable_bytes = 0, const BackendOptions* maybe_options = nullptr);

// Bytes a run of `prompt_tokens` then `max_new_tokens` allocates beside the loaded weights: its KV cache and
// workspace, as check_run_fits plans them (one device; `maybe_options` as there).
uint64_t run_bytes_beside_weights(const EngineArgs& args, const EngineSetup& setup, int64_t prompt_tokens,
                                  int64_t max_new_tokens, const BackendOptions* maybe_options = nullptr);

// `status` (from make_backend, generate or the backend) with the run's memory plan attached when it is
// OUT_OF_MEMORY (core/out_of_memory.h): what failed to allocate, then what the whole run needs beside what
// the device has. Other statuses pass through.
Status with_run_plan(const Status& status, const EngineArgs& args, const EngineSetup& setup,
                     int64_t prompt_tokens, int64_t max_new_tokens);

Result<std::unique_ptr<Backend>> make_backend(const EngineSetup& setup);

}  // namespace sacc::cli
