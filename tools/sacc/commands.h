// Each `sacc` subcommand lives in its own file and registers itself here.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

#include "core/status.h"

namespace sacc::cli {

// A subcommand's body, run after parsing; returns the process exit code.
using CommandBody = std::function<int()>;

// Registration: adds the subcommand's options to `app` and stores what to run into `body`.
void add_attention_command(CLI::App& app, CommandBody& body);
void add_version_command(CLI::App& app, CommandBody& body);
void add_generate_command(CLI::App& app, CommandBody& body);
void add_info_command(CLI::App& app, CommandBody& body);
// argv is recorded in the results files.
void add_eval_command(CLI::App& app, CommandBody& body);
void add_search_command(CLI::App& app, CommandBody& body);
void add_calibrate_command(CLI::App& app, CommandBody& body);
void add_serve_command(CLI::App& app, CommandBody& body);
void add_bench_command(CLI::App& app, CommandBody& body, int argc, char** argv);

// Prints "error: <message>" to stderr and returns the exit code for a failed Status.
int report_error(const Status& status);

}  // namespace sacc::cli
