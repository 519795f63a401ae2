// `sacc attention`: run one pattern (or dense) over Q/K/V from a safetensors file, or a synthetic demo.
#include "tools/sacc/commands.h"

namespace sacc::cli {

void add_attention_command(CLI::App& app, CommandBody& body) {
  CLI::App* cmd = app.add_subcommand("attention", "run dense or sparse attention on Q/K/V tensors");
  cmd->callback([&body] { body = [] { return 0; }; });
}

}  // namespace sacc::cli
