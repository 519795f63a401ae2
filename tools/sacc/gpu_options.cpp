#include "tools/sacc/gpu_options.h"

#include "runtime/multi_gpu_plan.h"

namespace sacc::cli {

void add_gpu_options(CLI::App& cmd, GpuArgs& args) {
  cmd.add_option("--gpus", args.gpus, "several GPUs, e.g. 0,1 (replaces --device)");
  cmd.add_option("--split", args.split,
                 "with --gpus: layer (layer ranges under the caps) or tensor (heads and MLP columns, NCCL)");
  cmd.add_option("--gpu-mem", args.gpu_mem, "memory cap per GPU, e.g. 24GiB (emulates smaller cards)");
}

Status apply_gpu_args(const GpuArgs& args, Device& device, BackendOptions& options) {
  SACC_ASSIGN_OR_RETURN(options.split, parse_split_mode(args.split));
  if (!args.gpu_mem.empty()) {
    Result<uint64_t> cap = parse_bytes(args.gpu_mem);
    if (!cap) return cap.status().with_context("--gpu-mem");
    options.per_gpu_cap = *cap;
  }
  if (args.gpus.empty()) return Status::ok();
  SACC_ASSIGN_OR_RETURN(options.gpus, parse_gpu_list(args.gpus));
  device = Device::cuda(options.gpus.front());
  options.device = device;
  return Status::ok();
}

Result<std::string> describe_gpu_placement(const ModelConfig& config, BackendOptions& options,
                                           int64_t tokens) {
  options.max_tokens = tokens;
  apply_gpu_caps(options);
  SACC_ASSIGN_OR_RETURN(GpuPlacement placement, plan_gpu_placement(config, options));
  return fmt::format("{} split: ", split_mode_name(options.split)) +
         describe_shards(config, placement.shards, placement.available, placement.sizing);
}

std::string method_label(const std::string& method, const BackendOptions& options) {
  if (options.gpus.size() <= 1) return method;
  return fmt::format("{}-{}{}", method, split_mode_name(options.split), options.gpus.size());
}

}  // namespace sacc::cli
