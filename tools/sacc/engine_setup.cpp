#include "tools/sacc/engine_setup.h"

#include "core/device_info.h"
#include "core/log.h"
#include "core/out_of_memory.h"
#include "runtime/attention_policy.h"
#include "runtime/engine.h"
#include "runtime/memory_plan.h"
#include "tools/sacc/context_option.h"
#include "tools/sacc/linear_option.h"
#include "tools/sacc/threads_option.h"

namespace sacc::cli {

void add_engine_options(CLI::App& cmd, EngineArgs& args) {
  cmd.add_option("-m,--model", args.model, "HF model directory, .gguf file or random:<name>")->required();
  cmd.add_option("--device", args.device, "cpu or cuda[:N] (default: cuda when present)");
  add_threads_option(&cmd);
  cmd.add_option("--attention", args.attention, "auto|dense|cudnn|eager|sparse (default auto)");
  cmd.add_option("--pattern", args.pattern,
                 fmt::format("one sparse pattern for every head (default {})", kDefaultSparsePattern));
  cmd.add_option("--pattern-config", args.pattern_config, "per-head patterns: our JSON or MInference's");
  add_chunk_option(&cmd, args.chunk);
  add_linear_option(&cmd, args.linear);
  cmd.add_option("--budget", args.budget,
                 "memory budget of the device, e.g. 24GiB (emulates a smaller card)");
  add_max_context_option(&cmd, args.max_context);
  add_gpu_options(cmd, args.gpu);
}

Result<EngineSetup> load_engine(const EngineArgs& a, bool quiet) {
  const bool cuda = a.device.empty() ? cuda_device_count() > 0 : a.device.rfind("cuda", 0) == 0;
  EngineSetup setup;
  SACC_ASSIGN_OR_RETURN(setup.device, parse_device(a.device.empty() ? (cuda ? "cuda" : "cpu") : a.device));
  SACC_RETURN_IF_ERROR(apply_gpu_args(a.gpu, setup.device, setup.options));
  SACC_ASSIGN_OR_RETURN(setup.mode, parse_attention_mode(a.attention));
  SACC_ASSIGN_OR_RETURN(setup.options.linear, parse_linear_mode(a.linear));

  ModelLoadOptions load;
  load.seed = a.seed;
  SACC_ASSIGN_OR_RETURN(setup.model, load_model(a.model, load));
  SACC_RETURN_IF_ERROR(apply_max_context(a.max_context, setup.model.weights.config));
  const ModelConfig& config = setup.model.weights.config;

  setup.options.device = setup.device;
  setup.options.chunk = a.chunk;
  SACC_RETURN_IF_ERROR(configure_attention(config, setup.mode, a.pattern, a.pattern_config, setup.options));
  if (setup.mode == AttentionMode::AUTO && !quiet)
    SACC_LOG_INFO("auto: {}", describe_auto_choice(setup.options, config.max_context));
  return setup;
}

namespace {

// `options`: setup.options, or the same with a request's attention settings.
Result<MemoryPlan> plan_run(const EngineArgs& a, const EngineSetup& setup, const BackendOptions& options,
                            int64_t prompt_tokens, int64_t max_new_tokens) {
  const ModelConfig& config = setup.model.weights.config;
  const int64_t tokens = kv_positions_needed(prompt_tokens, max_new_tokens);
  uint64_t attention_bytes = 0;
  if (!setup.device.is_cpu()) {
    SACC_ASSIGN_OR_RETURN(attention_bytes, cuda_attention_workspace_bytes(config, options, prompt_tokens));
  }
  return plan_memory(config, tokens, a.chunk, setup.device, attention_bytes,
                     attention_needs_separate_output(options.attention), 1, options.linear);
}

}  // namespace

uint64_t run_bytes_beside_weights(const EngineArgs& a, const EngineSetup& setup, int64_t prompt_tokens,
                                  int64_t max_new_tokens, const BackendOptions* maybe_options) {
  Result<MemoryPlan> plan =
      plan_run(a, setup, maybe_options ? *maybe_options : setup.options, prompt_tokens, max_new_tokens);
  return plan ? plan->kv_cache + plan->workspace : 0;
}

namespace {

// plan_run with what the run can use: the weights as the CPU backend holds them, memory the caller can
// reclaim, the budget. With several GPUs `available` is 0 (their placement is checked instead).
Result<MemoryPlan> plan_run_on_device(const EngineArgs& a, const EngineSetup& setup,
                                      const BackendOptions& options, int64_t prompt_tokens,
                                      int64_t max_new_tokens, uint64_t reclaimable_bytes) {
  SACC_ASSIGN_OR_RETURN(MemoryPlan plan, plan_run(a, setup, options, prompt_tokens, max_new_tokens));
  if (plan.available) plan.available += reclaimable_bytes;
  // The CPU backend multiplies a GGUF's weights in the file's own format, in place: the file's bytes, not
  // fp32.
  if (setup.device.is_cpu() && setup.model.kind == ModelSourceKind::GGUF)
    plan.weights = setup.model.weights.total_bytes_on_host;
  if (setup.options.gpus.size() > 1) {
    plan.available = 0;
  } else {
    const std::string budget = a.budget.empty() ? a.gpu.gpu_mem : a.budget;
    SACC_RETURN_IF_ERROR(apply_memory_budget(budget, setup.device, plan));
  }
  return plan;
}

}  // namespace

Status check_run_fits(const EngineArgs& a, const EngineSetup& setup, int64_t prompt_tokens,
                      int64_t max_new_tokens, std::string* maybe_placement, uint64_t reclaimable_bytes,
                      const BackendOptions* maybe_options) {
  const ModelConfig& config = setup.model.weights.config;
  const int64_t tokens = kv_positions_needed(prompt_tokens, max_new_tokens);
  const BackendOptions& run_options = maybe_options ? *maybe_options : setup.options;
  SACC_ASSIGN_OR_RETURN(MemoryPlan plan, plan_run_on_device(a, setup, run_options, prompt_tokens,
                                                            max_new_tokens, reclaimable_bytes));
  if (setup.options.gpus.size() > 1) {
    // The per-GPU placement replaces the one-device plan; the context limit still applies.
    BackendOptions options = run_options;
    SACC_ASSIGN_OR_RETURN(std::string placement, describe_gpu_placement(config, options, tokens));
    if (maybe_placement) *maybe_placement = std::move(placement);
  }
  return check_plan(plan, config);
}

Status with_run_plan(const Status& status, const EngineArgs& a, const EngineSetup& setup,
                     int64_t prompt_tokens, int64_t max_new_tokens) {
  if (status.code() != StatusCode::OUT_OF_MEMORY) return status;
  Result<MemoryPlan> plan = plan_run_on_device(a, setup, setup.options, prompt_tokens, max_new_tokens, 0);
  return plan ? attach_memory_plan(status, plan->describe()) : status;
}

Result<std::unique_ptr<Backend>> make_backend(const EngineSetup& setup) {
  return setup.device.is_cpu() ? make_cpu_backend(setup.model.weights, setup.options)
                               : make_cuda_backend(setup.model.weights, setup.options);
}

}  // namespace sacc::cli
