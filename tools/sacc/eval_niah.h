// `sacc eval niah` (see eval_niah.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sacc::cli {

struct NiahArgs {
  std::string model;
  std::string device;
  std::string linear = "bf16";                     // --linear
  std::string text_path;                           // prose for the haystack (default: the Jargon File)
  std::vector<int64_t> lengths{1000, 2000, 4000};  // prompt tokens
  std::string sparse = "interval-slash:64,512;block-cluster:8";  // ';'-separated settings besides dense
  std::string out_dir;                                           // niah.json and one heat map per setting
  uint64_t seed = 1;
};

int run_eval_niah(const NiahArgs& args);

}  // namespace sacc::cli
