// --threads N: the CPU thread pool's size (parallel_for, and with it OpenBLAS, which runs single-threaded
// inside the pool's tasks). Default: SACC_THREADS if set, else the hardware concurrency.
#pragma once

#include <CLI/CLI.hpp>

namespace sacc::cli {

void add_threads_option(CLI::App* cmd);

}  // namespace sacc::cli
