// Runs the sacc binary under test as a user would, capturing what it prints.
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace sacc::test {

struct SaccRun {
  int exit_code = -1;  // -1: killed by a signal (a crash)
  std::string output;  // stdout and stderr
};

// `environment`: shell assignments put before the command ("PATH=/nonexistent").
inline SaccRun run_sacc_binary(const std::string& arguments, const std::string& environment = "") {
  const std::string command = (environment.empty() ? "" : environment + " ") + std::string(SACC_SACC_BINARY) +
                              " " + arguments + " 2>&1";
  SaccRun result;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return result;
  char buffer[4096];
  while (size_t got = fread(buffer, 1, sizeof buffer, pipe)) result.output.append(buffer, got);
  const int status = pclose(pipe);
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  return result;
}

}  // namespace sacc::test
