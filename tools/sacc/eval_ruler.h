// `sacc eval ruler` (see eval_ruler.cpp; the tasks are in ruler_tasks.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sacc::cli {

struct RulerArgs {
  std::string model;
  std::string device;
  std::string linear = "bf16";               // --linear
  std::string text_path;                     // prose for the haystacks (default: the Jargon File)
  std::vector<int64_t> lengths{4000, 8000};  // prompt tokens
  std::string tasks = "all";                 // "all" or a comma list of task names
  int samples = 25;                          // prompts per task and length
  std::string sparse = "interval-slash:64,512;block-cluster:8";  // ';'-separated settings besides dense
  std::string out_dir;                                           // ruler.json, ruler.md, ruler.png
  uint64_t seed = 1;                                             // every prompt derives from it
  int64_t max_new_tokens = 0;                                    // 0: each task's own answer length
};

int run_eval_ruler(const RulerArgs& args);

}  // namespace sacc::cli
