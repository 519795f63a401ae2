// sacc: the SparseAccelerate command line. Subcommands register themselves in commands.h.
#include <cstdio>

#include "core/log.h"
#include "core/progress.h"
#include "tools/sacc/commands.h"

namespace sacc::cli {

int report_error(const Status& status) {
  std::fprintf(stderr, "error: %s\n", status.to_string().c_str());
  switch (status.code()) {
    case StatusCode::INVALID_ARGUMENT:
      return 2;
    case StatusCode::OUT_OF_MEMORY:
      return 3;
    default:
      return 1;
  }
}

}  // namespace sacc::cli

int main(int argc, char** argv) {
  CLI::App app{"SparseAccelerate: fast long-prompt inference with dynamic sparse attention in prefill",
               "sacc"};
  app.require_subcommand(1);
  bool quiet = false;
  bool verbose = false;
  app.add_flag("-q,--quiet", quiet, "no progress output");
  app.add_flag("-v,--verbose", verbose, "debug logging");

  sacc::cli::CommandBody body;
  sacc::cli::add_attention_command(app, body);
  sacc::cli::add_version_command(app, body);
  sacc::cli::add_generate_command(app, body);
  sacc::cli::add_info_command(app, body);
  sacc::cli::add_bench_command(app, body, argc, argv);
  sacc::cli::add_eval_command(app, body);
  sacc::cli::add_search_command(app, body);
  sacc::cli::add_calibrate_command(app, body);
  sacc::cli::add_serve_command(app, body);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (quiet) sacc::Progress::set_globally_enabled(false);
  if (verbose) sacc::set_log_level(sacc::LogLevel::DEBUG);
  return body ? body() : 0;
}
