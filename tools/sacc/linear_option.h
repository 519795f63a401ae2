// --linear bf16|fp8 (runtime/linear_mode.h) on `sacc generate`, `serve`, `bench` and `eval`: one help text
// and one check, so every command accepts and rejects the same values.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

namespace sacc::cli {

// The text is parsed (and an unknown value refused, exit non-zero) where the command builds its options.
void add_linear_option(CLI::App* cmd, std::string& linear);

}  // namespace sacc::cli
