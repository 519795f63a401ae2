#include "tools/sacc/linear_option.h"

namespace sacc::cli {

void add_linear_option(CLI::App* cmd, std::string& linear) {
  cmd->add_option("--linear", linear,
                  "linear layers: bf16, or fp8 (e4m3 weights with per-channel scales, per-token activation "
                  "scales; CUDA only) (default bf16)");
}

}  // namespace sacc::cli
