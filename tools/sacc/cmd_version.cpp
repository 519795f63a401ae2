// `sacc version`: build facts a bug report needs.
#include <cstdio>

#include "core/device_info.h"
#include "core/tensor.h"
#include "runtime/attention_policy.h"
#include "runtime/auto_calibration.h"
#include "tools/sacc/commands.h"

namespace sacc::cli {

void add_version_command(CLI::App& app, CommandBody& body) {
  CLI::App* cmd = app.add_subcommand("version", "print the version, build options and visible GPUs");
  cmd->callback([&body] {
    body = [] {
      std::printf("sacc 0.1.0 (CUDA kernels: %s)\n", built_with_cuda() ? "built" : "not built");
      const int count = cuda_device_count();
      for (int i = 0; i < count; ++i) {
        Result<GpuInfo> info = query_gpu(i);
        if (info)
          std::printf("cuda:%d %s sm_%d%d %s\n", i, info->name.c_str(), info->sm_major, info->sm_minor,
                      format_bytes(info->total_memory).c_str());
      }
      if (count == 0) std::printf("no CUDA device visible\n");
      std::printf("default sparse setting: %s\n", kDefaultSparsePattern);
      std::printf("auto calibration cache: %s\n", calibration_cache_path().c_str());
      return 0;
    };
  });
}

}  // namespace sacc::cli
