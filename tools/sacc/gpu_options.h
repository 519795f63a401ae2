// The several-GPU flags shared by `sacc generate`, `sacc bench` and `sacc info`: --gpus 0,1 --split
// layer|tensor --gpu-mem 24GiB (runtime/multi_gpu_plan.h).
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "core/status.h"
#include "model/model_config.h"
#include "runtime/backend.h"

namespace sacc::cli {

struct GpuArgs {
  std::string gpus;             // "0,1"; empty: one device (--device)
  std::string split = "layer";  // layer | tensor
  std::string gpu_mem;          // per-GPU cap, e.g. "24GiB"; empty: no cap
};

void add_gpu_options(CLI::App& cmd, GpuArgs& args);

// Fills options.gpus, split and per_gpu_cap from the flags; with --gpus the device is the first GPU listed.
Status apply_gpu_args(const GpuArgs& args, Device& device, BackendOptions& options);

// With more than one GPU: the placement for `tokens` positions (caps applied) as a table, or the error naming
// what does not fit. options.max_tokens is set to `tokens`.
Result<std::string> describe_gpu_placement(const ModelConfig& config, BackendOptions& options,
                                           int64_t tokens);

// "sacc-sparse" -> "sacc-sparse-layer2" / "sacc-sparse-tensor2" with several GPUs, unchanged otherwise.
std::string method_label(const std::string& method, const BackendOptions& options);

}  // namespace sacc::cli
