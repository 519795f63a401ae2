// `sacc info`: a model's configuration and the memory plan of a context length on a device.
#include <cstdio>

#include "core/device_info.h"
#include "model/model_loader.h"
#include "runtime/attention_policy.h"
#include "runtime/backend.h"
#include "runtime/memory_plan.h"
#include "tools/sacc/commands.h"
#include "tools/sacc/context_option.h"
#include "tools/sacc/gpu_options.h"
#include "tools/sacc/linear_option.h"

namespace sacc::cli {

void add_info_command(CLI::App& app, CommandBody& body) {
  struct Args {
    std::string model;
    int64_t ctx = 0;
    int64_t chunk = 0;  // 0: the backend's default (linear_chunk_rows)
    std::string device;
    std::string budget;
    int64_t max_context = 0;
    GpuArgs gpu;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd =
      app.add_subcommand("info", "print a model's config and the memory plan for a context length");
  cmd->add_option("-m,--model", args->model, "HF model directory, .gguf file or random:<name>")->required();
  cmd->add_option("--ctx", args->ctx, "tokens to plan for (default: the model's context)");
  add_chunk_option(cmd, args->chunk);
  cmd->add_option("--device", args->device, "cpu or cuda[:N] (default: cuda when present)");
  cmd->add_option("--budget", args->budget, "memory budget of the device, e.g. 24GiB");
  add_max_context_option(cmd, args->max_context);
  add_gpu_options(*cmd, args->gpu);
  cmd->callback([&body, args] {
    body = [args] {
      Result<ModelConfig> config = load_model_config(args->model);
      if (!config) return report_error(config.status());
      if (Status s = apply_max_context(args->max_context, *config); !s) return report_error(s);
      Result<Device> device =
          parse_device(args->device.empty() ? (cuda_device_count() > 0 ? "cuda" : "cpu") : args->device);
      if (!device) return report_error(device.status());
      BackendOptions gpu_options;
      if (Status s = apply_gpu_args(args->gpu, *device, gpu_options); !s) return report_error(s);
      std::printf("%s", config->summary().c_str());
      const int64_t ctx = args->ctx > 0 ? args->ctx : config->max_context;
      if (gpu_options.gpus.size() > 1) {
        gpu_options.chunk = args->chunk;
        if (Status s = configure_attention(*config, AttentionMode::AUTO, "", "", gpu_options); !s)
          return report_error(s);
        Result<std::string> placement = describe_gpu_placement(*config, gpu_options, ctx);
        if (!placement) return report_error(placement.status());
        std::printf("%s", placement->c_str());
        return 0;
      }
      // The attention workspace of the default (--attention auto) prefill at this length.
      uint64_t attention_bytes = 0;
      if (!device->is_cpu()) {
        BackendOptions options;
        options.chunk = args->chunk;
        if (Status s = configure_attention(*config, AttentionMode::AUTO, "", "", options); !s)
          return report_error(s);
        Result<uint64_t> bytes = cuda_attention_workspace_bytes(*config, options, ctx);
        if (!bytes) return report_error(bytes.status());
        attention_bytes = *bytes;
      }
      MemoryPlan plan = plan_memory(*config, ctx, args->chunk, *device, attention_bytes);
      if (Status s = apply_memory_budget(args->budget, *device, plan); !s) return report_error(s);
      std::printf("%s", plan.describe().c_str());
      if (Status fits = check_plan(plan, *config); !fits) return report_error(fits);
      return 0;
    };
  });
}

}  // namespace sacc::cli
