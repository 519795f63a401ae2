// --linear bf16|fp8 (runtime/linear_mode.h) and --chunk N on `sacc generate`, `serve`, `bench`, `eval` and
// `info`: one help text and one check each, so every command accepts and rejects the same values.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>

namespace sacc::cli {

// The text is parsed (and an unknown value refused, exit non-zero) where the command builds its options.
void add_linear_option(CLI::App* cmd, std::string& linear);
// Rows per linear-layer chunk; 0 (the default) leaves the choice to the backend (runtime/linear_mode.h).
void add_chunk_option(CLI::App* cmd, int64_t& chunk);

}  // namespace sacc::cli
