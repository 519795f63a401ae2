#include "tools/sacc/threads_option.h"

#include "attention/cpu/parallel_for.h"

namespace sacc::cli {

void add_threads_option(CLI::App* cmd) {
  cmd->add_option_function<int>(
         "--threads", [](const int& n) { set_cpu_thread_count(n); },
         "CPU threads (default: the hardware concurrency, or SACC_THREADS)")
      ->check(CLI::PositiveNumber);
}

}  // namespace sacc::cli
